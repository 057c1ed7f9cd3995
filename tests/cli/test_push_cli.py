#!/usr/bin/env python3
"""Push mode from the command line (docs/topologies.md "Push").

- `sk2 serve --mock 1 --push` connects out to `sk2 relay --accept-push`; the relay lists the
  pushed device, and `sk2 stream --check-mock` through the relay sees the mock scene (sk2
  streams endpoint and version-1 depth endpoint);
- nothing is encoded while no client of the relay subscribes (the server's stats);
- the relay's stats list the pusher as live;
- the relay killed and started again on the same ports: the pusher links again and a client
  of the relay (reconnecting, as `sk2 stream` does) gets mock frames again after its outage;
- the camera host killed: its device leaves the relay's `me`; started again: its new device
  comes back, with frames; the relay's stats count two links;
- bad command lines are refused with exit 2;
- `--accept-push --secure --keys --allow`: a pusher with an allowed key (`--push-keys`,
  `--relay-key`) gets its device onto the relay, with frames (for a client of the relay whose
  key it allows: --secure secures the relay's own endpoints too); one with another key and one
  without CURVE are kept out.

Usage: test_push_cli.py /path/to/sk2
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import zmq

import cliutil as cu

SK2, TMP = cu.setup("push")
check = cu.check


def start_relay(push_port, port, *extra):
    # Its output goes to a file nobody has to read for it to go on logging.
    with open(cu.path(f"relay-{time.monotonic_ns()}.out"), "w") as out:
        return subprocess.Popen([SK2, "relay", "--accept-push", f"127.0.0.1:{push_port}",
                                 "--port", str(port), "--no-announce", "-v", *extra],
                                stdout=out, stderr=subprocess.STDOUT, text=True)


# (our public key, our secret key, the relay's public key) once the relay is secure: a secure
# relay answers only CURVE clients whose key it allows.
CURVE_KEYS = None


def zcert_keys(path):
    """The Z85 keys a zcert file (sk2 keygen) holds: {"public-key": ..., "secret-key": ...}."""
    with open(path) as f:
        return dict(re.findall(r'(public-key|secret-key) = "(\S{40})"', f.read()))


def request(endpoint, type_byte):
    with zmq.Context() as ctx:
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        if CURVE_KEYS:
            s.curve_publickey, s.curve_secretkey, s.curve_serverkey = CURVE_KEYS
        s.connect(endpoint)
        try:
            s.send(type_byte)
            return s.recv_multipart() if s.poll(5000) else None
        finally:
            s.close()


def stats(endpoint):
    reply = request(endpoint, b"\x05")
    return json.loads(reply[1]) if reply and reply[0] == b"\x06" else None


def device_ids(endpoint):
    reply = request(endpoint, b"\x03")
    if not reply or reply[0] != b"\x04":
        return None
    return sorted(d["id"] for d in json.loads(reply[1])["devices"])


def wait_devices(endpoint, want, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    ids = None
    while time.monotonic() < deadline:
        ids = device_ids(endpoint)
        if ids == want:
            return ids
        time.sleep(0.2)
    return ids


def served_id(server_proc_stdout_file):
    """The device id a `sk2 serve` printed ("sk2 serve: device ID (mock, ...)")."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(server_proc_stdout_file) as f:
            found = re.search(r"device ([0-9a-f]{32}) \(mock", f.read())
        if found:
            return found.group(1)
        time.sleep(0.05)
    return None


def start_pusher(push_port, tag, *extra, name="camera host"):
    out_path = cu.path(f"serve-{tag}.out")
    out = open(out_path, "w")
    proc = subprocess.Popen([SK2, "serve", "--mock", "1", "--fps", "30", "--no-status",
                             "--no-announce", "--bind", "127.0.0.1", "--name", name,
                             "--push", f"127.0.0.1:{push_port}", *extra],
                            stdout=out, stderr=subprocess.STDOUT, text=True)
    out.close()
    return proc, served_id(out_path), out_path


# Bad command lines change nothing and say why.
out = cu.run("serve", "--mock", "1", "--push", "127.0.0.1:1", "--secure", "--keys", TMP,
             "--allow", TMP)
check("sk2 serve --push with --secure but no --relay-key is refused",
      out.returncode == 2 and "--relay-key" in out.stderr, out.stderr)
