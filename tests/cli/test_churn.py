"""Churn against a running server (issue 12): hundreds of clients that connect, ask or
subscribe and vanish without a goodbye; half-open TCP connections to every port; malformed and
oversized messages on every socket. Meanwhile a normal `sk2 stream` must receive every frame
(no sequence gap) and every ping from a well-behaved control client must be answered; after the
churn, the server's resident memory must be back within a generous bound of its warmed-up size.

Everything is bounded: CLIENTS clients over about CHURN_S seconds, at most 64 sockets of the
churn open at once, HALF_OPEN idle connections per port. Counts are asserted, never rates.

usage: test_churn.py SK2 [CLIENTS] [CHURN_SECONDS]
"""
import json
import os
import random
import socket
import subprocess
import sys
import time

import zmq

import cliutil as cu
import loadutil as lu

SK2, TMP = cu.setup("churn")
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 300
CHURN_S = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
HALF_OPEN = 50
FPS = 10
SEED = int(os.environ.get("SK2_CHURN_SEED", "0")) or random.randrange(1, 2**31)
rng = random.Random(SEED)
print(f"churn: {CLIENTS} clients over {CHURN_S:.0f} s, seed {SEED} (SK2_CHURN_SEED)", flush=True)


def tcp_address(endpoint):
    host, port = endpoint.rsplit("//", 1)[1].rsplit(":", 1)
    return host, int(port)


class Pinger:
    """A well-behaved control client: one ping at a time, each must be answered."""

    def __init__(self, ctx, endpoint):
        self.control = lu.Control(ctx, endpoint, timeout_ms=0)
        self.sent = self.answered = 0
        self.pending_since = None
        self.worst_s = 0.0

    def tick(self):
        sock = self.control.sock
        while sock.poll(0):
            reply = sock.recv_multipart()
            if len(reply) >= 2 and reply[1] == bytes([lu.PONG]):
                self.answered += 1
                self.worst_s = max(self.worst_s, time.monotonic() - self.pending_since)
            self.pending_since = None
        if self.pending_since is None:
            self.sent += 1
            self.pending_since = time.monotonic()
            try:
                sock.send_multipart([b"", bytes([lu.PING])])
            except zmq.Again:
                print("churn: a ping could not be sent (no connection)", flush=True)

    def finish(self, timeout_s=10):
        """Waits for the answer to the last ping without sending another."""
        sock = self.control.sock
        if self.pending_since is not None and sock.poll(timeout_s * 1000):
            reply = sock.recv_multipart()
            if len(reply) >= 2 and reply[1] == bytes([lu.PONG]):
                self.answered += 1
            self.pending_since = None


def churn_client(ctx, kind, control_ep, depth_ep, streams_ep):
    """One short-lived client; returns its socket (closed later without a goodbye)."""
    if kind == "who":
        sock = ctx.socket(zmq.DEALER)
        sock.connect(control_ep)
        sock.send_multipart([b"", bytes([lu.WHO])], zmq.NOBLOCK)
    elif kind == "stream":
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, rng.choice([b"depth/rvl/", b"depth/sk2d/", b"ir/rvl/"]))
        sock.connect(streams_ep)
    else:
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(depth_ep)
    return sock


