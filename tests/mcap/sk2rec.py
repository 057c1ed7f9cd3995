"""An sk2 recording read from the layout in docs/recording.md, independently of sk2, for the
MCAP tests: the devices (their JSON) and the frames (dicts of the header fields and the
payload). Chunks are checked against their CRC-32."""
import json
import struct
import zlib

KINDS = {1: "depth", 2: "color", 3: "ir"}


def read_recording(file_name):
    data = open(file_name, "rb").read()
    assert data[:8] == b"SK2REC\r\n"
    devices, frames, offset = [], [], 32
    while offset + 12 <= len(data):
        kind, size, crc = data[offset:offset + 4], *struct.unpack_from("<II", data, offset + 4)
        body = data[offset + 12:offset + 12 + size]
        assert len(body) == size and zlib.crc32(data[offset:offset + 8] + body) == crc
        if kind == b"DEVC":
            devices.append(json.loads(body[4:]))
        elif kind == b"FRAM":
            head = body[4:68]
            hsize, = struct.unpack_from("<H", head, 6)
            width, height, _, seq, device_us, capture = struct.unpack_from("<IIIQqq", head, 12)
            frames.append(dict(device=struct.unpack_from("<H", body, 0)[0],
                               kind=KINDS[head[8]], codec=head[10], width=width, height=height,
                               seq=seq, device_us=device_us, capture_us=capture,
                               payload=body[4 + hsize:]))
        offset += 12 + size
    return devices, frames
