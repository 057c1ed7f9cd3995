#!/usr/bin/env python3
"""Server restarts and a silent network against the tools that follow a server.

Each case runs a mock server on a fixed free port, starts a client tool, kills the server
(SIGKILL: no goodbye), waits out the outage, starts a new server on the SAME port and checks
that the tool carried on:

- `sk2 stream --json`: frames before and after, exit 0 at the end of --seconds, the outage in
  the summary (outages, outage_list with frames before it);
- `sk2 record`: exit 0, `sk2 inspect` reads the file (exit 0), it holds frames of the first and
  of the restarted server (whose mock has a new device id) and lists the gap after a frame > 0;
- `sk2 view`: the HTTP API serves a depth frame captured after the restart, and view says when
  the link was lost and back;
- `sk2 stream --give-up-after 5` and `sk2 view --give-up-after 5`: with no server coming back,
  exit 3 saying they gave up;
- a silent network: a TCP proxy in this test forwards the control connection and then drops
  everything while holding the sockets open; the stream reports the loss, does not hang, and
  reports the server back once the proxy forwards again, then exits 0 on SIGINT.

Outages of 3 s and of 60 s run in parallel threads; the whole file takes about 100 s. On the
code before reconnection the 60 s cases fail (the tools exit 3 after the response timeout) and
the 3 s cases fail for want of any outage in the summary or the recording. The gateway
reconnected on its own before (every 2 s), so its fresh-frame checks passed then too; its
lost/back lines and --give-up-after did not exist.
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import cliutil as cu
from cliutil import check

SK2, TMP = cu.setup("reconnect")
FPS = "5"
lock = threading.Lock()


def locked_check(name, condition, detail=""):
    with lock:
        check(name, condition, detail)


def serve(port):
    proc, endpoint, _ = cu.start_server("--port", str(port), "--fps", FPS, wait_s=30)
    return proc, endpoint


def kill(proc):
    proc.kill()
    proc.communicate()


def wait_for(predicate, timeout_s, step_s=0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return None


def restart_after(port, server, outage_s):
    """Kills the server, waits outage_s, and starts another on the same port."""
    kill(server)
    time.sleep(outage_s)
    return serve(port)


# ---- stream ---------------------------------------------------------------------------------

def case_stream(outage_s):
    tag = f"stream, {outage_s:g} s outage"
    port = cu.free_port()
    server, endpoint = serve(port)
    seconds = 4 + outage_s + 22
    client = subprocess.Popen([SK2, "stream", endpoint, "--stream", "depth", "--json",
                               "--no-status", "--seconds", str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    server, _ = restart_after(port, server, outage_s)
    try:
        out, err = client.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        client.kill()
        out, err = client.communicate()
    kill(server)
    locked_check(f"{tag}: exits 0 at the end of --seconds", client.returncode == 0,
                 f"rc {client.returncode}: {err[-800:]}")
    try:
        summary = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        locked_check(f"{tag}: prints a JSON summary", False, out[-500:])
        return
    outages = summary.get("outage_list", [])
    locked_check(f"{tag}: the summary reports one outage", summary.get("outages") == 1 and
                 len(outages) == 1, json.dumps(summary)[:800])
    if outages:
        before = outages[0]["frames_before"]
        locked_check(f"{tag}: frames before and after the outage",
                     before > 0 and summary["frames"] > before, json.dumps(summary)[:800])
        locked_check(f"{tag}: the gap lasts at least the outage",
                     outages[0]["seconds"] >= outage_s * 0.5, json.dumps(outages))
    locked_check(f"{tag}: says the link was lost and when it was back",
                 "reconnecting" in err and "back after" in err, err[-800:])


# ---- record ---------------------------------------------------------------------------------

def case_record(outage_s):
    tag = f"record, {outage_s:g} s outage"
    port = cu.free_port()
    server, endpoint = serve(port)
    path = cu.path(f"restart-{outage_s:g}.sk2")
    seconds = 4 + outage_s + 22
    client = subprocess.Popen([SK2, "record", endpoint, "-o", path, "--streams", "depth",
                               "--no-status", "--seconds", str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    server, _ = restart_after(port, server, outage_s)
    try:
        out, err = client.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        client.kill()
        out, err = client.communicate()
    kill(server)
    locked_check(f"{tag}: exits 0", client.returncode == 0,
                 f"rc {client.returncode}: {out[-400:]} {err[-800:]}")
    r = cu.run("inspect", path, timeout=120)
    locked_check(f"{tag}: sk2 inspect reads the file", r.returncode == 0,
                 r.stdout[-600:] + r.stderr[-400:])
    gap = re.search(r"gap 0 after frame (\d+): ([\d.]+) s", r.stdout)
    frames = re.search(r"^frames\s+(\d+)", r.stdout, re.M)
    devices = re.search(r"^devices\s+(\d+)", r.stdout, re.M)
    locked_check(f"{tag}: inspect lists one gap", "outages   1" in r.stdout and gap, r.stdout)
    # The restarted mock has a new device id: frames of both servers are in the file.
    locked_check(f"{tag}: frames of the server before and after the restart",
                 gap and frames and devices and int(gap.group(1)) > 0 and
                 int(frames.group(1)) > int(gap.group(1)) and int(devices.group(1)) == 2,
                 r.stdout)
    if gap:
        locked_check(f"{tag}: the gap lasts at least the outage",
                     float(gap.group(2)) >= outage_s * 0.5, r.stdout)


# ---- view -----------------------------------------------------------------------------------

def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""
    except (urllib.error.URLError, OSError):
        return None, None, b""


def fresh_depth(base, since_us):
    """A depth frame's capture time from the gateway if one captured after since_us is
    served, else None."""
    status, _, body = http_get(base + "/api/devices")
    if status != 200:
        return None
    for device in json.loads(body).get("devices", []):
        status, headers, _ = http_get(f"{base}/api/devices/{device['key']}/depth/latest.png")
        if status == 200:
            captured = int(headers.get("X-Sk2-Capture-Time-Us", "0"))
            if captured > since_us:
                return captured
    return None


def case_view(outage_s):
    tag = f"view, {outage_s:g} s outage"
    port = cu.free_port()
    server, endpoint = serve(port)
    http_port = cu.free_port()
    base = f"http://127.0.0.1:{http_port}"
    view = subprocess.Popen([SK2, "view", endpoint, "--http", f"127.0.0.1:{http_port}",
                             "--no-browse", "--no-status"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = wait_for(lambda: fresh_depth(base, 0), 30)
    locked_check(f"{tag}: the gateway serves a frame before the outage", first, "none in 30 s")
    kill(server)
    time.sleep(outage_s)
    restarted_us = int(time.time() * 1e6)
    server, _ = serve(port)
    fresh = wait_for(lambda: fresh_depth(base, restarted_us), 40)
    locked_check(f"{tag}: the gateway serves a frame captured after the restart", fresh,
                 "none within 40 s of the restart")
    rc, _, err = cu.stop(view)
    kill(server)
    locked_check(f"{tag}: sk2 view exits 0 on SIGINT", rc == 0, f"rc {rc}: {err[-500:]}")
    locked_check(f"{tag}: says the link was lost and when it was back",
                 "reconnecting" in err and "back after" in err, err[-800:])


def case_view_give_up():
    tag = "view --give-up-after 5"
    server, endpoint = serve(cu.free_port())
    http_port = cu.free_port()
    base = f"http://127.0.0.1:{http_port}"
    view = subprocess.Popen([SK2, "view", endpoint, "--http", f"127.0.0.1:{http_port}",
                             "--no-browse", "--no-status", "--give-up-after", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    locked_check(f"{tag}: serves a frame first", wait_for(lambda: fresh_depth(base, 0), 30),
                 "none in 30 s")
    kill(server)
    try:
        _, err = view.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        view.kill()
        _, err = view.communicate()
    locked_check(f"{tag}: exits 3 once the server stayed away", view.returncode == 3,
                 f"rc {view.returncode}: {err[-500:]}")
    locked_check(f"{tag}: says it gave up", "gave up" in err, err[-500:])


# ---- give up --------------------------------------------------------------------------------

def case_give_up():
    tag = "stream --give-up-after 5"
    server, endpoint = serve(cu.free_port())
    client = subprocess.Popen([SK2, "stream", endpoint, "--stream", "depth", "--no-status",
                               "--give-up-after", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    kill(server)
    try:
        _, err = client.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        client.kill()
        _, err = client.communicate()
    locked_check(f"{tag}: exits 3 when the server stays away", client.returncode == 3,
                 f"rc {client.returncode}: {err[-500:]}")
    locked_check(f"{tag}: says it gave up", "gave up" in err, err[-500:])
    r = cu.run("stream", endpoint, "--give-up-after", "0.01")
    locked_check("--give-up-after out of range is a usage error naming the range",
                 r.returncode == 2 and "--give-up-after" in r.stderr, r.stderr)


# ---- silent network -------------------------------------------------------------------------

class SilentProxy:
    """Forwards TCP from a local port to a target; paused, it reads and drops what arrives in
    both directions while keeping every connection open, as a path losing all packets
    would look to both ends (no reset, no FIN)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.is_forwarding = True
        self.is_stopping = False
        self.pairs = {}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.is_stopping:
            sockets = [self.listener, *self.pairs.keys()]
            readable, _, _ = select.select(sockets, [], [], 0.1)
            for s in readable:
                if s is self.listener:
                    client, _ = self.listener.accept()
                    try:
                        upstream = socket.create_connection(("127.0.0.1", self.target_port))
                    except OSError:
                        client.close()
                        continue
                    self.pairs[client] = upstream
                    self.pairs[upstream] = client
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    peer = self.pairs.pop(s, None)
                    self.pairs.pop(peer, None)
                    for x in (s, peer):
                        if x:
                            x.close()
                    continue
                if self.is_forwarding:
                    try:
                        self.pairs[s].sendall(data)
                    except OSError:
                        pass
        for s in [self.listener, *self.pairs.keys()]:
            s.close()

    def stop(self):
        self.is_stopping = True
        self.thread.join()


