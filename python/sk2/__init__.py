"""sk2 for Python: depth cameras streamed over the network, as numpy arrays.

A binding over libsk2 (the C library of the sk2 project). Frames arrive decoded in C and reach
Python without being copied: ``Frame.asarray()`` is a read-only numpy view of the frame's own
buffer, which stays alive as long as any array refers to it.

    import sk2
    with sk2.Client("tcp://127.0.0.1:5555", streams=["depth", "color"]) as c:
        fs = c.wait_for_frames(timeout_ms=1000)   # newest frame set, or raises sk2.Timeout
        depth = fs.depth.asarray()                # numpy uint16 (424, 512), millimetres
        points = fs.depth.to_points()             # (N, 3) float32, metres

Blocking calls release the GIL and can be interrupted with Ctrl-C. Errors are exceptions
named after sk2's error codes (sk2.Timeout, sk2.ProtocolError, ...), all subclasses of
sk2.Error; bad arguments raise ValueError or TypeError. The binding starts no threads of its
own: everything happens inside the calls you make, as with the C client.
"""
import collections as _collections

from . import _sk2
from ._sk2 import (  # noqa: F401  (re-exported)
    Device,
    Event,
    Frame,
    FrameSet,
    Intrinsics,
    Registration,
    StreamInfo,
    mock_dx,
    mock_match,
    strerror,
)

__version__ = _sk2.__version__

# Every exception class: sk2.Error and one subclass per SK2_E* code.
Error = _sk2.Error
for _name in dir(_sk2):
    _obj = getattr(_sk2, _name)
    if isinstance(_obj, type) and issubclass(_obj, Error):
        globals()[_name] = _obj
del _name, _obj

ServerInfo = _collections.namedtuple("ServerInfo", "name endpoint key")
ServerInfo.__doc__ = """A server found on the network: its announced name, its control
endpoint ("tcp://192.168.1.20:5555") and its CURVE public key (None unless it is secure)."""


