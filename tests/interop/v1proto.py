"""Version-1 streamkinect2 protocol pieces shared by the interop peers.

Written from the protocol spec (PROTOCOL.md) alone, not from sk2's C code,
so that these peers are an independent reading of the spec: control messages
(one type byte, optional UTF-8 JSON payload), validation of `me`, the depth12
codec of the depth endpoint, and the mock device's scene.

Depth images are handled as little-endian uint16 bytes, row-major, because
that lets the codec run on whole planes with bytes.translate() and slicing
instead of a Python loop per pixel (a 512 x 424 frame is 217 088 pixels).
"""

import dataclasses
import functools
import json
import math

import lz4.block
import zmq

TYPE_ERROR = 0x00
TYPE_PING = 0x01
TYPE_PONG = 0x02
TYPE_WHO = 0x03
TYPE_ME = 0x04

TYPE_NAMES = {
    TYPE_ERROR: "error",
    TYPE_PING: "ping",
    TYPE_PONG: "pong",
    TYPE_WHO: "who",
    TYPE_ME: "me",
}
CLIENT_TYPES = frozenset({TYPE_PING, TYPE_WHO})
SERVER_TYPES = frozenset({TYPE_ERROR, TYPE_PONG, TYPE_ME})

PROTOCOL_VERSION = 1
REPLY_TIMEOUT_MS = 5000  # the original client's response_timeout
MAX_CONTROL_PAYLOAD_BYTES = 64 * 1024  # what our server accepts in a request
MAX_CONTROL_MESSAGE_BYTES = 16 * 1024 * 1024  # transport bound (ZMQ_MAXMSGSIZE)

WIDTH = 512
HEIGHT = 424
MOCK_DX_RANGE = range(-100, 101)  # dx = int(100 * sin(t))


class ProtocolError(Exception):
    """A peer sent something the version-1 protocol does not allow."""


@dataclasses.dataclass(frozen=True)
class Message:
    """One parsed control message; `has_payload` tells a JSON null from none."""

    msg_type: int
    payload: object = None
    has_payload: bool = False

    @property
    def type_name(self):
        """Human-readable name of the type byte, for messages."""
        return TYPE_NAMES.get(self.msg_type, f"0x{self.msg_type:02x}")


def make_message(msg_type, payload=None):
    """Frames of a control message: [type byte] or [type byte, JSON payload]."""
    frames = [bytes([msg_type])]
    if payload is not None:
        frames.append(json.dumps(payload).encode("utf-8"))
    return frames


