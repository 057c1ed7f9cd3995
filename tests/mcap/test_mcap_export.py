"""`sk2 export FILE OUT.mcap --format mcap`, checked by MCAP's and Foxglove's reference readers.

Records a mock server (depth and IR stored raw, so that this script's own reader of the sk2
file knows every pixel without sk2's codecs; colour as JPEG), exports it with each compression,
and has mcap_check.cjs (Node: @mcap/core, @foxglove/rosmsg2-serialization) read each file and
compare counts, times, pixels, JPEG bytes and intrinsics with what this script read. Also the
usage errors, and that a failed export leaves nothing behind.

usage: test_mcap_export.py SK2 NODE
"""
import hashlib
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import cliutil as cu  # noqa: E402
from sk2rec import KINDS, read_recording  # noqa: E402,F401

SK2, TMP = cu.setup("mcap")
NODE = sys.argv[2] if len(sys.argv) > 2 else "node"
HERE = os.path.dirname(os.path.abspath(__file__))
CODECS = {0: "raw"}
check, path = cu.check, cu.path


def main():
    proc, endpoint, _ = cu.start_server()
    rec = path("take.sk2r")
    try:
        r = cu.run("record", endpoint, "-o", rec, "--frames", "24", "--streams", "depth,color,ir",
                   "--codec", "depth=raw", "--codec", "ir=raw", "--no-status")
    finally:
        cu.stop(proc)
    check("record a mock take (depth and IR raw, colour JPEG)", r.returncode == 0, r.stderr)
    devices, frames = read_recording(rec)
    intrinsics = {s["kind"]: s["intrinsics"] for s in devices[0]["streams"] if "intrinsics" in s}
    expected = dict(device_id=devices[0]["id"], serial=devices[0].get("serial", ""),
                    intrinsics=intrinsics, frames=[])
    for f in frames:
        e = dict(kind=f["kind"], seq=f["seq"], capture_us=f["capture_us"], width=f["width"],
                 height=f["height"])
        if f["kind"] == "color":
            e["payload_sha256"] = hashlib.sha256(f["payload"]).hexdigest()
        else:
            # raw: the payload is the pixels, little-endian, as ROS's 16UC1/mono16 with
            # is_bigendian 0 want them.
            e["pixels_sha256"] = hashlib.sha256(f["payload"]).hexdigest()
        expected["frames"].append(e)
    check("the take has depth, colour and IR frames and intrinsics for each",
          {f["kind"] for f in frames} == {"depth", "color", "ir"} and len(intrinsics) == 3,
          f"{len(frames)} frames, intrinsics for {list(intrinsics)}")

    for compression in ("zstd", "lz4", "none"):
        out = path(f"take-{compression}.mcap")
        r = cu.run("export", rec, out, "--format", "mcap", "--compression", compression)
        check(f"export --format mcap --compression {compression} exits 0",
              r.returncode == 0 and os.path.exists(out), r.stderr)
        expected["compression"] = "" if compression == "none" else compression
        exp_file = path(f"expected-{compression}.json")
        with open(exp_file, "w") as fp:
            json.dump(expected, fp)
        node = subprocess.run([NODE, os.path.join(HERE, "mcap_check.cjs"), out, exp_file],
                              capture_output=True, text=True, timeout=120)
        sys.stdout.write(node.stdout)
        check(f"the reference readers accept the {compression} file and every check passes",
              node.returncode == 0, node.stderr[-2000:])

    # sk2 record --format mcap: the same conversion at the end of a recording, no sk2 file left.
    proc, endpoint, _ = cu.start_server()
    live = path("live.mcap")
    try:
        r = cu.run("record", endpoint, "-o", live, "--format", "mcap", "--compression", "lz4",
                   "--frames", "12", "--no-status")
        bad = cu.run("record", endpoint, "-o", path("bad.mcap"), "--compression", "lz4",
                     "--frames", "1", "--no-status")
    finally:
        cu.stop(proc)
    check("record --format mcap --compression lz4 exits 0 and leaves only the MCAP file",
          r.returncode == 0 and "12 frames" in r.stdout and
          [f for f in os.listdir(TMP) if f.startswith("live")] == ["live.mcap"],
          r.stdout + r.stderr + str(os.listdir(TMP)))
    check("record --compression without --format mcap is refused (exit 2)",
          bad.returncode == 2 and "--compression is for --format mcap" in bad.stderr, bad.stderr)
    exp_file = path("expected-live.json")
    with open(exp_file, "w") as fp:
        live_id = re.search(r"device (\S+): depth in", r.stdout)
        json.dump(dict(frame_count=12, device_id=live_id and live_id.group(1), compression="lz4"),
                  fp)
    node = subprocess.run([NODE, os.path.join(HERE, "mcap_check.cjs"), live, exp_file],
                          capture_output=True, text=True, timeout=120)
    sys.stdout.write(node.stdout)
    check("the reference readers accept the recorded MCAP file", node.returncode == 0,
          node.stderr[-2000:])

    # zstd is the default; and the default is smaller than no compression.
    out = path("default.mcap")
    r = cu.run("export", rec, out, "--format", "mcap")
    check("export --format mcap without --compression writes zstd chunks",
          r.returncode == 0 and "zstd" in r.stdout and
          os.path.getsize(out) == os.path.getsize(path("take-zstd.mcap")), r.stdout + r.stderr)

    # Usage errors change nothing.
    before = sorted(os.listdir(TMP))
    for args, words in [
        (["--format", "mcap", "--compression", "gzip"], "--compression takes zstd, lz4 or none"),
        (["--compression", "lz4"], "--compression is for --format mcap"),
        (["--format", "mp4"], "--format takes"),
        (["--format", "mcap", "--device", "3"], "has no device 3"),
    ]:
        r = cu.run("export", rec, path("bad.mcap"), *args)
        check(f"export {' '.join(args)} is refused with exit 2",
              r.returncode == 2 and words in r.stderr, f"{r.returncode} {r.stderr}")
    r = cu.run("export", rec, path("take-zstd.mcap"), "--format", "mcap")
    check("export onto an existing file is refused (exit 2)", r.returncode == 2, r.stderr)
    r = cu.run("export", path("missing.sk2r"), path("bad.mcap"), "--format", "mcap")
    check("export of a missing recording fails (exit 1)", r.returncode == 1, r.stderr)
    check("failed exports leave nothing behind", sorted(os.listdir(TMP)) == before,
          set(os.listdir(TMP)) ^ set(before))
    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
