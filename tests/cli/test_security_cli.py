#!/usr/bin/env python3
"""CURVE security from the command line (docs/security.md):

1. `sk2 keygen DIR` writes NAME.key and NAME.key_secret (0600), prints the public key, and
   refuses to overwrite them without --force.
2. `sk2 serve --secure --keys DIR --allow DIR` + `sk2 stream --keys DIR --server-key FILE`:
   frames arrive, over v1 depth and the streams endpoint.
3. A client whose key is not allowed: a clear error, a non-zero exit, no frames; the server
   logs the refused key. A wrong --server-key: the same, saying so. A plain client: nothing.
4. SIGHUP makes the server read the allow folder again: the refused client gets in.
5. A secure client rides out a restart of a secure server.
6. `sk2 serve --secure --http`: the server's own gateway connects with the server's key pair
   (always allowed by its ZAP handler) and serves the page's frames.
7. A plain server bound to anything but loopback warns on stderr what it exposes (in a
   private network namespace, so that nothing is reachable from outside); a loopback one
   does not.

Usage: test_security_cli.py /path/to/sk2
"""
import json
import time
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import cliutil as cu

SK2, TMP = cu.setup("security")


def keygen(folder, name):
    result = cu.run("keygen", cu.path(folder), "--name", name)
    return result


# 1. keygen
made = keygen("server", "server")
cu.check("keygen exits 0 and prints a 40-character key",
         made.returncode == 0 and re.fullmatch(r"\S{40}\n", made.stdout),
         f"{made.returncode} {made.stdout!r} {made.stderr}")
server_key = made.stdout.strip()
secret = cu.path("server/server.key_secret")
public = cu.path("server/server.key")
cu.check("keygen writes the secret key with mode 0600",
         os.path.exists(secret) and stat.S_IMODE(os.stat(secret).st_mode) == 0o600)
cu.check("keygen writes the public certificate holding the printed key",
         os.path.exists(public) and server_key in open(public).read())
before = open(secret).read()
again = keygen("server", "server")
cu.check("keygen refuses to overwrite a key pair (exit 2, says --force)",
         again.returncode == 2 and "--force" in again.stderr and open(secret).read() == before,
         f"{again.returncode} {again.stderr}")
forced = cu.run("keygen", cu.path("server"), "--name", "spare", "--force")
cu.check("keygen --force on a new name just writes it", forced.returncode == 0, forced.stderr)
bad = cu.run("keygen", cu.path("server"), "--name", "../escape")
cu.check("keygen refuses a name with a slash (exit 2)", bad.returncode == 2, bad.stderr)
os.remove(cu.path("server/spare.key"))
os.remove(cu.path("server/spare.key_secret"))

client_key = keygen("client", "client").stdout.strip()
stranger_key = keygen("stranger", "stranger").stdout.strip()
os.makedirs(cu.path("allow"))
shutil.copy(cu.path("client/client.key"), cu.path("allow/client.key"))

usage = cu.run("serve", "--secure", "--keys", cu.path("server"))
cu.check("serve --secure without --allow is a usage error", usage.returncode == 2, usage.stderr)

# 2. an allowed client gets frames
proc, endpoint, _ = cu.start_server("--mock", "1", "--secure", "--keys", cu.path("server"),
                                    "--allow", cu.path("allow"))
ok = cu.run("stream", endpoint, "--keys", cu.path("client"), "--server-key", public, "--frames",
            "5", "--timeout", "20000", "--json")
cu.check("stream --keys --server-key FILE receives v1 frames from a secure server",
         ok.returncode == 0 and '"frames":5' in ok.stdout.replace(" ", ""),
         f"{ok.returncode} {ok.stdout[-300:]} {ok.stderr}")
ok = cu.run("stream", endpoint, "--keys", cu.path("client/client.key_secret"), "--server-key",
            server_key, "--stream", "depth:rvl", "--frames", "5", "--timeout", "20000")
cu.check("stream --server-key KEY receives streams frames too", ok.returncode == 0,
         f"{ok.returncode} {ok.stderr}")
info = cu.run("info", endpoint, "--keys", cu.path("client"), "--server-key", server_key)
cu.check("info shows the server key", info.returncode == 0 and server_key in info.stdout,
         info.stdout + info.stderr)

# 3. refused
refused = cu.run("stream", endpoint, "--keys", cu.path("stranger"), "--server-key", server_key,
                 "--frames", "5", "--timeout", "30000")
cu.check("an unknown key: non-zero exit, says the key was refused",
         refused.returncode != 0 and "refused this client's key" in refused.stderr,
         f"{refused.returncode} {refused.stderr}")
cu.check("an unknown key gets no frames",
         re.search(r"^sk2 stream: 0 frames", refused.stdout, re.M) is not None, refused.stdout)
wrong = cu.run("stream", endpoint, "--keys", cu.path("client"), "--server-key", stranger_key,
               "--frames", "5", "--timeout", "30000")
