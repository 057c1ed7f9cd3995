#!/usr/bin/env python3
"""Keyed commands through the web gateway's WebSocket (docs/http-api.md, "Keyed commands").

Against `sk2 serve --mock 1 --http 127.0.0.1:0` (the server and its gateway in one process),
with a WebSocket client in the standard library (bench/ws_client.py):
- a label set with {"type": "command"} is answered ok with the value applied, and the
  server's own `me` (`sk2 info ENDPOINT --json`) shows it;
- an unknown key gets the server's refusal (code unknown-key, its text naming the key);
- `list` answers with the device's keys, saying which are settable;
- text that is not JSON gets an error message, and malformed commands (no ref, a value that
  is an object, a key too long, an unknown device) get a command-done with ok false and
  change nothing (the label is unchanged, the socket stays open and still works);
- a burst of 20 commands on one socket: each is answered exactly once, and those beyond the
  4 in flight are refused as busy;
- POST /api/devices/{key}/command answers when done (200 applied, 422 refused by the server,
  400/404/413 for what the gateway refuses itself), and takes the token like any request;
- the answer goes only to the socket that sent the command, and the answers of sockets that
  closed are dropped without holding the gateway's command table.

usage: test_ws_command.py SK2_BINARY
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from ws_client import WsClient  # noqa: E402

SK2 = sys.argv[1] if len(sys.argv) > 1 else "build/tools/sk2"
PASSED, FAILED = [], []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    (PASSED if ok else FAILED).append(what)


def start_server():
    proc = subprocess.Popen([SK2, "serve", "--mock", "1", "--no-announce", "--no-status",
                             "--http", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    endpoint = url = None
    deadline = time.time() + 15
    lines = []
    while time.time() < deadline and not (endpoint and url):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"control endpoint (tcp://\S+)", line)
        endpoint = m.group(1) if m else endpoint
        m = re.search(r"web viewer (http://\S+)", line)
        url = m.group(1) if m else url
    if not (endpoint and url):
        proc.kill()
        raise RuntimeError(f"server did not start: {lines} {proc.stderr.read()}")
    return proc, endpoint, int(url.rstrip("/").rsplit(":", 1)[1])


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


def devices(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/devices", timeout=10) as r:
        return json.loads(r.read())["devices"]


def server_me_device(endpoint):
    out = subprocess.run([SK2, "info", endpoint, "--json"], capture_output=True, text=True,
                         timeout=20)
    devs = json.loads(out.stdout).get("devices") or []
    return devs[0] if devs else {}


def server_label(endpoint):
    return server_me_device(endpoint).get("label")


def post(port, path, body, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, {"raw": data[:200]}
    finally:
        conn.close()


def test_http(port, endpoint, key):
    """POST /api/devices/{key}/command: answered when the command is done."""
    path = f"/api/devices/{key}/command"
    status, answer = post(port, path, json.dumps({"key": "location", "value": "via-http"}))
    check(status == 200 and answer.get("ok") is True and answer.get("value") == "via-http",
          f"POST command: 200 with the applied value ({status} {answer})")
    location = server_me_device(endpoint).get("location")
    check(location == "via-http", f"the server's me shows the location set by POST ({location!r})")
    status, answer = post(port, path, json.dumps({"key": "colour", "value": 1}))
    check(status == 422 and answer.get("code") == "unknown-key" and "colour" in answer.get("error", ""),
          f"POST of an unknown key: 422 with the server's refusal ({status} {answer})")
    for body, want, what in [("nope", 400, "a body that is not JSON"),
                             (json.dumps({"key": "location", "value": [1]}), 400, "an array value"),
                             ("x" * 5000, 413, "a body over 4 KiB")]:
        status, answer = post(port, path, body)
        check(status == want, f"POST of {what}: {status} (want {want}) {answer}")
    status, answer = post(port, "/api/devices/s9:none/command", json.dumps({"key": "label"}))
    check(status == 404 and answer.get("code") == "unknown-device",
          f"POST for a device the gateway does not have: 404 ({status} {answer})")
    location = server_me_device(endpoint).get("location")
    check(location == "via-http", f"the refused requests changed nothing ({location!r})")


def test_http_token():
    """A gateway with a token takes a POST command only with the token."""
    proc = subprocess.Popen([SK2, "serve", "--mock", "1", "--no-announce", "--no-status",
                             "--http", "127.0.0.1:0", "--http-token", "auto"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.time() + 15
        while time.time() < deadline and not url:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"web viewer (http://\S+)", line)
            url = m.group(1) if m else None
        m = re.match(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", url or "")
        check(bool(m), f"the gateway prints its URL with the token ({url})")
        if not m:
            return
        port, token = int(m.group(1)), m.group(2)
        auth = {"Authorization": f"Bearer {token}"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        key = None
        deadline = time.time() + 15
        while time.time() < deadline and not key:
            conn.request("GET", "/api/devices", headers=auth)
            devs = json.loads(conn.getresponse().read())["devices"]
            key = devs[0]["key"] if devs else None
            time.sleep(0.1)
        conn.close()
        body = json.dumps({"key": "label", "value": "no-token"})
        status, _ = post(port, f"/api/devices/{key}/command", body)
        check(status == 401, f"POST command without the token: {status} (want 401)")
        status, answer = post(port, f"/api/devices/{key}/command",
                              json.dumps({"key": "label", "value": "with-token"}), auth)
        check(status == 200 and answer.get("value") == "with-token",
              f"POST command with the token: {status} {answer}")
    finally:
        stop(proc)


def next_text(ws, want, timeout=15.0):
    """The next text message for which want(msg) holds; state and stats are skipped."""
    deadline = time.time() + timeout
    ws.sock.settimeout(timeout)
    while time.time() < deadline:
        opcode, payload = ws.recv()
        if opcode == 8:
            raise ConnectionError(f"closed by the gateway: {payload[2:]!r}")
        if opcode != 1:
            continue
        msg = json.loads(payload)
        if want(msg):
            return msg
        if msg.get("type") == "command-done":
            ws.strays.append(msg)
    raise TimeoutError("no such message")


def done(ws, ref):
    return next_text(ws, lambda m: m.get("type") == "command-done" and m.get("ref") == ref)


def start_view(endpoint):
    proc = subprocess.Popen([SK2, "view", endpoint, "--http", "127.0.0.1:0", "--no-status"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 15
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"web viewer (http://\S+)", line)
        if m:
            return proc, int(m.group(1).rstrip("/").rsplit(":", 1)[1])
        if not line:
            break
    proc.kill()
    raise RuntimeError(f"sk2 view did not start: {proc.stderr.read()}")


def test_gone_sockets():
    """Sockets that close while their commands are with the server: a gateway (`sk2 view`) in
    front of a server that is stopped (SIGSTOP) for about 2 s meanwhile (less than the
    gateway's 5 s response timeout, so the server is not lost), so the commands are sent and
    answered only after their sockets have gone. 5 x 4 commands, more than the
    gateway's 16 in flight: their answers must be dropped and their entries freed, or a new
    socket's command would be refused as busy for ever."""
    server, endpoint, _ = start_server()
    view, port = start_view(endpoint)
    try:
        deadline = time.time() + 15
        devs = []
        while time.time() < deadline and not devs:
            devs = devices(port)
            time.sleep(0.1)
        key = devs[0]["key"]
        server.send_signal(signal.SIGSTOP)
        for round_ in range(5):
            gone = WsClient("127.0.0.1", port)
            for i in range(4):
                gone.send_json({"type": "command", "ref": i, "device": key, "key": "location",
                                "value": f"gone-{round_}-{i}"})
            time.sleep(0.3)  # taken by the client thread and sent: they wait for the server
            gone.close()
        server.send_signal(signal.SIGCONT)
        answer = {}
        # Should the server have been lost after all (a very busy machine), the gateway
        # reconnects: retry while the device is missing, but never past a busy answer's cause.
        deadline = time.time() + 60
        ref = 0
        while time.time() < deadline:
            try:
                fresh = WsClient("127.0.0.1", port)
                fresh.strays = []
                ref += 1
                fresh.send_json({"type": "command", "ref": ref, "device": key, "key": "label",
                                 "value": "after"})
                answer = done(fresh, ref)
                fresh.close()
            except (OSError, ValueError):
                answer = {}
            if answer.get("ok"):
                break
            time.sleep(0.5)
        check(answer.get("ok") is True,
              f"after 20 commands whose sockets closed before the server answered, a new "
              f"socket's command is applied ({answer})")
    finally:
        server.send_signal(signal.SIGCONT)
        rc = stop(view)
        stop(server)
    check(rc == 0, f"the gateway (sk2 view) exits cleanly ({rc}; under ASan: no leak)")


def main():
    proc, endpoint, port = start_server()
    ws = other = None
    try:
        deadline = time.time() + 15
        devs = []
        while time.time() < deadline and not devs:
            devs = devices(port)
            time.sleep(0.1)
        check(len(devs) == 1, f"the gateway lists the server's device ({len(devs)})")
        key = devs[0]["key"]
        ws = WsClient("127.0.0.1", port)
        other = WsClient("127.0.0.1", port)
        ws.strays, other.strays = [], []  # answers that came while waiting for another

        ws.send_json({"type": "command", "ref": 1, "device": key, "key": "label",
                      "value": "hall-7"})
        answer = done(ws, 1)
        check(answer.get("ok") is True and answer.get("value") == "hall-7"
              and answer.get("device") == key and answer.get("key") == "label",
              f"a label set over the WebSocket is answered ok with its value: {answer}")
        label = server_label(endpoint)
        check(label == "hall-7", f"the server's me shows the label ({label!r})")

        ws.send_json({"type": "command", "ref": 2, "device": key, "key": "colour", "value": 1})
        answer = done(ws, 2)
        check(answer.get("ok") is False and answer.get("code") == "unknown-key"
              and "colour" in answer.get("error", ""),
              f"an unknown key gets the server's refusal text back: {answer}")

        ws.send_json({"type": "command", "ref": 3, "device": key, "key": "list"})
        answer = done(ws, 3)
        keys = {}
        if answer.get("ok"):
            keys = {k["key"]: k for k in answer["value"]["devices"][0]["keys"]}
        check(keys.get("label", {}).get("settable") is True
              and keys.get("label", {}).get("value") == "hall-7"
              and keys.get("resolution", {}).get("settable") is False,
              f"list answers with the keys, settable or not ({sorted(keys)})")

        # Malformed messages: each answered, none applied, the socket stays open.
        ws.send_text("{not json")
        err = next_text(ws, lambda m: m.get("type") == "error")
        check("not JSON" in err.get("error", ""), f"text that is not JSON gets an error: {err}")
        bad = [
            ({"type": "command", "device": key, "key": "label", "value": "x1"}, None),
            ({"type": "command", "ref": 11, "device": key, "key": "label", "value": {"a": 1}}, 11),
            ({"type": "command", "ref": 12, "device": key, "key": "l" * 40, "value": "x2"}, 12),
            ({"type": "command", "ref": 13, "device": key, "key": "label", "value": "y" * 300}, 13),
            ({"type": "command", "ref": 14, "key": "label", "value": "x4"}, 14),
        ]
        for msg, ref in bad:
            ws.send_json(msg)
            answer = done(ws, ref)
            check(answer.get("ok") is False and answer.get("code") == "malformed"
                  and answer.get("error"), f"malformed {json.dumps(msg)[:70]}: {answer}")
        ws.send_json({"type": "command", "ref": 15, "device": "s9:nothing", "key": "label",
                      "value": "x5"})
        answer = done(ws, 15)
        check(answer.get("ok") is False and answer.get("code") == "unknown-device",
              f"a device the gateway does not have is refused: {answer}")
        label = server_label(endpoint)
        check(label == "hall-7", f"after the bad messages the label is unchanged ({label!r})")

        # A burst: answered once each; beyond 4 in flight on one socket, refused as busy.
        burst = "".join(  # one write, so that the gateway reads them together
            json.dumps({"type": "command", "ref": 100 + i, "device": key, "key": "label",
                        "value": f"burst-{i}"}) + "\n" for i in range(20)).splitlines()
        frames = b""
        for text in burst:
            data = text.encode()
            mask = os.urandom(4)
            frames += bytes([0x81, 0x80 | len(data)]) + mask + bytes(
                b ^ mask[i % 4] for i, b in enumerate(data))
        ws.sock.sendall(frames)
        answers = {}
        while len(answers) < 20:
            msg = next_text(ws, lambda m: m.get("type") == "command-done")
            check(msg["ref"] not in answers, f"command {msg['ref']} is answered once")
            answers[msg["ref"]] = msg
        busy = [a for a in answers.values() if a.get("code") == "busy"]
        applied = [a for a in answers.values() if a.get("ok")]
        check(sorted(answers) == list(range(100, 120)) and len(busy) > 0
              and len(applied) + len(busy) == 20
              and all("at most 4" in a["error"] for a in busy),
              f"a burst of 20: every command answered, {len(applied)} applied, {len(busy)} "
              f"refused as busy")

        # The other socket got no answers: it sent nothing. A command of its own is answered
        # to it alone.
        other.send_json({"type": "command", "ref": 1, "device": key, "key": "label",
                         "value": "dock"})
        answer = done(other, 1)
        check(answer.get("ok") is True and answer.get("value") == "dock",
              f"a second socket's command is answered to it: {answer}")
        ws.send_json({"type": "command", "ref": 500, "device": key, "key": "location",
                      "value": "north"})
        answer = done(ws, 500)
        check(answer.get("ok") is True and not ws.strays and not other.strays,
              f"each socket got only its own answers (strays {ws.strays} {other.strays})")
        label = server_label(endpoint)
        check(label == "dock", f"the server's me shows the newest label ({label!r})")
        test_http(port, endpoint, key)
    finally:
        for w in (ws, other):
            if w:
                w.close()
        rc = stop(proc)
    check(rc == 0, f"the server and its gateway exit cleanly ({rc}; under ASan: no leak)")
    test_gone_sockets()
    test_http_token()
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
