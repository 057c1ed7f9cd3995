#!/usr/bin/env python3
"""`sk2 relay` from the command line (docs/topologies.md "Relays").

- `sk2 serve --mock 2` -> relay -> relay: the second relay lists both devices, and the
  independent version-1 client of tests/interop (v1_client.py, written from the original
  protocol text) gets mock depth frames through both relays, and its malformed requests
  each get one error reply;
- a relay of the version-1 Python server (no streams endpoint, hostnames as the original
  writes them replaced by numbers) serves version-1 clients and `sk2 stream` the same way;
- `sk2 stream --stream depth:rvl --check-mock` through two relays sees the mock scene;
- the relay's `stats` reply counts what it forwarded; bad command lines exit 2;
- SIGINT stops every relay with exit 0 and removes its endpoint file.

Usage: test_relay_cli.py /path/to/sk2
"""
import json
import os
import subprocess
import sys
import time

import zmq

import cliutil as cu

SK2, TMP = cu.setup("relay")
check = cu.check
INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop")


def start_relay(*upstreams, wait_s=15):
    endpoint_file = cu.path(f"relay-{time.monotonic_ns()}")
    proc = subprocess.Popen([SK2, "relay", *upstreams, "--no-announce", "--timeout", "2000",
                             "--endpoint-file", endpoint_file],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(endpoint_file):
            with open(endpoint_file) as f:
                endpoint = f.read().strip()
            if endpoint:
                return proc, endpoint, endpoint_file
        time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate()
    raise RuntimeError(f"sk2 relay {upstreams} did not start: {err}")


def device_ids(endpoint):
    out = cu.run("info", endpoint, "--json", timeout=30)
    if out.returncode != 0:
        return None
    return sorted(d["id"] for d in json.loads(out.stdout)["devices"])


def wait_devices(endpoint, want, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    ids = None
    while time.monotonic() < deadline:
        ids = device_ids(endpoint)
        if ids == want:
            return ids
        time.sleep(0.3)
    return ids


def request(endpoint, type_byte):
    with zmq.Context() as ctx:
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        try:
            s.send(type_byte)
            return s.recv_multipart() if s.poll(10000) else None
        finally:
            s.close()


def v1_client(endpoint, *extra):
    return subprocess.run(["/usr/bin/python3", os.path.join(INTEROP, "v1_client.py"), endpoint,
                           *extra], capture_output=True, text=True, timeout=90)


# Bad command lines change nothing and say why.
out = cu.run("relay", "--no-announce")
check("sk2 relay without a SERVER is a usage error", out.returncode == 2 and "SERVER" in out.stderr,
      out.stderr)
out = cu.run("relay", "tcp://127.0.0.1:1", "--port", "0")
check("sk2 relay --port 0 is a usage error", out.returncode == 2, out.stderr)
out = cu.run("relay", "not an endpoint!", "--no-announce", "--browse-timeout", "0.5")
check("sk2 relay of a server that cannot be found fails", out.returncode not in (0, None),
      out.stderr)

server, server_ep, _ = cu.start_server("--mock", "2", "--fps", "30")
relays = []
try:
    server_ids = device_ids(server_ep)
    check("the server has two devices", server_ids is not None and len(server_ids) == 2,
          server_ids)
    first, first_ep, first_file = start_relay(server_ep)
    relays.append(first)
    second, second_ep, second_file = start_relay(first_ep)
    relays.append(second)
    check("the second relay lists the server's devices",
          wait_devices(second_ep, server_ids) == server_ids, device_ids(second_ep))

    out = v1_client(second_ep, "--frames", "20", "--check-mock", "--abuse")
    check("the version-1 client gets mock frames of both devices through two relays, and "
          "an error for each malformed request", out.returncode == 0,
          out.stdout[-2000:] + out.stderr[-2000:])

    out = cu.run("stream", second_ep, "--stream", "depth:rvl", "--frames", "40", "--check-mock",
                 "--no-status", "--json", timeout=60)
    summary = json.loads(out.stdout) if out.returncode == 0 else {}
    check("sk2 stream depth:rvl --check-mock through two relays", out.returncode == 0 and
          summary.get("frames", 0) >= 40 and summary.get("mismatches") == 0
          and summary.get("rejected") == 0, out.stdout + out.stderr)

    reply = request(second_ep, b"\x05")
    stats = json.loads(reply[1]) if reply and reply[0] == b"\x06" else {}
    relay_stats = stats.get("relay", {})
    check("the relay's stats count forwarded frames and one live upstream",
          relay_stats.get("frames_forwarded", 0) >= 40 and relay_stats.get("frames_refused") == 0
          and [u.get("live") for u in relay_stats.get("upstreams", [])] == [True], stats)
    reply = request(second_ep, b"\x07")
    check("a replay request to a relay gets an error naming why",
          reply is not None and reply[0] == b"\x00" and b"relay" in reply[1], reply)

    for proc, name, endpoint_file in ((second, "second", second_file),
                                      (first, "first", first_file)):
        status, out_text, err = cu.stop(proc)
        check(f"the {name} relay exits 0 on SIGINT and removes its endpoint file",
              status == 0 and not os.path.exists(endpoint_file), f"{status} {err[-1000:]}")
        check(f"the {name} relay says what it forwarded", "forwarded" in out_text, out_text)
    relays.clear()
finally:
    for proc in relays:
        cu.stop(proc)
    cu.stop(server)

# The original protocol upstream: a relay of the version-1 Python server.
v1_file = cu.path("v1-server.endpoint")
v1 = subprocess.Popen(["/usr/bin/python3", os.path.join(INTEROP, "v1_server.py"), "--devices",
                       "1", "--endpoint-file", v1_file], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
relay = None
try:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not os.path.exists(v1_file):
        time.sleep(0.05)
    with open(v1_file) as f:
        v1_ep = f.read().strip()
    relay, relay_ep, _ = start_relay(v1_ep)
    want = device_ids(v1_ep)
    check("a relay of a version-1 server lists its device",
          want and wait_devices(relay_ep, want) == want, device_ids(relay_ep))
    out = v1_client(relay_ep, "--frames", "10", "--check-mock")
    check("the version-1 client gets frames from a version-1 server through a relay",
          out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:])
    out = cu.run("stream", relay_ep, "--frames", "10", "--check-mock", "--no-status", timeout=60)
    check("sk2 stream gets depth12 from a version-1 server through a relay",
          out.returncode == 0, out.stdout + out.stderr)
finally:
    if relay:
        cu.stop(relay)
    v1.terminate()
    v1.wait(timeout=10)

# Keyed commands through a relay of two servers: each goes to its device's server, once however
# often the client sends it; the relay answers what it cannot route.
def command(endpoint, payload, copies=1):
    """Sends `copies` copies of one command on one connection; returns every reply."""
    with zmq.Context() as ctx:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        try:
            replies = []
            for _ in range(copies):
                s.send_multipart([b"", b"\x09", json.dumps(payload).encode()])
            deadline = time.monotonic() + 20
            while len(replies) < copies and time.monotonic() < deadline:
                if s.poll(500):
                    frames = s.recv_multipart()
                    if len(frames) == 3 and frames[1] == b"\x0a":
                        replies.append(json.loads(frames[2]))
                elif len(replies) == 0:
                    # The relay answers a copy that comes while the first is pending once the
                    # answer is there; send one more to have it.
                    s.send_multipart([b"", b"\x09", json.dumps(payload).encode()])
            return replies
        finally:
            s.close()


def server_stats(endpoint):
    reply = request(endpoint, b"\x05")
    return json.loads(reply[1]) if reply and reply[0] == b"\x06" else {}


def label_of(endpoint, device):
    out = cu.run("info", endpoint, "--json", timeout=30)
    for record in json.loads(out.stdout).get("devices", []) if out.returncode == 0 else []:
        if record["id"] == device:
            return record.get("label")
    return None


server_a, a_ep, _ = cu.start_server("--mock", "1", "--fps", "10")
server_b, b_ep, _ = cu.start_server("--mock", "1", "--fps", "10")
relay = None
try:
    dev_a, dev_b = device_ids(a_ep)[0], device_ids(b_ep)[0]
    relay, relay_ep, _ = start_relay(a_ep, b_ep)
    check("a relay of two servers lists both devices",
          wait_devices(relay_ep, sorted([dev_a, dev_b])) == sorted([dev_a, dev_b]))
    out = cu.run("ctl", relay_ep, dev_b, "label", "hall", timeout=60)
    check("sk2 ctl through the relay sets a label (exit 0)", out.returncode == 0,
          out.stdout + out.stderr)
    check("the label reached the device's own server, and only it",
          label_of(b_ep, dev_b) == "hall" and label_of(a_ep, dev_a) != "hall",
          f"{label_of(b_ep, dev_b)} {label_of(a_ep, dev_a)}")
    out = cu.run("ctl", relay_ep, "no-such-device", "label", "x", timeout=60)
    check("an unknown device through the relay: exit 4", out.returncode == 4,
          f"{out.returncode} {out.stderr}")
    out = cu.run("ctl", relay_ep, "-", "label", "x", timeout=60)
    check("no device named on a relay of two devices: refused with exit 4",
          out.returncode == 4 and "name one" in out.stderr, f"{out.returncode} {out.stderr}")

    applied = server_stats(a_ep)["totals"]["commands_applied"]
    replies = command(relay_ep, {"id": "relay-test-once", "device": dev_a, "key": "location",
                                 "value": "door"}, copies=3)
    time.sleep(1)
    applied_after = server_stats(a_ep)["totals"]["commands_applied"]
    check("three copies of one command through the relay: applied once by the server",
          applied_after == applied + 1, f"{applied} -> {applied_after}")
    check("every answered copy says ok under the client's id",
          replies and all(r.get("ok") is True and r.get("id") == "relay-test-once"
                          for r in replies), f"{replies}")
    relay_stats = server_stats(relay_ep).get("relay", {})
    check("the relay counts the copies it answered without passing them on",
          relay_stats.get("commands_passed", 0) >= 2 and
          relay_stats.get("commands_repeated", 0) >= 1, f"{relay_stats}")
finally:
    if relay:
        cu.stop(relay)
    cu.stop(server_a)
    cu.stop(server_b)

sys.exit(cu.summary())
