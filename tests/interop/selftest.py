#!/usr/bin/python3
"""Self-check of the interop peers: do v1_server.py and v1_client.py agree?

Unit checks of v1proto against hand-computed values and a per-pixel
reference codec, then the two peers run against each other as processes,
and the client against deliberately broken servers to show its checks can
fail. Run: /usr/bin/python3 tests/interop/selftest.py
"""

import contextlib
import math
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import lz4.block
import zmq

import harness
import v1_server
import v1proto

CLIENT_TIMEOUT_S = 120  # generous bound on a whole v1_client run
ENDPOINT_TIMEOUT_S = 10


def reference_depth12_raw(values, width, height):
    """Per-pixel reading of the spec's depth12 layout (before LZ4)."""
    high = bytes((d >> 4) & 0xFF for d in values)
    low = bytearray()
    for y in range(height):
        row = values[y * width:(y + 1) * width]
        for x in range(0, width, 2):
            low.append(((row[x] & 0xF) << 4) | (row[x + 1] & 0xF))
    return high + bytes(low)


def to_le(values):
    """Little-endian uint16 bytes of a list of ints."""
    return b"".join(v.to_bytes(2, "little") for v in values)


def from_le(data):
    """List of ints from little-endian uint16 bytes."""
    return [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)]


def run_client(*args):
    """Run v1_client.py; return (exit status or None on timeout, stdout, stderr)."""
    return harness.run_to_end(harness.script("v1_client.py") + list(args), CLIENT_TIMEOUT_S)


