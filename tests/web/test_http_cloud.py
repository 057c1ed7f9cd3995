"""Point clouds from the gateway: GET /api/devices/ID/pointcloud.ply|pointcloud.pcd.

A TUM RGB-D replay whose sk2.json gives intrinsics with lens distortion (depth 1.0 m at the
top to 1.094 m at the bottom, no reading in the left column, test_http_api.write_tum) is
served through `sk2 view --http`. The newest depth frame is fetched as PLY and as PCD and read
by the formats' own readers: open3d (Debian python3-open3d) for both, and PCL's pcl_pcd2ply
(Debian pcl-tools) for the PCD, whose output open3d reads again. For each: the point count is
the pixels with a reading and the x-sk2-points header; every point, projected forward through
the lens, lands on a pixel with a reading (within 0.01 px) and its z is that pixel's distance
(within 1e-5 m), and no pixel is used twice. A replay without intrinsics is answered 409, an
unknown device 404; GET /api lists the resource. Missing readers are a failure, not a skip.

usage: test_http_cloud.py SK2_BINARY
"""
import os
import shutil
import subprocess
import sys
import tempfile

import test_http_api as api

check = api.check


def project(k, point):
    """The pixel (u, v) a camera-frame point falls on, through the Brown-Conrady lens."""
    x, y, z = point
    xn, yn = x / z, y / z
    r2 = xn * xn + yn * yn
    radial = 1 + r2 * (k["k1"] + r2 * (k["k2"] + r2 * k["k3"]))
    xd = xn * radial + 2 * k["p1"] * xn * yn + k["p2"] * (r2 + 2 * xn * xn)
    yd = yn * radial + k["p1"] * (r2 + 2 * yn * yn) + 2 * k["p2"] * xn * yn
    return k["fx"] * xd + k["cx"], k["fy"] * yd + k["cy"]


def check_points(name, points, k, unit_m):
    want = {(u, v) for v in range(api.TUM_H) for u in range(api.TUM_W) if api.tum_value(u, v)}
    check(len(points) == len(want),
          f"{name}: {len(points)} points, one per pixel with a reading ({len(want)})")
    seen, worst_px, worst_z = set(), 0.0, 0.0
    for point in points:
        u, v = project(k, point)
        pixel = (round(u), round(v))
        worst_px = max(worst_px, abs(u - pixel[0]), abs(v - pixel[1]))
        if pixel in want:
            worst_z = max(worst_z, abs(point[2] - api.tum_value(*pixel) * unit_m))
        seen.add(pixel)
    check(seen == want and worst_px < 0.01 and worst_z < 1e-5,
          f"{name}: every point projects onto its own pixel with a reading (worst "
          f"{worst_px:.2g} px) at that pixel's distance (worst {worst_z:.2g} m)")


def read_cloud(path):
    import open3d  # the reference reader; its absence fails the test (main)
    return [tuple(p) for p in open3d.io.read_point_cloud(path).points]


def test_clouds(tmp):
    plain, lens = os.path.join(tmp, "plain"), os.path.join(tmp, "lens")
    intrinsics = {"fx": 525.0, "fy": 524.0, "cx": 31.5, "cy": 23.5, "k1": 0.1, "k2": -0.2,
                  "k3": 0.0, "p1": 0.001, "p2": -0.002}
    api.write_tum(plain, 30)
    api.write_tum(lens, 30, intrinsics)
    servers = [api.start(["serve", "--replay", folder, "--loop", "--no-announce",
                          "--no-status"], r"control endpoint (tcp://\S+)")
               for folder in (plain, lens)]
    view, url = api.start(["view"] + [e for _, e in servers] +
                          ["--http", "127.0.0.1:0", "--no-status"], r"web viewer (http://\S+)")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    try:
        devices = api.wait_for(lambda: len(api.get_json(port, "/api/devices")[1]["devices"]) == 2
                               and api.get_json(port, "/api/devices")[1]["devices"], timeout=30)
        check(bool(devices), "sk2 view of two TUM replays shows two devices")
        if not devices:
            return
        index = api.get_json(port, "/api")[1]["endpoints"]
        check("/api/devices/{id}/pointcloud.ply|pointcloud.pcd" in index,
              f"GET /api lists the point cloud resource ({index})")
        with_lens = next(d for d in devices if d["id"] == "tum-with-lens")
        without = next(d for d in devices if d["id"] != "tum-with-lens")
        for fmt in ("ply", "pcd"):
            reply = api.wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
                api.get(port, f"/api/devices/{with_lens['key']}/pointcloud.{fmt}")), timeout=30)
            check(reply is not None, f"GET pointcloud.{fmt} of a device with intrinsics is 200")
            if reply is None:
                continue
            _, headers, body = reply
            check(headers.get("content-type") == "application/octet-stream" and
                  f'.{fmt}"' in headers.get("content-disposition", ""),
                  f"pointcloud.{fmt} is a download named .{fmt} ({headers})")
            path = os.path.join(tmp, f"cloud.{fmt}")
            with open(path, "wb") as f:
                f.write(body)
            points = read_cloud(path)
            check(headers.get("x-sk2-points") == str(len(points)),
                  f"x-sk2-points ({headers.get('x-sk2-points')}) is the count open3d reads "
                  f"({len(points)})")
            check_points(f"open3d reading pointcloud.{fmt}", points, intrinsics, 0.0002)
            if fmt == "pcd":
                converted = os.path.join(tmp, "by-pcl.ply")
                run = subprocess.run(["pcl_pcd2ply", path, converted], capture_output=True,
                                     text=True, timeout=60)
                check(run.returncode == 0 and os.path.exists(converted),
                      f"PCL's pcl_pcd2ply accepts the PCD ({run.returncode}: {run.stderr[-300:]})")
                if os.path.exists(converted):
                    check_points("PCL's conversion of pointcloud.pcd", read_cloud(converted),
                                 intrinsics, 0.0002)
        status, _, body = api.get(port, f"/api/devices/{without['key']}/pointcloud.ply")
        check(status == 409 and b"intrinsics" in body,
              f"a device without intrinsics is answered 409 ({status} {body[:120]})")
        status, _, _ = api.get(port, "/api/devices/s9:nope/pointcloud.ply")
        check(status == 404, f"an unknown device is answered 404 ({status})")
    finally:
        api.stop(view)
        for server, _ in servers:
            api.stop(server)


def main():
    api.SK2 = sys.argv[1]
    try:
        import open3d  # noqa: F401
    except ImportError:
        check(False, "open3d (python3-open3d) is installed: scripts/install-deps.sh installs it")
    check(shutil.which("pcl_pcd2ply") is not None,
          "pcl_pcd2ply (pcl-tools) is installed: scripts/install-deps.sh installs it")
    tmp = tempfile.mkdtemp(prefix="sk2-web-cloud-")
    try:
        test_clouds(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(api.PASSED)} passed, {len(api.FAILED)} failed")
    return 1 if api.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
