"""Foxglove WebSocket benchmark: the gateway's CPU per forwarded depth frame with 0, 1 and 4
Foxglove clients subscribed to a device's depth Image channel.

As bench_web.py: a mock server (`sk2 serve`) and the gateway (`sk2 view ENDPOINT`) run as
separate processes, so /proc/PID/stat of the gateway counts the gateway alone (its client
thread receives and decodes every depth frame, clients or not; its web thread encodes each
frame once as a CDR sensor_msgs/msg/Image and writes it to every subscriber). Each client is a
thread with a plain socket (bench/ws_client.py, subprotocol foxglove.websocket.v1) that
subscribes to /sk2/<token>/depth/image_raw and reads whole messages. After a warm-up, each run
measures for --seconds; the table gives medians over --runs runs. Prints a Markdown table;
never fails on figures.

--channel picks another depth channel: compressedDepth (a PNG per frame) or points (a
PointCloud2 per frame), to see what those cost.

usage: bench_foxglove.py SK2_BINARY [--runs N] [--seconds S] [--fps F] [--clients N ...]
                         [--channel image_raw|compressedDepth|points]
"""
import argparse
import json
import os
import signal
import subprocess
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_web import api, cpu_seconds, start  # noqa: E402
from ws_client import WsClient  # noqa: E402


class Client(threading.Thread):
    def __init__(self, port, suffix):
        super().__init__(daemon=True)
        self.suffix = suffix
        self.ws = WsClient("127.0.0.1", port, path="/", protocol="foxglove.websocket.v1")
        self.frames = 0
        self.bytes = 0
        self.stop = False
        self.subscribed = threading.Event()

    def run(self):
        try:
            while not self.stop:
                opcode, payload = self.ws.recv()
                if opcode == 1 and not self.subscribed.is_set():
                    msg = json.loads(payload)
                    for ch in msg.get("channels", []) if msg.get("op") == "advertise" else []:
                        if ch["topic"].endswith(self.suffix):
                            self.ws.send_json({"op": "subscribe",
                                               "subscriptions": [{"id": 1, "channelId": ch["id"]}]})
                            self.subscribed.set()
                elif opcode == 2 and payload[:1] == b"\x01":
                    self.frames += 1
                    self.bytes += len(payload)
        except (OSError, ConnectionError):
            pass


def run_once(sk2, fps, clients, seconds, suffix):
    server, endpoint = start([sk2, "serve", "--mock", "1", "--fps", str(fps), "--no-announce",
                              "--no-status"], r"control endpoint (tcp://\S+)")
    view, url = start([sk2, "view", endpoint, "--http", "127.0.0.1:0", "--no-status"],
                      r"web viewer (http://\S+)")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    workers = []
    try:
        for _ in range(100):
            if api(port, "/api/devices")["devices"]:
                break
            time.sleep(0.1)
        workers = [Client(port, suffix) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.subscribed.wait(10)
        time.sleep(1.0)  # warm-up
        f0 = [w.frames for w in workers]
        g0 = api(port, "/api/stats")["gateway"]
        c0, t0 = cpu_seconds(view.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(view.pid), time.monotonic()
        g1 = api(port, "/api/stats")["gateway"]
        f1 = [w.frames for w in workers]
        span = t1 - t0
        received = g1["frames_received"] - g0["frames_received"]
        cpu = c1 - c0
        per_client = [(b - a) / span for a, b in zip(f0, f1)]
        return {
            "received_fps": received / span,
            "fps_client": statistics.median(per_client) if per_client else 0.0,
            "cpu_pct": 100 * cpu / span,
            "us_per_frame": 1e6 * cpu / received if received else float("nan"),
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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--clients", type=int, nargs="+", default=[0, 1, 4])
    parser.add_argument("--channel", choices=["image_raw", "compressedDepth", "points"],
                        default="image_raw")
    args = parser.parse_args()
    suffix = {"image_raw": "/depth/image_raw", "compressedDepth": "/image_raw/compressedDepth",
              "points": "/depth/points"}[args.channel]
    print(f"sk2 view gateway, mock depth 512x424 at {args.fps:g} fps (sk2d from the server), "
          f"Foxglove clients on *{suffix}, {args.runs} runs of {args.seconds:g} s, medians")
    print()
    print("| Foxglove clients | depth fps in | fps/client | gateway CPU % | "
          "µs gateway CPU per depth frame |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for clients in args.clients:
        runs = [run_once(args.sk2, args.fps, clients, args.seconds, suffix)
                for _ in range(args.runs)]

        def med(key):
            return statistics.median(r[key] for r in runs)

        print(f"| {clients} | {med('received_fps'):.1f} | {med('fps_client'):.1f} | "
              f"{med('cpu_pct'):.1f} | {med('us_per_frame'):.0f} |", flush=True)


if __name__ == "__main__":
    main()
