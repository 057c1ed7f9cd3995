#!/usr/bin/env python3
"""How close the client's clock estimate comes to the truth, on loopback.

Starts `sk2 serve --mock 1` with --clock-offset-ms +250 and -40 (so the truth is known: both
processes read the same host clock, and the server adds its offset to every time it
reports), then runs `sk2 info SERVER --json` N times against each: every run is a new client
whose estimate rests on the first burst of clock exchanges (what a client has a few
milliseconds after connecting). With --load, an `sk2 stream` of raw depth and colour from the
same server runs meanwhile, so the server's control thread and the host share their time with
frames. Prints, per server, the median, p99 and largest |estimate - truth|, the round trip and
the error bound the client reported, and how many runs had the truth within the bound.
Figures only: nothing here passes or fails on a timing.

Usage: bench_clock.py /path/to/sk2 [--runs N] [--load]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def start_server(sk2, offset_ms, tmp):
    endpoint_file = os.path.join(tmp, f"endpoint{offset_ms}")
    proc = subprocess.Popen([sk2, "serve", "--mock", "1", "--bind", "127.0.0.1", "--no-status",
                             "--no-announce", "--endpoint-file", endpoint_file,
                             "--clock-offset-ms", str(offset_ms)],
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
    raise SystemExit(f"sk2 serve --clock-offset-ms {offset_ms} did not start")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sk2")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--load", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.runs <= 10000:
        raise SystemExit("--runs must be 1..10000")
    print(f"# sk2 info --json x {args.runs} per server, loopback"
          f"{', with a raw depth+colour stream running' if args.load else ''}")
    print("| server clock | runs | abs(err) p50 | p99 | max | rtt p50 | rtt p99 "
          "| bound p50 | bound p99 | truth within bound |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="sk2-bench-clock-") as tmp:
        for truth in (250, -40):
            proc, endpoint = start_server(args.sk2, truth, tmp)
            load = None
            if args.load:
                load = subprocess.Popen([args.sk2, "stream", endpoint, "--stream", "depth:raw",
                                         "--stream", "color:raw", "--seconds", "3600",
                                         "--no-status"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            errors, rtts, bounds, held, failed = [], [], [], 0, 0
            try:
                for _ in range(args.runs):
                    r = subprocess.run([args.sk2, "info", endpoint, "--json"],
                                       capture_output=True, text=True, timeout=30)
                    try:
                        clock = json.loads(r.stdout)["clock"]
                    except (ValueError, KeyError, TypeError):
                        clock = None
                    if not clock:
                        failed += 1
                        continue
                    miss = abs(clock["offset_ms"] - truth)
                    errors.append(miss)
                    rtts.append(clock["rtt_ms"])
                    bounds.append(clock["error_ms"])
                    held += miss <= clock["error_ms"] + 0.001  # the figures are in whole µs
            finally:
                for p in (load, proc):
                    if p:
                        p.send_signal(signal.SIGINT)
                        try:
                            p.wait(timeout=10)
                        except subprocess.TimeoutExpired:
                            p.kill()
            us = lambda v: f"{v * 1000:.0f} µs"
            print(f"| {truth:+d} ms | {len(errors)} | {us(percentile(errors, 50))} "
                  f"| {us(percentile(errors, 99))} | {us(max(errors))} "
                  f"| {us(percentile(rtts, 50))} | {us(percentile(rtts, 99))} "
                  f"| {us(percentile(bounds, 50))} | {us(percentile(bounds, 99))} "
                  f"| {held}/{len(errors)} |" + (f" ({failed} runs without an estimate)"
                                                 if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
