#!/usr/bin/env python3
"""`sk2 export --format ply|pcd`, judged by the formats' own readers: open3d
(o3d.io.read_point_cloud) and PCL's command line tools (pcl_pcd2ply, pcl_ply2pcd,
pcl_convert_pcd_ascii_binary), both from Debian (scripts/install-deps.sh). Either missing is a
failure, not a skip: without them nothing here would be proven.

Two sources: real Azure Kinect depth frames (tests/data/depth/azure_kinect, with many pixels
without a reading) in a TUM folder whose sk2.json gives intrinsics with lens distortion, and a
short take recorded from a mock server. For every file the point count must equal the pixels
with a reading, and points must equal the ones computed here from the depth values and the
intrinsics (within 1e-4 m): the lens model is inverted here independently, and each point is
also projected forward through the distortion onto its pixel.

Usage: test_cloud_export_cli.py /path/to/sk2
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import cliutil as cu
from test_codecs_cli import read_png

SK2, TMP = cu.setup("cloud")
check, path, run = cu.check, cu.path, cu.run
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "depth",
                    "azure_kinect")
TOL_M = 1e-4
# Not the mock's: distortion with both radial and tangential terms, so that a writer that
# skipped or botched the lens model would be caught.
INTRINSICS = dict(fx=252.7, fy=251.9, cx=161.3, cy=142.6, k1=0.0905, k2=-0.2682, k3=0.0951,
                  p1=0.0012, p2=-0.0007)

try:
    import numpy as np
    import open3d as o3d
except ImportError as e:  # a failure: install-deps installs python3-open3d
    o3d = None
    print(f"cannot import open3d: {e}")


def depth_png(file_name):
    """(width, height, values row by row) of a 16-bit grey PNG."""
    w, h, bits, ctype, raw = read_png(file_name)
    assert bits == 16 and ctype == 0, file_name
    return w, h, struct.unpack(f">{w * h}H", raw)


def undistort(k, x0, y0):
    """Inverts Brown-Conrady by fixed-point iteration, run far past convergence."""
    x, y = x0, y0
    for _ in range(50):
        r2 = x * x + y * y
        radial = 1 + r2 * (k["k1"] + r2 * (k["k2"] + r2 * k["k3"]))
        dx = 2 * k["p1"] * x * y + k["p2"] * (r2 + 2 * x * x)
        dy = k["p1"] * (r2 + 2 * y * y) + 2 * k["p2"] * x * y
        x, y = (x0 - dx) / radial, (y0 - dy) / radial
    return x, y


def distort(k, x, y):
    r2 = x * x + y * y
    radial = 1 + r2 * (k["k1"] + r2 * (k["k2"] + r2 * k["k3"]))
    return (x * radial + 2 * k["p1"] * x * y + k["p2"] * (r2 + 2 * x * x),
            y * radial + k["p1"] * (r2 + 2 * y * y) + 2 * k["p2"] * x * y)


def valid_pixels(width, values):
    """(u, v, value) of every pixel with a reading, in raster order (the files' order)."""
    return [(i % width, i // width, d) for i, d in enumerate(values) if d]


def samples(count):
    """Point indices to compare: both ends and a spread between."""
    return sorted({0, count - 1, *range(0, count, max(1, count // 40))})


def compare_points(name, points, pixels, k, unit_m):
    """Checks the count and sampled points of an N x 3 array against the pixels."""
    check(f"{name}: {len(pixels)} points, one per pixel with a reading",
          len(points) == len(pixels), f"{len(points)} points, {len(pixels)} pixels")
    if len(points) != len(pixels) or not pixels:
        return
    worst, worst_px = 0.0, 0.0
    for i in samples(len(pixels)):
        u, v, d = pixels[i]
        z = d * unit_m
        x, y = undistort(k, (u - k["cx"]) / k["fx"], (v - k["cy"]) / k["fy"])
        px, py, pz = (float(c) for c in points[i])
        worst = max(worst, abs(px - x * z), abs(py - y * z), abs(pz - z))
        dx, dy = distort(k, px / pz, py / pz)
        worst_px = max(worst_px, abs(dx * k["fx"] + k["cx"] - u), abs(dy * k["fy"] + k["cy"] - v))
    check(f"{name}: sampled points are within {TOL_M} m of those from depth and intrinsics",
          worst <= TOL_M, f"worst {worst} m")
    check(f"{name}: sampled points project back onto their pixels (within 0.01 px)",
          worst_px <= 0.01, f"worst {worst_px} px")


def read_open3d(file_name):
    cloud = o3d.io.read_point_cloud(file_name)
    return np.asarray(cloud.points)


def read_pcd_ascii(file_name):
    """The points of an ASCII PCD with FIELDS x y z (as PCL writes one)."""
    with open(file_name) as f:
        lines = f.read().splitlines()
    header = {}
    for i, line in enumerate(lines):
        key, _, value = line.partition(" ")
        header[key] = value
        if key == "DATA":
            break
    assert header.get("FIELDS") == "x y z" and header["DATA"] == "ascii", header
    points = [tuple(float(c) for c in line.split()) for line in lines[i + 1:] if line.strip()]
    assert len(points) == int(header["POINTS"]), "POINTS"
    return points


def pcl(*args):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def read_pcl(name, file_name):
    """Has PCL load the file (pcl_pcd2ply for PCD, pcl_ply2pcd for PLY: both fail on a header
    or body that does not match), then turns what it loaded into ASCII PCD and reads that."""
    base = file_name + ".pcl"
    if file_name.endswith(".pcd"):
        rc, out = pcl("pcl_pcd2ply", file_name, base + ".ply")
        loaded = file_name
    else:
        rc, out = pcl("pcl_ply2pcd", file_name, base + ".pcd")
        loaded = base + ".pcd"
    check(f"{name}: PCL ({'pcl_pcd2ply' if file_name.endswith('.pcd') else 'pcl_ply2pcd'}) "
          "accepts the file", rc == 0 and "points]" in out, out[-500:])
    rc, out = pcl("pcl_convert_pcd_ascii_binary", loaded, base + ".ascii.pcd", "0")
    if rc != 0:
        check(f"{name}: PCL reads it back", False, out[-500:])
        return []
    return read_pcd_ascii(base + ".ascii.pcd")


def check_file(name, file_name, pixels, k, unit_m, is_ascii, fmt):
    with open(file_name, "rb") as f:
        head = f.read(600)
    if fmt == "pcd":
        want = ["VERSION 0.7", "FIELDS x y z", "SIZE 4 4 4", "TYPE F F F", "COUNT 1 1 1",
                f"WIDTH {len(pixels)}", "HEIGHT 1", "VIEWPOINT 0 0 0 1 0 0 0",
                f"POINTS {len(pixels)}", f"DATA {'ascii' if is_ascii else 'binary'}"]
        lines = head.split(b"\nDATA")[0].decode().splitlines() + [
            "DATA " + head.split(b"\nDATA ")[1].split(b"\n")[0].decode()]
        check(f"{name}: PCD header lines", [l for l in lines if not l.startswith("#")] == want,
              lines)
    else:
        want = ["ply", f"format {'ascii' if is_ascii else 'binary_little_endian'} 1.0",
                f"element vertex {len(pixels)}", "property float x", "property float y",
                "property float z", "end_header"]
        lines = head.split(b"end_header\n")[0].decode().splitlines() + ["end_header"]
        check(f"{name}: PLY header lines",
              [l for l in lines if not l.startswith("comment")] == want, lines)
    if o3d:
        compare_points(f"{name} via open3d", read_open3d(file_name), pixels, k, unit_m)
    compare_points(f"{name} via PCL", read_pcl(name, file_name), pixels, k, unit_m)


def make_tum_folder(folder, frames):
    """A TUM folder of the real frames (millimetres) with an sk2.json carrying INTRINSICS."""
    os.makedirs(os.path.join(folder, "depth"))
    lines = ["# depth maps"]
    for n, src in enumerate(frames):
        shutil.copy(src, os.path.join(folder, "depth", f"{n}.png"))
        lines.append(f"1700000000.{n:06d} depth/{n}.png")
    with open(os.path.join(folder, "depth.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    w, h, _ = depth_png(frames[0])
    stream = dict(kind="depth", format="depth_mm16", width=w, height=h, fps=30.0,
                  depth_unit_m=0.001, intrinsics=INTRINSICS)
    device = dict(id="ak", serial="ak-test", backend="azure", streams=[stream])
    with open(os.path.join(folder, "sk2.json"), "w") as f:
        json.dump(dict(format="sk2-tum", version=1, device=device, depth_png_unit_m=0.001), f)


def main():
    check("open3d (Debian python3-open3d) is installed", o3d is not None)
    for tool in ("pcl_pcd2ply", "pcl_ply2pcd", "pcl_convert_pcd_ascii_binary"):
        check(f"{tool} (Debian pcl-tools) is installed", shutil.which(tool) is not None)

    frames = [os.path.join(DATA, f"frame_00{i}.png") for i in range(3)]
    tum = path("ak")
    make_tum_folder(tum, frames)
    depth = [depth_png(f) for f in frames]
    pixels = [valid_pixels(w, values) for w, _, values in depth]
    check("the real frames have pixels without a reading (so leaving them out is tested)",
          all(0 < len(p) < w * h for p, (w, h, _) in zip(pixels, depth)))

    # Bad options: exit 2, a message, nothing written.
    out = path("refused")
    for why, args in [("unknown format", ["--format", "xyz"]),
                      ("--ascii without ply|pcd", ["--ascii"]),
                      ("--frames without ply|pcd", ["--frames", "0-1"]),
                      ("a range backwards", ["--format", "ply", "--frames", "2-1"]),
                      ("a range of junk", ["--format", "ply", "--frames", "a-b"]),
                      ("--frame and --frames", ["--format", "pcd", "--frame", "0", "--frames",
                                                "0-1"]),
                      ("a frame past the end", ["--format", "pcd", "--frame", "3"]),
                      ("a range past the end", ["--format", "pcd", "--frames", "1-5"]),
                      ("no such device", ["--format", "ply", "--device", "1"])]:
        r = run("export", tum, out, *args)
        check(f"export refuses {why}: exit 2 with a message, nothing written",
              r.returncode == 2 and r.stderr.strip() and not os.path.exists(out) and
              not [n for n in os.listdir(TMP) if n.startswith("refused")],
              f"rc={r.returncode} {r.stderr!r}")

    # Every frame into a folder, each format binary and ASCII.
    for fmt in ("ply", "pcd"):
        for is_ascii in (False, True):
            kind = f"{fmt} {'ascii' if is_ascii else 'binary'}"
            folder = path(f"ak-{fmt}-{'ascii' if is_ascii else 'binary'}")
            r = run("export", tum, folder, "--format", fmt, *(["--ascii"] if is_ascii else []))
            check(f"export --format {kind} exits 0", r.returncode == 0, r.stderr)
            names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            check(f"{kind}: one file per frame and clouds.txt",
                  names == [f"00000{n}.{fmt}" for n in range(3)] + ["clouds.txt"], names)
            with open(os.path.join(folder, "clouds.txt")) as f:
                listed = [l.split() for l in f if not l.startswith("#")]
            check(f"{kind}: clouds.txt gives each file its frame's capture time",
                  listed == [[f"1700000000.{n:06d}", f"00000{n}.{fmt}"] for n in range(3)],
                  listed)
            for n in range(3):
                check_file(f"{kind} frame {n}", os.path.join(folder, f"00000{n}.{fmt}"),
                           pixels[n], INTRINSICS, 0.001, is_ascii, fmt)
    if o3d:
        for n in range(3):
            # open3d parses ASCII into doubles: compare as the floats the files hold.
            a = read_open3d(path(f"ak-ply-binary/00000{n}.ply")).astype(np.float32)
            same = all(np.array_equal(a, read_open3d(path(f"ak-{f}/00000{n}.{e}")).astype(
                np.float32))
                       for f, e in [("ply-ascii", "ply"), ("pcd-binary", "pcd"),
                                    ("pcd-ascii", "pcd")])
            check(f"frame {n}: PLY and PCD, binary and ASCII, hold exactly the same points", same)

    # One frame as one file; a range.
    single = path("one.pcd")
    r = run("export", tum, single, "--format", "pcd", "--frame", "2")
    check("--frame 2 writes one file", r.returncode == 0 and os.path.isfile(single), r.stderr)
    if os.path.isfile(single):
        check_file("--frame 2", single, pixels[2], INTRINSICS, 0.001, False, "pcd")
    r = run("export", tum, single, "--format", "pcd", "--frame", "1")
    check("--frame onto an existing file exits 2, says so (no --force to offer) and leaves it",
          r.returncode == 2 and "exists" in r.stderr and "--force" not in r.stderr and
          (read_open3d(single).shape[0] == len(pixels[2]) if o3d else True), r.stderr)
    part = path("part")
    r = run("export", tum, part, "--format", "ply", "--frames", "1-")
    check("--frames 1- writes frames 1 and 2",
          r.returncode == 0 and sorted(os.listdir(part)) == ["000001.ply", "000002.ply",
                                                             "clouds.txt"], r.stderr)

    # A take recorded from a mock server: every pixel has a reading; its depth values are read
    # back through the TUM export (16-bit PNGs at 5000 per metre).
    take = path("take.sk2r")
    server, endpoint, _ = cu.start_server("--mock", "1", "--fps", "10")
    r = run("record", endpoint, "-o", take, "--frames", "2", "--streams", "depth", "--no-status")
    cu.stop(server)
    check("record of a mock take exits 0", r.returncode == 0, r.stderr)
    r = run("export", take, path("take-tum"))
    with open(path("take-tum/sk2.json")) as f:
        mock_k = json.load(f)["device"]["streams"][0]["intrinsics"]
    with open(path("take-tum/depth.txt")) as f:
        pngs = [l.split()[1] for l in f if not l.startswith("#")]
    for fmt in ("ply", "pcd"):
        out = path(f"take.{fmt}")
        r = run("export", take, out, "--format", fmt, "--frame", "1")
        check(f"mock take: --format {fmt} --frame 1 exits 0", r.returncode == 0, r.stderr)
        w, _, values = depth_png(path("take-tum/" + pngs[1]))
        check_file(f"mock take {fmt}", out, valid_pixels(w, values), mock_k, 1 / 5000, False, fmt)
    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
