#!/usr/bin/python3
"""An independent version-1 streamkinect2 server serving mock devices.

Like the original Python server, but on plain pyzmq in one thread: a REP
control socket answering ping and who, and one PUB socket per device that
carries depth12-encoded frames of the mock scene. Written from PROTOCOL.md
only, to test sk2's client against a second reading of the spec.
"""

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid

import zmq

import v1proto

POLL_SLICE_S = 0.1  # longest the loop sleeps before looking at its stop flag
PUB_HWM = 10  # frames queued per subscriber before the PUB drops them


class MockServer:
    """Control socket, devices and their publishers; no threads."""

    def __init__(self, ctx, bind, advertised_host, name):
        self._ctx = ctx
        self._bind = bind
        self._host = advertised_host
        self._name = name
        self._devices = []  # (id, depth endpoint, PUB socket), in order of creation
        self._encoded = {}  # dx -> encoded mock frame; at most 201 entries
        self.control = ctx.socket(zmq.REP)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.setsockopt(zmq.MAXMSGSIZE, v1proto.MAX_CONTROL_MESSAGE_BYTES)
        port = self.control.bind_to_random_port(f"tcp://{bind}")
        self.control_endpoint = f"tcp://{self._host}:{port}"

    def add_device(self):
        """Create a device with a fresh uuid4 hex id and its own PUB socket."""
        pub = self._ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, PUB_HWM)
        port = pub.bind_to_random_port(f"tcp://{self._bind}")
        self._devices.append((uuid.uuid4().hex, f"tcp://{self._host}:{port}", pub))

    def remove_first_device(self):
        """Stop serving the oldest device, if any."""
        if self._devices:
            _, _, pub = self._devices.pop(0)
            pub.close()

    def me_payload(self):
        """The `me` reply describing this server."""
        return {
            "version": v1proto.PROTOCOL_VERSION,
            "name": self._name,
            "endpoints": {"control": self.control_endpoint},
            "devices": [
                {"id": device_id, "endpoints": {"depth": depth}}
                for device_id, depth, _ in self._devices
            ],
        }

    def reply_to(self, frames):
        """The reply frames for one request's frames; every request gets one."""
        try:
            message = v1proto.parse_message(frames, v1proto.MAX_CONTROL_PAYLOAD_BYTES)
        except v1proto.ProtocolError as exc:
            return v1proto.make_error(str(exc))
        if message.msg_type == v1proto.TYPE_PING:
            return v1proto.make_message(v1proto.TYPE_PONG)
        if message.msg_type == v1proto.TYPE_WHO:
            return v1proto.make_message(v1proto.TYPE_ME, self.me_payload())
        if message.msg_type in v1proto.SERVER_TYPES:
            return v1proto.make_error(f"{message.type_name} is sent by servers, not clients")
        return v1proto.make_error(f"unknown message type {message.type_name}")

    def serve_one_request(self):
        """Answer a request that is waiting on the control socket.

        Each request is logged (before the reply goes out, so the line is
        there once the client has its answer) for tests that check a client
        really talked to us.
        """
        frames = self.control.recv_multipart(zmq.NOBLOCK)
        reply = self.reply_to(frames)
        request = v1proto.TYPE_NAMES.get(frames[0][0]) if len(frames[0]) == 1 else None
        answer = v1proto.TYPE_NAMES[reply[0][0]]
        print(f"v1_server: request {request or 'other'} answered with {answer}",
              file=sys.stderr, flush=True)
        self.control.send_multipart(reply)

    def publish(self, t_s):
        """Publish the mock frame for time t on every device."""
        dx = v1proto.mock_dx(t_s)
        frame = self._encoded.get(dx)
        if frame is None:
            frame = v1proto.encode_depth12(v1proto.mock_frame(dx))
            self._encoded[dx] = frame
        for _, _, pub in self._devices:
            pub.send(frame, zmq.NOBLOCK)  # a PUB drops rather than blocks

    def close(self):
        """Close every socket."""
        while self._devices:
            self.remove_first_device()
        self.control.close()


def write_endpoint_file(path, endpoint):
    """Write `endpoint` + newline to path atomically (temp file, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".endpoint-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(endpoint + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def run(server, fps, seconds, add_after, remove_after, should_stop):
    """Serve requests and publish frames until stopped or `seconds` elapse.

    Single-threaded: the control socket is polled with a timeout that ends
    when the next frame is due, so requests are answered between frames.
    """
    start = time.monotonic()
    period = 1.0 / fps
    next_frame = start
    poller = zmq.Poller()
    poller.register(server.control, zmq.POLLIN)
    while not should_stop():
        now = time.monotonic()
        elapsed = now - start
        if seconds is not None and elapsed >= seconds:
            break
        if add_after is not None and elapsed >= add_after:
            server.add_device()
            add_after = None
        if remove_after is not None and elapsed >= remove_after:
            server.remove_first_device()
            remove_after = None
        if now >= next_frame:
            server.publish(elapsed)
            next_frame += period
            if next_frame < now:  # fell behind: skip frames rather than burst
                next_frame = now + period
        wait_s = min(max(next_frame - time.monotonic(), 0.0), POLL_SLICE_S)
        if dict(poller.poll(wait_s * 1000)).get(server.control):
            server.serve_one_request()


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to bind to (a specific address, not a wildcard)")
    parser.add_argument("--devices", type=int, default=1, help="mock devices to serve")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second")
    parser.add_argument("--name", default="v1_server mock", help="server name in `me`")
    parser.add_argument("--endpoint-file", help="write the control endpoint here once bound")
    parser.add_argument("--hostname-endpoints", action="store_true",
                        help="hand out tcp://localhost:PORT instead of the bind address")
    parser.add_argument("--seconds", type=float, help="exit after this many seconds")
    parser.add_argument("--add-device-after", type=float, metavar="S",
                        help="add one more device S seconds after starting")
    parser.add_argument("--remove-device-after", type=float, metavar="S",
                        help="remove the first device S seconds after starting")
    args = parser.parse_args(argv)
    if args.devices < 0 or args.fps <= 0:
        parser.error("--devices must be >= 0 and --fps > 0")
    return args


def main(argv=None):
    """Run the server; exit status 0 on a clean stop."""
    args = parse_args(argv)
    stop_requested = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.append(True))
    ctx = zmq.Context()
    host = "localhost" if args.hostname_endpoints else args.bind
    server = MockServer(ctx, args.bind, host, args.name)
    try:
        for _ in range(args.devices):
            server.add_device()
        if args.endpoint_file:
            write_endpoint_file(args.endpoint_file, server.control_endpoint)
        print(f"v1_server: serving {args.devices} devices on {server.control_endpoint}",
              file=sys.stderr, flush=True)
        run(server, args.fps, args.seconds, args.add_device_after,
            args.remove_device_after, lambda: bool(stop_requested))
    finally:
        server.close()
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