def read_stderr_lines(proc, sink):
    for line in proc.stderr:
        sink.append((time.monotonic(), line))


def case_silent():
    tag = "silent network"
    port = cu.free_port()
    server, endpoint = serve(port)
    proxy = SilentProxy(port)
    client = subprocess.Popen([SK2, "stream", f"tcp://127.0.0.1:{proxy.port}", "--stream",
                               "depth", "--no-status", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=read_stderr_lines, args=(client, lines), daemon=True)
    reader.start()
    time.sleep(4)
    proxy.is_forwarding = False
    silent_at = time.monotonic()
    lost = wait_for(lambda: next((t for t, l in lines if "reconnecting" in l), None), 40)
    locked_check(f"{tag}: the loss is reported", lost, "".join(l for _, l in lines)[-800:])
    if lost:
        with lock:
            print(f"  {tag}: loss noticed {lost - silent_at:.1f} s after the path went silent",
                  flush=True)
    time.sleep(3)
    proxy.is_forwarding = True
    back_from = time.monotonic()
    back = wait_for(lambda: next((t for t, l in lines if "back after" in l), None), 40)
    locked_check(f"{tag}: the server is back once the path forwards again", back,
                 "".join(l for _, l in lines)[-800:])
    if back:
        with lock:
            print(f"  {tag}: back {back - back_from:.1f} s after the path returned", flush=True)
    client.send_signal(signal.SIGINT)
    try:
        out = client.stdout.read()
        client.wait(timeout=20)
    except subprocess.TimeoutExpired:
        client.kill()
        out = ""
    reader.join(timeout=5)
    proxy.stop()
    kill(server)
    locked_check(f"{tag}: exits 0 on SIGINT, no hang", client.returncode == 0,
                 f"rc {client.returncode}: {''.join(l for _, l in lines)[-500:]}")
    try:
        summary = json.loads(out.strip().splitlines()[-1])
        ok = summary["outages"] >= 1 and summary["frames"] > 0
    except (ValueError, IndexError, KeyError):
        ok, summary = False, out
    locked_check(f"{tag}: the summary counts the outage", ok, str(summary)[:500])


def main():
    cases = [(case_stream, 60), (case_record, 60), (case_view, 60), (case_stream, 3),
             (case_record, 3), (case_view, 3), (case_give_up,), (case_view_give_up,),
             (case_silent,)]
    threads = []
    for case in cases:
        fn, *args = case

        def run(fn=fn, args=args):
            try:
                fn(*args)
            except Exception as e:  # a broken case is a failure, not a hung test
                locked_check(f"{fn.__name__}{tuple(args)} ran", False, repr(e))

        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
        time.sleep(0.5)  # start servers one at a time
    for t in threads:
        t.join()
    sys.exit(cu.summary())


if __name__ == "__main__":
    main()