def malformed_control(ctx, control_ep):
    """A DEALER that sends one malformed or oversized request and leaves."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDTIMEO, 2000)
    sock.connect(control_ep)
    choice = rng.randrange(8)
    try:
        if choice == 0:  # no empty delimiter
            sock.send_multipart([bytes([lu.PING])])
        elif choice == 1:  # too many frames
            sock.send_multipart([b"", b"\x01", b"{}", b"{}", b"x"])
        elif choice == 2:  # unknown type, or a type frame of two bytes
            sock.send_multipart([b"", rng.choice([b"\xff", b"\x01\x01", b""])])
        elif choice == 3:  # a payload that is not JSON
            sock.send_multipart([b"", b"\x03", os.urandom(rng.randrange(1, 512))])
        elif choice == 4:  # a payload over the 64 KiB limit
            sock.send_multipart([b"", b"\x01", b"[" + b"0," * 40000 + b"0]"])
        elif choice == 5:  # a message over the 16 MiB a control socket reads at all
            sock.send_multipart([b"", b"\x01", b"\x00" * (17 << 20)])
        elif choice == 6:  # random frames
            sock.send_multipart([os.urandom(rng.randrange(0, 64)) for _ in range(rng.randrange(1, 6))])
        else:  # a server-only message type
            sock.send_multipart([b"", rng.choice([b"\x00", b"\x02", b"\x04", b"\x06"]), b"{}"])
    except zmq.Again:
        pass
    return sock


def malformed_xpub(ctx, endpoint):
    """An XSUB that sends random subscription bytes, unknown topics, non-subscription
    messages and a frame far over the XPUB's 1 KiB message limit, then leaves. Its random
    bytes never spell a real topic, so they cannot cancel anyone's subscription."""
    sock = ctx.socket(zmq.XSUB)
    sock.setsockopt(zmq.SNDTIMEO, 2000)
    sock.connect(endpoint)
    try:
        for _ in range(rng.randrange(1, 40)):
            choice = rng.randrange(6)
            if choice == 0:
                sock.send(b"\x01" + os.urandom(rng.randrange(0, 900)))
            elif choice == 1:
                sock.send(b"\x01" + b"depth/nonsense%d/" % rng.randrange(1000))
            elif choice == 2:
                sock.send(bytes([rng.randrange(2, 256)]) + os.urandom(rng.randrange(0, 64)))
            elif choice == 3:
                sock.send(b"")
            elif choice == 4:
                # Over the XPUB's 1 KiB limit. Kept to a few KiB: an XSUB remembers what it
                # subscribed to in a trie one node per byte, and libzmq frees that trie
                # recursively, so a megabyte subscription overflows this process's stack.
                sock.send(b"\x01" + os.urandom(rng.randrange(1100, 4096)))
            else:
                # A huge frame that is no subscription: the XSUB passes it on untouched.
                sock.send(b"\x02" + os.urandom(rng.randrange(1 << 16, 1 << 21)))
    except zmq.Again:
        pass
    return sock


def garbage_tcp(address):
    """Raw bytes that are not ZMTP at all, then gone."""
    try:
        with socket.create_connection(address, timeout=2) as s:
            s.sendall(os.urandom(rng.randrange(1, 65536)))
    except OSError:
        pass


