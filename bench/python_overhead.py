#!/usr/bin/env python3
"""Per-frame cost of the Python binding over the C client, in µs of CPU time.

One `sk2 serve --mock 1` process (colour at 1920x1080) feeds, in turn and repeatedly, the C
loop bench_client_loop (recv, take the frame, destroy it) and the same loop in Python
(Client.wait_for_frames, then Frame.asarray(): the frame as a numpy array), each receiving
one stream uncompressed ("raw", so that decoding is a copy and does not hide the binding's
cost): depth at 512x424 and colour at 1920x1080. Each client times every frame in the CPU
time of the thread that receives it (C: sk2_client_recv to sk2_frame_destroy; Python: the
call to wait_for_frames to the arrays and frame set being freed). Blocking in poll takes no
CPU time, so the server's pace does not count, and CPU time is less disturbed than wall time
by other processes on a busy machine. The table gives the median over every frame of every
round; the difference is what the binding adds per frame. A second table gives the CPU time
of the whole process (all threads) per frame over each run: where the memory work of a frame
(first touches of fresh buffers) lands, in libzmq's I/O thread or in the receiving thread,
varies between processes, and only the sum over threads is free of that. The Python client is configured
like the C one (reconnection off: with it on, libsk2 watches the control socket through a
monitor socket, a cost of the library's, not of the binding); --reconnect adds a column with
the binding's default, reconnection on.

usage: python3 bench/python_overhead.py BUILD_DIR [--frames N] [--rounds R] [--fps F]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PY_LOOP = r"""
import sys, time
import sk2
endpoint, stream, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
reconnect = sys.argv[4] == "reconnect"
kind = stream.split(":")[0]
with sk2.Client(endpoint, streams=[stream], latest=False, reconnect=reconnect) as c:
    for i in range(frames):
        start = time.thread_time_ns()
        fs = c.wait_for_frames(timeout_ms=10000)
        a = fs[kind].asarray()
        n = a.size
        del a, fs
        print("frame %.2f" % ((time.thread_time_ns() - start) / 1e3))
        if i == 0:
            process_start = time.process_time_ns()
        assert n > 0
    print("process %.2f" % ((time.process_time_ns() - process_start) / 1e3 / (frames - 1)))
"""


def samples(output, what="frame"):
    return [float(line.split()[1]) for line in output.splitlines()
            if line.startswith(what + " ")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--reconnect", action="store_true",
                    help="also time the Python client with reconnection on (its default)")
    args = ap.parse_args()
    sk2_tool = os.path.join(args.build, "tools", "sk2")
    c_loop = os.path.join(args.build, "bench", "bench_client_loop")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(os.path.abspath(args.build), "python")

    endpoint_file = os.path.join(tempfile.mkdtemp(prefix="sk2-bench-py-"), "endpoint")
    server = subprocess.Popen([sk2_tool, "serve", "--mock", "1", "--fps", str(args.fps),
                               "--color-size", "1920x1080", "--bind", "127.0.0.1",
                               "--endpoint-file", endpoint_file, "--no-status",
                               "--no-announce"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not (os.path.exists(endpoint_file) and open(endpoint_file).read().strip()):
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("sk2 serve did not start")
            time.sleep(0.05)
        endpoint = open(endpoint_file).read().strip()
        results = {}
        for stream, size in (("depth:raw", "512x424"), ("color:raw", "1920x1080")):
            c_us, py_us, py_re_us, c_proc, py_proc = [], [], [], [], []
            for _ in range(args.rounds):
                run = [str(args.frames)]
                r = subprocess.run([c_loop, endpoint, stream, *run], capture_output=True,
                                   text=True, timeout=300)
                if r.returncode != 0:
                    sys.exit(f"C loop failed: {r.stderr}")
                c_us += samples(r.stdout)
                c_proc += samples(r.stdout, "process")
                for mode, into in (("plain", py_us), ("reconnect", py_re_us)):
                    if mode == "reconnect" and not args.reconnect:
                        continue
                    r = subprocess.run([sys.executable, "-c", PY_LOOP, endpoint, stream, *run,
                                        mode], capture_output=True, text=True, timeout=300,
                                       env=env)
                    if r.returncode != 0:
                        sys.exit(f"Python loop failed: {r.stderr}")
                    into += samples(r.stdout)
                    if mode == "plain":
                        py_proc += samples(r.stdout, "process")
            results[size] = (stream, statistics.median(c_us), statistics.median(py_us),
                             statistics.median(py_re_us) if py_re_us else None, len(c_us),
                             len(py_us), statistics.median(c_proc), statistics.median(py_proc))
    finally:
        server.terminate()
        server.wait(timeout=15)

    print(f"`{' '.join([os.path.basename(sys.executable), *sys.argv])}`  ")
    print(f"{args.rounds} rounds of {args.frames} frames per client at {args.fps:g} fps; "
          f"CPU µs of the receiving thread per frame, medians over all frames\n")
    extra = " Python, reconnect on |" if args.reconnect else ""
    print(f"| frame | stream | C client | Python binding | overhead |{extra} frames C/Py |")
    print("| --- | --- | ---: | ---: | ---: |" + (" ---: |" if args.reconnect else "") + " ---: |")
    for size, (stream, c, py, py_re, nc, npy, _, _) in results.items():
        more = f" {py_re:.1f} |" if py_re is not None else ""
        print(f"| {size} | {stream} | {c:.1f} | {py:.1f} | {py - c:+.1f} |{more} {nc}/{npy} |")
    print("\nThe whole process (every thread, libzmq's I/O thread included), CPU µs per frame from"
          " the first frame to the last, median over rounds:\n")
    print("| frame | stream | C client | Python binding | difference |")
    print("| --- | --- | ---: | ---: | ---: |")
    for size, (stream, *_, cp, pp) in results.items():
        print(f"| {size} | {stream} | {cp:.1f} | {pp:.1f} | {pp - cp:+.1f} |")


if __name__ == "__main__":
    main()
