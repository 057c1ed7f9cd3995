#!/usr/bin/env python3
"""Coloured point clouds: `sk2 export --format ply|pcd` on a recording with depth, colour and
depth-to-colour extrinsics (a take from `sk2 serve --mock`, whose extrinsics are the identity
and whose colour stream has intrinsics), judged by open3d and PCL's pcl_pcd2ply.

The colours are checked against the test's own projection: each sampled point (from the file;
test_cloud_export_cli.py proves the points) is moved into the colour camera with the
extrinsics `sk2 info --json` served, projected with the colour intrinsics the TUM export's
sk2.json gives, and the colour read at the nearest pixel of the colour PNG the TUM export wrote
for the colour frame nearest in capture time (rgb.txt against depth.txt). Also: the point
count is that of the uncoloured cloud, PCD binary and ASCII give the colours PLY gives,
--no-color writes x y z only, --color on a depth-only take is refused (exit 1, nothing
written), and --color with --no-color is a usage error.

Usage: test_cloud_color_cli.py /path/to/sk2
"""
import json
import os
import shutil
import subprocess
import sys

import cliutil as cu
from test_codecs_cli import read_png
from test_cloud_export_cli import depth_png, distort, valid_pixels

SK2, TMP = cu.setup("cloudcolor")
check, path, run = cu.check, cu.path, cu.run

try:
    import numpy as np
    import open3d as o3d
except ImportError as e:  # a failure: install-deps installs python3-open3d
    o3d = None
    print(f"cannot import open3d: {e}")


def read_list(file_name):
    """(seconds, file) of a TUM list, as the strings it holds."""
    with open(file_name) as f:
        return [l.split() for l in f if l.strip() and not l.startswith("#")]


def colors_of(file_name):
    """open3d's colours of a cloud as integers 0..255 (N x 3), None if it has none."""
    cloud = o3d.io.read_point_cloud(file_name)
    if not cloud.has_colors():
        return len(cloud.points), None
    return len(cloud.points), np.rint(np.asarray(cloud.colors) * 255).astype(int)