cu.check("a wrong --server-key: non-zero exit naming --server-key",
         wrong.returncode != 0 and "--server-key" in wrong.stderr and
         re.search(r"^sk2 stream: 0 frames", wrong.stdout, re.M) is not None,
         f"{wrong.returncode} {wrong.stderr}")
plain = cu.run("stream", endpoint, "--frames", "5", "--timeout", "3000")
cu.check("a plain client gets no frames from a secure server (times out, exit 3)",
         plain.returncode == 3 and re.search(r"^sk2 stream: 0 frames", plain.stdout, re.M),
         f"{plain.returncode} {plain.stderr}")

# 4. SIGHUP
shutil.copy(cu.path("stranger/stranger.key"), cu.path("allow/stranger.key"))
proc.send_signal(signal.SIGHUP)
let_in = None
for _ in range(20):  # the reload is asynchronous to us: try until it has happened
    let_in = cu.run("stream", endpoint, "--keys", cu.path("stranger"), "--server-key",
                    server_key, "--frames", "3", "--timeout", "20000")
    if let_in.returncode == 0:
        break
cu.check("after SIGHUP the newly allowed key gets frames", let_in.returncode == 0,
         let_in.stderr)
status, out, err = cu.stop(proc)
cu.check("the secure server says its key, logs the refused one and the reload",
         server_key in out and stranger_key in err and "read again: 2 client keys" in out,
         out + err)

# 5. a secure client rides out a restart of a secure server (on the same port): the handshake
# watch hands the control socket over to the reconnection's monitor, and the new connection is
# secure again.
port = cu.free_port()
secure_args = ("--mock", "1", "--secure", "--keys", cu.path("server"), "--allow", cu.path("allow"),
               "--port", str(port))
proc, endpoint, _ = cu.start_server(*secure_args)
stream = subprocess.Popen([SK2, "stream", endpoint, "--keys", cu.path("client"), "--server-key",
                           public, "--seconds", "25", "--json", "--no-status"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(4)
proc.kill()
proc.communicate()
time.sleep(3)
proc, endpoint, _ = cu.start_server(*secure_args)
out, err = stream.communicate(timeout=90)
cu.stop(proc)
summary = json.loads(out) if stream.returncode == 0 and out.strip() else {}
cu.check("a secure stream survives a server restart: one outage, frames on both sides",
         summary.get("outages") == 1 and summary.get("frames", 0) > 0 and
         "back after" in err and summary.get("outage_list", [{}])[0].get("frames_before", 0) > 0
         and summary["frames"] > summary["outage_list"][0]["frames_before"],
         f"exit {stream.returncode}: {out} {err}")

# 6. a secure server's own gateway: the devices and a lossless frame over HTTP, through CURVE.
http_port = cu.free_port()
proc, endpoint, _ = cu.start_server("--mock", "1", "--secure", "--keys", cu.path("server"),
                                    "--allow", cu.path("allow"), "--http",
                                    f"127.0.0.1:{http_port}")
base = f"http://127.0.0.1:{http_port}/api"
devices, png = [], b""
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not png.startswith(b"\x89PNG"):
    try:
        if not devices:
            with urllib.request.urlopen(base + "/devices", timeout=10) as answer:
                devices = json.load(answer)["devices"]
        if devices:
            with urllib.request.urlopen(f"{base}/devices/{devices[0]['key']}/depth/latest.png",
                                        timeout=10) as answer:
                png = answer.read()
    except (urllib.error.URLError, OSError, ValueError):
        pass
    if not png.startswith(b"\x89PNG"):
        time.sleep(0.2)
_, out, err = cu.stop(proc)
cu.check("serve --secure --http: the gateway sees the device and serves a depth PNG",
         len(devices) == 1 and png.startswith(b"\x89PNG") and len(png) > 1000,
         f"{devices} {len(png)} bytes; {err[-2000:]}")
cu.check("serve --secure --http: the server refused no key (its own is allowed)",
         "refused client key" not in err, err[-2000:])

# 7. the warning
proc, endpoint, _ = cu.start_server("--mock", "0")
_, out, err = cu.stop(proc)
cu.check("a plain server on loopback does not warn", "WARNING" not in err, err)
if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"]).returncode == 0:
    # In a namespace of its own the wildcard reaches only its own loopback.
    script = (f"ip link set lo up; timeout -s INT 3 {SK2} serve --bind '*' --mock 0 --no-status "
              f"--no-announce; true")
    ns = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True,
                        text=True, timeout=60)
    cu.check("a plain server bound to '*' warns that anyone can read frames and send control",
             "WARNING" in ns.stderr and "read every frame" in ns.stderr and
             "control messages" in ns.stderr, ns.stderr)
else:
    print("SKIP the '*' warning: cannot make a private network namespace here")

sys.exit(cu.summary())
