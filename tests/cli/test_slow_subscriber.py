"""A subscriber that stops reading must cost only itself frames (issue 12).

One `sk2 serve --mock 1` at 30 fps; three healthy subscribers on depth/rvl/ read every
message. Phase A runs with them alone, phase B for as long with one more subscriber to the
same topic that never reads (a small receive buffer, so the server's queue towards it fills at
once). In each phase every healthy subscriber's count of frames is compared with the frames the
server encoded and published in that phase (its `stats` counters before and after); the
healthy ones must get at least 90% of them in B, and at least 90% of their own share in A, with
no frame out of order, and the server's resident memory may not grow by more than 50 MB
during B (the stalled subscriber's queue is bounded by the XPUB's send high-water mark).

Rates and latencies (receive time minus the header's capture time) are printed for
docs/reliability.md, never asserted: the machine is shared.

usage: test_slow_subscriber.py SK2 [SECONDS_PER_PHASE]
"""
import sys
import time

import zmq

import cliutil as cu
import loadutil as lu

SK2, TMP = cu.setup("slow-subscriber")
PHASE_S = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
TOPIC = "depth/rvl/"
HEALTHY = 3


def run_phase(name, control, subscribers, pid):
    """Receives for PHASE_S seconds; returns (published, rss at the end in kB)."""
    for sub in subscribers:
        sub.drain()
        sub.reset()
    before = lu.encoded(control.stats(), "depth", "rvl")
    poller = zmq.Poller()
    for sub in subscribers:
        poller.register(sub.sock, zmq.POLLIN)
    start = time.monotonic()
    while time.monotonic() - start < PHASE_S:
        for sock, _ in poller.poll(100):
            for sub in subscribers:
                if sub.sock is sock:
                    sub.drain()
    after = lu.encoded(control.stats(), "depth", "rvl")
    published = after - before
    rss = lu.rss_kb(pid)
    for i, sub in enumerate(subscribers):
        span_s = ((sub.last_us or 0) - (sub.first_us or 0)) / 1e6
        fps = (sub.count - 1) / span_s if span_s > 0 else 0.0
        print(f"phase {name} subscriber {i}: {sub.count}/{published} frames "
              f"({100.0 * sub.count / max(1, published):.1f}%), {fps:.1f} fps, latency p50 "
              f"{lu.percentile(sub.latencies_us, 50) / 1000:.2f} ms, p99 "
              f"{lu.percentile(sub.latencies_us, 99) / 1000:.2f} ms", flush=True)
    print(f"phase {name}: server published {published} frames in {PHASE_S:.0f} s, "
          f"RSS {rss} kB", flush=True)
    return published, rss


def main():
    proc, endpoint, _ = cu.start_server("--mock", "1", "--fps", "30")
    ctx = zmq.Context()
    subscribers = []
    stalled = None
    try:
        control = lu.Control(ctx, endpoint)
        me = control.me()
        streams = me["devices"][0]["endpoints"]["streams"]
        subscribers = [lu.Subscriber(ctx, streams, TOPIC) for _ in range(HEALTHY)]
        # Wait until every subscriber gets frames: subscriptions travel asynchronously.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(s.count for s in subscribers):
            for sub in subscribers:
                sub.drain()
            time.sleep(0.02)
        cu.check("every healthy subscriber receives frames", all(s.count for s in subscribers))

        published_a, rss_a = run_phase("A", control, subscribers, proc.pid)
        share_a = [s.count / max(1, published_a) for s in subscribers]

        stalled = lu.Subscriber(ctx, streams, TOPIC, rcvbuf=4096)
        # The stalled subscriber counts at the server once its subscription arrived.
        deadline = time.monotonic() + 20
        subs_at_server = 0
        while time.monotonic() < deadline and subs_at_server < HEALTHY + 1:
            for sub in subscribers:
                sub.drain()
            for stream in control.stats()["devices"][0]["streams"]:
                for enc in stream.get("encodings", []):
                    if stream["kind"] == "depth" and enc["codec"] == "rvl":
                        subs_at_server = enc["subscribers"]
            time.sleep(0.05)
        cu.check("the server counts the stalled subscriber", subs_at_server == HEALTHY + 1,
                 f"{subs_at_server} subscribers")

        published_b, rss_b = run_phase("B", control, subscribers, proc.pid)
        cu.check("the server published frames in both phases",
                 published_a > PHASE_S * 5 and published_b > PHASE_S * 5,
                 f"A {published_a}, B {published_b}")
        for i, sub in enumerate(subscribers):
            share_b = sub.count / max(1, published_b)
            cu.check(f"healthy subscriber {i} gets >= 90% of the frames published in B",
                     share_b >= 0.9, f"{sub.count} of {published_b}")
            cu.check(f"healthy subscriber {i} keeps >= 90% of its share of A in B",
                     share_b >= 0.9 * share_a[i], f"A {share_a[i]:.3f}, B {share_b:.3f}")
            cu.check(f"healthy subscriber {i} receives in order", sub.reordered == 0,
                     f"{sub.reordered} frames out of order")
        cu.check("the server's memory grows by less than 50 MB with a stalled subscriber",
                 rss_b - rss_a < 50 * 1024, f"A {rss_a} kB, B {rss_b} kB")
        cu.check("the server answers ping after phase B", control.ping())
        # The stalled subscriber got at most what its buffers hold: its queue is bounded.
        got = stalled.drain()
        print(f"stalled subscriber: {got} frames waiting for it", flush=True)
        cu.check("the stalled subscriber's queue is bounded", got < published_b // 2,
                 f"{got} frames")
        control.close()
    finally:
        for sub in subscribers + ([stalled] if stalled else []):
            sub.close()
        ctx.destroy(linger=0)
        status, _, err = cu.stop(proc)
        cu.check("the server stops cleanly", status == 0, err[-500:])


main()
sys.exit(cu.summary())
