"""`sk2 import in.mcap FILE` and `sk2 serve --replay in.mcap` on MCAP files sk2 did not write.

make_foreign.cjs writes ROS-2-bag-like files with MCAP's reference writer and Foxglove's CDR
serialiser (zstd, lz4 and uncompressed chunks; 16UC1 little- and big-endian, 32FC1 metres,
rgb8, mono16, JPEG CompressedImage; camera_info; a String channel; messages out of order) and
EXPECTED.json with every frame's times and the SHA-256 of the pixels sk2 should make. Each file
is imported with depth, IR and colour stored raw, and the resulting sk2 file is read by this
script's own reader (docs/recording.md), so the pixels are checked without sk2's decoders.
Also: sk2 -> export --format mcap -> import gives back the depth frames bit for bit; a cut
file imports up to its last whole record; serve --replay of a foreign file streams its frames
to `sk2 record` and `sk2 stream`.

usage: test_mcap_import.py SK2 NODE
"""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import cliutil as cu  # noqa: E402
from sk2rec import KINDS, read_recording  # noqa: E402,F401

SK2, TMP = cu.setup("mcap-import")
NODE = sys.argv[2] if len(sys.argv) > 2 else "node"
HERE = os.path.dirname(os.path.abspath(__file__))
check, path = cu.check, cu.path


def by_kind(frames):
    out = {}
    for f in frames:
        out.setdefault(f["kind"], []).append(f)
    return out


def sha(b):
    return hashlib.sha256(b).hexdigest()


def import_raw(src, dst):
    return cu.run("import", src, dst, "--depth-codec", "raw", "--color-codec", "raw")


def check_streams(name, want_streams, got):
    for kind, expected in want_streams.items():
        frames_k = got.get(kind, [])
        check(f"{name}: {kind}: {len(expected)} frames", len(frames_k) == len(expected),
              len(frames_k))
        order = sorted(expected, key=lambda e: e["log_us"])
        check(f"{name}: {kind}: capture times are the log times, in order; device times the "
              "header stamps",
              [f["capture_us"] for f in frames_k] == [e["log_us"] for e in order] and
              [f["device_us"] for f in frames_k] == [e["stamp_us"] for e in order],
              [(f["capture_us"], f["device_us"]) for f in frames_k][:2])
        check(f"{name}: {kind}: sequences count from 0 (rosbag2 writes none)",
              [f["seq"] for f in frames_k] == list(range(len(frames_k))),
              [f["seq"] for f in frames_k])
        if all(e["sha256"] for e in expected):
            bad = [i for i, (f, e) in enumerate(zip(frames_k, order))
                   if sha(f["payload"]) != e["sha256"]]
            check(f"{name}: {kind}: every pixel as expected", not bad and frames_k, bad)


def check_foreign(name, want):
    src, dst = path(name), path(name + ".sk2r")
    r = import_raw(src, dst)
    check(f"{name}: sk2 import exits 0", r.returncode == 0, r.stdout + r.stderr)
    if r.returncode != 0:
        return
    devices, frames = read_recording(dst)
    wanted = want.get("devices") or {want["device"]: want["streams"]}
    check(f"{name}: devices named from the topics ({', '.join(wanted)})",
          [d["id"] for d in devices] == list(wanted), [d["id"] for d in devices])
    for d, (device, streams_want) in enumerate(wanted.items()):
        check_streams(f"{name}: {device}", streams_want,
                      by_kind([f for f in frames if f["device"] == d]))
    got = by_kind([f for f in frames if f["device"] == 0])
    streams = {s["kind"]: s for s in devices[0]["streams"]}
    if "intrinsics" in want:
        k = streams.get("depth", {}).get("intrinsics", {})
        check(f"{name}: depth intrinsics from camera_info (K and D)",
              all(abs(k.get(n, 1e9) - v) < 1e-9 for n, v in want["intrinsics"].items()), k)
    return got