def make_error(reason, code=400):
    """An error reply as the original server sends it (code + reason)."""
    return make_message(TYPE_ERROR, {"code": code, "reason": reason})


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_message(frames, max_payload_bytes=None):
    """Parse control-message frames into a Message, or raise ProtocolError.

    Checks only the framing and the payload encoding; which types are
    acceptable depends on who receives the message and is up to the caller.
    """
    if not 1 <= len(frames) <= 2:
        raise ProtocolError(f"message has {len(frames)} frames, expected 1 or 2")
    if len(frames[0]) != 1:
        raise ProtocolError(f"type frame is {len(frames[0])} bytes, expected 1")
    msg_type = frames[0][0]
    if len(frames) == 1:
        return Message(msg_type)
    raw = bytes(frames[1])
    if max_payload_bytes is not None and len(raw) > max_payload_bytes:
        raise ProtocolError(
            f"payload is {len(raw)} bytes, the limit is {max_payload_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"payload is not UTF-8: {exc}") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"payload is not JSON: {exc}") from None
    return Message(msg_type, payload, True)


def validate_error(message):
    """Raise ProtocolError unless `message` is a well-formed error reply."""
    if message.msg_type != TYPE_ERROR:
        raise ProtocolError(f"expected an error reply, got {message.type_name}")
    if not isinstance(message.payload, dict):
        raise ProtocolError("error payload is not a JSON object")
    if not isinstance(message.payload.get("reason"), str):
        raise ProtocolError("error payload has no string 'reason'")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_me(payload):
    """Check a `me` payload; return its device list or raise ProtocolError.

    Unknown fields and endpoint names are allowed (sk2 extensions); ids must
    be unique strings and every endpoints value we look at a string.
    """
    if not isinstance(payload, dict):
        raise ProtocolError("me payload is not a JSON object")
    version = payload.get("version")
    if not _is_number(version) or version != PROTOCOL_VERSION:
        raise ProtocolError(f"me has version {version!r}, expected the number 1")
    if not isinstance(payload.get("name"), str):
        raise ProtocolError("me has no string 'name'")
    endpoints = payload.get("endpoints")
    if not isinstance(endpoints, dict):
        raise ProtocolError("me has no 'endpoints' object")
    if not isinstance(endpoints.get("control"), str):
        raise ProtocolError("me endpoints have no string 'control'")
    devices = payload.get("devices")
    if not isinstance(devices, list):
        raise ProtocolError("me has no 'devices' list")
    seen = set()
    for device in devices:
        if not isinstance(device, dict):
            raise ProtocolError("a device record is not a JSON object")
        device_id = device.get("id")
        if not isinstance(device_id, str):
            raise ProtocolError("a device has no string 'id'")
        if device_id in seen:
            raise ProtocolError(f"device id {device_id!r} appears twice")
        seen.add(device_id)
        if not isinstance(device.get("endpoints"), dict):
            raise ProtocolError(f"device {device_id!r} has no 'endpoints' object")
    return devices


def exchange(sock, frames, timeout_ms=REPLY_TIMEOUT_MS):
    """Send `frames` on `sock` and return the reply frames.

    Raises TimeoutError when nothing arrives within `timeout_ms`.
    """
    sock.send_multipart(frames)
    if not sock.poll(timeout_ms, zmq.POLLIN):
        raise TimeoutError(f"no reply within {timeout_ms} ms")
    return sock.recv_multipart()


def open_socket(ctx, socket_type, endpoint):
    """A connected socket that never lingers and bounds inbound messages."""
    sock = ctx.socket(socket_type)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_MESSAGE_BYTES)
    sock.connect(endpoint)
    return sock


def request(ctx, endpoint, msg_type, payload=None, timeout_ms=REPLY_TIMEOUT_MS):
    """One request on a fresh REQ socket; returns the parsed reply Message."""
    sock = open_socket(ctx, zmq.REQ, endpoint)
    try:
        frames = exchange(sock, make_message(msg_type, payload), timeout_ms)
    finally:
        sock.close()
    return parse_message(frames)


def query_devices(ctx, endpoint, timeout_ms=REPLY_TIMEOUT_MS):
    """Send `who` and return the validated device list of the `me` reply."""
    reply = request(ctx, endpoint, TYPE_WHO, timeout_ms=timeout_ms)
    if reply.msg_type != TYPE_ME:
        raise ProtocolError(f"who was answered with {reply.type_name}")
    return validate_me(reply.payload)


# --- depth12 codec --------------------------------------------------------

def _byte_table(fn):
    return bytes(fn(b) for b in range(256))


_LOW_NIBBLE = _byte_table(lambda b: b & 0x0F)
_HIGH_NIBBLE = _byte_table(lambda b: b >> 4)
_LOW_NIBBLE_UP = _byte_table(lambda b: (b & 0x0F) << 4)


def _or_bytes(a, b):
    """Bytewise OR of two equally long byte strings (via big integers)."""
    value = int.from_bytes(a, "little") | int.from_bytes(b, "little")
    return value.to_bytes(len(a), "little")


def _check_shape(width, height):
    if width <= 0 or height <= 0 or width % 2:
        # Low nibbles are packed in pairs within a row; the protocol's
        # 512-pixel rows are even, and odd widths are not defined by the spec.
        raise ValueError(f"unsupported image size {width}x{height}")
    return width * height


def depth12_raw_size(width=WIDTH, height=HEIGHT):
    """Uncompressed size of a depth12 image: 1.5 bytes per pixel."""
    return _check_shape(width, height) * 3 // 2


