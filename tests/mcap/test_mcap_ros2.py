"""`sk2 export --format mcap` with `--cloud` and `--depth-as png|rvl`, checked with the
reference readers and independent decoders.

Records a mock server (depth and IR stored raw, so that this script's own reader of the sk2
file knows every depth value without sk2's codecs), exports it with point clouds and each depth
mode, and has mcap_ros2_dump.cjs (Node: @mcap/core, @foxglove/rosmsg2-serialization with the
schemas stored in the file) decode every message. This script then compares:

- PointCloud2: one point per recorded pixel with a reading, fields x y z FLOAT32 at 0 4 8, and
  every z the recorded depth in metres; sampled points within 1e-4 m of a deprojection this
  script makes itself from the CameraInfo in the file (K, and D inverted by Newton's method,
  not sk2's fixed-point steps);
- compressedDepth png: ROS's 12-byte ConfigHeader, then a PNG that Pillow (python3-pil) decodes
  to exactly the recorded 16-bit values;
- compressedDepth rvl: the ConfigHeader, width and height, then an RVL stream. No RVL reader
  exists in Debian or npm, so the stream goes back through `sk2 decode` (wrapped in an SK2F file
  as docs/codecs.md describes it) and through a small decoder here written from Wilson's paper,
  and both must give the recorded values.

Also `sk2 record --format mcap` with the options, and the refusals: --cloud without intrinsics
or without depth, unknown --depth-as, the options without --format mcap.

usage: test_mcap_ros2.py SK2 NODE
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import cliutil as cu  # noqa: E402
from sk2rec import KINDS, read_recording  # noqa: E402,F401

SK2, TMP = cu.setup("mcap_ros2")
NODE = sys.argv[2] if len(sys.argv) > 2 else "node"
HERE = os.path.dirname(os.path.abspath(__file__))
check, path = cu.check, cu.path


def dump(mcap_file, name):
    """Decodes every message of the file with the reference readers; returns the list."""
    out = path(f"dump-{name}")
    node = subprocess.run([NODE, os.path.join(HERE, "mcap_ros2_dump.cjs"), mcap_file, out],
                          capture_output=True, text=True, timeout=120)
    sys.stdout.write(node.stdout)
    check(f"{name}: the reference readers read and decode every message", node.returncode == 0,
          node.stderr[-2000:])
    if node.returncode != 0:
        return []
    messages = json.load(open(os.path.join(out, "messages.json")))
    for m in messages:
        if "data" in m:
            m["data"] = open(os.path.join(out, m["data"]), "rb").read()
    return messages


def deproject(u, v, d_m, k, dist):
    """The point of pixel (u, v) at depth d_m: the normalised distorted coordinates from K, the
    undistorted ones by Newton's method on the plumb_bob model (D = k1 k2 p1 p2 k3)."""
    fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    k1, k2, p1, p2, k3 = dist
    xd, yd = (u - cx) / fx, (v - cy) / fy
    x, y = xd, yd
    for _ in range(50):
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
        dradial = k1 + 2 * k2 * r2 + 3 * k3 * r2 * r2  # d radial / d r2
        fxv = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
        fyv = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
        j11 = radial + x * dradial * 2 * x + 2 * p1 * y + p2 * 6 * x
        j12 = x * dradial * 2 * y + 2 * p1 * x + p2 * 2 * y
        j21 = y * dradial * 2 * x + p1 * 2 * x + 2 * p2 * y
        j22 = radial + y * dradial * 2 * y + p1 * 6 * y + 2 * p2 * x
        det = j11 * j22 - j12 * j21
        dx, dy = (fxv * j22 - fyv * j12) / det, (fyv * j11 - fxv * j21) / det
        x, y = x - dx, y - dy
        if abs(dx) + abs(dy) < 1e-14:
            break
    return x * d_m, y * d_m, d_m


