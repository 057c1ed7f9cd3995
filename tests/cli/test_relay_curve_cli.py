#!/usr/bin/env python3
"""CURVE through relays and push links (docs/security.md "Relays and push"):

1. `sk2 serve --secure` -> `sk2 relay --keys --server-key --secure --allow` -> `sk2 stream
   --keys --server-key --check-mock`: an allowed client of the relay gets mock frames, over the
   sk2 streams endpoint and the version-1 depth endpoint (the relay follows a secure upstream,
   and serves its devices securely);
2. a client whose key the relay does not allow, and a plain client, get nothing from the
   relay: a non-zero exit and 0 frames; the relay logs the refused key;
3. a secure camera host (`sk2 serve --secure --push --relay-key`, its own key pair on the
   link) pushes to the same secure relay: its device appears in the relay's `me` (asked
   securely) and an allowed client gets its mock frames;
4. bad command lines are refused with exit 2 (--server-key without --keys, a --server-key
   count that matches neither one nor the SERVERs, --secure --push without --relay-key).

On the code before this change (1) and (3) fail: the relay refused a secure upstream
("cannot relay ... a secure server cannot be relayed yet", exit 1), `sk2 relay --secure`
needed --accept-push and left the relay's own endpoints plain, and `sk2 serve --secure --push`
was a usage error. (2) fails too, since the plain client got the relay's `me` and frames.

Usage: test_relay_curve_cli.py /path/to/sk2
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cliutil as cu

SK2, TMP = cu.setup("relay-curve")
check = cu.check


def keygen(name):
    made = cu.run("keygen", cu.path(name), "--name", name)
    if made.returncode != 0:
        raise RuntimeError(made.stderr)
    return made.stdout.strip()


def allow(folder, *names):
    os.makedirs(cu.path(folder), exist_ok=True)
    for name in names:
        shutil.copy(cu.path(f"{name}/{name}.key"), cu.path(f"{folder}/{name}.key"))


def start_relay(*args, wait_s=20):
    endpoint_file = cu.path(f"relay-endpoint-{time.monotonic_ns()}")
    log = open(cu.path("relay.log"), "w")
    proc = subprocess.Popen([SK2, "relay", "--bind", "127.0.0.1", "--no-announce", "-v",
                             "--endpoint-file", endpoint_file, *args],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    log.close()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(endpoint_file):
            with open(endpoint_file) as f:
                endpoint = f.read().strip()
            if endpoint:
                return proc, endpoint
        time.sleep(0.05)
    return proc, None


def relay_log():
    with open(cu.path("relay.log")) as f:
        return f.read()


def frames_of(result):
    found = re.search(r"^sk2 stream: (\d+) frames", result.stdout, re.M)
    return int(found.group(1)) if found else None


def served_id(out_path):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(out_path) as f:
            found = re.search(r"device ([0-9a-f]{32}) \(mock", f.read())
        if found:
            return found.group(1)
        time.sleep(0.05)
    return None


def relay_devices(endpoint, *keys):
    info = cu.run("info", endpoint, "--json", "--timeout", "5000", *keys)
    return sorted(re.findall(r'"id"\s*:\s*"([0-9a-f]{32})"', info.stdout))


keys = {who: keygen(who) for who in ("server", "relay", "client", "stranger", "camera")}
stranger_key = keys["stranger"]
allow("server-allow", "relay")            # the server lets the relay in
allow("relay-allow", "client", "camera")  # the relay lets the client and the pusher in
os.makedirs(cu.path("camera-allow"))      # the camera host lets nobody else in
relay_key = cu.path("relay/relay.key")
client_keys = ["--keys", cu.path("client"), "--server-key", relay_key]

# 4. usage errors
out = cu.run("relay", "127.0.0.1:1", "--server-key", relay_key, "--no-announce")
check("sk2 relay --server-key without --keys is a usage error", out.returncode == 2, out.stderr)
out = cu.run("relay", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "--keys", cu.path("relay"),
             "--server-key", relay_key, "--server-key", relay_key, "--no-announce")
check("sk2 relay with 2 --server-key for 3 SERVERs is a usage error", out.returncode == 2,
      out.stderr)
out = cu.run("serve", "--mock", "1", "--secure", "--keys", cu.path("camera"), "--allow",
             cu.path("camera-allow"), "--push", "127.0.0.1:1", "--no-announce")
check("sk2 serve --secure --push without --relay-key is a usage error",
      out.returncode == 2 and "--relay-key" in out.stderr, out.stderr)

procs = []
try:
    server, server_ep, _ = cu.start_server("--mock", "1", "--fps", "30", "--secure", "--keys",
                                           cu.path("server"), "--allow",
                                           cu.path("server-allow"))
    procs.append(server)
    server_id = None
    push_port = cu.free_port()
    relay, relay_ep = start_relay(server_ep, "--keys", cu.path("relay"), "--server-key",
                                  cu.path("server/server.key"), "--secure", "--allow",
                                  cu.path("relay-allow"), "--accept-push",
                                  f"127.0.0.1:{push_port}")
    procs.append(relay)
    check("a secure relay follows a secure server (starts, writes its endpoint)",
          relay_ep is not None and relay.poll() is None, relay_log()[-2000:])
    relay_ep = relay_ep or "tcp://127.0.0.1:1"

    # 1. an allowed client through the relay
    devices = relay_devices(relay_ep, *client_keys)
    check("an allowed client sees the server's device in the relay's me", len(devices) == 1,
          devices)
    ok = cu.run("stream", relay_ep, *client_keys, "--stream", "depth:rvl", "--frames", "20",
                "--check-mock", "--no-status", "--timeout", "20000", timeout=90)
    check("an allowed client gets mock frames (streams endpoint) through the secure relay",
          ok.returncode == 0 and frames_of(ok) == 20, f"{ok.returncode} {ok.stdout} {ok.stderr}")
    ok = cu.run("stream", relay_ep, *client_keys, "--frames", "10", "--check-mock",
                "--no-status", "--timeout", "20000", timeout=90)
    check("... and over the version-1 depth endpoint",
          ok.returncode == 0 and frames_of(ok) == 10, f"{ok.returncode} {ok.stdout} {ok.stderr}")

    # 2. a key not allowed, and no key at all
    refused = cu.run("stream", relay_ep, "--keys", cu.path("stranger"), "--server-key",
                     relay_key, "--frames", "5", "--no-status", "--timeout", "5000", timeout=60)
    check("a key the relay does not allow: non-zero exit, refused, 0 frames",
          refused.returncode != 0 and "refused this client's key" in refused.stderr and
          frames_of(refused) == 0, f"{refused.returncode} {refused.stdout} {refused.stderr}")
    plain = cu.run("stream", relay_ep, "--frames", "5", "--no-status", "--timeout", "3000",
                   timeout=60)
    check("a plain client gets nothing from the secure relay (exit 3, 0 frames)",
          plain.returncode == 3 and frames_of(plain) == 0,
          f"{plain.returncode} {plain.stdout} {plain.stderr}")
    plain_info = cu.run("info", relay_ep, "--timeout", "2000")
    check("a plain client gets no me from the secure relay", plain_info.returncode != 0 and
          "devices" not in plain_info.stdout, plain_info.stdout + plain_info.stderr)
    check("the relay logs the refused key", f"refused client key {stranger_key}" in relay_log(),
          relay_log()[-2000:])

    # 3. a secure camera host pushing to the secure relay
    out_path = cu.path("camera.out")
    with open(out_path, "w") as out:
        camera = subprocess.Popen([SK2, "serve", "--mock", "1", "--fps", "30", "--no-status",
                                   "--no-announce", "--bind", "127.0.0.1", "--name", "camera",
                                   "--secure", "--keys", cu.path("camera"), "--allow",
                                   cu.path("camera-allow"), "--push", f"127.0.0.1:{push_port}",
                                   "--relay-key", relay_key],
                                  stdout=out, stderr=subprocess.STDOUT, text=True)
    procs.append(camera)
    camera_id = served_id(out_path)
    deadline = time.monotonic() + 30
    devices = []
    while time.monotonic() < deadline:
        devices = relay_devices(relay_ep, *client_keys)
        if camera_id in devices:
            break
        time.sleep(0.3)
    check("a secure camera host's pushed device reaches the secure relay",
          camera_id is not None and camera_id in devices and len(devices) == 2,
          (camera_id, devices, open(out_path).read()[-1500:]))
    ok = cu.run("stream", relay_ep, *client_keys, "--device", camera_id or "0" * 32, "--stream",
                "depth:rvl", "--frames", "20", "--check-mock", "--no-status", "--timeout",
                "20000", timeout=90)
    check("an allowed client gets the pushed secure server's mock frames",
          ok.returncode == 0 and frames_of(ok) == 20, f"{ok.returncode} {ok.stdout} {ok.stderr}")
    status, _, _ = cu.stop(camera)
    check("the secure camera host exits 0 on SIGINT", status == 0, status)
    status, _, _ = cu.stop(relay)
    check("the secure relay exits 0 on SIGINT", status == 0, status)
    status, _, _ = cu.stop(server)
    check("the secure server exits 0 on SIGINT", status == 0, status)
finally:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

sys.exit(cu.summary())
