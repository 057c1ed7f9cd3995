#!/usr/bin/env python3
"""The gateway under a connection flood (issue 12): `sk2 serve --mock 1 --http 127.0.0.1:PORT`.

1. 1000 half-open connections (half say nothing, half send part of a request head) are opened
   and held by this process; while they are held, 50 normal requests to /api/devices and
   /api/stats, each on a new connection, are answered 200 with the right body within a generous
   deadline (10 s each). The gateway holds exactly the cap (--http-max-connections, default
   256) and never more: its own count, http_connections in /api/stats. Then the
   same with an attacker that keeps its 1000 open: every connection the server closes is
   opened again at once (at most 500 a second, to keep the test bounded).
2. Slowloris: connections that send a request head one byte per second are closed by the
   server once the head timeout (5 s) has passed: within 5 s + a generous margin.
3. With every connection busy (WebSockets up to a cap of 16), a new connection is answered
   503 and closed, and is served again once a WebSocket goes.

Latency is never asserted (the machine is shared): p50 and p99 of the normal requests without
and with the flood are printed, for docs/reliability.md.

Usage: test_http_flood.py /path/to/sk2 [--measure-only]
"""
import base64
import http.client
import json
import os
import resource
import select
import selectors
import socket
import sys
import threading
import time

import cliutil as cu

SK2, TMP = cu.setup("http-flood")
check = cu.check
HALF_OPEN = 1000
NORMAL = 50
CAP = 256
HEAD_TIMEOUT_S = 5.0
DEADLINE_S = 10.0
MEASURE_ONLY = "--measure-only" in sys.argv
if "--normal" in sys.argv:  # for measuring old builds, where each request may take 5 s
    NORMAL = int(sys.argv[sys.argv.index("--normal") + 1])
PARTIAL_HEAD = b"GET /api/devices HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def raise_file_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def server_side_established(port, pending=None):
    """Connections whose local end is the gateway's port, ESTABLISHED (state 01) and accepted
    (an inode: the ones still in the kernel's accept queue have none), from /proc/net/tcp{,6}:
    the server's own sockets, whatever the clients hold. With a list `pending`, appends the
    count of those still waiting in the accept queue."""
    count = waiting = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    if local_port == port and fields[3] == "01":
                        if fields[9] != "0":
                            count += 1
                        else:
                            waiting += 1
        except OSError:
            pass
    if pending is not None:
        pending.append(waiting)
    return count


def get(port, path, timeout=DEADLINE_S):
    """One request on a new connection: (status, body bytes, seconds taken)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.monotonic() - start
    finally:
        conn.close()


def normal_requests(port, device_id, label):
    """NORMAL requests alternating /api/devices and /api/stats: checks each, returns the
    latencies in ms of those that were answered."""
    latencies, failures = [], []
    for i in range(NORMAL):
        path = "/api/devices" if i % 2 == 0 else "/api/stats"
        try:
            status, body, took = get(port, path)
            doc = json.loads(body)
            ok = status == 200 and (
                any(d.get("id") == device_id for d in doc.get("devices", []))
                if path == "/api/devices" else isinstance(doc.get("gateway"), dict))
            if ok:
                latencies.append(took * 1000.0)
            else:
                failures.append(f"{path}: {status} {body[:80]!r}")
        except (OSError, ValueError, http.client.HTTPException) as e:
            failures.append(f"{path}: {e!r}")
    if not MEASURE_ONLY:
        check(f"{label}: {NORMAL} normal requests each answered correctly within "
              f"{DEADLINE_S:.0f} s", not failures and len(latencies) == NORMAL,
              f"{len(failures)} failed: {failures[:3]}")
    return latencies


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]


def report(label, latencies):
    print(f"MEASURE {label}: n={len(latencies)} p50={percentile(latencies, 50):.1f} ms "
          f"p99={percentile(latencies, 99):.1f} ms max={max(latencies or [0]):.1f} ms",
          flush=True)


def open_half_open(port, count):
    """count connections: even ones send nothing, odd ones an unfinished request head."""
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        if i % 2:
            s.sendall(PARTIAL_HEAD)
        s.setblocking(False)
        socks.append(s)
    return socks


class Attacker(threading.Thread):
    """Keeps `count` half-open connections open from its side: each one the server closes is
    opened again, at most max_per_s a second."""

    def __init__(self, port, count, max_per_s=500):
        super().__init__(daemon=True)
        self.port, self.count, self.max_per_s = port, count, max_per_s
        self.selector = selectors.DefaultSelector()  # epoll: select() stops at fd 1024
        self.ready = threading.Event()
        self.stopping = False
        self.is_paused = False
        self.reopened = 0
        self.pending = []

    def open_one(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", self.port))
            if i % 2:
                s.sendall(PARTIAL_HEAD)
        except OSError:
            s.close()
            self.pending.append(i)
            return
        s.setblocking(False)
        self.selector.register(s, selectors.EVENT_READ, i)

    def run(self):
        for i in range(self.count):
            self.open_one(i)
        self.ready.set()
        while not self.stopping:
            for key, _ in self.selector.select(timeout=0.1):
                try:
                    data = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(key.fileobj)
                    key.fileobj.close()
                    self.pending.append(key.data)
            for _ in range(0 if self.is_paused else min(len(self.pending), self.max_per_s // 10)):
                self.open_one(self.pending.pop(0))
                self.reopened += 1

    def held(self):
        return len(self.selector.get_map())

    def stop(self):
        self.stopping = True
        self.join(timeout=10)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


def wait_ready(port, timeout=30):
    """Waits for the gateway to list a device; returns its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body, _ = get(port, "/api/devices", timeout=2)
            devices = json.loads(body).get("devices", [])
            if status == 200 and devices:
                return devices[0]["id"]
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    return None


