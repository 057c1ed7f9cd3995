"""What the load tests (slow subscriber, churn) need to talk to an sk2 server with bare
python3-zmq sockets: control requests, the streams endpoint's frame header, the server's
counters and its resident memory.

The wire formats are those of docs/protocol.md; nothing here decodes pixels, so a Python
subscriber keeps up with a 30 fps stream whatever its codec.
"""
import json
import struct
import time

import zmq

PING, PONG, WHO, ME, STATS, STATS_REPLY = 1, 2, 3, 4, 5, 6
HEADER = struct.Struct("<4sHHBBBBIII QqqqQ")


class Control:
    """A DEALER on the control endpoint that speaks as REQ would (empty delimiter first), so
    that it works with a REP or a ROUTER server alike. One request at a time."""

    def __init__(self, ctx, endpoint, timeout_ms=10000):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        # A DEALER blocks a send while it has no connection: never for long here.
        self.sock.setsockopt(zmq.SNDTIMEO, 5000)
        self.sock.connect(endpoint)
        self.timeout_ms = timeout_ms

    def request(self, kind, payload=None):
        """Sends one request and returns (type byte, payload bytes or None), or None when no
        reply came within the timeout."""
        frames = [b"", bytes([kind])] + ([payload] if payload is not None else [])
        try:
            self.sock.send_multipart(frames)
        except zmq.Again:
            return None
        if not self.sock.poll(self.timeout_ms):
            return None
        reply = self.sock.recv_multipart()
        if len(reply) < 2 or reply[0] != b"" or len(reply[1]) != 1:
            raise RuntimeError(f"malformed reply {reply!r}")
        return reply[1][0], (reply[2] if len(reply) > 2 else None)

    def me(self):
        reply = self.request(WHO)
        if reply is None or reply[0] != ME:
            raise RuntimeError(f"no me: {reply!r}")
        return json.loads(reply[1])

    def stats(self):
        reply = self.request(STATS)
        if reply is None or reply[0] != STATS_REPLY:
            raise RuntimeError(f"no stats: {reply!r}")
        return json.loads(reply[1])

    def ping(self):
        reply = self.request(PING)
        return reply is not None and reply[0] == PONG

    def close(self):
        self.sock.close()


def encoded(stats, kind, codec):
    """How many frames of the first device's stream `kind` the server has encoded (hence
    published) in `codec`, from a `stats` reply; 0 before anyone subscribed."""
    for stream in stats["devices"][0]["streams"]:
        if stream["kind"] == kind:
            for enc in stream.get("encodings", []):
                if enc["codec"] == codec:
                    return enc["encoded"]
    return 0


def parse_header(header):
    """(sequence, capture time in µs since 1970) of a 64-byte frame header."""
    fields = HEADER.unpack_from(header)
    if fields[0] != b"sk2h" or fields[1] != 1:
        raise RuntimeError("not an sk2 frame header")
    return fields[10], fields[12]


def now_us():
    return time.time_ns() // 1000


def rss_kb(pid):
    """VmRSS of a process in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    index = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[index]


class Subscriber:
    """A SUB on a device's streams endpoint for one topic ("depth/rvl/") that keeps sequence
    numbers and latencies of what it receives."""

    def __init__(self, ctx, endpoint, topic, rcvbuf=None):
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        if rcvbuf is not None:
            self.sock.setsockopt(zmq.RCVBUF, rcvbuf)
            self.sock.setsockopt(zmq.RCVHWM, 1)
        self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.sock.connect(endpoint)
        self.reset()
        self.last_seq = None
        self.reordered = 0

    def reset(self):
        self.count = 0
        self.latencies_us = []
        self.first_us = None
        self.last_us = None

    def drain(self):
        """Reads every message waiting; returns how many."""
        n = 0
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return n
            t = now_us()
            seq, capture_us = parse_header(frames[1])
            if self.last_seq is not None and seq <= self.last_seq:
                self.reordered += 1
            self.last_seq = seq
            self.count += 1
            self.latencies_us.append(t - capture_us)
            self.first_us = self.first_us or t
            self.last_us = t
            n += 1

    def close(self):
        self.sock.close()
