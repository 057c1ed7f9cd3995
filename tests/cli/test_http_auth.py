#!/usr/bin/env python3
"""The gateway's access token (issue 12), with `sk2 serve --mock 1 --http ...`:

1. An address other than loopback without --http-token or --http-insecure: refused (exit 1,
   the message names both options); a malformed token is a usage error (exit 2). Nothing is
   bound in either case (the refusals are checked before anything listens; should that ever
   break, the short timeout kills the open gateway within 10 s).
2. --http-token auto on loopback: the printed URL carries a 32-hex-digit token. Without it,
   every resource (page, API, image, WebSocket handshake) is 401 and the body holds no device
   id; with ?token= the answer is 200 and sets the cookie; the cookie alone and
   Authorization: Bearer each let a request in; a wrong token, a token one character short,
   and the cookie of another port do not.
3. Loopback without a token still serves everyone (as before); an explicit --http-token on
   loopback is enforced.

Usage: test_http_auth.py /path/to/sk2
"""
import base64
import http.client
import os
import re
import socket
import subprocess
import sys
import time

import cliutil as cu

SK2, TMP = cu.setup("http-auth")
check = cu.check


def request(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def ws_status(port, path="/ws", headers=""):
    """The status code of a WebSocket handshake on path."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sk2-view\r\n"
                   f"{headers}\r\n").encode())
        head = s.recv(4096)
        m = re.match(rb"HTTP/1\.[01] (\d+)", head)
        return int(m.group(1)) if m else None


def start(*http_args):
    """sk2 serve with a gateway; returns (process, http port, stdout line with the URL)."""
    port = cu.free_port()
    proc, _, _ = cu.start_server("--mock", "1", "--fps", "10", "--http", f"127.0.0.1:{port}",
                                 *http_args)
    deadline = time.monotonic() + 10
    line = ""
    while time.monotonic() < deadline and "web viewer" not in line:
        line = proc.stdout.readline()
    return proc, port, line


def wait_device(port, headers):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, body = request(port, "/api/devices", headers)
        if status == 200 and b'"id"' in body:
            return body
        time.sleep(0.1)
    return b""


# 1. Refusals.
port = cu.free_port()
r = cu.run("serve", "--mock", "1", "--no-announce", "--no-status", "--http", f"0.0.0.0:{port}",
           timeout=10)
check("0.0.0.0 without a token is refused (exit 1)", r.returncode == 1, r.stderr)
check("the refusal names --http-token and --http-insecure",
      "--http-token" in r.stderr and "--http-insecure" in r.stderr, r.stderr)
r = cu.run("view", "127.0.0.2:1", "--no-status", "--http", f"[::]:{port}", timeout=10)
check("sk2 view on :: without a token is refused (exit 1)",
      r.returncode == 1 and "--http-insecure" in r.stderr, f"{r.returncode} {r.stderr}")
for bad in ("short", "x" * 129, "has space in it 12345", "ünïcödé-token-123456"):
    r = cu.run("serve", "--mock", "1", "--no-announce", "--http", f"127.0.0.1:{port}",
               "--http-token", bad, timeout=30)
    check(f"--http-token {bad[:20]!r} is a usage error", r.returncode == 2, r.stderr)
r = cu.run("serve", "--mock", "1", "--no-announce", "--http-token", "auto", timeout=30)
check("--http-token without --http is a usage error", r.returncode == 2, r.stderr)

# 2. A generated token.
proc, port, line = start("--http-token", "auto")
try:
    m = re.search(r"web viewer (http://127\.0\.0\.1:\d+/)\?token=([0-9a-f]{32})$", line.strip())
    check("the printed URL carries a 128-bit token", m is not None, line)
    token = m.group(2) if m else "0" * 32
    body = wait_device(port, {"Authorization": f"Bearer {token}"})
    check("Authorization: Bearer TOKEN is let in", b'"id"' in body)
    device_id = re.search(rb'"id":"([0-9a-f]+)"', body).group(1) if body else b"none"

    for path in ("/", "/index.html", "/app.js", "/api", "/api/devices", "/api/stats",
                 f"/api/devices/{device_id.decode()}", "/api/devices/x/depth/latest.png",
                 "/nonexistent"):
        status, headers, body = request(port, path)
        check(f"{path} without the token: 401, no data",
              status == 401 and device_id not in body and b"<html" not in body.lower()
              and "set-cookie" not in {k.lower() for k in headers}, f"{status} {body[:80]!r}")
    check("a WebSocket handshake without the token: 401", ws_status(port) == 401)
    wrong = ("f" if token[0] != "f" else "e") + token[1:]
    for label, headers in (("a wrong Bearer token", {"Authorization": f"Bearer {wrong}"}),
                           ("a token one character short", {"Authorization": f"Bearer {token[:-1]}"}),
                           ("a token with one more character",
                            {"Authorization": f"Bearer {token}0"}),
                           ("Basic instead of Bearer", {"Authorization": f"Basic {token}"}),
                           ("the cookie of another port",
                            {"Cookie": f"sk2_token_{port + 1}={token}"}),
                           ("a wrong cookie", {"Cookie": f"sk2_token_{port}={wrong}"})):
        status, _, body = request(port, "/api/devices", headers)
        check(f"{label}: 401", status == 401 and device_id not in body, f"{status}")
    status, _, body = request(port, f"/api/devices?token={wrong}")
    check("a wrong ?token=: 401", status == 401 and device_id not in body, f"{status}")

    status, headers, body = request(port, f"/?token={token}")
    cookie = {k.lower(): v for k, v in headers.items()}.get("set-cookie", "")
    check("/?token=TOKEN serves the page and sets the cookie",
          status == 200 and b"<html" in body.lower() and
          cookie.startswith(f"sk2_token_{port}={token};") and "HttpOnly" in cookie and
          "SameSite=Strict" in cookie, f"{status} {cookie}")
    status, _, body = request(port, "/api/devices", {"Cookie": f"other=1; sk2_token_{port}={token}"})
    check("the cookie alone lets the API in", status == 200 and device_id in body, f"{status}")
    status, _, _ = request(port, "/app.js", {"Cookie": f"sk2_token_{port}={token}"})
    check("the cookie alone lets the page's script in", status == 200, f"{status}")
    check("a WebSocket handshake with the cookie: 101",
          ws_status(port, headers=f"Cookie: sk2_token_{port}={token}\r\n") == 101)
    check("a WebSocket handshake with ?token=: 101", ws_status(port, f"/ws?token={token}") == 101)
finally:
    cu.stop(proc)

# 3. Loopback without a token: open as before; an explicit token on loopback is enforced.
proc, port, line = start()
try:
    check("loopback without a token serves the API to anyone",
          b'"id"' in wait_device(port, {}), line)
finally:
    cu.stop(proc)
explicit = "my-rig_token.0123456789~"
proc, port, line = start("--http-token", explicit)
try:
    check("an explicit token is not printed", explicit not in line, line)
    status, _, _ = request(port, "/api/devices")
    check("an explicit token on loopback is enforced", status == 401, f"{status}")
    check("and lets in who has it",
          b'"id"' in wait_device(port, {"Authorization": f"Bearer {explicit}"}))
finally:
    cu.stop(proc)

sys.exit(cu.summary())