def is_closed_by_peer(s):
    """True once the server has closed (EOF or reset) this socket's connection."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        return s.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except BlockingIOError:
        return False


def ws_open(port):
    """A WebSocket handshake on /ws (protocol sk2-view); returns the socket, or None if the
    answer is not 101."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sk2-view\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        s.close()
        return None
    return s


def flood_phase():
    port = cu.free_port()
    proc, _, _ = cu.start_server("--mock", "1", "--fps", "10", "--http", f"127.0.0.1:{port}")
    try:
        device_id = wait_ready(port)
        check("the gateway lists the mock device", device_id is not None)
        if device_id is None:
            return
        report("no flood", normal_requests(port, device_id, "no flood"))

        t0 = time.monotonic()
        socks = open_half_open(port, HALF_OPEN)
        print(f"opened {len(socks)} half-open connections in {time.monotonic() - t0:.2f} s",
              flush=True)
        peak = server_side_established(port)
        # The gateway's own count of the connections it holds (http_connections in /api/stats,
        # an atomic that s_admit keeps at or below the cap: it closes the oldest before it
        # adopts a newcomer). With 1000 open it is at the cap, less the one place the test's
        # own last request left free when it closed (the half-open clients never reconnect),
        # until the head timeout (5 s) closes the silent ones; it never passes the cap.
        reached = gateway_counters(port, lambda c: c.get("http_connections", 0) >= CAP - 1,
                                   timeout=HEAD_TIMEOUT_S - 1)
        flooded = normal_requests(port, device_id, f"{HALF_OPEN} half-open connections held")
        report(f"{HALF_OPEN} half-open held", flooded)
        samples = [reached.get("http_connections")]
        for _ in range(5):
            samples.append(gateway_counters(port, lambda c: True).get("http_connections"))
            time.sleep(0.2)
        print(f"server-side ESTABLISHED right after the burst {peak} (/proc/net/tcp); the "
              f"gateway's http_connections {samples}", flush=True)
        if not MEASURE_ONLY:
            check(f"the gateway holds {CAP} connections (less the test's own closed request) "
                  f"once {HALF_OPEN} are open", samples[0] in (CAP - 1, CAP),
                  f"samples {samples}")
            check(f"the gateway never holds more than {CAP} connections while {HALF_OPEN} "
                  f"are open", all(isinstance(n, int) and n <= CAP for n in samples),
                  f"samples {samples}")
            evicted = sum(1 for s in socks if is_closed_by_peer(s))
            check("the server closed the oldest half-open connections to make room",
                  evicted >= HALF_OPEN - CAP, f"{evicted} of {HALF_OPEN} closed")
        for s in socks:
            s.close()

        attacker = Attacker(port, HALF_OPEN)
        attacker.start()
        attacker.ready.wait(60)
        time.sleep(1.0)
        held_before = attacker.held()
        churned = normal_requests(port, device_id,
                                  f"an attacker reopening every connection closed (500/s)")
        report(f"{HALF_OPEN} half-open, reopened when closed", churned)
        # The gateway's own count while the attacker reopens what it closes: never above the
        # cap, and at the cap (the attacker keeps more than the cap open).
        samples = [gateway_counters(port, lambda c: True).get("http_connections")
                   for _ in range(3)]
        samples.append(gateway_counters(port, lambda c: c.get("http_connections") == CAP,
                                        timeout=10).get("http_connections"))
        print(f"attacker: {held_before} open before, {attacker.held()} after, "
              f"{attacker.reopened} reopened; the gateway's http_connections {samples}",
              flush=True)
        attacker.stop()
        if not MEASURE_ONLY:
            check(f"the gateway holds at most {CAP} connections, and {CAP} exactly, while an "
                  f"attacker reopens what it closes",
                  all(isinstance(n, int) and n <= CAP for n in samples) and samples[-1] == CAP,
                  f"samples {samples}")
    finally:
        code, _, err = cu.stop(proc)
        if not MEASURE_ONLY:
            check("sk2 serve exits 0 after the flood", code == 0, err[-500:])


def gateway_counters(port, done, timeout=15):
    """/api/stats' gateway counters, polled until done(counters) holds (the page's stats are
    refreshed once a second) or the timeout passes; returns the last counters seen."""
    deadline = time.monotonic() + timeout
    counters = {}
    while time.monotonic() < deadline:
        status, body, _ = get(port, "/api/stats")
        if status == 200:
            counters = json.loads(body).get("gateway", {})
            if done(counters):
                break
        time.sleep(0.2)
    return counters


