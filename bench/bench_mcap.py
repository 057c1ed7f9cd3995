"""MCAP export: how fast `sk2 export --format mcap` runs and how large its files are for each
chunk compression, against the sk2 recording it reads. Prints a table; never passes or fails.

Records a mock take as `sk2 record` stores it by default (depth and IR with sk2d, colour JPEG),
then exports it three times per compression and keeps the fastest run (the machine is shared).
MB/s is the recording's megabytes divided by the export's wall time; frames/s likewise.

usage: python3 bench/bench_mcap.py SK2 [FRAMES]   (default 300 frames: 100 per stream)
The real-depth table has six frames: its times are mostly process start, its sizes are the
point.

Then the depth modes (`--depth-as image|png|rvl`, and `--cloud` beside the Image): a
depth-only take exported five times per mode, with chunks uncompressed (so the bytes are the
messages') and with zstd, giving bytes per depth frame and the export's CPU time (user +
system, process start included) per frame, medians of the five runs.
"""
import json
import os
import resource
import statistics
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


MODES = [("image", []), ("png", ["--depth-as", "png"]), ("rvl", ["--depth-as", "rvl"]),
         ("image + cloud", ["--cloud"])]


def depth_modes(rec, frames, title, cpu_rec=None, cpu_frames=0, runs=5):
    """Bytes and CPU per depth frame of each depth mode; the recording holds only depth (with
    its camera info: one CameraInfo of 0.4 kB per frame is in every row). CPU comes from
    cpu_rec (cpu_frames frames) when given: a longer take, so process start counts less."""
    cpu_rec, cpu_frames = (cpu_rec, cpu_frames) if cpu_rec else (rec, frames)
    print(f"{title}: {frames} depth frames ({cpu_frames} for CPU), medians of {runs} runs")
    print(f"{'mode':<14} {'kB/frame none':>14} {'kB/frame zstd':>14} {'CPU ms/frame':>13}")
    for name, args in MODES:
        sizes = {}
        cpu = []
        for what in ("none", "zstd", "cpu"):
            for i in range(runs if what != "zstd" else 1):  # sizes do not vary between runs
                out = cu.path(f"mode-{what}-{i}.mcap")
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = cu.run("export", cpu_rec if what == "cpu" else rec, out, "--format", "mcap",
                           "--compression", "zstd" if what == "zstd" else "none", *args, "-q",
                           timeout=600)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if r.returncode != 0:
                    sys.exit(f"export failed: {r.stderr}")
                if what == "cpu":
                    cpu.append(after.ru_utime + after.ru_stime - before.ru_utime -
                               before.ru_stime)
                else:
                    sizes.setdefault(what, []).append(os.path.getsize(out))
                os.unlink(out)
        per = {c: statistics.median(v) / frames / 1e3 for c, v in sizes.items()}
        print(f"{name:<14} {per['none']:>14.1f} {per['zstd']:>14.1f} "
              f"{statistics.median(cpu) / cpu_frames * 1e3:>13.2f}")


def real_depth(with_model=False, repeats=1):
    """The six real Azure Kinect depth frames of tests/data as a TUM folder at 30 fps, imported
    (sk2d): the mock's synthetic scene compresses far better than a camera's. Each frame once,
    since repeating them would let zstd match whole frames and flatter it; `repeats` (for CPU
    time only, where sizes do not matter) plays them that many times."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "depth",
                       "azure_kinect")
    pngs = sorted(f for f in os.listdir(src) if f.endswith(".png"))
    tum = cu.path(f"tum-{with_model}-{repeats}")
    os.makedirs(os.path.join(tum, "depth"))
    with open(os.path.join(tum, "depth.txt"), "w") as f:
        for i in range(len(pngs) * repeats):
            os.symlink(os.path.join(src, pngs[i % len(pngs)]),
                       os.path.join(tum, "depth", f"{i:03}.png"))
            f.write(f"{1700000000 + i / 30:.6f} depth/{i:03}.png\n")
    # With a model: the PNGs' values as millimetres (as the codec benchmark reads them) and
    # nominal intrinsics (an Azure Kinect's binned NFOV mode has fx = fy = 252 or so), since the
    # frames come without their calibration and the point clouds only need a plausible one.
    if with_model:
        with open(os.path.join(tum, "sk2.json"), "w") as f:
            json.dump({"format": "sk2-tum", "version": 1, "depth_png_unit_m": 0.001,
                       "device": {"id": "azure", "serial": "", "backend": "tum", "streams": [
                           {"kind": "depth", "format": "depth_mm16", "width": 320,
                            "height": 288, "fps": 30.0, "depth_unit_m": 0.001,
                            "intrinsics": {"fx": 252.0, "fy": 252.0, "cx": 159.5, "cy": 143.5,
                                           "k1": 0.0, "k2": 0.0, "k3": 0.0, "p1": 0.0,
                                           "p2": 0.0}}]}}, f)
    rec = cu.path(f"real-{with_model}-{repeats}.sk2r")
    r = cu.run("import", tum, rec, "-q", timeout=300)
    if r.returncode != 0:
        sys.exit(f"import failed: {r.stderr}")
    return rec, len(pngs) * repeats


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
    print()
    rec, frames = real_depth(with_model=True)
    long_rec, long_frames = real_depth(with_model=True, repeats=10)
    depth_modes(rec, frames, "real depth (the same frames in mm, nominal intrinsics; sk2d)",
                long_rec, long_frames)
    print()
    proc, endpoint, _ = cu.start_server()
    depth = cu.path("depth.sk2r")
    try:
        r = cu.run("record", endpoint, "-o", depth, "--frames", "60", "--streams", "depth",
                   "--no-status", timeout=300)
    finally:
        cu.stop(proc)
    if r.returncode != 0:
        sys.exit(f"record failed: {r.stderr}")
    depth_modes(depth, 60, "mock depth (512x424 sk2d)")


if __name__ == "__main__":
    main()
