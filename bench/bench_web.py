"""Web gateway benchmark: frames per second delivered to 1 and to 10 WebSocket clients, and
the gateway's CPU per frame.

A mock server (`sk2 serve`) and the gateway (`sk2 view ENDPOINT`) run as separate processes,
so /proc/PID/stat of the gateway counts the gateway alone: its client thread (receive + sk2d
decode of every frame) and its web thread (WebSocket writes). Each client is a thread with a
plain socket (bench/ws_client.py) that subscribes to the device's depth stream and reads
whole messages. After a warm-up, each run measures for --seconds; the table gives medians over
--runs runs. Prints a Markdown table; never fails on figures.

usage: bench_web.py SK2_BINARY [--runs N] [--seconds S] [--fps F ...] [--clients N ...]
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ws_client import WsClient, parse_frame  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def start(args, pattern):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(pattern, line or "")
        if m:
            return proc, m.group(1)
        if not line:
            break
    proc.kill()
    raise RuntimeError(f"{args[1]} did not start")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def api(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.load(r)


class Client(threading.Thread):
    def __init__(self, port, device):
        super().__init__(daemon=True)
        self.ws = WsClient("127.0.0.1", port)
        self.ws.send_json({"type": "subscribe", "streams": [{"device": device, "kind": "depth"}]})
        self.frames = 0
        self.skipped = 0
        self.last = None
        self.stop = False

    def run(self):
        try:
            while not self.stop:
                opcode, payload = self.ws.recv()
                if opcode != 2:
                    continue
                seq = parse_frame(payload)["sequence"]
                if self.last is not None and seq > self.last + 1:
                    self.skipped += seq - self.last - 1
                self.last = seq
                self.frames += 1
        except (OSError, ConnectionError):
            pass


def run_once(sk2, fps, clients, seconds):
    server, endpoint = start([sk2, "serve", "--mock", "1", "--fps", str(fps), "--no-announce",
                              "--no-status"], r"control endpoint (tcp://\S+)")
    view, url = start([sk2, "view", endpoint, "--http", "127.0.0.1:0", "--no-status"],
                      r"web viewer (http://\S+)")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    workers = []
    try:
        device = None
        for _ in range(100):
            devices = api(port, "/api/devices")["devices"]
            if devices:
                device = devices[0]["key"]
                break
            time.sleep(0.1)
        workers = [Client(port, device) for _ in range(clients)]
        for w in workers:
            w.start()
        time.sleep(1.0)  # warm-up
        f0 = [w.frames for w in workers]
        s0 = [w.skipped for w in workers]
        g0 = api(port, "/api/stats")["gateway"]
        c0, t0 = cpu_seconds(view.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(view.pid), time.monotonic()
        g1 = api(port, "/api/stats")["gateway"]
        f1 = [w.frames for w in workers]
        s1 = [w.skipped for w in workers]
        span = t1 - t0
        per_client = [(b - a) / span for a, b in zip(f0, f1)]
        received = g1["frames_received"] - g0["frames_received"]
        sent = g1["frames_sent"] - g0["frames_sent"]
        cpu = c1 - c0
        return {
            "fps_client": statistics.median(per_client),
            "fps_min": min(per_client),
            "fps_total": sum(per_client),
            "skipped": sum(b - a for a, b in zip(s0, s1)),
            "received_fps": received / span,
            "cpu_pct": 100 * cpu / span,
            "us_per_received": 1e6 * cpu / received if received else float("nan"),
            "us_per_sent": 1e6 * cpu / sent if sent else float("nan"),
        }
    finally:
        for w in workers:
            w.stop = True
            w.ws.close()
        for proc in (view, server):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sk2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=float, nargs="+", default=[30, 100])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    print(f"sk2 view gateway, depth 512x424 (sk2d from the server, raw 16-bit to the clients), "
          f"{args.runs} runs of {args.seconds:g} s, medians")
    print()
    print("| device fps | clients | fps/client | min fps/client | total fps | skipped | "
          "gateway CPU % | µs CPU/frame received | µs CPU/frame sent |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fps in args.fps:
        for clients in args.clients:
            runs = [run_once(args.sk2, fps, clients, args.seconds) for _ in range(args.runs)]

            def med(key):
                return statistics.median(r[key] for r in runs)

            print(f"| {fps:g} | {clients} | {med('fps_client'):.1f} | {med('fps_min'):.1f} | "
                  f"{med('fps_total'):.0f} | {med('skipped'):.0f} | {med('cpu_pct'):.1f} | "
                  f"{med('us_per_received'):.0f} | {med('us_per_sent'):.0f} |", flush=True)


if __name__ == "__main__":
    main()
