#!/usr/bin/env python3
"""Frameset spread and matched fraction, on loopback, with and without the clock mapping.

Starts two servers with aligned mocks (`sk2 serve --mock-align`): two devices on one whose
clock reads 250 ms ahead, one on another 40 ms behind (--clock-offset-ms), all at --fps F.
Then runs `sk2 stream A B --frameset --json --seconds S` N times in each of three modes: with
each server's clock estimate (the default), --no-clock, and --no-clock --queue 64 (a queue long
enough to reach across the 290 ms between the servers' times). Prints per mode the median over
the runs of the framesets, the spread p50 and p99 (ms, this host's clock) and the matched
fraction: frames that went into framesets over frames received, all devices together.
Figures only: nothing here passes or fails on a timing.

Usage: bench_frameset.py /path/to/sk2 [--runs N] [--seconds S] [--fps F]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def start_server(sk2, tmp, mocks, offset_ms, fps):
    endpoint_file = os.path.join(tmp, f"endpoint{offset_ms}")
    proc = subprocess.Popen([sk2, "serve", "--mock", str(mocks), "--bind", "127.0.0.1",
                             "--no-status", "--no-announce", "--endpoint-file", endpoint_file,
                             "--clock-offset-ms", str(offset_ms), "--mock-align",
                             "--fps", str(fps)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(endpoint_file):
            with open(endpoint_file) as f:
                endpoint = f.read().strip()
            if endpoint:
                return proc, endpoint
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"sk2 serve --clock-offset-ms {offset_ms} did not start")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sk2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--fps", type=float, default=30)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sk2-bench-frameset-")
    servers = [start_server(args.sk2, tmp, 2, 250, args.fps),
               start_server(args.sk2, tmp, 1, -40, args.fps)]
    modes = (("clock mapping", []), ("--no-clock", ["--no-clock"]),
             ("--no-clock --queue 64", ["--no-clock", "--queue", "64"]))
    print(f"{args.runs} runs of {args.seconds} s per mode, 3 mock devices at {args.fps} fps, "
          "servers at +250 and -40 ms")
    print("| mode | framesets | spread p50 (ms) | spread p99 (ms) | matched fraction |")
    print("| --- | --- | --- | --- | --- |")
    try:
        for name, extra in modes:
            rows = []
            for _ in range(args.runs):
                r = subprocess.run([args.sk2, "stream", servers[0][1], servers[1][1], "--frameset",
                                    "--json", "--seconds", str(args.seconds), *extra],
                                   capture_output=True, text=True, timeout=120)
                try:
                    rows.append(json.loads(r.stdout))
                except ValueError:
                    print(f"run failed: {r.stderr.strip()}", file=sys.stderr)
            fractions = [row["framesets"] * row["members"] /
                         max(1, sum(m["frames"] for m in row["unmatched"])) for row in rows]
            print(f"| {name} | {fmt(median([r['framesets'] for r in rows]), '.0f')} "
                  f"| {fmt(median([r['spread_p50_ms'] for r in rows]), '.3f')} "
                  f"| {fmt(median([r['spread_p99_ms'] for r in rows]), '.3f')} "
                  f"| {fmt(median(fractions), '.3f')} |", flush=True)
    finally:
        for proc, _ in servers:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