def encode_depth12(depth_le, width=WIDTH, height=HEIGHT):
    """Encode little-endian uint16 depth bytes into one depth-endpoint message.

    Only the low 12 bits of each value are kept, as the protocol says.
    """
    pixels = _check_shape(width, height)
    if len(depth_le) != 2 * pixels:
        raise ValueError(f"expected {2 * pixels} bytes, got {len(depth_le)}")
    depth_le = bytes(depth_le)
    lsb, msb = depth_le[0::2], depth_le[1::2]
    # (d >> 4) & 0xff takes the top nibble of the LSB and the low nibble of the MSB.
    high = _or_bytes(lsb.translate(_HIGH_NIBBLE), msb.translate(_LOW_NIBBLE_UP))
    # Rows have an even width, so pairing pixels over the whole image pairs
    # them within rows: even (left) pixel in the high nibble.
    packed = _or_bytes(lsb[0::2].translate(_LOW_NIBBLE_UP), lsb[1::2].translate(_LOW_NIBBLE))
    return lz4.block.compress(high + packed, store_size=True)


def decode_depth12(blob, width=WIDTH, height=HEIGHT):
    """Decode one depth-endpoint message into little-endian uint16 bytes.

    Raises ProtocolError for anything that is not a depth12 image of the
    given size; the size prefix is checked before anything is allocated.
    """
    pixels = _check_shape(width, height)
    expected = pixels * 3 // 2
    if len(blob) < 4:
        raise ProtocolError(f"depth message is only {len(blob)} bytes")
    stored = int.from_bytes(blob[:4], "little")
    if stored != expected:
        raise ProtocolError(f"depth size prefix is {stored}, expected {expected}")
    try:
        raw = lz4.block.decompress(blob)
    except lz4.block.LZ4BlockError as exc:
        raise ProtocolError(f"depth message is not an LZ4 block: {exc}") from None
    if len(raw) != expected:
        raise ProtocolError(f"depth image decompressed to {len(raw)} bytes")
    high, packed = raw[:pixels], raw[pixels:]
    low = bytearray(pixels)
    low[0::2] = packed.translate(_HIGH_NIBBLE)
    low[1::2] = packed.translate(_LOW_NIBBLE)
    out = bytearray(2 * pixels)
    out[0::2] = _or_bytes(high.translate(_LOW_NIBBLE_UP), bytes(low))
    out[1::2] = high.translate(_HIGH_NIBBLE)
    return bytes(out)


# --- the mock device ----------------------------------------------------

def mock_dx(t_s):
    """Horizontal shift of the mock sphere at time t: (int)(100 * sin(t))."""
    return int(100 * math.sin(t_s))


@functools.cache
def _mock_unshifted_rows():
    """Rows of min(wall, sphere) for dx = 0, as little-endian uint16 bytes.

    Rolling a row and taking the minimum with a value that is constant along
    the row commute, so frames for any dx are these rows rolled.
    """
    rows = []
    for y in range(HEIGHT):
        wall = (y >> 1) + 1000
        row = bytearray()
        for x in range(WIDTH):
            sphere = (int(math.sqrt((x - 256) ** 2 + (y - 212) ** 2)) + 500) & 0xFFFF
            row += min(wall, sphere).to_bytes(2, "little")
        rows.append(bytes(row))
    return tuple(rows)


def _roll_row(row, dx):
    """A row of little-endian uint16 pixels rolled right by dx, wrapping."""
    shift = 2 * (dx % WIDTH)
    return row[-shift:] + row[:-shift] if shift else row


def mock_frame(dx):
    """The mock scene for shift dx: out[x] = min(wall, sphere[(x - dx) mod 512])."""
    return b"".join(_roll_row(row, dx) for row in _mock_unshifted_rows())


def find_mock_dx(depth_le):
    """The dx in -100..100 whose mock scene equals `depth_le` exactly, else None.

    The sphere's centre row differs for every dx, so it picks the candidate
    cheaply before the whole frame is compared.
    """
    if len(depth_le) != 2 * WIDTH * HEIGHT:
        return None
    centre = HEIGHT // 2
    row = bytes(depth_le[2 * WIDTH * centre:2 * WIDTH * (centre + 1)])
    for dx in MOCK_DX_RANGE:
        if _roll_row(_mock_unshifted_rows()[centre], dx) == row and mock_frame(dx) == depth_le:
            return dx
    return None
