"""A minimal WebSocket client (RFC 6455) for the sk2 gateway's benchmark and tests: the
handshake, masked text messages out, unmasked messages in. Standard library only."""
import base64
import json
import os
import socket
import struct


class WsClient:
    def __init__(self, host, port, path="/ws", protocol="sk2-view", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n")
        self.sock.sendall(request.encode())
        self.buf = bytearray()
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
        self.buf = bytearray(rest)

    def send_text(self, text):
        data = text.encode()
        mask = os.urandom(4)
        header = bytearray([0x81])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(bytes(header) + mask + masked)

    def send_json(self, value):
        self.send_text(json.dumps(value))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def recv(self):
        """The next whole message as (opcode, payload bytes); 1 text, 2 binary, 8 close."""
        opcode = None
        payload = bytearray()
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                self._need(4)
                n = struct.unpack(">H", self.buf[2:4])[0]
                pos = 4
            elif n == 127:
                self._need(10)
                n = struct.unpack(">Q", self.buf[2:10])[0]
                pos = 10
            self._need(pos + n)
            frame_opcode = b0 & 0x0F
            data = bytes(self.buf[pos:pos + n])
            del self.buf[:pos + n]
            if frame_opcode in (9, 10):  # ping, pong: not for us
                continue
            if frame_opcode != 0:
                opcode = frame_opcode
            payload += data
            if b0 & 0x80:
                return opcode, bytes(payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_frame(payload):
    """The header of a binary frame message (docs/http-api.md) as a dict."""
    if len(payload) < 48 or payload[:4] != b"SK2W":
        raise ValueError("not an SK2W frame")
    kind, encoding, id_len = payload[5], payload[6], payload[7]
    width, height = struct.unpack_from("<II", payload, 8)
    sequence, capture_us, latency_us = struct.unpack_from("<ddd", payload, 16)
    wire, offset = struct.unpack_from("<II", payload, 40)
    return {"kind": kind, "encoding": encoding, "device": payload[48:48 + id_len].decode(),
            "width": width, "height": height, "sequence": int(sequence),
            "capture_time_us": int(capture_us), "latency_us": latency_us, "offset": offset}