class CodecTest(unittest.TestCase):
    """The depth12 codec and the mock scene against the spec's formulas."""

    def test_depth12_encodes_a_tiny_image_to_hand_computed_bytes(self):
        values = [0x123, 0x456, 0x789, 0xABC,
                  0x000, 0xFFF, 0x1F0, 0x00F]
        encoded = v1proto.encode_depth12(to_le(values), 4, 2)
        self.assertEqual(encoded[:4], (12).to_bytes(4, "little"))
        self.assertEqual(lz4.block.decompress(encoded),
                         bytes([0x12, 0x45, 0x78, 0xAB, 0x00, 0xFF, 0x1F, 0x00,
                                0x36, 0x9C, 0x0F, 0x0F]))
        self.assertEqual(from_le(v1proto.decode_depth12(encoded, 4, 2)), values)

    def test_depth12_keeps_only_the_low_12_bits(self):
        values = [0x1234, 0xFFFF, 4096, 4095]
        decoded = v1proto.decode_depth12(v1proto.encode_depth12(to_le(values), 2, 2), 2, 2)
        self.assertEqual(from_le(decoded), [0x234, 0xFFF, 0, 4095])

    def test_depth12_codec_agrees_with_a_per_pixel_reference(self):
        rng = random.Random(1)
        width, height = 32, 10
        values = [rng.choice([0, 1, 0xFFFF, 4095, 4096, rng.randrange(65536)])
                  for _ in range(width * height)]
        encoded = v1proto.encode_depth12(to_le(values), width, height)
        raw = reference_depth12_raw(values, width, height)
        self.assertEqual(lz4.block.decompress(encoded), raw)
        decoded = v1proto.decode_depth12(lz4.block.compress(raw), width, height)
        self.assertEqual(from_le(decoded), [v & 0xFFF for v in values])

    def test_depth12_decoder_rejects_malformed_messages(self):
        good = v1proto.encode_depth12(v1proto.mock_frame(0))
        size = len(good)
        bad = {
            "empty": b"",
            "short prefix": good[:3],
            "wrong size prefix": (1 << 31).to_bytes(4, "little") + good[4:],
            "truncated block": good[:size // 2],
            "garbage block": good[:4] + b"\xff" * 100,
        }
        for name, blob in bad.items():
            with self.subTest(name), self.assertRaises(v1proto.ProtocolError):
                v1proto.decode_depth12(blob)

    def test_mock_scene_has_the_spec_values_at_hand_picked_pixels(self):
        def pixel(frame, x, y):
            i = 2 * (y * v1proto.WIDTH + x)
            return int.from_bytes(frame[i:i + 2], "little")
        still = v1proto.mock_frame(0)
        self.assertEqual(pixel(still, 256, 212), 500)
        self.assertEqual(pixel(still, 0, 0), 832)  # sqrt(256^2 + 212^2) = 332.4
        shifted = v1proto.mock_frame(10)
        self.assertEqual(pixel(shifted, 266, 212), 500)
        self.assertEqual(pixel(shifted, 0, 0), 824)  # sphere(502, 0): sqrt(105460) = 324.8
        left = v1proto.mock_frame(-10)
        self.assertEqual(pixel(left, 511, 0), pixel(still, 9, 0))  # wraps around

    def test_mock_dx_truncates_toward_zero(self):
        self.assertEqual(v1proto.mock_dx(math.pi / 2), 100)
        self.assertEqual(v1proto.mock_dx(-0.5), -47)  # 100 * sin(-0.5) = -47.9
        self.assertEqual(v1proto.mock_dx(0.5), 47)

    def test_find_mock_dx_finds_the_shift_and_rejects_a_changed_pixel(self):
        for dx in (-100, -1, 0, 37, 100):
            self.assertEqual(v1proto.find_mock_dx(v1proto.mock_frame(dx)), dx)
        changed = bytearray(v1proto.mock_frame(37))
        changed[2 * 1000] ^= 1
        self.assertIsNone(v1proto.find_mock_dx(bytes(changed)))
        self.assertIsNone(v1proto.find_mock_dx(v1proto.mock_frame(101)))


class ControlMessageTest(unittest.TestCase):
    """Framing and `me` validation."""

    def test_parse_message_rejects_malformed_framing(self):
        bad = [[], [b""], [b"\x01\x01"], [b"\x01", b"{}", b"{}"], [b"\x01", b""],
               [b"\x01", b"\xff"], [b"\x01", b"NaN"], [b"\x01", b"[" * 5000 + b"]" * 5000]]
        for frames in bad:
            with self.subTest(frames=repr(frames)[:40]), self.assertRaises(v1proto.ProtocolError):
                v1proto.parse_message(frames)

    def test_parse_message_tells_a_null_payload_from_none(self):
        self.assertFalse(v1proto.parse_message([b"\x01"]).has_payload)
        self.assertTrue(v1proto.parse_message([b"\x01", b"null"]).has_payload)

    def test_validate_me_accepts_extensions_and_rejects_bad_ones(self):
        good = {"version": 1, "name": "n", "endpoints": {"control": "tcp://h:1", "new": "x"},
                "devices": [{"id": "a", "endpoints": {"depth": "tcp://h:2"}, "extra": 1}],
                "extra": True}
        self.assertEqual(len(v1proto.validate_me(good)), 1)
        self.assertEqual(len(v1proto.validate_me(dict(good, version=1.0))), 1)
        broken = {
            "version 2": dict(good, version=2),
            "version string": dict(good, version="1"),
            "version true": dict(good, version=True),
            "no name": {k: v for k, v in good.items() if k != "name"},
            "no control": dict(good, endpoints={"depth": "x"}),
            "devices not a list": dict(good, devices={}),
            "id not a string": dict(good, devices=[{"id": 1, "endpoints": {}}]),
            "duplicate id": dict(good, devices=[{"id": "a", "endpoints": {}}] * 2),
            "no device endpoints": dict(good, devices=[{"id": "a"}]),
        }
        for name, payload in broken.items():
            with self.subTest(name), self.assertRaises(v1proto.ProtocolError):
                v1proto.validate_me(payload)


class PeersTest(unittest.TestCase):
    """v1_server.py and v1_client.py as processes, against each other."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    @contextlib.contextmanager
    def server(self, *args):
        """Start v1_server.py; yield (process, control endpoint)."""
        endpoint_file = os.path.join(self.tmp.name, "endpoint")
        log = os.path.join(self.tmp.name, "server.log")
        cmd = harness.script("v1_server.py") + ["--endpoint-file", endpoint_file, *args]
        with harness.started(cmd, log) as proc:
            try:
                endpoint = harness.wait_for_endpoint_file(endpoint_file, proc,
                                                          ENDPOINT_TIMEOUT_S)
                yield proc, endpoint
            except BaseException:
                sys.stderr.write(f"--- server log ---\n{harness.tail(log)}")
                raise

    def assert_client_passes(self, endpoint, *args):
        status, stdout, stderr = run_client(endpoint, *args)
        self.assertEqual(status, 0, stderr)
        return stdout

    def test_client_passes_against_server_which_stops_on_sigint(self):
        with self.server("--devices", "2", "--fps", "30") as (proc, endpoint):
            self.assertRegex(endpoint, r"^tcp://127\.0\.0\.1:\d+$")
            out = self.assert_client_passes(endpoint, "--frames", "20",
                                            "--check-mock", "--abuse")
            self.assertIn("40 frames from 2 devices decoded", out)
            self.assertEqual(harness.stop(proc, sig=signal.SIGINT), 0)

    def test_client_accepts_host_name_endpoints_and_server_stops_on_sigterm(self):
        with self.server("--devices", "1", "--hostname-endpoints") as (proc, endpoint):
            self.assertRegex(endpoint, r"^tcp://localhost:\d+$")
            with zmq.Context() as ctx:
                devices = v1proto.query_devices(ctx, endpoint)
            self.assertRegex(devices[0]["endpoints"]["depth"], r"^tcp://localhost:\d+$")
            out = self.assert_client_passes(endpoint, "--frames", "5", "--check-mock")
            self.assertIn("5 frames from 1 devices decoded", out)
            self.assertEqual(harness.stop(proc, sig=signal.SIGTERM), 0)

    def test_server_adds_then_removes_a_device_then_exits_after_seconds(self):
        args = ("--devices", "2", "--add-device-after", "1.5",
                "--remove-device-after", "2.5", "--seconds", "4")
        with self.server(*args) as (proc, endpoint), zmq.Context() as ctx:
            first = [d["id"] for d in v1proto.query_devices(ctx, endpoint)]
            self.assertEqual(len(first), 2)
            self.assertTrue(all(len(i) == 32 and int(i, 16) >= 0 for i in first))
            deadline = time.monotonic() + 10
            ids = first
            while ids[:1] == first[:1] and time.monotonic() < deadline:
                ids = [d["id"] for d in v1proto.query_devices(ctx, endpoint)]
                time.sleep(0.05)  # polling the server's state, not waiting blind
            self.assertEqual(ids[0], first[1])
            self.assertEqual(len(ids), 2)
            self.assertNotIn(ids[1], first)
            self.assertEqual(proc.wait(10), 0)

    def test_client_fails_when_nothing_answers(self):
        started = time.monotonic()
        status, _, stderr = run_client("tcp://127.0.0.1:1", "--frames", "1")
        self.assertEqual(status, 1)
        self.assertIn("no reply within", stderr)
        self.assertLess(time.monotonic() - started, 15)


class PongsEverything(v1_server.MockServer):
    """Broken: answers every request with a pong."""

    def reply_to(self, frames):
        return v1proto.make_message(v1proto.TYPE_PONG)


class PublishesWrongPixel(v1_server.MockServer):
    """Broken: one pixel of every frame is off by one."""

    def publish(self, t_s):
        frame = bytearray(v1proto.mock_frame(v1proto.mock_dx(t_s)))
        frame[2 * 5000] ^= 1
        for device in self._devices:
            device[2].send(v1proto.encode_depth12(bytes(frame)), zmq.NOBLOCK)


@contextlib.contextmanager
def server_in_thread(server_class):
    """Run a MockServer subclass with one device in a thread; yield its endpoint."""
    endpoints = queue.Queue()
    stop = threading.Event()

    def serve():
        with zmq.Context() as ctx:
            server = server_class(ctx, "127.0.0.1", "127.0.0.1", "broken")
            try:
                server.add_device()
                endpoints.put(server.control_endpoint)
                v1_server.run(server, 30, None, None, None, stop.is_set)
            finally:
                server.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield endpoints.get(timeout=ENDPOINT_TIMEOUT_S)
    finally:
        stop.set()
        thread.join(5)


class ClientCanFailTest(unittest.TestCase):
    """The client's checks catch servers that break the spec."""

    def test_client_rejects_a_server_that_answers_bad_requests_with_pong(self):
        with server_in_thread(PongsEverything) as endpoint:
            status, _, stderr = run_client(endpoint, "--abuse", "--frames", "1")
        self.assertEqual(status, 1)
        self.assertIn("unknown type 0x7f", stderr)

    def test_client_rejects_frames_that_are_not_the_mock_scene(self):
        with server_in_thread(PublishesWrongPixel) as endpoint:
            status, stdout, stderr = run_client(endpoint, "--frames", "3", "--check-mock")
            self.assertEqual(status, 1, stdout)
            self.assertIn("not the mock scene", stderr)
            status, _, stderr = run_client(endpoint, "--frames", "3")
        self.assertEqual(status, 0, stderr)  # the same frames pass without --check-mock


if __name__ == "__main__":
    unittest.main(verbosity=2)