out = cu.run("serve", "--mock", "1", "--push", "", "--no-announce")
check("sk2 serve --push '' is a usage error", out.returncode == 2, out.stderr)
out = cu.run("relay", "--accept-push", "127.0.0.1", "--no-announce")
check("sk2 relay --accept-push without a port is a usage error",
      out.returncode == 2 and "ADDR:PORT" in out.stderr, out.stderr)
out = cu.run("relay", "--accept-push", "127.0.0.1:0", "--no-announce")
check("sk2 relay --accept-push port 0 is a usage error", out.returncode == 2, out.stderr)

push_port, relay_port = cu.free_port(), cu.free_port()
relay_ep = f"tcp://127.0.0.1:{relay_port}"
relay = start_relay(push_port, relay_port)
pusher, device, pusher_out = start_pusher(push_port, "first")
procs = [relay, pusher]
try:
    check("the camera host serves a mock device", device is not None, open(pusher_out).read())
    check("the relay lists the pushed device", wait_devices(relay_ep, [device]) == [device],
          device_ids(relay_ep))
    with open(pusher_out) as f:
        control = re.search(r"control endpoint (tcp://\S+)", f.read()).group(1)
    time.sleep(1.5)
    totals = (stats(control) or {}).get("totals", {})
    check("nothing is encoded while no client of the relay subscribes",
          totals.get("frames_produced", 0) > 0 and totals.get("frames_encoded") == 0, totals)

    out = cu.run("stream", relay_ep, "--stream", "depth:rvl", "--frames", "30", "--check-mock",
                 "--no-status", "--json", timeout=60)
    summary = json.loads(out.stdout) if out.returncode == 0 else {}
    check("sk2 stream depth:rvl --check-mock through the relay", out.returncode == 0 and
          summary.get("frames", 0) >= 30 and summary.get("mismatches") == 0
          and summary.get("rejected") == 0, out.stdout + out.stderr)
    out = cu.run("stream", relay_ep, "--frames", "20", "--check-mock", "--no-status", timeout=60)
    check("the version-1 depth endpoint through the relay has the mock scene",
          out.returncode == 0, out.stdout + out.stderr)

    totals = (stats(control) or {}).get("totals", {})
    check("the server encodes once a client of the relay subscribes",
          totals.get("frames_encoded", 0) >= 30, totals)
    relay_stats = (stats(relay_ep) or {}).get("relay", {})
    pushers = relay_stats.get("pushers", [])
    check("the relay's stats list the pusher as live",
          [(p.get("name"), p.get("state")) for p in pushers] == [("camera host", "live")]
          and relay_stats.get("frames_forwarded", 0) >= 50, relay_stats)

    # The relay restarts on the same ports while a client streams through it.
    client = subprocess.Popen([SK2, "stream", relay_ep, "--stream", "depth:rvl", "--check-mock",
                               "--seconds", "25", "--no-status", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    relay.kill()
    relay.wait()
    time.sleep(1)
    relay = start_relay(push_port, relay_port)
    procs.append(relay)
    check("the pusher links to the restarted relay and its device is back",
          wait_devices(relay_ep, [device]) == [device], device_ids(relay_ep))
    client_out, client_err = client.communicate(timeout=90)
    summary = json.loads(client_out) if client.returncode == 0 else {}
    outages = summary.get("outage_list", [])
    check("the client of the relay gets frames again after the relay restarted",
          client.returncode == 0 and len(outages) >= 1 and summary.get("mismatches") == 0
          and summary.get("frames", 0) > outages[-1].get("frames_before", 0) + 30,
          client_out + client_err[-2000:])
    with open(pusher_out) as f:
        text = f.read()
    check("the camera host reports the lost link and its return",
          "link to relay" in text and "lost" in text and "is back" in text, text[-2000:])

    # The camera host restarts: its device leaves downstream and (as a new one) returns.
    pusher.kill()
    pusher.wait()
    check("the killed camera host's device leaves the relay",
          wait_devices(relay_ep, []) == [], device_ids(relay_ep))
    relay_stats = (stats(relay_ep) or {}).get("relay", {})
    check("the relay's stats show the pusher lost",
          [p.get("state") for p in relay_stats.get("pushers", [])] == ["lost"], relay_stats)
    pusher, device, pusher_out = start_pusher(push_port, "second")
    procs.append(pusher)
    check("the restarted camera host's device comes to the relay",
          device is not None and wait_devices(relay_ep, [device]) == [device],
          device_ids(relay_ep))
    out = cu.run("stream", relay_ep, "--stream", "depth:rvl", "--frames", "20", "--check-mock",
                 "--no-status", timeout=60)
    check("frames of the restarted camera host through the relay", out.returncode == 0,
          out.stdout + out.stderr)
    relay_stats = (stats(relay_ep) or {}).get("relay", {})
    # At least its second link: on a slow machine (a sanitizer build) a link may time out and
    # be made again, which is what links are for.
    check("the relay's stats show the pusher live on its second link or later",
          [(p.get("state"), p.get("sessions", 0) >= 2) for p in relay_stats.get("pushers", [])]
          == [("live", True)], relay_stats)

    # A camera host that stops cleanly says goodbye: its device leaves at once.
    status, _, _ = cu.stop(pusher)
    check("the camera host exits 0 on SIGINT", status == 0, status)
    check("its device leaves the relay", wait_devices(relay_ep, [], 30) == [],
          device_ids(relay_ep))
    # Said goodbye, rather than fell silent: the relay says why it lost the pusher.
    relay_stats = (stats(relay_ep) or {}).get("relay", {})
    check("the relay lost the pusher because it said goodbye",
          [p.get("lost_because") for p in relay_stats.get("pushers", [])] ==
          ["it said goodbye"], relay_stats)
    status, _, _ = cu.stop(relay)
    check("the relay exits 0 on SIGINT", status == 0, status)
finally:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

# CURVE on the push port: only a pusher whose key the relay allows gets in.
for who in ("relay", "trusted", "stranger"):
    cu.run("keygen", cu.path(who), "--name", who)
os.makedirs(cu.path("allow"))
with open(cu.path("trusted/trusted.key")) as f, open(cu.path("allow/trusted.key"), "w") as g:
    g.write(f.read())
# --secure now secures the relay's own endpoints too (tests/cli/test_relay_curve_cli.py), so it
# no longer needs --accept-push; --allow without it still makes no sense.
out = cu.run("relay", "--keys", cu.path("relay"), "--allow", cu.path("allow"),
             "tcp://127.0.0.1:1", "--no-announce")
check("sk2 relay --allow without --secure is a usage error", out.returncode == 2, out.stderr)
out = cu.run("serve", "--mock", "1", "--push", "127.0.0.1:1", "--push-keys",
             cu.path("trusted"), "--no-announce")
check("sk2 serve --push-keys without --relay-key is a usage error", out.returncode == 2,
      out.stderr)
push_port, relay_port = cu.free_port(), cu.free_port()
relay_ep = f"tcp://127.0.0.1:{relay_port}"
relay = start_relay(push_port, relay_port, "--secure", "--keys", cu.path("relay"), "--allow",
                    cu.path("allow"))
procs = [relay]
try:
    relay_key = cu.path("relay/relay.key")
    trusted = zcert_keys(cu.path("trusted/trusted.key_secret"))
    CURVE_KEYS = (trusted["public-key"].encode(), trusted["secret-key"].encode(),
                  zcert_keys(relay_key)["public-key"].encode())
    trusted, trusted_id, _ = start_pusher(push_port, "trusted", "--push-keys",
                                          cu.path("trusted"), "--relay-key", relay_key,
                                          name="trusted")
    procs.append(trusted)
    stranger, stranger_id, _ = start_pusher(push_port, "stranger", "--push-keys",
                                            cu.path("stranger"), "--relay-key", relay_key,
                                            name="stranger")
    procs.append(stranger)
    plain, plain_id, _ = start_pusher(push_port, "plain", name="plain")
    procs.append(plain)
    check("the allowed pusher's device reaches the secure relay",
          trusted_id is not None and wait_devices(relay_ep, [trusted_id]) == [trusted_id],
          device_ids(relay_ep))
    time.sleep(4)  # time enough for the others to link, were they let in
    check("a pusher with a key not allowed, and one without CURVE, are kept out",
          device_ids(relay_ep) == [trusted_id] and
          [p.get("name") for p in (stats(relay_ep) or {}).get("relay", {}).get("pushers", [])]
          == ["trusted"], (device_ids(relay_ep), stats(relay_ep)))
    out = cu.run("stream", relay_ep, "--stream", "depth:rvl", "--frames", "20", "--check-mock",
                 "--no-status", "--keys", cu.path("trusted"), "--server-key", relay_key,
                 timeout=60)
    check("mock frames over the CURVE push link", out.returncode == 0, out.stdout + out.stderr)
finally:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

sys.exit(cu.summary())