def main():
    # A mock take: depth and IR raw, colour JPEG (its JPEG goes into the lz4 file).
    proc, endpoint, _ = cu.start_server()
    take = path("take.sk2r")
    try:
        r = cu.run("record", endpoint, "-o", take, "--frames", "18", "--streams",
                   "depth,color,ir", "--codec", "depth=raw", "--codec", "ir=raw", "--no-status")
    finally:
        cu.stop(proc)
    check("record a mock take", r.returncode == 0, r.stderr)
    _, take_frames = read_recording(take)
    jpeg = [f for f in take_frames if f["kind"] == "color"][0]["payload"]
    open(path("colour.jpg"), "wb").write(jpeg)

    node = subprocess.run([NODE, os.path.join(HERE, "make_foreign.cjs"), TMP, path("colour.jpg")],
                          capture_output=True, text=True, timeout=60)
    check("make_foreign.cjs writes the files with @mcap/core", node.returncode == 0,
          node.stdout + node.stderr)
    if node.returncode != 0:
        return
    expected = json.load(open(path("EXPECTED.json")))
    results = {name: check_foreign(name, want) for name, want in expected.items()}

    # The JPEG colour: 1920x1080 frames whose pixels are those sk2 decodes from the same JPEG
    # in its own recording (export to MCAP as CompressedImage, import, stored raw).
    r = cu.run("export", take, path("take.mcap"), "--format", "mcap")
    check("export the take as MCAP", r.returncode == 0, r.stderr)
    r = import_raw(path("take.mcap"), path("back.sk2r"))
    check("import the exported MCAP", r.returncode == 0, r.stdout + r.stderr)
    devices_b, back = read_recording(path("back.sk2r"))
    devices_t, _ = read_recording(take)
    first_colour = by_kind(back).get("color", [{}])[0].get("payload", b"")
    lz4_colour = (results.get("foreign_lz4.mcap") or {}).get("color", [])
    check("foreign_lz4.mcap: JPEG colour decodes to sk2's own decoding of that JPEG",
          lz4_colour and all(f["width"] == 1920 and f["payload"] == first_colour
                             for f in lz4_colour), len(lz4_colour))

    # Round trip: depth bit for bit, with sequences and capture times; the device comes back.
    t_depth = [(f["seq"], f["capture_us"], f["payload"]) for f in by_kind(take_frames)["depth"]]
    b_depth = [(f["seq"], f["capture_us"], f["payload"]) for f in by_kind(back).get("depth", [])]
    check("sk2 -> export mcap -> import: depth frames bit for bit (sequence, time, pixels)",
          t_depth == b_depth and len(t_depth) > 0, f"{len(t_depth)} vs {len(b_depth)}")
    # Depth written as compressedDepth (png and rvl) reads back bit for bit too: sk2 must read
    # what it writes, and the two ROS codecs are lossless for 16UC1.
    for depth_as in ("png", "rvl"):
        packed = path(f"take_{depth_as}.mcap")
        r = cu.run("export", take, packed, "--format", "mcap", "--depth-as", depth_as)
        check(f"export --depth-as {depth_as}", r.returncode == 0, r.stderr)
        r = import_raw(packed, path(f"back_{depth_as}.sk2r"))
        check(f"import of the --depth-as {depth_as} file", r.returncode == 0,
              r.stdout + r.stderr)
        _, back_packed = read_recording(path(f"back_{depth_as}.sk2r")) if r.returncode == 0 \
            else (None, [])
        p_depth = [(f["seq"], f["capture_us"], f["payload"])
                   for f in by_kind(back_packed).get("depth", [])]
        check(f"... compressedDepth {depth_as}: depth frames bit for bit", p_depth == t_depth,
              f"{len(t_depth)} vs {len(p_depth)}")
    t_ir = [f["payload"] for f in by_kind(take_frames)["ir"]]
    check("... and IR", t_ir == [f["payload"] for f in by_kind(back).get("ir", [])])
    check("... and the device's id, serial and intrinsics",
          devices_b[0]["id"] == devices_t[0]["id"] and
          devices_b[0].get("serial") == devices_t[0].get("serial") and
          devices_b[0]["streams"][0].get("intrinsics") == devices_t[0]["streams"][0].get(
              "intrinsics"), (devices_b[0], devices_t[0]))

    # A file cut short (no summary, a chunk cut): imports up to its last whole record.
    data = open(path("foreign_zstd.mcap"), "rb").read()
    open(path("cut.mcap"), "wb").write(data[:len(data) * 2 // 3])
    r = cu.run("inspect", path("cut.mcap"))
    check("inspect of a cut MCAP file says it is cut off",
          r.returncode == 0 and "cut off" in r.stdout, r.stdout + r.stderr)
    r = import_raw(path("cut.mcap"), path("cut.sk2r"))
    _, cut_frames = read_recording(path("cut.sk2r")) if r.returncode == 0 else (None, [])
    full = sum(len(v) for v in expected["foreign_zstd.mcap"]["streams"].values())
    check("a cut MCAP file imports its whole records only", r.returncode == 0 and
          0 < len(cut_frames) < full, f"{r.stderr} {len(cut_frames)} of {full}")
    # Not MCAP, and damaged: clear errors, nothing written.
    bad = bytearray(data)
    bad[100] ^= 0xff
    open(path("bad.mcap"), "wb").write(bytes(bad))
    r = import_raw(path("bad.mcap"), path("bad.sk2r"))
    check("a damaged MCAP file is refused with a reason (exit 1, nothing written)",
          r.returncode == 1 and "MCAP" in r.stderr and not os.path.exists(path("bad.sk2r")),
          r.stderr)

    # serve --replay of a foreign file: a client receives its frames.
    proc, endpoint, _ = cu.start_server("--replay", path("foreign_zstd.mcap"), "--loop")
    try:
        r = cu.run("record", endpoint, "-o", path("replayed.sk2r"), "--frames", "6", "--streams",
                   "depth", "--codec", "depth=raw", "--no-status", timeout=60)
        streamed = cu.run("stream", endpoint, "--stream", "depth", "--stream", "color", "--stream",
                          "ir", "--frames", "30", "--json", "--no-status", timeout=60)
    finally:
        cu.stop(proc)
    summary = (json.loads(streamed.stdout.strip().splitlines()[-1])
               if streamed.returncode == 0 else {})
    check("sk2 stream receives the replayed MCAP's frames (depth, colour and IR of 'camera')",
          summary.get("frames", 0) >= 30 and summary.get("devices") == 1 and
          {m["kind"] for m in summary.get("streams", []) if m["frames"] > 0} ==
          {"depth", "color", "ir"} and summary.get("mismatches") == 0,
          streamed.stdout + streamed.stderr)
    check("record from serve --replay foreign_zstd.mcap exits 0", r.returncode == 0, r.stderr)
    _, replayed = read_recording(path("replayed.sk2r")) if r.returncode == 0 else (None, [])
    want = {e["sha256"] for e in expected["foreign_zstd.mcap"]["streams"]["depth"]}
    check("every replayed depth frame is one of the file's",
          len(replayed) >= 6 and all(sha(f["payload"]) in want for f in replayed),
          len(replayed))


if __name__ == "__main__":
    try:
        main()
    finally:
        sys.exit(cu.summary())
