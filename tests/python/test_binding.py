#!/usr/bin/env python3
"""The Python binding (python/, docs/python.md) against real servers on loopback.

Servers are started from Python (sk2.Server) or as `sk2 serve` processes, always on
127.0.0.1 with ports the OS picks. Run by ctest with PYTHONPATH=build/python and SK2_TOOL the
`sk2` command; `python3 -m unittest` or pytest run it too.
"""
import gc
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import unittest

import numpy as np

import sk2

SK2 = os.environ.get("SK2_TOOL", "sk2")
HERE = os.path.dirname(os.path.abspath(__file__))
ERROR_H = os.path.join(HERE, "..", "..", "include", "sk2", "error.h")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_serve(*extra):
    """`sk2 serve` on loopback; returns (process, endpoint)."""
    tmp = tempfile.mkdtemp(prefix="sk2-py-")
    endpoint_file = os.path.join(tmp, "endpoint")
    proc = subprocess.Popen([SK2, "serve", "--bind", "127.0.0.1", "--endpoint-file",
                             endpoint_file, "--no-status", "--no-announce", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(endpoint_file):
            with open(endpoint_file) as f:
                endpoint = f.read().strip()
            if endpoint:
                return proc, endpoint
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("sk2 serve did not start: " + proc.communicate()[1])


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def assert_mock(test, frame):
    """A mock depth frame is exactly the mock scene of its capture time."""
    expected = sk2.mock_scene(sk2.mock_dx(frame.capture_time_us))
    test.assertTrue(np.array_equal(frame.asarray(), expected),
                    f"frame {frame.seq} differs from the mock scene in "
                    f"{int((frame.asarray() != expected).sum())} pixels")


class Streaming(unittest.TestCase):
    def test_frames_from_a_python_server_are_the_mock_scene(self):
        with sk2.Server(mock=1, fps=60, color_size=(320, 240)) as srv:
            for codec in ("sk2d", "raw", "rvl"):
                with sk2.Client(srv.endpoint, streams=[f"depth:{codec}", "color", "ir"]) as c:
                    seqs = []
                    for _ in range(10):
                        fs = c.wait_for_frames(timeout_ms=10000)
                        self.assertEqual(len(fs), 3)
                        self.assertEqual(fs.device_id, srv.device_ids[0])
                        self.assertEqual(fs.depth.codec, codec)
                        assert_mock(self, fs.depth)
                        # One capture: the three frames share its time.
                        self.assertEqual(fs.color.capture_time_us, fs.depth.capture_time_us)
                        self.assertEqual(fs.ir.capture_time_us, fs.depth.capture_time_us)
                        self.assertEqual(fs.color.asarray().shape, (240, 320, 3))
                        self.assertEqual(fs.ir.asarray().dtype, np.uint16)
                        seqs.append(fs.depth.seq)
                    self.assertEqual(seqs, sorted(set(seqs)), "sequence numbers must grow")

    def test_frames_from_sk2_serve(self):
        proc, endpoint = start_serve("--mock", "2", "--fps", "30")
        try:
            with sk2.Client(endpoint, streams=["depth"]) as c:
                self.assertEqual(len(c.devices), 2)
                seen = set()
                for _ in range(20):
                    fs = c.wait_for_frames(timeout_ms=10000)
                    assert_mock(self, fs.depth)
                    seen.add(fs.device_id)
                self.assertEqual(seen, {d.id for d in c.devices})
        finally:
            stop(proc)

    def test_a_version_1_server_gives_depth_from_its_depth_endpoint(self):
        tmp = tempfile.mkdtemp(prefix="sk2-py-v1-")
        endpoint_file = os.path.join(tmp, "endpoint")
        server = os.path.join(HERE, "..", "interop", "v1_server.py")
        proc = subprocess.Popen([sys.executable, server, "--devices", "1", "--endpoint-file",
                                 endpoint_file], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while not os.path.exists(endpoint_file) or not open(endpoint_file).read().strip():
                self.assertLess(time.monotonic(), deadline, "v1_server did not start")
                self.assertIsNone(proc.poll(), "v1_server exited")
                time.sleep(0.05)
            with open(endpoint_file) as f:
                endpoint = f.read().strip()
            with sk2.Client(endpoint) as c:
                self.assertEqual(len(c.devices), 1)
                for _ in range(5):
                    d = c.wait_for_frames(timeout_ms=10000).depth
                    self.assertEqual(d.codec, "depth12")
                    self.assertEqual(d.unit_m, 0.001)
                    # depth12 keeps 12 bits and no capture time: some mock scene's low 12
                    # bits, exactly (as `sk2 stream --check-mock` checks).
                    dx = sk2.mock_match(d, 12)
                    self.assertIsNotNone(dx, "not the mock scene")
                    scene = sk2.mock_scene(dx)
                    self.assertTrue(np.array_equal(d.asarray() & 0xFFF, scene & 0xFFF))
        finally:
            proc.terminate()
            proc.wait(timeout=15)

    def test_devices_describe_streams_and_intrinsics(self):
        with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
            (dev,) = c.devices
            self.assertEqual(dev.id, srv.device_ids[0])
            self.assertEqual(dev.backend, "mock")
            depth = dev.streams["depth"]
            self.assertEqual((depth.width, depth.height, depth.format), (512, 424, "depth_mm16"))
            self.assertEqual(depth.unit_m, 0.001)
            self.assertIn("sk2d", depth.codecs)
            self.assertGreater(depth.intrinsics.fx, 100)
            fs = c.wait_for_frames(timeout_ms=10000)
            self.assertEqual(fs.depth.intrinsics, depth.intrinsics)
            self.assertEqual(fs.depth.unit_m, 0.001)
            self.assertIsNone(fs.color)

    def test_to_points_are_the_depth_in_metres(self):
        with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
            d = c.wait_for_frames(timeout_ms=10000).depth
            depth = d.asarray()
            pts = d.to_points()
            self.assertEqual(pts.dtype, np.float32)
            self.assertEqual(pts.shape, (int((depth != 0).sum()), 3))
            # z is the depth itself, row by row in pixel order.
            np.testing.assert_allclose(pts[:, 2], depth[depth != 0] * 0.001, rtol=1e-6)
            # Without distortion, the centre of projection maps back onto the pinhole model.
            flat = d.to_points(intrinsics=(500, 500, 256, 212, 0, 0, 0, 0, 0), unit_m=0.002)
            v, u = np.nonzero(depth)
            np.testing.assert_allclose(flat[:, 0], (u - 256) * depth[v, u] * 0.002 / 500,
                                       rtol=1e-5, atol=1e-6)

    def test_to_open3d(self):
        try:
            import open3d  # noqa: F401
        except ImportError:
            with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
                with self.assertRaises(ImportError):
                    c.wait_for_frames(timeout_ms=10000).depth.to_open3d()
            return
        with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
            d = c.wait_for_frames(timeout_ms=10000).depth
            cloud = d.to_open3d()
            self.assertEqual(len(cloud.points), len(d.to_points()))

    def test_frames_generator_and_poll(self):
        with sk2.Server(mock=1, fps=30) as srv, sk2.Client(srv.endpoint) as c:
            got = 0
            for fs in c.frames(timeout_ms=10000):
                got += 1
                if got == 5:
                    break
            self.assertEqual(got, 5)
            self.assertIn(type(c.poll_for_frames()), (sk2.FrameSet, type(None)))


class Lifetime(unittest.TestCase):
    def test_array_outlives_frameset_client_and_server(self):
        srv = sk2.Server(mock=1)
        c = sk2.Client(srv.endpoint)
        fs = c.wait_for_frames(timeout_ms=10000)
        a = fs.depth.asarray()
        copy = a.copy()
        self.assertIs(type(a.base), sk2.Frame)
        self.assertFalse(a.flags.writeable)
        with self.assertRaises(ValueError):
            a[0, 0] = 1
        with self.assertRaises(ValueError):
            a.setflags(write=True)
        del fs
        c.close()
        srv.close()
        del c, srv
        gc.collect()
        # Other allocations must not land on the frame's pixels.
        junk = [np.ones((424, 512), np.uint16) for _ in range(20)]
        self.assertTrue(np.array_equal(a, copy))
        del junk

    def test_memoryview_is_read_only_and_zero_copy(self):
        with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
            d = c.wait_for_frames(timeout_ms=10000).depth
            m = memoryview(d)
            self.assertTrue(m.readonly)
            self.assertEqual((m.format, m.shape), ("H", (424, 512)))
            a = d.asarray()
            self.assertEqual(np.frombuffer(d, np.uint16).ctypes.data, a.ctypes.data)
            self.assertEqual(a.ctypes.data, np.asarray(m).ctypes.data)
            with self.assertRaises((BufferError, TypeError, ValueError)):
                np.frombuffer(d, np.uint16).setflags(write=True)

    def test_no_leak_over_10000_frames(self):
        with sk2.Server(mock=1, fps=0) as srv:
            with sk2.Client(srv.endpoint, streams=["depth:raw"], latest=False) as c:
                def take(n):
                    for _ in range(n):
                        fs = c.wait_for_frames(timeout_ms=20000)
                        a = fs.depth.asarray()
                        assert a.shape == (424, 512)
                        fs.depth.seq, fs.depth.intrinsics, fs.depth.unit_m
                take(500)  # warm up: sockets, allocator pools
                gc.collect()
                tracemalloc.start()
                before_py = tracemalloc.get_traced_memory()[0]
                before_rss = rss_kb()
                take(10000)
                gc.collect()
                after_py = tracemalloc.get_traced_memory()[0]
                after_rss = rss_kb()
                tracemalloc.stop()
        # One leaked frame is 434 KB: 10,000 of them would be 4 GB; these bounds catch a leak
        # of a few bytes per frame in Python objects and of any frame buffer.
        self.assertLess(after_py - before_py, 256 * 1024,
                        f"Python memory grew by {after_py - before_py} bytes")
        self.assertLess(after_rss - before_rss, 40 * 1024,
                        f"RSS grew by {after_rss - before_rss} KB over 10,000 frames")


class Threads(unittest.TestCase):
    def test_other_threads_run_while_a_wait_blocks(self):
        # The other thread gives the GIL up after every step and, with a switch interval far
        # longer than the test, never gets it back unless the main thread lets it go: it can
        # count during the wait only if the wait runs without the GIL.
        with sk2.Server(mock=0) as srv, sk2.Client(srv.endpoint) as c:
            count = [0]
            stop_flag = threading.Event()

            def step():
                while not stop_flag.is_set():
                    count[0] += 1
                    time.sleep(0.001)

            old_interval = sys.getswitchinterval()
            sys.setswitchinterval(60)
            t = threading.Thread(target=step)
            try:
                t.start()
                time.sleep(0.1)
                before = count[0]
                with self.assertRaises(sk2.Timeout):
                    c.wait_for_frames(timeout_ms=1500)  # no devices: blocks the whole time
                during = count[0] - before
            finally:
                stop_flag.set()
                t.join()
                sys.setswitchinterval(old_interval)
            self.assertGreater(during, 10, "the other thread did not run during the wait")

    def test_two_clients_in_two_threads(self):
        with sk2.Server(mock=1, fps=30) as srv:
            results = {}

            def worker(name):
                with sk2.Client(srv.endpoint) as c:
                    results[name] = [c.wait_for_frames(timeout_ms=10000).depth.seq
                                     for _ in range(5)]

            threads = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(sorted(results), ["a", "b"])
            self.assertTrue(all(len(v) == 5 for v in results.values()))

    def test_a_client_used_by_two_threads_at_once_refuses(self):
        with sk2.Server(mock=0) as srv, sk2.Client(srv.endpoint) as c:
            t = threading.Thread(target=lambda: self.assertRaises(
                sk2.Timeout, c.wait_for_frames, timeout_ms=2000))
            t.start()
            time.sleep(0.5)
            with self.assertRaisesRegex(RuntimeError, "another thread"):
                c.wait_for_frames(timeout_ms=10)
            t.join()

    def test_ctrl_c_interrupts_a_wait(self):
        child = (
            "import sk2, sys, time\n"
            "srv = sk2.Server(mock=0)\n"
            "c = sk2.Client(srv.endpoint)\n"
            "print('waiting', flush=True)\n"
            "t = time.monotonic()\n"
            "try:\n"
            "    c.wait_for_frames(timeout_ms=None)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted after %.1f s' % (time.monotonic() - t), flush=True)\n"
            "    c.close(); srv.close()\n"
            "    sys.exit(0)\n"
            "sys.exit(3)\n")
        proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(proc.stdout.readline().strip(), "waiting")
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("interrupted", out)


class Errors(unittest.TestCase):
    def test_every_error_code_has_an_exception(self):
        with open(ERROR_H) as f:
            codes = re.findall(r"XX\((E[A-Z]+),\s*(-\d+),", f.read())
        self.assertGreater(len(codes), 20)
        classes = [o for o in vars(sk2).values()
                   if isinstance(o, type) and issubclass(o, sk2.Error) and o is not sk2.Error]
        by_code = {c.code: c for c in classes}
        for name, number in codes:
            self.assertIn(int(number), by_code, name)
            self.assertEqual(by_code[int(number)].name, "SK2_" + name)
        self.assertEqual(sk2.Timeout.code, -5)
        self.assertTrue(issubclass(sk2.Timeout, TimeoutError))
        self.assertTrue(issubclass(sk2.ProtocolError, sk2.Error))
        self.assertTrue(issubclass(sk2.InvalidArgument, ValueError))

    def test_no_server_answers(self):
        with self.assertRaises(sk2.Timeout):
            sk2.Client(f"tcp://127.0.0.1:{free_port()}", timeout_ms=300)

    def test_bad_client_arguments(self):
        with sk2.Server(mock=1) as srv:
            e = srv.endpoint
            for args, kwargs, exc in [
                ((), {}, TypeError),
                ((123,), {}, TypeError),
                (("not an endpoint",), {}, ValueError),
                (("tcp://127.0.0.1:99999",), {}, ValueError),
                ((e,), {"streams": "depth"}, TypeError),
                ((e,), {"streams": [1]}, TypeError),
                ((e,), {"streams": ["nope"]}, ValueError),
                ((e,), {"streams": []}, ValueError),
                ((e,), {"streams": ["depth", "depth"]}, ValueError),
                ((e,), {"streams": ["depth:"]}, ValueError),
                ((e,), {"streams": ["depth:" + "x" * 100]}, ValueError),
                ((e,), {"streams": ["depth:jpeg"]}, sk2.Unsupported),
                ((e,), {"timeout_ms": -1}, ValueError),
                ((e,), {"timeout_ms": "soon"}, TypeError),
                ((e,), {"heartbeat_ms": 1}, ValueError),
                ((e,), {"give_up_after_ms": -5}, ValueError),
                ((e,), {"max_frame_bytes": -1}, ValueError),
                ((e,), {"nonsense": 1}, TypeError),
            ]:
                with self.subTest(args=args, kwargs=kwargs):
                    with self.assertRaises(exc):
                        sk2.Client(*args, **kwargs)
            with sk2.Client(e) as c:
                with self.assertRaises(ValueError):
                    c.wait_for_frames(timeout_ms=-3)
                with self.assertRaises(TypeError):
                    c.wait_for_frames(timeout_ms=[])
                with self.assertRaises(TypeError):
                    c.wait_for_frames(1, 2)
                fs = c.wait_for_frames(timeout_ms=10000)
                with self.assertRaises(KeyError):
                    fs["color"]
                with self.assertRaises(KeyError):
                    fs["nope"]
                with self.assertRaises(ValueError):
                    fs.depth.to_points(intrinsics=[1, 2])
                with self.assertRaises(ValueError):
                    fs.depth.to_points(intrinsics=[0] * 9)
                with self.assertRaises(ValueError):
                    fs.depth.to_points(unit_m=-1)
                with self.assertRaises(TypeError):
                    fs.depth.to_points(unit_m="m")
            with self.assertRaises(sk2.StateError):
                c.wait_for_frames()
            c.close()  # twice is fine

    def test_mock_match(self):
        scene = sk2.mock_scene(37)
        self.assertEqual(sk2.mock_match(scene), 37)
        self.assertIsNone(sk2.mock_match(scene + 1))
        with self.assertRaises(ValueError):
            sk2.mock_match(b"short")
        with self.assertRaises(ValueError):
            sk2.mock_match(scene, 0)
        with self.assertRaises(TypeError):
            sk2.mock_match("text")

    def test_bad_server_and_recording_arguments(self):
        for kwargs, exc in [({"port": -1}, ValueError), ({"port": 70000}, ValueError),
                            ({"mock": "1"}, TypeError), ({"mock": -1}, ValueError),
                            ({"bind": 5}, TypeError), ({"color_size": (3, 3)}, ValueError),
                            ({"color_size": "big"}, TypeError), ({"fps": -1}, ValueError),
                            ({"name": ""}, ValueError), ({"bind": "no.such.host.invalid"},
                                                         sk2.Error),
                            ({"replay": "/nonexistent/take.sk2"}, sk2.Error)]:
            with self.subTest(kwargs=kwargs):
                with self.assertRaises(exc):
                    sk2.Server(**kwargs)
        with self.assertRaises(TypeError):
            sk2.Frame()
        with self.assertRaises(TypeError):
            sk2.FrameSet([1])
        with self.assertRaises(TypeError):
            sk2.FrameSet(None)
        with self.assertRaises(sk2.NotFound):
            sk2.Recording("/nonexistent/take.sk2")
        with tempfile.NamedTemporaryFile(suffix=".sk2") as f:
            f.write(b"not a recording at all" * 10)
            f.flush()
            with self.assertRaises(sk2.CorruptError):
                sk2.Recording(f.name)
        with self.assertRaises(TypeError):
            sk2.Recording(42)
        with self.assertRaises(ValueError):
            sk2.mock_scene(1000)
        with self.assertRaises(TypeError):
            sk2.browse(timeout="3")
        with self.assertRaises(ValueError):
            sk2.browse(timeout=-1)

    def test_server_refuses_other_threads(self):
        with sk2.Server(mock=0) as srv:
            errors = []
            t = threading.Thread(target=lambda: errors.append(
                self.assertRaises(RuntimeError, srv.stats)))
            t.start()
            t.join()
            self.assertEqual(len(errors), 1)
            self.assertEqual(srv.stats()["devices"], 0)


class Events(unittest.TestCase):
    def test_a_server_restart_is_reported_and_frames_resume(self):
        srv = sk2.Server(mock=1, fps=30)
        port, first = srv.port, srv.device_ids[0]
        with sk2.Client(srv.endpoint, heartbeat_ms=200, response_timeout_ms=500) as c:
            kinds = [e.type for e in c.events()]
            self.assertEqual(kinds[:2], ["connected", "device-added"])
            c.wait_for_frames(timeout_ms=10000)
            srv.close()
            kinds = []
            for e in c.events(timeout_ms=10000):
                kinds.append(e.type)
                if e.type == "reconnecting":
                    break
            self.assertEqual(kinds[-1:], ["reconnecting"])
            srv = sk2.Server(mock=1, fps=30, port=port)
            second = srv.device_ids[0]
            seen = []
            for e in c.events(timeout_ms=20000):
                seen.append((e.type, e.device_id))
                if {"device-added", "device-removed", "reconnected"} <= {t for t, _ in seen}:
                    break
            self.assertIn(("reconnected", None), seen)
            self.assertIn(("device-removed", first), seen)
            self.assertIn(("device-added", second), seen)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                fs = c.wait_for_frames(timeout_ms=10000)
                if fs.device_id == second:
                    break
            self.assertEqual(fs.device_id, second)
            assert_mock(self, fs.depth)
        srv.close()

    def test_a_lost_server_ends_the_session_when_told_to_give_up(self):
        srv = sk2.Server(mock=1)
        with sk2.Client(srv.endpoint, heartbeat_ms=200, response_timeout_ms=500,
                        give_up_after_ms=500) as c:
            c.wait_for_frames(timeout_ms=10000)
            srv.close()
            with self.assertRaises(sk2.Lost):
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    c.wait_for_frames(timeout_ms=1000)


class Recordings(unittest.TestCase):
    def test_record_read_replay_round_trip(self):
        tmp = tempfile.mkdtemp(prefix="sk2-py-rec-")
        take = os.path.join(tmp, "take.sk2")
        with sk2.Server(mock=1, fps=30, color_size=(64, 48)) as srv:
            r = subprocess.run([SK2, "record", srv.endpoint, "-o", take, "--frames", "30",
                                "--streams", "depth,color", "--codec", "color=raw", "--no-status"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
        with sk2.Recording(take) as rec:
            self.assertEqual(rec.format, "sk2")
            (dev,) = rec.devices
            self.assertEqual(dev.id, srv.device_ids[0])
            self.assertEqual(set(dev.streams), {"depth", "color"})
            self.assertGreaterEqual(len(rec), 30)
            frames = list(rec.frames())
            self.assertEqual(len(frames), len(rec))
            depth = [f for f in frames if f.kind == "depth"]
            for f in depth:
                assert_mock(self, f)
                self.assertEqual(f.unit_m, 0.001)
                self.assertIsNotNone(f.intrinsics)
            sets = list(rec.framesets())
            self.assertTrue(all(fs.depth is not None for fs in sets if fs.color is None))
            complete = [fs for fs in sets if fs.depth is not None and fs.color is not None]
            self.assertGreater(len(complete), 0)
            for fs in complete:
                self.assertEqual(fs.depth.capture_time_us, fs.color.capture_time_us)
            recorded = {f.seq: f.asarray().copy() for f in depth}
            with self.assertRaises(IndexError):
                rec.read(len(rec))
        with self.assertRaises(sk2.StateError):
            len(rec)
        # Served again from Python, the recorded depth frames come back bit for bit.
        with sk2.Server(mock=0, replay=take) as srv2, \
                sk2.Client(srv2.endpoint, streams=["depth:raw"], latest=False) as c:
            got = 0
            for fs in c.frames(timeout_ms=10000):
                self.assertIn(fs.depth.seq, recorded)
                self.assertTrue(np.array_equal(fs.depth.asarray(), recorded[fs.depth.seq]))
                got += 1
                if got == 10:
                    break
            self.assertEqual(got, 10)

    def test_tum_folder(self):
        tmp = tempfile.mkdtemp(prefix="sk2-py-tum-")
        take, tum = os.path.join(tmp, "take.sk2"), os.path.join(tmp, "tum")
        with sk2.Server(mock=1, fps=30, color_size=(64, 48)) as srv:
            r = subprocess.run([SK2, "record", srv.endpoint, "-o", take, "--frames", "10",
                                "--streams", "depth,color", "--codec", "color=raw",
                                "--no-status"], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([SK2, "export", take, tum], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with sk2.Recording(tum) as rec:
            self.assertEqual(rec.format, "tum")
            depth = [f for f in rec.frames() if f.kind == "depth"]
            self.assertGreater(len(depth), 0)
            for f in depth:
                assert_mock(self, f)
            self.assertGreater(len(list(rec.framesets())), 0)


class Docs(unittest.TestCase):
    def test_help_is_useful(self):
        import pydoc
        text = pydoc.render_doc(sk2.Client, renderer=pydoc.plaintext)
        for word in ("wait_for_frames", "events", "streams", "timeout_ms", "sk2.Timeout"):
            self.assertIn(word, text)
        self.assertIn("zero-copy", sk2.Frame.__doc__)
        self.assertIn("read-only", sk2.Frame.asarray.__doc__)

    def test_type_hints_cover_the_public_names(self):
        stub = os.path.join(os.path.dirname(sk2.__file__), "__init__.pyi")
        self.assertTrue(os.path.exists(stub), "sk2/__init__.pyi is missing")
        text = open(stub).read()
        for name in ("browse", "Client", "Server", "Recording", "Frame", "FrameSet",
                     "wait_for_frames", "asarray", "to_points", "Timeout"):
            self.assertIn(name, text)


EXAMPLES = os.path.join(HERE, "..", "..", "examples", "python")


class Examples(unittest.TestCase):
    """examples/python/ run as written against `sk2 serve` (matplotlib drawing off screen)."""

    def run_example(self, *args):
        env = dict(os.environ, MPLBACKEND="Agg")
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              timeout=120, env=env)

    def test_viewer(self):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest("python3-matplotlib is not installed")
        proc, endpoint = start_serve("--mock", "1", "--color-size", "640x480")
        try:
            r = self.run_example(os.path.join(EXAMPLES, "viewer.py"), endpoint, "--frames", "5")
        finally:
            stop(proc)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_export_ply(self):
        try:
            import open3d
        except ImportError:
            self.skipTest("python3-open3d is not installed")
        out = os.path.join(tempfile.mkdtemp(prefix="sk2-py-ply-"), "cloud.ply")
        proc, endpoint = start_serve("--mock", "1")
        try:
            r = self.run_example(os.path.join(EXAMPLES, "export_ply.py"), endpoint, out)
        finally:
            stop(proc)
        self.assertEqual(r.returncode, 0, r.stderr)
        cloud = open3d.io.read_point_cloud(out)
        self.assertGreater(len(cloud.points), 100000)
        self.assertIn(f"{len(cloud.points)} points written", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