def main():
    # 10 fps: the server queues 4 messages per subscriber, so the steady client may be
    # descheduled for 400 ms on a busy machine before it misses a frame through its own fault.
    proc, endpoint, _ = cu.start_server("--mock", "1", "--fps", str(FPS))
    ctx = zmq.Context()
    held = []
    steady = None
    pinger = None
    try:
        control = lu.Control(ctx, endpoint)
        me = control.me()
        device = me["devices"][0]
        depth_ep, streams_ep = device["endpoints"]["depth"], device["endpoints"]["streams"]
        control.close()
        ports = [endpoint, depth_ep, streams_ep]

        # The steady client: a real `sk2 stream` in its own process, for the whole run.
        steady_s = CHURN_S + 20
        steady = subprocess.Popen([SK2, "stream", endpoint, "--stream", "depth:rvl", "--seconds",
                                   str(steady_s), "--json", "--no-status", "--timeout", "30000"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pinger = Pinger(ctx, endpoint)

        # Warm-up: a few of every kind of client, then the server's memory as the baseline.
        warm = [churn_client(ctx, k, endpoint, depth_ep, streams_ep)
                for k in ("who", "stream", "v1") * 5]
        start = time.monotonic()
        while time.monotonic() - start < 5:
            pinger.tick()
            time.sleep(0.05)
        for sock in warm:
            sock.close(linger=0)
        time.sleep(1)
        rss_warm = lu.rss_kb(proc.pid)

        # Half-open connections to every port, held for the whole churn.
        for ep in ports:
            for _ in range(HALF_OPEN):
                try:
                    held.append(socket.create_connection(tcp_address(ep), timeout=2))
                except OSError as e:
                    cu.check("a half-open connection can be made", False, str(e))
                    break

        live = []
        made = {"who": 0, "stream": 0, "v1": 0, "bad-control": 0, "bad-xpub": 0, "garbage": 0}
        start = time.monotonic()
        for i in range(CLIENTS):
            # Spread the clients over CHURN_S seconds, pinging in between.
            while time.monotonic() - start < i * CHURN_S / CLIENTS:
                pinger.tick()
                time.sleep(0.01)
            kind = rng.choice(["who", "stream", "v1", "who", "stream", "v1",
                               "bad-control", "bad-xpub", "garbage"])
            made[kind] += 1
            if kind == "bad-control":
                live.append(malformed_control(ctx, endpoint))
            elif kind == "bad-xpub":
                live.append(malformed_xpub(ctx, rng.choice([depth_ep, streams_ep])))
            elif kind == "garbage":
                garbage_tcp(tcp_address(rng.choice(ports)))
            else:
                live.append(churn_client(ctx, kind, endpoint, depth_ep, streams_ep))
            # Vanish without a goodbye: close at once (linger 0) the oldest beyond 64.
            while len(live) > 64:
                live.pop(rng.randrange(len(live))).close(linger=0)
            pinger.tick()
        for sock in live:
            sock.close(linger=0)
        for s in held:
            s.close()
        held = []
        print(f"churn: made {made}", flush=True)

        # Let the server notice every departure, then compare its memory with the warm-up.
        settle = time.monotonic()
        while time.monotonic() - settle < 3:
            pinger.tick()
            time.sleep(0.05)
        rss_after = lu.rss_kb(proc.pid)
        control = lu.Control(ctx, endpoint)
        stats = control.stats()
        cu.check("the server answers who after the churn", control.me()["devices"])
        # Only the steady client's subscription remains.
        subs = [(s["kind"], e["codec"], e["subscribers"])
                for s in stats["devices"][0]["streams"] for e in s.get("encodings", [])
                if e["subscribers"]]
        if subs != [("depth", "rvl", 1)]:
            print(json.dumps(stats), flush=True)
        print(f"churn: subscriptions left {subs}; server totals {stats['totals']}", flush=True)
        cu.check("only the steady client's subscription is left", subs == [("depth", "rvl", 1)],
                 str(subs))
        control.close()

        pinger.finish()
        print(f"churn: server RSS {rss_warm} kB warmed up, {rss_after} kB after the churn; "
              f"pings {pinger.answered}/{pinger.sent} answered, slowest "
              f"{pinger.worst_s * 1000:.0f} ms", flush=True)
        cu.check("every ping during the churn is answered",
                 pinger.sent > 10 and pinger.answered == pinger.sent,
                 f"{pinger.answered} of {pinger.sent}")
        cu.check("the server's memory after the churn is within 50 MB of its warmed-up size",
                 rss_after - rss_warm < 50 * 1024, f"{rss_warm} -> {rss_after} kB")

        out, err = steady.communicate(timeout=steady_s + 30)
        summary = json.loads(out) if steady.returncode == 0 and out.strip() else {}
        print(f"churn: steady client {out.strip()}", flush=True)
        cu.check("the steady client ran to the end", steady.returncode == 0, err[-800:])
        cu.check("the steady client received frames throughout",
                 summary.get("frames", 0) >= steady_s * FPS / 2, str(summary.get("frames")))
        # A frame the server itself dropped because its encoder was behind (a busy machine,
        # counted in `stats`) is a gap for every client; any other gap is one the churn caused.
        control = lu.Control(ctx, endpoint)
        dropped = control.stats()["totals"]["frames_dropped"]
        control.close()
        cu.check("the steady client missed no frame the server published",
                 0 <= summary.get("gaps", -1) <= dropped,
                 f"gaps {summary.get('gaps')}, server dropped {dropped}")
    finally:
        if pinger:
            pinger.control.close()
        for s in held:
            s.close()
        if steady and steady.poll() is None:
            steady.kill()
            steady.communicate()
        ctx.destroy(linger=0)
        status, _, err = cu.stop(proc)
        cu.check("the server stops cleanly", status == 0, err[-500:])


main()
sys.exit(cu.summary())
