"""sk2.Registration: the C registration (tests/test_registration.c checks its geometry) from
Python, with numpy arrays and sk2 frames in and sk2 frames out.

- with identity extrinsics and the colour camera equal to the depth camera, depth_to_color
  gives the mock scene back exactly, and color_to_depth the colour of every pixel with a
  reading (alpha 255) and none elsewhere;
- a colour camera 5 cm to the side shifts the scene: the registered image differs, and
  each pixel's colour comes from where its point projects;
- refusals: a mirror, wrong shapes and types, bad sizes;
- Client.device_pose and device_depth_to_color give what `sk2 serve` serves (SK2_TOOL).

Run with PYTHONPATH=build/python."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy

import sk2

K = (365.456, 365.456, 254.878, 205.395, 0.0905474, -0.26819, 0.0950862, 0.0, 0.0)
IDENTITY = (1, 0, 0, 0, 1, 0, 0, 0, 1)


class RegistrationTest(unittest.TestCase):
    def test_identity_gives_the_scene_back(self):
        depth = sk2.mock_scene(40).copy()
        depth[0:10, :] = 0
        reg = sk2.Registration(K, (512, 424), 0.001, K, (512, 424), IDENTITY, (0, 0, 0))
        out = reg.depth_to_color(depth)
        self.assertEqual(out.format, "depth_mm16")
        self.assertTrue(numpy.array_equal(out.asarray(), depth))
        color = numpy.zeros((424, 512, 3), dtype=numpy.uint8)
        color[:, :, 0] = numpy.arange(512, dtype=numpy.uint32) % 256
        color[:, :, 1] = (numpy.arange(424, dtype=numpy.uint32) % 256)[:, None]
        colored = reg.color_to_depth(depth, color).asarray()
        self.assertEqual(colored.shape, (424, 512, 4))
        self.assertTrue(numpy.array_equal(colored[:, :, 3] == 255, depth != 0))
        valid = depth != 0
        self.assertTrue(numpy.array_equal(colored[:, :, 2][valid], color[:, :, 0][valid]))
        self.assertTrue(numpy.array_equal(colored[:, :, 1][valid], color[:, :, 1][valid]))
        # An sk2.Frame is a buffer too.
        again = reg.depth_to_color(out)
        self.assertTrue(numpy.array_equal(again.asarray(), depth))

    def test_a_camera_to_the_side_sees_the_scene_shifted(self):
        depth = sk2.mock_scene(0)
        reg = sk2.Registration(K, (512, 424), 0.001, K, (512, 424), IDENTITY, (-0.05, 0, 0))
        out = reg.depth_to_color(depth).asarray()
        self.assertFalse(numpy.array_equal(out, depth))
        # Everything moves left by fx * 0.05 / z (z at most a few metres: several pixels), so
        # the image's right edge is left empty.
        row = 212
        self.assertEqual(numpy.nonzero(depth[row])[0].max(), 511)
        self.assertGreater((out[row] > 0).sum(), 400)
        self.assertLess(numpy.nonzero(out[row])[0].max(), 511 - 4)

    def test_refusals(self):
        with self.assertRaises(ValueError):
            sk2.Registration(K, (512, 424), 0.001, K, (512, 424), (1, 0, 0, 0, 1, 0, 0, 0, -1),
                             (0, 0, 0))
        with self.assertRaises(ValueError):
            sk2.Registration(K, (512, 0), 0.001, K, (512, 424), IDENTITY, (0, 0, 0))
        with self.assertRaises(ValueError):
            sk2.Registration(K[:8], (512, 424), 0.001, K, (512, 424), IDENTITY, (0, 0, 0))
        with self.assertRaises(sk2.Error):
            sk2.Registration(K, (512, 424), 0.0, K, (512, 424), IDENTITY, (0, 0, 0))
        reg = sk2.Registration(K, (512, 424), 0.001, K, (512, 424), IDENTITY, (0, 0, 0))
        with self.assertRaises(ValueError):
            reg.depth_to_color(numpy.zeros((424, 511), dtype=numpy.uint16))
        with self.assertRaises(ValueError):
            reg.depth_to_color(numpy.zeros((424, 512), dtype=numpy.uint8))
        with self.assertRaises(ValueError):
            reg.color_to_depth(sk2.mock_scene(0), numpy.zeros((424, 512, 2), dtype=numpy.uint8))


class ClientPoseTest(unittest.TestCase):
    def test_a_client_reads_pose_and_extrinsics(self):
        tool = os.environ.get("SK2_TOOL", "sk2")
        endpoint_file = os.path.join(tempfile.mkdtemp(prefix="sk2-py-pose-"), "endpoint")
        proc = subprocess.Popen([tool, "serve", "--bind", "127.0.0.1", "--mock", "1",
                                 "--endpoint-file", endpoint_file, "--no-status",
                                 "--no-announce"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 15
            while not os.path.exists(endpoint_file) and time.monotonic() < deadline:
                time.sleep(0.05)
            with open(endpoint_file) as f:
                endpoint = f.read().strip()
            with sk2.Client(endpoint) as c:
                device = c.devices[0].id
                self.assertIsNone(c.device_pose(device))
                self.assertEqual(c.device_depth_to_color(device),
                                 {"rotation": IDENTITY, "translation": (0, 0, 0)})
                self.assertIsNone(c.device_pose("no-such-device"))
            pose = '{"rotation": [0, -1, 0, 1, 0, 0, 0, 0, 1], "translation": [1, 2, 3]}'
            r = subprocess.run([tool, "ctl", endpoint, device, "pose", pose],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            with sk2.Client(endpoint) as c:
                self.assertEqual(c.device_pose(device),
                                 {"rotation": (0, -1, 0, 1, 0, 0, 0, 0, 1),
                                  "translation": (1, 2, 3)})
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


if __name__ == "__main__":
    sys.exit(unittest.main())