def rvl_decode(stream, count):
    """Wilson's RVL (ISS 2017) from the paper's description: 4-bit nibbles from the top of
    little-endian 32-bit words, 3 value bits each, the high bit for "more"; pairs of a zero
    count and a non-zero count, each non-zero a zigzagged difference from the previous one."""
    words = struct.unpack(f"<{len(stream) // 4}I", stream)
    nibbles = (w >> (28 - 4 * i) & 0xF for w in words for i in range(8))

    def vle():
        value, shift = 0, 0
        while True:
            n = next(nibbles)
            value |= (n & 7) << shift
            shift += 3
            if not n & 8:
                return value

    out, previous = [], 0
    while len(out) < count:
        out.extend([0] * vle())
        for _ in range(vle()):
            z = vle()
            previous = (previous + ((z >> 1) ^ -(z & 1))) & 0xFFFF
            out.append(previous)
    return out


def png_values(data):
    """The 16-bit values of a grayscale PNG, as Pillow reads them, little-endian bytes."""
    import io
    image = Image.open(io.BytesIO(data))
    image.load()
    if image.mode == "I;16":
        return image.size, image.tobytes()
    return image.size, struct.pack(f"<{image.size[0] * image.size[1]}H", *image.getdata())


def check_export(name, messages, frames, token, depth_as, has_cloud, unit_m):
    depth = {f["seq"]: f for f in frames if f["kind"] == "depth"}
    ir = {f["seq"]: f for f in frames if f["kind"] == "ir"}
    image_topic = f"/sk2/{token}/depth/image_raw" + ("/compressedDepth" if depth_as else "")
    by_topic = {}
    for m in messages:
        by_topic.setdefault(m["topic"], []).append(m)
    want_topics = {image_topic, f"/sk2/{token}/depth/camera_info", f"/sk2/{token}/ir/image_raw",
                   f"/sk2/{token}/ir/camera_info"}
    if has_cloud:
        want_topics.add(f"/sk2/{token}/depth/points")
    check(f"{name}: topics {sorted(want_topics)}", set(by_topic) == want_topics, sorted(by_topic))
    for topic in want_topics:
        want = ir if "/ir/" in topic else depth
        seqs = sorted(m["sequence"] for m in by_topic.get(topic, []))
        times = all(m["log_time"] == m["publish_time"] == m["stamp_ns"] ==
                    str(want[m["sequence"]]["capture_us"] * 1000)
                    for m in by_topic.get(topic, []) if m["sequence"] in want)
        check(f"{name}: {topic} has every frame once, stamped with its capture time",
              seqs == sorted(want) and times, f"{seqs} vs {sorted(want)}")
    infos = {m["sequence"]: m for m in by_topic.get(f"/sk2/{token}/depth/camera_info", [])}

    # Depth images: compressedDepth as ROS's compressed_depth_image_transport sends 16UC1.
    problems = []
    decoded = 0
    for m in by_topic.get(image_topic, []):
        f = depth[m["sequence"]]
        if m["frame_id"] != f"{token}_depth_optical_frame":
            problems.append(f"{m['sequence']}: frame_id {m['frame_id']}")
        if not depth_as:
            if m["schema"] != "sensor_msgs/msg/Image" or m["data"] != f["payload"]:
                problems.append(f"{m['sequence']}: Image differs")
            continue
        data = m["data"]
        fmt, p0, p1 = struct.unpack_from("<iff", data, 0)
        if (m["schema"] != "sensor_msgs/msg/CompressedImage" or
                m["format"] != f"16UC1; compressedDepth {depth_as}" or fmt != 0 or p0 or p1):
            problems.append(f"{m['sequence']}: {m['schema']} '{m.get('format')}' "
                            f"header {fmt} {p0} {p1}")
            continue
        if depth_as == "png":
            size, values = png_values(data[12:])
            if size != (f["width"], f["height"]) or values != f["payload"]:
                problems.append(f"{m['sequence']}: PNG {size} differs from the recording")
            decoded += 1
        else:
            cols, rows = struct.unpack_from("<II", data, 12)
            stream = data[20:]
            if (cols, rows) != (f["width"], f["height"]) or len(stream) % 4:
                problems.append(f"{m['sequence']}: RVL {cols}x{rows}, {len(stream)} bytes")
                continue
            # Back through sk2's own decoder, from an SK2F file (docs/codecs.md).
            sk2f = path(f"{name}-{m['sequence']}.sk2f")
            with open(sk2f, "wb") as fp:
                fp.write(b"SK2F" + bytes([1, 1, 3]) + b"rvl" +
                         struct.pack("<III", cols, rows, len(stream)) + stream)
            png = sk2f + ".png"
            r = cu.run("decode", sk2f, png)
            size, values = png_values(open(png, "rb").read()) if r.returncode == 0 else (0, b"")
            if values != f["payload"]:
                problems.append(f"{m['sequence']}: sk2 decode of the RVL differs: {r.stderr}")
            decoded += 1
    if depth_as == "rvl" and by_topic.get(image_topic):
        # And one frame through this script's own RVL decoder.
        m = by_topic[image_topic][0]
        f = depth[m["sequence"]]
        values = rvl_decode(m["data"][20:], f["width"] * f["height"])
        if struct.pack(f"<{len(values)}H", *values) != f["payload"]:
            problems.append(f"{m['sequence']}: this script's RVL decoder disagrees")
    check(f"{name}: every depth message holds the recorded values exactly" +
          (f" ({decoded} {depth_as} decoded)" if depth_as else ""),
          not problems and (not depth_as or decoded == len(depth)), problems[:3])

    if not has_cloud:
        return
    problems = []
    samples = worst = 0
    counts = []
    for m in by_topic.get(f"/sk2/{token}/depth/points", []):
        f = depth[m["sequence"]]
        values = struct.unpack(f"<{f['width'] * f['height']}H", f["payload"])
        valid = [(i % f["width"], i // f["width"], d) for i, d in enumerate(values) if d]
        counts.append(f"{len(valid)}/{len(values)}")
        fields = [(x["name"], x["offset"], x["datatype"], x["count"]) for x in m["fields"]]
        if (m["schema"] != "sensor_msgs/msg/PointCloud2" or m["height"] != 1 or
                m["width"] != len(valid) or
                fields != [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1)] or
                m["point_step"] != 12 or m["row_step"] != 12 * len(valid) or
                m["is_bigendian"] or not m["is_dense"] or len(m["data"]) != 12 * len(valid) or
                m["frame_id"] != f"{token}_depth_optical_frame"):
            problems.append(f"{m['sequence']}: {m['width']}x{m['height']} of {len(valid)} "
                            f"readings, fields {fields}, steps {m['point_step']} "
                            f"{m['row_step']}, {len(m['data'])} bytes")
            continue
        points = list(struct.iter_unpack("<fff", m["data"]))
        zs = [p[2] for p in points]
        want_zs = [struct.unpack("<f", struct.pack("<f", d * unit_m))[0] for _, _, d in valid]
        if zs != want_zs:
            problems.append(f"{m['sequence']}: z is not the recorded depth in metres")
        info = infos[m["sequence"]]
        for i in list(range(0, len(valid), max(1, len(valid) // 60))) + [len(valid) - 1]:
            u, v, d = valid[i]
            want = deproject(u, v, d * unit_m, info["k"], info["d"])
            error = max(abs(a - b) for a, b in zip(points[i], want))
            worst = max(worst, error)
            samples += 1
            if error > 1e-4:
                problems.append(f"{m['sequence']}: pixel {u},{v}: {points[i]} vs {want}")
    check(f"{name}: every cloud has one point per reading in order (readings/pixels "
          f"{' '.join(counts)}), z the recorded depth, and "
          f"{samples} sampled points within 1e-4 m of this script's deprojection "
          f"(worst {worst:.2e} m)", not problems and samples > 0, problems[:3])


def main():
    proc, endpoint, _ = cu.start_server()
    rec = path("take.sk2r")
    ir_only = path("ir.sk2r")
    try:
        r = cu.run("record", endpoint, "-o", rec, "--frames", "8", "--streams", "depth,ir",
                   "--codec", "depth=raw", "--codec", "ir=raw", "--no-status")
        r2 = cu.run("record", endpoint, "-o", ir_only, "--frames", "2", "--streams", "ir",
                    "--no-status")
    finally:
        cu.stop(proc)
    check("record a mock take (depth and IR raw) and one of IR only",
          r.returncode == 0 and r2.returncode == 0, r.stderr + r2.stderr)
    devices, frames = read_recording(rec)
    device = devices[0]
    token = "".join(c if c.isascii() and c.isalnum() else "_" for c in device["id"])
    token = "d" + token if token[0].isdigit() else token
    streams = {s["kind"]: s for s in device["streams"]}
    unit_m = streams["depth"].get("depth_unit_m", 0.001)
    check("the take has depth with intrinsics (and lens distortion) and IR",
          {f["kind"] for f in frames} == {"depth", "ir"} and
          streams["depth"].get("intrinsics", {}).get("k1", 0) != 0, streams)

    cases = [("cloud", ["--cloud"], None, True),
             ("png-cloud", ["--depth-as", "png", "--cloud", "--compression", "lz4"], "png", True),
             ("rvl", ["--depth-as", "rvl", "--compression", "none"], "rvl", False),
             ("image", ["--depth-as", "image"], None, False)]
    sizes = {}
    for name, args, depth_as, has_cloud in cases:
        out = path(f"{name}.mcap")
        r = cu.run("export", rec, out, "--format", "mcap", *args)
        check(f"export --format mcap {' '.join(args)} exits 0", r.returncode == 0 and
              os.path.exists(out), r.stderr)
        sizes[name] = os.path.getsize(out) if os.path.exists(out) else 0
        check_export(name, dump(out, name), frames, token, depth_as, has_cloud, unit_m)
    r = cu.run("export", rec, path("plain.mcap"), "--format", "mcap")
    check("--depth-as image is the plain export, byte for byte",
          r.returncode == 0 and os.path.getsize(path("plain.mcap")) == sizes["image"] and
          open(path("plain.mcap"), "rb").read() == open(path("image.mcap"), "rb").read(),
          r.stderr)

    # sk2 record --format mcap passes them on.
    proc, endpoint, _ = cu.start_server()
    live = path("live.mcap")
    try:
        r = cu.run("record", endpoint, "-o", live, "--format", "mcap", "--depth-as", "rvl",
                   "--cloud", "--frames", "6", "--streams", "depth", "--no-status")
        bad = cu.run("record", endpoint, "-o", path("bad-live.mcap"), "--cloud", "--frames", "1",
                     "--no-status")
    finally:
        cu.stop(proc)
    check("record --format mcap --depth-as rvl --cloud exits 0", r.returncode == 0, r.stderr)
    topics = {m["topic"].split("/", 3)[-1]: m["schema"] for m in dump(live, "live")}
    check("the recorded MCAP has compressedDepth rvl images and point clouds",
          topics.get("depth/image_raw/compressedDepth") == "sensor_msgs/msg/CompressedImage" and
          topics.get("depth/points") == "sensor_msgs/msg/PointCloud2" and
          "depth/image_raw" not in topics, topics)
    check("record --cloud without --format mcap is refused (exit 2)",
          bad.returncode == 2 and "--cloud and --depth-as are for --format mcap" in bad.stderr,
          bad.stderr)

    # A recording without intrinsics: a TUM folder whose sk2.json is gone.
    tum = path("tum")
    r = cu.run("export", rec, tum)
    os.remove(os.path.join(tum, "sk2.json"))
    before = sorted(os.listdir(TMP))
    for source, args, code, words in [
        (tum, ["--cloud"], 1, "has no camera intrinsics; point clouds need them"),
        (ir_only, ["--cloud"], 1, "no depth stream"),
        (rec, ["--depth-as", "jpeg"], 2, "--depth-as takes image, png or rvl"),
        (rec, ["--format", "tum", "--cloud"], 2, "--cloud and --depth-as are for --format mcap"),
        (rec, ["--format", "ply", "--depth-as", "png"], 2, "are for --format mcap"),
    ]:
        fmt = [] if "--format" in args else ["--format", "mcap"]
        r = cu.run("export", source, path("bad.mcap"), *fmt, *args)
        check(f"export {os.path.basename(source)} {' '.join(fmt + args)} is refused "
              f"(exit {code})", r.returncode == code and words in r.stderr,
              f"{r.returncode} {r.stderr}")
    check("refused exports leave nothing behind", sorted(os.listdir(TMP)) == before,
          set(os.listdir(TMP)) ^ set(before))
    shutil.rmtree(tum)
    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
