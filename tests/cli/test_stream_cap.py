#!/usr/bin/env python3
"""The cap on encoded streams (`sk2 serve --max-streams N`, docs/protocol.md "The stream cap").

With --max-streams 1, one `sk2 stream --stream depth:rvl` takes the only place; a second
subscription (ir:rvl) is not encoded: its `sk2 stream` gets no frames, the `stats` reply marks
it "refused" and counts it, the server logs it once, while the first stream keeps flowing and
a version-1 client (the `depth` endpoint, and `who` answered with the same `me`) is unaffected.
When the first stream ends its place is free, and ir:rvl is encoded for the next subscriber.

Usage: test_stream_cap.py /path/to/sk2
"""
import json
import subprocess
import sys
import time

import zmq

import cliutil as cu

SK2, TMP = cu.setup("streamcap")
check = cu.check


def request(ctx, endpoint, type_byte):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send(type_byte)
        return s.recv_multipart() if s.poll(10000) else None
    finally:
        s.close()


def stats(ctx, endpoint):
    reply = request(ctx, endpoint, b"\x05")
    return json.loads(reply[1]) if reply and reply[0] == b"\x06" else {}


def encoding(stats_reply, kind, codec):
    for device in stats_reply.get("devices", []):
        for stream in device["streams"]:
            if stream["kind"] == kind:
                for e in stream["encodings"]:
                    if e["codec"] == codec:
                        return e
    return {}


def wait_for(predicate, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def stream(endpoint, *args):
    return subprocess.Popen([SK2, "stream", endpoint, "--json", "--no-status", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    try:
        summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    except ValueError:
        summary = {}
    return proc.returncode, summary, err


def main():
    rc = cu.run("serve", "--max-streams", "-1").returncode
    check("serve refuses --max-streams -1 as a usage error", rc == 2, f"exit {rc}")
    rc = cu.run("serve", "--max-streams", "4097").returncode
    check("serve refuses --max-streams 4097 as a usage error", rc == 2, f"exit {rc}")
    help_text = cu.run("serve", "--help").stdout
    check("serve --help documents --max-streams", "--max-streams N" in help_text)

    proc, endpoint, _ = cu.start_server("--mock", "1", "--max-streams", "1", "--color-size",
                                        "64x48")
    ctx = zmq.Context()
    first = None
    try:
        me_before = request(ctx, endpoint, b"\x03")
        s0 = stats(ctx, endpoint)
        check("stats tell the cap", s0.get("max_streams") == 1 and
              s0.get("streams_encoding") == 0, {k: s0.get(k) for k in
                                                ("max_streams", "streams_encoding")})

        first = stream(endpoint, "--stream", "depth:rvl", "--seconds", "15")
        flowing = wait_for(lambda: encoding(stats(ctx, endpoint), "depth", "rvl")
                           .get("encoded", 0) > 3)
        check("the first stream (depth:rvl) takes the place and is encoded", flowing)

        rc, second, err = finish(stream(endpoint, "--stream", "ir:rvl", "--seconds", "4"))
        check("the second stream (ir:rvl) over the cap gets no frames",
              rc == 1 and second.get("frames", 0) == 0, f"exit {rc}, {second}, {err[-200:]}")
        s1 = stats(ctx, endpoint)
        ir = encoding(s1, "ir", "rvl")
        check("stats count the refused subscription and never encoded it",
              s1.get("totals", {}).get("streams_refused", 0) >= 1 and ir.get("refused", 0) >= 1
              and ir.get("encoded", -1) == 0, f"totals {s1.get('totals')}, ir/rvl {ir}")
        check("only one stream was encoded at a time", s1.get("streams_encoding") == 1, s1)

        # While ir:rvl waits, stats name it "refused" (a raw subscriber keeps it waiting).
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        me = json.loads(me_before[1])
        sub.connect(me["devices"][0]["endpoints"]["streams"])
        sub.setsockopt(zmq.SUBSCRIBE, b"ir/rvl/")
        refused = wait_for(lambda: encoding(stats(ctx, endpoint), "ir", "rvl")
                           .get("state") == "refused")
        check("stats mark a waiting subscription as refused", refused,
              encoding(stats(ctx, endpoint), "ir", "rvl"))
        got = sub.poll(2000)
        check("a raw subscriber over the cap receives nothing", not got)

        rc, v1, err = finish(stream(endpoint, "--seconds", "3"))
        check("a version-1 depth client is not capped", rc == 0 and v1.get("frames", 0) > 0,
              f"exit {rc}, {v1}, {err[-200:]}")
        me_after = request(ctx, endpoint, b"\x03")
        check("who is answered with the same me under the cap", me_after == me_before,
              f"{me_before!r:.100} / {me_after!r:.100}")

        rc, first_summary, err = finish(first)
        first = None
        check("the first stream kept flowing throughout",
              rc == 0 and first_summary.get("frames", 0) > 100,
              f"exit {rc}, {first_summary}, {err[-200:]}")

        # Its place is free now: the waiting raw subscriber's pair takes it.
        got = sub.poll(10000)
        check("once the first stream ends, the waiting ir:rvl subscription is encoded", got)
        sub.close()
        rc, third, err = finish(stream(endpoint, "--stream", "ir:rvl", "--frames", "10"))
        check("a new ir:rvl stream gets frames once there is room",
              rc == 0 and third.get("frames", 0) == 10, f"exit {rc}, {third}, {err[-200:]}")
    finally:
        if first and first.poll() is None:
            first.kill()
            first.communicate()
        rc, _, err = cu.stop(proc)
        ctx.term()
    check("the server stops cleanly", rc == 0, err[-300:])
    lines = [line for line in err.splitlines() if "not encoded" in line]
    check("the refusal is logged once", len(lines) == 1, lines)


if __name__ == "__main__":
    main()
    sys.exit(cu.summary())
