#!/usr/bin/env python3
"""What CURVE costs: the same 512x424 depth stream from one mock device, plain and with
--secure, side by side. Prints a Markdown table; never passes or fails on a timing.

For each mode, on loopback (ports chosen by the OS):
- throughput: `sk2 serve --mock 1 --fps 0` (as fast as the server can) and
  `sk2 stream --frames N` on the version-1 depth endpoint (depth12) and on the streams
  endpoint (rvl): frames per second received;
- cost at the camera's rate: `--fps 30` for --seconds S, CPU seconds used by the server and
  by the client (from /proc), per second of streaming.

Usage: bench/bench_curve.py /path/to/sk2 [--frames N] [--seconds S]
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

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def serve(sk2, tmp, fps, secure):
    ep = os.path.join(tmp, f"ep-{time.monotonic_ns()}")
    args = [sk2, "serve", "--mock", "1", "--fps", str(fps), "--bind", "127.0.0.1", "--no-status",
            "--no-announce", "--endpoint-file", ep]
    if secure:
        args += ["--secure", "--keys", os.path.join(tmp, "server"), "--allow",
                 os.path.join(tmp, "allow")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if os.path.exists(ep) and open(ep).read().strip():
            return proc, open(ep).read().strip()
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("sk2 serve did not start")


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def client_args(tmp, secure):
    if not secure:
        return []
    return ["--keys", os.path.join(tmp, "client"), "--server-key",
            os.path.join(tmp, "server", "server.key")]


def throughput(sk2, tmp, secure, stream, frames):
    proc, endpoint = serve(sk2, tmp, 0, secure)
    try:
        args = [sk2, "stream", endpoint, "--frames", str(frames), "--json", "--timeout", "20000",
                *client_args(tmp, secure)]
        if stream:
            args += ["--stream", stream]
        out = subprocess.run(args, capture_output=True, text=True, timeout=300).stdout
        summary = json.loads(out.strip().splitlines()[-1])
        return summary["frames"] / summary["seconds"]
    finally:
        stop(proc)


def cpu_at_30(sk2, tmp, secure, seconds):
    proc, endpoint = serve(sk2, tmp, 30, secure)
    try:
        client = subprocess.Popen([sk2, "stream", endpoint, "--seconds", str(seconds), "-q",
                                   "--timeout", "20000", *client_args(tmp, secure)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server_before = cpu_s(proc.pid)
        client_cpu = 0.0
        start = time.monotonic()
        while client.poll() is None and time.monotonic() - start < seconds + 60:
            try:
                client_cpu = cpu_s(client.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        server_cpu = cpu_s(proc.pid) - server_before
        client.wait(timeout=60)
        return server_cpu / elapsed, client_cpu / elapsed
    finally:
        stop(proc)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sk2")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=10.0)
    opts = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sk2-bench-curve-")
    try:
        for name in ("server", "client"):
            subprocess.run([opts.sk2, "keygen", os.path.join(tmp, name), "--name", name, "-q"],
                           check=True, stdout=subprocess.DEVNULL)
        os.makedirs(os.path.join(tmp, "allow"))
        shutil.copy(os.path.join(tmp, "client", "client.key"), os.path.join(tmp, "allow"))
        print(f"`bench/bench_curve.py {opts.sk2} --frames {opts.frames} --seconds "
              f"{opts.seconds:g}`, {os.cpu_count()} cores\n")
        print("| measure | plain | --secure (CURVE) |")
        print("| --- | --- | --- |")
        for label, stream in (("v1 depth (depth12), frames/s at --fps 0", None),
                              ("streams depth:rvl, frames/s at --fps 0", "depth:rvl")):
            plain = throughput(opts.sk2, tmp, False, stream, opts.frames)
            secure = throughput(opts.sk2, tmp, True, stream, opts.frames)
            print(f"| {label} | {plain:.0f} | {secure:.0f} |")
        plain = cpu_at_30(opts.sk2, tmp, False, opts.seconds)
        secure = cpu_at_30(opts.sk2, tmp, True, opts.seconds)
        print(f"| server CPU at 30 fps, v1 depth (CPU s per s) | {plain[0]:.3f} | "
              f"{secure[0]:.3f} |")
        print(f"| client CPU at 30 fps, v1 depth (CPU s per s) | {plain[1]:.3f} | "
              f"{secure[1]:.3f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
