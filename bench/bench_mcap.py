"""MCAP export: how fast `sk2 export --format mcap` runs and how large its files are for each
chunk compression, against the sk2 recording it reads. Prints a table; never passes or fails.

Records a mock take as `sk2 record` stores it by default (depth and IR with sk2d, colour JPEG),
then exports it three times per compression and keeps the fastest run (the machine is shared).
MB/s is the recording's megabytes divided by the export's wall time; frames/s likewise.

usage: python3 bench/bench_mcap.py SK2 [FRAMES]   (default 300 frames: 100 per stream)
The real-depth table has six frames: its times are mostly process start, its sizes are the
point.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cli"))
import cliutil as cu  # noqa: E402

SK2, TMP = cu.setup("bench-mcap")
FRAMES = int(sys.argv[2]) if len(sys.argv) > 2 else 300


def table(rec, frames, title):
    size = os.path.getsize(rec)
    mb = size / 1e6
    print(f"{title}: {frames} frames, {mb:.1f} MB")
    print(f"{'compression':<12} {'MCAP MB':>9} {'vs sk2r':>8} {'export s':>9} {'MB/s':>7} "
          f"{'frames/s':>9}")
    for compression in ("zstd", "lz4", "none"):
        best = None
        for i in range(3):
            out = cu.path(f"take-{compression}-{i}.mcap")
            start = time.monotonic()
            r = cu.run("export", rec, out, "--format", "mcap", "--compression", compression,
                       "-q", timeout=600)
            took = time.monotonic() - start
            if r.returncode != 0:
                sys.exit(f"export failed: {r.stderr}")
            best = took if best is None else min(best, took)
            out_size = os.path.getsize(out)
            os.unlink(out)
        print(f"{compression:<12} {out_size / 1e6:>9.1f} {out_size / size:>7.2f}x {best:>9.2f} "
              f"{mb / best:>7.0f} {frames / best:>9.0f}")


def real_depth():
    """The six real Azure Kinect depth frames of tests/data as a TUM folder at 30 fps, imported
    (sk2d): the mock's synthetic scene compresses far better than a camera's. Each frame once,
    since repeating them would let zstd match whole frames and flatter it."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "depth",
                       "azure_kinect")
    pngs = sorted(f for f in os.listdir(src) if f.endswith(".png"))
    tum = cu.path("tum")
    os.makedirs(os.path.join(tum, "depth"))
    with open(os.path.join(tum, "depth.txt"), "w") as f:
        for i in range(len(pngs)):
            os.symlink(os.path.join(src, pngs[i % len(pngs)]),
                       os.path.join(tum, "depth", f"{i:03}.png"))
            f.write(f"{1700000000 + i / 30:.6f} depth/{i:03}.png\n")
    rec = cu.path("real.sk2r")
    r = cu.run("import", tum, rec, "-q", timeout=300)
    if r.returncode != 0:
        sys.exit(f"import failed: {r.stderr}")
    return rec, len(pngs)


def main():
    proc, endpoint, _ = cu.start_server()
    rec = cu.path("take.sk2r")
    try:
        r = cu.run("record", endpoint, "-o", rec, "--frames", str(FRAMES), "--streams",
                   "depth,color,ir", "--no-status", timeout=300)
    finally:
        cu.stop(proc)
    if r.returncode != 0:
        sys.exit(f"record failed: {r.stderr}")
    table(rec, FRAMES, "mock take (depth and IR 512x424 sk2d, colour 1920x1080 JPEG)")
    print()
    rec, frames = real_depth()
    table(rec, frames, "real depth (tests/data Azure Kinect 320x288 frames; sk2d)")


if __name__ == "__main__":
    main()
