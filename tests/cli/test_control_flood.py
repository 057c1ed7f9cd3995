#!/usr/bin/env python3
"""The control endpoint under attack (issue 12, docs/reliability.md "Control endpoint").

A real `sk2 serve --mock 1` on 127.0.0.1 while, all at once:

- a thread opens raw TCP connections to the control port and writes 1 MB of random bytes into
  each, about five connections a second;
- a thread sends malformed ZeroMQ messages from fresh DEALER and REQ sockets: no delimiter,
  three frames, unknown types, empty frames, a 100 KB payload, a frame over the 2 MiB socket
  limit, a long routing stack, requests whose sender vanishes before the answer;
- a DEALER sends 10 000 pings and never reads, and another sends enough `who` requests that
  their answers cannot all be buffered for it (so the server must drop some, and count them).

Meanwhile a normal version-1 client (a REQ socket, the protocol's bytes) sends 40 pings one at a
time and every one must be answered (10 s each); `sk2 ping --count 20` (sk2's DEALER client)
must get all its pongs; a `sk2 stream` running throughout must receive frames and not declare
the server lost. The server's resident memory after the flood must stay within 50 MB of what it
was before, and the `stats` reply must count the dropped answers.

On the old REP control socket, pings were lost and `sk2 stream` gave up on the server.

Usage: test_control_flood.py /path/to/sk2
"""
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

import zmq

import cliutil as cu

SK2, TMP = cu.setup("flood")
check = cu.check
# Under AddressSanitizer freed memory sits in a quarantine of 256 MB by default, which the
# flood's megabyte messages fill: keep it small so that the RSS bound measures the program.
os.environ["ASAN_OPTIONS"] = ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16"]))

PINGS = 40
PING_DEADLINE_S = 10
PING_SPACING_S = 0.25  # spreads the 40 pings over the flood
FLOOD_PINGS = 10000
RSS_SLACK_KB = 50 * 1024
RAW_BURST_BYTES = 1 << 20
# A ping from a version-1 REQ socket: the socket adds the empty delimiter.
PING, PONG, WHO, ME, STATS = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"


