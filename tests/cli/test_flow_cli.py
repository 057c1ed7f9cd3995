#!/usr/bin/env python3
"""Client flow control from the command line (docs/topologies.md "Client flow control").

`sk2 stream --stream depth:rvl --queue 2` tells the server its queue bound; SIGUSR1 pauses it
on the same connection (the server's stats show the client paused and stop encoding depth/rvl,
which nobody else wants), a second SIGUSR1 resumes it; the summary counts the pause and no
outage. `--paused` starts paused and ends without frames but successfully. Bad --queue values
are usage errors.

Usage: test_flow_cli.py /path/to/sk2
"""
import json
import signal
import subprocess
import sys
import time

import zmq

import cliutil as cu

SK2, TMP = cu.setup("flow")
check = cu.check


def stats(ctx, endpoint):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    try:
        s.send(b"\x05")
        reply = s.recv_multipart() if s.poll(10000) else None
    finally:
        s.close()
    return json.loads(reply[1]) if reply and reply[0] == b"\x06" else {}


def rvl(reply):
    for device in reply.get("devices", []):
        for stream in device["streams"]:
            if stream["kind"] == "depth":
                for e in stream["encodings"]:
                    if e["codec"] == "rvl":
                        return e
    return {}


def wait_for(predicate, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


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
    for bad in ("0", "1025", "two"):
        rc = cu.run("stream", "127.0.0.1:1", "--stream", "depth", "--queue", bad).returncode
        check(f"stream refuses --queue {bad} as a usage error", rc == 2, f"exit {rc}")
    help_text = cu.run("stream", "--help").stdout
    check("stream --help documents --queue, --paused and SIGUSR1",
          "--queue N" in help_text and "--paused" in help_text and "SIGUSR1" in help_text)

    proc, endpoint, _ = cu.start_server("--mock", "1")
    ctx = zmq.Context()
    client = None
    try:
        rc = cu.run("stream", endpoint, "--queue", "2", "--seconds", "1").returncode
        check("--queue without --stream is a usage error", rc == 2, f"exit {rc}")

        client = subprocess.Popen([SK2, "stream", endpoint, "--stream", "depth:rvl", "--queue",
                                   "2", "--seconds", "60", "--json", "--no-status"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        listed = wait_for(lambda: [c for c in stats(ctx, endpoint).get("clients", {})
                                   .get("list", []) if c.get("queue_frames") == 2 and
                                   rvl(stats(ctx, endpoint)).get("encoded", 0) > 3])
        check("the server lists the client with its queue bound, and encodes for it",
              len(listed) == 1 and listed[0]["paused"] == 0, stats(ctx, endpoint).get("clients"))
        client_id = listed[0]["client"] if listed else ""

        client.send_signal(signal.SIGUSR1)
        paused = wait_for(lambda: (lambda s: s.get("clients", {}).get("paused") == 1 and
                                   rvl(s).get("state") == "idle" and s)(stats(ctx, endpoint)))
        check("SIGUSR1: the server shows the client paused and depth/rvl idle", bool(paused),
              stats(ctx, endpoint))
        encoded = rvl(paused or {}).get("encoded", -1)
        time.sleep(1.5)
        later = rvl(stats(ctx, endpoint)).get("encoded", -2)
        check("nothing is encoded while the only client is paused", later == encoded,
              f"{encoded} then {later}")

        client.send_signal(signal.SIGUSR1)
        resumed = wait_for(lambda: (lambda s: s.get("clients", {}).get("paused") == 0 and
                                    rvl(s).get("encoded", 0) > encoded + 3)(stats(ctx, endpoint)))
        check("a second SIGUSR1 resumes: encoding again, the client no longer paused", resumed,
              stats(ctx, endpoint))

        client.send_signal(signal.SIGINT)
        rc, summary, err = finish(client)
        client = None
        check("the summary counts one pause, no outage, and frames", rc == 0 and
              summary.get("pauses") == 1 and summary.get("paused") is False and
              summary.get("outages") == 0 and summary.get("frames", 0) > 0 and
              summary.get("queue_frames") == 2 and summary.get("client") == client_id,
              f"exit {rc}, {summary}, {err[-300:]}")
        check("the notes say paused and resumed", "paused (SIGUSR1 resumes)" in err and
              "resumed" in err, err[-300:])

        rc, summary, err = finish(subprocess.Popen(
            [SK2, "stream", endpoint, "--stream", "depth:rvl", "--paused", "--seconds", "2",
             "--json", "--no-status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        check("--paused receives nothing and ends successfully", rc == 0 and
              summary.get("frames") == 0 and summary.get("paused") is True,
              f"exit {rc}, {summary}, {err[-300:]}")
    finally:
        if client:
            client.kill()
            client.communicate()
        ctx.destroy(linger=0)
        status, _, err = cu.stop(proc)
        check("the server stops cleanly", status == 0, err[-300:])


if __name__ == "__main__":
    main()
    sys.exit(cu.summary())
