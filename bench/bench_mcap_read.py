"""MCAP import: how fast `sk2 import in.mcap out.sk2r` reads MCAP files of each chunk
compression. Prints a table; never passes or fails.

Records a mock take as `sk2 record` stores it by default (depth and IR with sk2d, colour JPEG),
exports it with `sk2 export --format mcap` once per compression, then imports each MCAP file
RUNS times and keeps the median wall time (process start included). Two ways of storing:
the defaults (depth and IR re-encoded with sk2d, colour decoded from the MCAP's JPEG and
re-encoded as JPEG) and everything raw, which leaves mostly the reading: MCAP records, chunk
decompression, CDR, JPEG decoding. MB/s is the MCAP file's megabytes over the wall time, and
CPU s the import's user + system time (steadier than wall time on a shared machine).

usage: nice -n 10 python3 bench/bench_mcap_read.py SK2 [FRAMES] [RUNS]
       (default 300 frames: 100 per stream; 5 runs)
"""
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "cli"))
import cliutil as cu  # noqa: E402

SK2, TMP = cu.setup("bench-mcap-read")
FRAMES = int(sys.argv[2]) if len(sys.argv) > 2 else 300
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 5


def main():
    proc, endpoint, _ = cu.start_server()
    rec = cu.path("take.sk2r")
    try:
        r = cu.run("record", endpoint, "-o", rec, "--frames", str(FRAMES), "--streams",
                   "depth,color,ir", "--no-status", timeout=600)
    finally:
        cu.stop(proc)
    if r.returncode != 0:
        sys.exit(f"record failed: {r.stderr}")
    print(f"mock take: {FRAMES} frames (depth, IR 512x424; 1080p colour), "
          f"{os.path.getsize(rec) / 1e6:.1f} MB as sk2r; median of {RUNS} imports")
    print(f"{'compression':<12} {'stored as':<10} {'MCAP MB':>8} {'import s':>9} {'MB/s':>7} "
          f"{'frames/s':>9} {'CPU s':>6} {'MB/CPU s':>9}")
    for compression in ("zstd", "lz4", "none"):
        mcap = cu.path(f"take-{compression}.mcap")
        r = cu.run("export", rec, mcap, "--format", "mcap", "--compression", compression, "-q",
                   timeout=600)
        if r.returncode != 0:
            sys.exit(f"export failed: {r.stderr}")
        mb = os.path.getsize(mcap) / 1e6
        for label, extra in (("defaults", []),
                             ("raw", ["--depth-codec", "raw", "--color-codec", "raw"])):
            times, cpus = [], []
            for i in range(RUNS):
                out = cu.path(f"back-{compression}-{label}-{i}.sk2r")
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.monotonic()
                r = cu.run("import", mcap, out, "-q", *extra, timeout=600)
                times.append(time.monotonic() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                if r.returncode != 0:
                    sys.exit(f"import failed: {r.stderr}")
                os.unlink(out)
            took, cpu = statistics.median(times), statistics.median(cpus)
            print(f"{compression:<12} {label:<10} {mb:>8.1f} {took:>9.2f} {mb / took:>7.0f} "
                  f"{FRAMES / took:>9.0f} {cpu:>6.2f} {mb / cpu:>9.0f}")


if __name__ == "__main__":
    main()
