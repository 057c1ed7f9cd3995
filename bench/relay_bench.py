#!/usr/bin/python3
"""What a relay adds: latency (capture to decoded, p50/p99) and CPU per frame per hop, for the
same depth stream received straight from the server, through one relay and through two, all
three clients at once (so they share the machine's load), at 30 fps and as fast as the server
can produce. Prints a Markdown table; never passes or fails on a timing.

For each rate, on loopback (ports chosen by the OS):
- `sk2 serve --mock 1 --fps F --color-size 64x48`, `sk2 relay SERVER`, `sk2 relay RELAY1`;
- three `sk2 stream --stream depth:rvl --seconds S --json`: to the server, to relay 1 and to
  relay 2; their latency_p50_ms / latency_p99_ms (all processes on one host, one clock);
- each relay's CPU seconds (utime + stime from /proc) over the run, divided by the frames it
  forwarded (its `stats` reply): microseconds of CPU per frame for that hop.

Usage: bench/relay_bench.py /path/to/sk2 [--seconds S]
Bounded: every process has a timeout and is stopped by PID.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import zmq

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_file(path, proc, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        time.sleep(0.05)
    raise RuntimeError(f"no endpoint in {path}")


def stats(endpoint):
    with zmq.Context() as ctx:
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        s.send(b"\x05")
        reply = s.recv_multipart() if s.poll(5000) else None
        s.close()
    return json.loads(reply[1]) if reply and reply[0] == b"\x06" else {}


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(sk2, fps, seconds, tmp):
    procs = []
    try:
        server_file = os.path.join(tmp, f"server-{fps}")
        server = subprocess.Popen([sk2, "serve", "--mock", "1", "--fps", str(fps),
                                   "--color-size", "64x48", "--bind", "127.0.0.1",
                                   "--no-announce", "--no-status", "--endpoint-file",
                                   server_file], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        procs.append(server)
        endpoints = [wait_file(server_file, server)]
        relays = []
        for hop in (1, 2):
            relay_file = os.path.join(tmp, f"relay{hop}-{fps}")
            relay = subprocess.Popen([sk2, "relay", endpoints[-1], "--no-announce", "-q",
                                      "--endpoint-file", relay_file],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(relay)
            relays.append(relay)
            endpoints.append(wait_file(relay_file, relay))
        time.sleep(1.5)  # the relays learn the device (one `me` a second)
        before = [cpu_s(r.pid) for r in relays]
        forwarded_before = [stats(e).get("relay", {}).get("frames_forwarded", 0)
                            for e in endpoints[1:]]
        clients = [subprocess.Popen([sk2, "stream", e, "--stream", "depth:rvl", "--seconds",
                                     str(seconds), "--no-status", "--json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                   for e in endpoints]
        summaries = []
        for c in clients:
            out, _ = c.communicate(timeout=seconds + 60)
            summaries.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else {})
        after = [cpu_s(r.pid) for r in relays]
        forwarded = [stats(e).get("relay", {}).get("frames_forwarded", 0) - b
                     for e, b in zip(endpoints[1:], forwarded_before)]
        rows = []
        for hops, summary in enumerate(summaries):
            stream = (summary.get("streams") or [{}])[0]
            cpu_us = None
            if hops > 0 and forwarded[hops - 1] > 0:
                cpu_us = (after[hops - 1] - before[hops - 1]) * 1e6 / forwarded[hops - 1]
            rows.append((hops, stream.get("fps"), stream.get("latency_p50_ms"),
                         stream.get("latency_p99_ms"), stream.get("gaps"), cpu_us))
        return rows
    finally:
        for p in reversed(procs):
            stop(p)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sk2")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sk2-relay-bench-")
    try:
        print("| rate | path | fps received | latency p50 ms | latency p99 ms | gaps "
              "| relay CPU µs per frame (this hop) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for fps, label in ((30, "30 fps"), (0, "fastest")):
            for hops, got, p50, p99, gaps, cpu_us in run(args.sk2, fps, args.seconds, tmp):
                path = ["direct", "1 relay", "2 relays"][hops]
                fmt = lambda v, f: "-" if v is None else f.format(v)
                print(f"| {label} | {path} | {fmt(got, '{:.1f}')} | {fmt(p50, '{:.2f}')} "
                      f"| {fmt(p99, '{:.2f}')} | {fmt(gaps, '{}')} | {fmt(cpu_us, '{:.0f}')} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