def browse(timeout=3.0):
    """Finds sk2 (and streamkinect2) servers on the local network over DNS-SD.

    Waits until the mDNS daemon (avahi-daemon) has told all it knows, or ``timeout``
    seconds pass, and returns a list of ServerInfo(name, endpoint, key). Raises
    sk2.ConnectError when no daemon is running, sk2.Unsupported when libsk2 was built
    without discovery.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout is a number of seconds, not {type(timeout).__name__}")
    if not timeout >= 0:
        raise ValueError(f"timeout must be >= 0 seconds, not {timeout!r}")
    return [ServerInfo(*s) for s in _sk2._browse(int(timeout * 1000))]


def mock_scene(dx):
    """The mock camera's depth image for one sphere offset (see mock_dx), as a numpy uint16
    (424, 512) array: what every mock depth frame must equal exactly."""
    import numpy

    return numpy.frombuffer(_sk2._mock_render(dx), dtype=numpy.uint16).reshape(
        _sk2.MOCK_HEIGHT, _sk2.MOCK_WIDTH)


def set_log_level(level):
    """Sets what libsk2 logs to stderr: 'error', 'warn' (default), 'info', 'debug', 'trace'."""
    levels = {"error": 0, "warn": 1, "info": 2, "debug": 3, "trace": 4}
    if level not in levels:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(levels)}")
    _sk2._set_log_level(levels[level])


class Client(_sk2.Client):
    """Client(endpoint, streams=["depth"], *, timeout_ms=5000, reconnect=True,
    give_up_after_ms=0, latest=True, max_frame_bytes=0, heartbeat_ms=10000,
    response_timeout_ms=5000)

    Connects to an sk2 or streamkinect2 server and receives the named streams of every device
    it serves, decoded. ``endpoint`` is "tcp://host:port" or "host:port"; ``streams`` lists
    "depth", "color" and "ir", each optionally with a codec ("color:raw"; by default sk2d for
    depth and IR, jpeg for colour, or the first the server offers). A version-1 server's depth
    comes from its depth endpoint.

    The constructor waits up to ``timeout_ms`` for the server's answer (sk2.Timeout if none).
    With ``reconnect`` (the default) a lost server is retried and frames resume when it is
    back; events() reports 'reconnecting' and 'reconnected'. ``give_up_after_ms`` ends the
    retrying (then waits raise sk2.Lost). With ``latest`` each wait returns the newest complete
    frame set, dropping older ones a slow reader did not take. ``heartbeat_ms`` and
    ``response_timeout_ms`` set how often the server is asked whether it is there, and how long
    it may take to answer before it counts as lost.

    Use it as a context manager, or call close(). One thread at a time may use a client; its
    waits release the GIL, so other threads run meanwhile.

        with sk2.Client("127.0.0.1:5555", streams=["depth", "color"]) as c:
            for dev in c.devices:
                print(dev.id, dev.streams["depth"].intrinsics)
            fs = c.wait_for_frames(timeout_ms=1000)
            print(fs.depth.asarray().shape, fs.color.asarray().shape)
    """

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def frames(self, timeout_ms=1000):
        """Yields frame sets as they come (wait_for_frames in a loop) until a wait times out
        (then it returns quietly) or the server is gone for good (sk2.Lost)."""
        while True:
            try:
                yield self.wait_for_frames(timeout_ms=timeout_ms)
            except Timeout:  # noqa: F821 (made from _sk2 above)
                return

    def events(self, timeout_ms=0):
        """Yields what happens to the connection, as sk2.Event(type, device_id, error, reason,
        outage_us): 'connected', 'device-added', 'device-removed', 'disconnected', 'error',
        'reconnecting', 'reconnected'. Runs the client while it waits, up to ``timeout_ms``
        for each event (None: forever), and returns when none comes in time. Frames that
        arrive meanwhile are kept (the newest complete set) for the next wait_for_frames."""
        while True:
            event = self._next_event(timeout_ms)
            if event is None:
                return
            yield event

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<sk2.Client {self.endpoint} {state}>"


class Server(_sk2.Server):
    """Server(mock=1, bind="127.0.0.1", port=0, name=None, fps=30, color_size=None,
    replay=None, announce=False)

    An sk2 server inside this process, for tests and demonstrations: ``mock`` mock cameras
    (each at ``fps``; ``color_size`` a (width, height) for their colour stream) and, with
    ``replay``, the first device of a recording. It binds ``bind`` (an address; "*" for every
    interface) on ``port`` (0: the OS picks one) at once; ``endpoint`` is what clients connect
    to. Frames are captured, encoded and published by the server's own threads.

        with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
            print(c.wait_for_frames().depth.asarray().mean())

    All calls must come from the thread that made it. close() (or leaving the with block)
    stops it.
    """

    def __init__(self, mock=1, bind="127.0.0.1", port=0, name=None, fps=30.0, color_size=None,
                 replay=None, announce=False):
        for what, value in (("mock", mock), ("port", port)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{what} must be an int, not {type(value).__name__}")
        if not 0 <= mock <= 256:
            raise ValueError(f"mock must be 0..256, not {mock}")
        if not isinstance(bind, str):
            raise TypeError(f"bind is an address (str), not {type(bind).__name__}")
        super().__init__(name)
        try:
            if announce:
                self._set_announce(True)
            self.bind(bind, port)
            self.device_ids = []
            for _ in range(mock):
                self.device_ids.append(self.add_mock(fps=fps, color_size=color_size))
            if replay is not None:
                self.device_ids.append(self.add_replay(replay))
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def announce_state(self):
        """('off' | 'pending' | 'active' | 'failed', announced name or None)."""
        return self._announce_state()

    def __repr__(self):
        return f"<sk2.Server {self.name!r} {self.endpoint}>"


class Recording(_sk2.Recording):
    """Recording(path)

    Reads an sk2 recording (``sk2 record``) or a folder in the TUM RGB-D layout. ``len(r)``
    frames in file order; ``r.read(i)`` decodes one; ``frames()`` and ``framesets()`` iterate.
    ``devices`` describes the recorded devices (sk2.Device, with streams and intrinsics).

        with sk2.Recording("take.sk2") as r:
            for fs in r.framesets():
                print(fs.depth.seq, fs.depth.asarray().max())
    """

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def devices(self):
        return [Device(d) for d in self._devices]

    def frames(self):
        """Yields every frame (sk2.Frame), in file order."""
        for i in range(len(self)):
            yield self.read(i)

    def framesets(self):
        """Yields frame sets, in file order: the frames of one device with one capture time
        together. A set is handed out when it holds every recorded stream of its device, or
        when a frame of a later capture of that device arrives first (then it is incomplete,
        as when a stream dropped a frame, or in a TUM folder, whose depth and colour images
        have times of their own)."""
        kinds = {i: set(d[3]) for i, d in enumerate(self._devices)}
        pending = {}  # device index -> (capture time, {kind: Frame})
        for i in range(len(self)):
            device, kind, t, *_ = self._frame_info(i)
            if device in pending:
                pt, frames = pending[device]
                if pt != t or kind in frames:
                    del pending[device]
                    yield FrameSet(list(frames.values()))
            pt, frames = pending.setdefault(device, (t, {}))
            frames[kind] = self.read(i)
            if set(frames) >= kinds[device]:
                del pending[device]
                yield FrameSet(list(frames.values()))
        for _, frames in pending.values():
            yield FrameSet(list(frames.values()))

    def __repr__(self):
        if self.closed:
            return "<sk2.Recording closed>"
        return f"<sk2.Recording {self.format} {len(self)} frames>"


def _frame_to_open3d(frame):
    """Frame.to_open3d(): the frame's points as an open3d.geometry.PointCloud."""
    try:
        import open3d
    except ImportError as e:
        raise ImportError("Frame.to_open3d needs open3d (Debian: apt-get install "
                          "python3-open3d)") from e
    import numpy

    cloud = open3d.geometry.PointCloud()
    cloud.points = open3d.utility.Vector3dVector(frame.to_points().astype(numpy.float64))
    return cloud


__all__ = ["browse", "Client", "Server", "Recording", "Frame", "FrameSet", "Device",
           "StreamInfo", "Intrinsics", "Event", "ServerInfo", "Error", "mock_dx", "mock_match",
           "mock_scene", "set_log_level", "strerror"] + [
    n for n, o in list(globals().items())
    if isinstance(o, type) and issubclass(o, Error) and n != "Error"]