def main():
    check("open3d (Debian python3-open3d) is installed", o3d is not None)
    check("pcl_pcd2ply (Debian pcl-tools) is installed", shutil.which("pcl_pcd2ply") is not None)
    if o3d is None:
        return cu.summary()

    server, endpoint, _ = cu.start_server("--mock", "1", "--fps", "10")
    try:
        r = run("info", endpoint, "--json")
        device = json.loads(r.stdout)["devices"][0]
        take = path("take.sk2r")
        r = run("record", endpoint, "-o", take, "--frames", "8", "--streams", "depth,color",
                "--no-status")
        check("record of depth and colour exits 0", r.returncode == 0, r.stderr)
        depth_only = path("depth.sk2r")
        r = run("record", endpoint, "-o", depth_only, "--frames", "2", "--streams", "depth",
                "--no-status")
        check("record of depth alone exits 0", r.returncode == 0, r.stderr)
    finally:
        cu.stop(server)
    extr = device.get("depth_to_color")
    check("the mock serves depth-to-colour extrinsics", extr is not None, device)
    R = np.array(extr["rotation"], dtype=float).reshape(3, 3)
    t = np.array(extr["translation"], dtype=float)

    # What the test compares against: the TUM export's PNGs, decoded by sk2 from the same stored
    # frames the cloud export decodes, and the intrinsics the recording holds.
    r = run("export", take, path("tum"))
    check("TUM export of the take exits 0", r.returncode == 0, r.stderr)
    with open(path("tum/sk2.json")) as f:
        streams = {s["kind"]: s for s in json.load(f)["device"]["streams"]}
    kc = streams["color"]["intrinsics"]
    depth_list, rgb_list = read_list(path("tum/depth.txt")), read_list(path("tum/rgb.txt"))
    check("the take has several depth and colour frames",
          len(depth_list) >= 2 and len(rgb_list) >= 2, (depth_list, rgb_list))
    frame = 1
    when = float(depth_list[frame][0])
    nearest = min(rgb_list, key=lambda e: abs(float(e[0]) - when))
    check("a colour frame lies within half a frame period (50 ms) of depth frame 1",
          abs(float(nearest[0]) - when) <= 0.05, (when, nearest))
    cw, ch, _, ctype, raw = read_png(path("tum/" + nearest[1]))
    check("the colour PNG is 8-bit RGB", ctype == 2, ctype)
    w, _, values = depth_png(path("tum/" + depth_list[frame][1]))
    pixels = valid_pixels(w, values)

    # PLY, coloured by default.
    ply = path("c.ply")
    r = run("export", take, ply, "--format", "ply", "--frame", str(frame))
    check("export --format ply exits 0 and says the cloud is coloured",
          r.returncode == 0 and "1 coloured" in r.stdout, r.stdout + r.stderr)
    with open(ply, "rb") as f:
        head = f.read(400).split(b"end_header")[0].decode()
    check("PLY header: uchar red, green, blue after x y z",
          "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
          in head, head)
    count, colors = colors_of(ply)
    check("open3d reads colours from the PLY", colors is not None)
    check(f"PLY: {len(pixels)} points, one per pixel with a reading (as without colour)",
          count == len(pixels), f"{count} vs {len(pixels)}")
    points = np.asarray(o3d.io.read_point_cloud(ply).points)
    matched = black = wrong = outside = 0
    if colors is not None and count == len(pixels):
        for i in range(0, count, max(1, count // 400)):
            q = R @ points[i] + t
            x, y = distort(kc, q[0] / q[2], q[1] / q[2])
            uc, vc = x * kc["fx"] + kc["cx"], y * kc["fy"] + kc["cy"]
            # Too near a pixel boundary, the nearest pixel depends on the last float bit.
            if min(abs(uc % 1 - 0.5), abs(vc % 1 - 0.5)) < 1e-3:
                continue
            u, v = int(np.floor(uc + 0.5)), int(np.floor(vc + 0.5))
            got = list(colors[i])
            if not (0 <= u < cw and 0 <= v < ch):
                outside += 1
                if got != [0, 0, 0]:
                    wrong += 1
                continue
            o = 3 * (v * cw + u)
            want = list(raw[o:o + 3])
            if got == want:
                matched += 1
            elif got == [0, 0, 0]:
                black += 1  # hidden from the colour camera (the registration's z-buffer)
            else:
                wrong += 1
    check("sampled PLY colours are the colour frame's at each point's projected pixel "
          "(black only off the image or where hidden)",
          matched >= 100 and wrong == 0 and black <= matched // 10,
          f"matched {matched}, black {black}, wrong {wrong}, outside {outside}")

    # PCD, binary and ASCII: the same colours as the PLY; PCL accepts them.
    for is_ascii in (False, True):
        kind = "ASCII" if is_ascii else "binary"
        pcd = path(f"c-{kind}.pcd")
        r = run("export", take, pcd, "--format", "pcd", "--frame", str(frame),
                *(["--ascii"] if is_ascii else []))
        check(f"export --format pcd ({kind}) exits 0", r.returncode == 0, r.stderr)
        with open(pcd, "rb") as f:
            head = f.read(400).split(b"DATA")[0].decode()
        check(f"PCD {kind} header: FIELDS x y z rgb, SIZE 4, TYPE F",
              "FIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n" in head, head)
        n, c = colors_of(pcd)
        check(f"open3d reads the PCD ({kind}) with colours, the same count and colours as the PLY",
              c is not None and n == count and colors is not None and np.array_equal(c, colors),
              f"{n} points, colours {c is not None}")
        out = subprocess.run(["pcl_pcd2ply", pcd, pcd + ".ply"], capture_output=True, text=True,
                             timeout=60)
        check(f"pcl_pcd2ply accepts the PCD ({kind}) and sees rgb",
              out.returncode == 0 and "rgb" in out.stdout and "points]" in out.stdout,
              out.stdout[-300:] + out.stderr[-300:])
        if out.returncode == 0:
            n, c = colors_of(pcd + ".ply")
            check(f"PCL read the PCD's ({kind}) colours as open3d did",
                  c is not None and colors is not None and np.array_equal(c, colors))

    # --no-color, and --color refused where there is no colour.
    plain = path("plain.ply")
    r = run("export", take, plain, "--format", "ply", "--frame", str(frame), "--no-color")
    n, c = colors_of(plain) if r.returncode == 0 else (0, None)
    with open(plain, "rb") as f:
        head = f.read(400).split(b"end_header")[0].decode()
    check("--no-color writes x y z only (open3d finds no colours, same points)",
          r.returncode == 0 and c is None and n == count and "uchar" not in head, r.stderr)
    refused = path("refused")
    r = run("export", depth_only, refused, "--format", "pcd", "--color")
    check("--color on a depth-only take: exit 1, says why, nothing written",
          r.returncode == 1 and "--color" in r.stderr and "no colour stream" in r.stderr and
          not [n for n in os.listdir(TMP) if n.startswith("refused")],
          f"rc={r.returncode} {r.stderr!r}")
    r = run("export", take, refused, "--format", "pcd", "--color", "--no-color")
    check("--color with --no-color: exit 2, nothing written",
          r.returncode == 2 and not os.path.exists(refused), r.stderr)
    r = run("export", take, refused, "--color")
    check("--color without ply|pcd: exit 2", r.returncode == 2, r.stderr)
    # A folder of every frame: colour demanded and given; depth frames without a colour frame
    # within 50 ms (if any) are counted in a note.
    folder = path("all")
    r = run("export", take, folder, "--format", "ply", "--color")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    check("--color on the take writes every depth frame",
          r.returncode == 0 and len(names) == len(depth_list) + 1, r.stdout + r.stderr)
    colored = [f for f in names if f.endswith(".ply") and colors_of(os.path.join(folder, f))[1]
               is not None]
    check("clouds with colour and the note about those without add up",
          len(colored) + (int(r.stderr.split("note: ")[1].split()[0]) if "note: " in r.stderr
                          else 0) == len(depth_list), r.stderr)
    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