def rss_kb(pid):
    """VmRSS of a running process in kB, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tcp_buffer_max_bytes():
    """The most bytes the kernel may buffer on one loopback connection, both ends together."""
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            with open(f"/proc/sys/net/ipv4/{name}") as f:
                total += int(f.read().split()[2])
        except (OSError, ValueError, IndexError):
            total += 8 << 20
    return total


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}

    def add(self, name, n=1):
        with self.lock:
            self.values[name] = self.values.get(name, 0) + n


def raw_tcp_attacker(host, port, stop, counts):
    """Random bytes at about five connections a second, 1 MB each."""
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.settimeout(2)
                counts.add("raw connections")
                try:
                    s.sendall(os.urandom(RAW_BURST_BYTES))
                    counts.add("raw bursts sent whole")
                except OSError:
                    pass  # the server hung up on the garbage: what it should do
        except OSError:
            counts.add("raw connects refused")
        stop.wait(0.2)


def malformed_cases():
    """(socket type, frames as sent, whether the sender waits a moment for an answer)."""
    big = b'"' + b"x" * 100000 + b'"'
    return [
        (zmq.DEALER, [PING], False),                        # no delimiter: no envelope
        (zmq.DEALER, [b"", PING, b"{}", b"{}"], True),      # three frames
        (zmq.DEALER, [b"", b"\x7f"], True),                 # unknown type
        (zmq.DEALER, [b"", b""], True),                     # empty type frame
        (zmq.DEALER, [b""], False),                         # delimiter only
        (zmq.DEALER, [b"", PING, big], True),               # payload over 64 KiB
        (zmq.DEALER, [b"", PING, b"\xff\xfe"], True),       # not UTF-8 JSON
        (zmq.DEALER, [b"", PONG], True),                    # server-only type
        (zmq.DEALER, [b"hop"] * 40 + [b"", PING], False),   # a routing stack too deep
        (zmq.DEALER, [b"", PING, b"x" * (3 << 20)], False),  # over the 2 MiB socket limit
        (zmq.DEALER, [b"", PING, b"x" * (1 << 20)], True),   # under it: an error reply
        (zmq.DEALER, [b"", WHO], False),                    # gone before the answer
        (zmq.REQ, [b"\x7f"], True),
        (zmq.REQ, [PING, b"{}", b"{}"], True),
        (zmq.REQ, [b"\x01\x01"], True),
    ]


def malformed_attacker(ctx, endpoint, stop, counts):
    cases = malformed_cases()
    rng = random.Random(12)
    while not stop.is_set():
        kind, frames, waits = rng.choice(cases)
        s = ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        try:
            s.send_multipart(frames, flags=zmq.NOBLOCK)
            counts.add("malformed sent")
            if waits and s.poll(1000):
                s.recv_multipart()
                counts.add("malformed answered")
        except zmq.ZMQError:
            counts.add("malformed not sent")
        s.close()
        stop.wait(0.02)


def flooder(ctx, endpoint, request, n, ready, stop, counts, name):
    """Sends n requests without ever reading an answer, then stays connected until the end."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.RCVHWM, 1)
    s.setsockopt(zmq.RCVBUF, 4096)
    s.connect(endpoint)
    ready.wait()
    sent = 0
    while sent < n and not stop.is_set():
        try:
            s.send_multipart([b"", request], flags=zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            stop.wait(0.01)
    counts.add(name, sent)
    stop.wait()
    s.close()


def ping_once(ctx, endpoint):
    """One ping on a fresh REQ socket; the reply frames, or None after the deadline."""
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send(PING)
        if s.poll(PING_DEADLINE_S * 1000):
            return s.recv_multipart()
        return None
    finally:
        s.close()


def request(ctx, endpoint, type_byte, timeout_s=10):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send(type_byte)
        return s.recv_multipart() if s.poll(timeout_s * 1000) else None
    finally:
        s.close()


def main():
    proc, endpoint, _ = cu.start_server("--mock", "1", "--fps", "30")
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    ctx = zmq.Context()
    stop = threading.Event()
    ready = threading.Event()
    counts = Counts()
    threads = []
    stream = None
    try:
        me = request(ctx, endpoint, WHO)
        check("the server answers who before the flood", me and me[0] == ME, repr(me)[:200])
        me_bytes = len(me[1]) if me and len(me) > 1 else 1000
        # Enough `who` answers that the kernel's buffers and the server's queue cannot hold
        # them all for a client that never reads: some must be dropped.
        who_flood = min(200000, tcp_buffer_max_bytes() // me_bytes + 2000)

        stream = subprocess.Popen([SK2, "stream", endpoint, "--seconds", "20", "--json",
                                   "--no-status"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        # Warm up: the stream is connected and frames flow before the baseline is taken.
        first = ping_once(ctx, endpoint)
        check("a ping before the flood is answered", first == [PONG], repr(first))
        time.sleep(2)
        rss_before = rss_kb(proc.pid)

        threads = [
            threading.Thread(target=raw_tcp_attacker, args=(host, int(port), stop, counts)),
            threading.Thread(target=malformed_attacker, args=(ctx, endpoint, stop, counts)),
            threading.Thread(target=flooder, args=(ctx, endpoint, PING, FLOOD_PINGS, ready,
                                                   stop, counts, "flood pings sent")),
            threading.Thread(target=flooder, args=(ctx, endpoint, WHO, who_flood, ready, stop,
                                                   counts, "flood whos sent")),
        ]
        for t in threads:
            t.start()
        ready.set()
        time.sleep(1)

        sk2_ping = subprocess.Popen([SK2, "ping", endpoint, "--count", "20", "--timeout",
                                     str(PING_DEADLINE_S * 1000)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        answered, wrong, latencies = 0, [], []
        for _ in range(PINGS):
            start = time.monotonic()
            reply = ping_once(ctx, endpoint)
            if reply == [PONG]:
                answered += 1
                latencies.append(time.monotonic() - start)
            else:
                wrong.append(reply)
            time.sleep(PING_SPACING_S)
        check(f"all {PINGS} pings of a REQ client are answered under the flood",
              answered == PINGS, f"{answered} answered; others: {wrong[:3]!r:.200}")
        try:
            out, err = sk2_ping.communicate(timeout=20 * PING_DEADLINE_S + 30)
        except subprocess.TimeoutExpired:
            sk2_ping.kill()
            out, err = sk2_ping.communicate()
        check("sk2 ping --count 20 (a DEALER client) gets every pong under the flood",
              sk2_ping.returncode == 0, f"exit {sk2_ping.returncode}: {err.strip()[-300:]}")

        stop.set()
        for t in threads:
            t.join(timeout=30)
        check("every attacker thread ended", not any(t.is_alive() for t in threads))
        print("attack:", json.dumps(counts.values, sort_keys=True), flush=True)
        check("the raw TCP attacker made connections", counts.values.get("raw connections", 0) > 5,
              counts.values)
        check("the malformed-frame attacker sent messages",
              counts.values.get("malformed sent", 0) > 20, counts.values)
        check("the flooder sent its 10 000 pings",
              counts.values.get("flood pings sent", 0) == FLOOD_PINGS, counts.values)

        try:
            out, err = stream.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            stream.kill()
            out, err = stream.communicate()
        summary = {}
        try:
            summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except ValueError:
            pass
        check("sk2 stream ran through the flood without losing the server",
              stream.returncode == 0 and "lost" not in err,
              f"exit {stream.returncode}: {err.strip()[-300:]}")
        check("sk2 stream received frames", summary.get("frames", 0) > 0, out[-300:])

        # Let the server answer what is still queued and free it, then compare.
        after_deadline = time.monotonic() + 10
        rss_after = rss_kb(proc.pid)
        while rss_after > rss_before + RSS_SLACK_KB and time.monotonic() < after_deadline:
            time.sleep(0.5)
            rss_after = rss_kb(proc.pid)
        print(f"server RSS before the flood {rss_before} kB, after {rss_after} kB", flush=True)
        check("server memory stays flat under the flood (< before + 50 MB)",
              0 < rss_after < rss_before + RSS_SLACK_KB, f"{rss_before} -> {rss_after} kB")

        stats = request(ctx, endpoint, STATS)
        totals = json.loads(stats[1])["totals"] if stats and stats[0] == b"\x06" else {}
        print("stats totals:", json.dumps(totals, sort_keys=True), flush=True)
        check("stats count the answers dropped for clients that do not read",
              totals.get("control_dropped", 0) > 0, totals)
        check("stats count the messages ignored for want of an envelope",
              totals.get("control_ignored", 0) > 0, totals)
        after = ping_once(ctx, endpoint)
        check("a ping after the flood is answered", after == [PONG], repr(after))
        if latencies:
            latencies.sort()
            p50 = latencies[len(latencies) // 2] * 1000
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            print(f"ping round trip under the flood (fresh REQ each): p50 {p50:.1f} ms, "
                  f"p99 {p99:.1f} ms", flush=True)
    finally:
        stop.set()
        ready.set()
        for t in threads:
            t.join(timeout=30)
        if stream and stream.poll() is None:
            stream.kill()
            stream.communicate()
        rc, _, err = cu.stop(proc)
        check("the server stops cleanly after the flood", rc == 0, f"exit {rc}: {err[-300:]}")
        ctx.term()


if __name__ == "__main__":
    main()
    sys.exit(cu.summary())