def slowloris_phase():
    port = cu.free_port()
    proc, _, _ = cu.start_server("--mock", "1", "--fps", "10", "--http", f"127.0.0.1:{port}")
    try:
        device_id = wait_ready(port)
        head = b"GET /api/devices HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        start = time.monotonic()
        closed_after = [None] * len(socks)
        margin_s = 10.0
        i = 0
        while time.monotonic() - start < HEAD_TIMEOUT_S + margin_s and None in closed_after:
            for n, s in enumerate(socks):
                if closed_after[n] is not None:
                    continue
                try:
                    s.send(head[i % len(head):i % len(head) + 1])
                    s.setblocking(False)
                    if is_closed_by_peer(s):
                        closed_after[n] = time.monotonic() - start
                    s.setblocking(True)
                except OSError:
                    closed_after[n] = time.monotonic() - start
            i += 1
            time.sleep(1.0)
        print(f"slowloris connections closed after (s): {closed_after}", flush=True)
        check(f"slowloris connections (1 byte/s) are closed within the {HEAD_TIMEOUT_S:.0f} s "
              f"head timeout + {margin_s:.0f} s", None not in closed_after, f"{closed_after}")
        status, body, _ = get(port, "/api/devices")
        check("the gateway still answers after the slowloris connections",
              status == 200 and device_id.encode() in body, f"{status}")
        counters = gateway_counters(port, lambda c: c.get("http_timed_out", 0) >= 5)
        check("/api/stats counts the slowloris connections as timed out",
              counters.get("http_timed_out", 0) >= 5,
              f"{counters}")
        for s in socks:
            s.close()
    finally:
        cu.stop(proc)


def busy_phase():
    """Every connection a WebSocket, at a cap of 16: the 17th connection gets 503."""
    port = cu.free_port()
    proc, _, _ = cu.start_server("--mock", "1", "--fps", "10", "--http", f"127.0.0.1:{port}",
                                 "--http-max-connections", "16")
    try:
        device_id = wait_ready(port)
        sockets = [ws_open(port) for _ in range(16)]
        check("16 WebSockets open at a cap of 16", all(sockets), f"{sockets.count(None)} refused")
        status, body, _ = get(port, "/api/devices")
        check("a 17th connection is answered 503 (every connection is busy)",
              status == 503 and b"too many connections" in body, f"{status} {body[:80]!r}")
        sockets.pop().close()
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline and status != 200:
            status, body, _ = get(port, "/api/devices")
            time.sleep(0.05)
        check("once a WebSocket has gone, a new request is served",
              status == 200 and device_id.encode() in body, f"{status}")
        counters = gateway_counters(port, lambda c: c.get("http_refused", 0) >= 1)
        check("/api/stats counts the connection refused with 503 and the 15 WebSockets open",
              counters.get("http_refused", 0) >= 1 and counters.get("websockets") == 15 and
              counters.get("http_connections", 0) >= 15, f"{counters}")
        for s in sockets:
            if s:
                s.close()
    finally:
        cu.stop(proc)


def body_phase():
    """Requests that declare a body (the gateway serves none): a GET after a kept-alive answer
    with a Content-Length whose body never comes made libwebsockets spin on the web thread, so
    that nobody else was answered (found by fuzz_http). Now each is answered 400 or 405 and its
    connection closed, and everyone else is served."""
    port = cu.free_port()
    proc, _, _ = cu.start_server("--mock", "1", "--fps", "10", "--http", f"127.0.0.1:{port}")
    try:
        device_id = wait_ready(port)
        attacks = [b"GET /a HTTP/1.1\r\n\r\nGET /s HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                   b"GET /api/devices HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc",
                   b"POST /api/devices HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe",
                   b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe"]
        for attack in attacks:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(attack)
            answer, closed = b"", False
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    closed = True
                    break
                answer += chunk
            s.close()
            last = answer.split(b"HTTP/1.1 ")[-1][:3]
            check(f"a request with a body is refused and its connection closed: {attack[:40]!r}",
                  closed and last in (b"400", b"405"), f"closed {closed}, {answer[-300:]!r}")
            try:
                status, body, elapsed = get(port, "/api/devices")
            except OSError as e:
                status, body, elapsed = None, b"", str(e)
            check("the gateway answers the next client",
                  status == 200 and device_id.encode() in body, f"{status} after {elapsed}")
    finally:
        code, _, err = cu.stop(proc)
        check("sk2 serve exits 0 after requests with bodies", code == 0, err[-500:])


limit = raise_file_limit(HALF_OPEN + 512)
if limit < HALF_OPEN + 64:
    print(f"SKIP: cannot open {HALF_OPEN} sockets (RLIMIT_NOFILE {limit})")
    sys.exit(77)
flood_phase()
if not MEASURE_ONLY:
    slowloris_phase()
    busy_phase()
    body_phase()
sys.exit(cu.summary() if not MEASURE_ONLY else 0)
