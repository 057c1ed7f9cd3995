"""`sk2 ctl`: keyed commands from the command line against a real `sk2 serve --mock`.

- --list shows every key of every device, with types, values and what can be set;
- label and location are set, shown by `ctl DEVICE KEY`, in `sk2 info` and in `me`;
- fps changes the rate `me` advertises; running false stops the device (its frame counter
  stands still) and true starts it again; stream.depth false stops its depth frames;
- the web viewer's /api/devices shows label and location;
- refusals have their own exit status and a message: unknown device (4), unknown key (5), bad
  value and read-only keys (6), usage (2); a refused command changes nothing;
- record NAME writes NAME.sk2r only into serve --record-dir (a recording `sk2 inspect` reads),
  and refuses paths, hidden names, existing files, and servers without --record-dir;
- a server that never answers commands: the ttl runs out and ctl says so (exit 3);
- a version-1 style server (no "commands" in `me`) is told apart (exit 1) without sending.

Usage: test_ctl.py SK2.
"""
import json
import os
import sys
import threading
import time
import urllib.request

import zmq

import cliutil as cu


def stats(endpoint):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sock.send_multipart([b"", b"\x05"])
    reply = sock.recv_multipart() if sock.poll(10000) else None
    ctx.destroy(linger=0)
    if not reply:
        raise RuntimeError("no stats reply")
    return json.loads(reply[2])


def produced(endpoint, device):
    for record in stats(endpoint)["devices"]:
        if record["id"] == device:
            return {s["kind"]: s["produced"] for s in record["streams"]}
    return None


def me(endpoint):
    return json.loads(cu.run("info", endpoint, "--json").stdout)


def device_record(endpoint, device):
    return next(d for d in me(endpoint)["devices"] if d["id"] == device)


def stands_still(endpoint, device, timeout_s=10):
    """Whether the device's depth counter stops moving: two samples a second apart equal."""
    deadline = time.monotonic() + timeout_s
    last = produced(endpoint, device)["depth"]
    while time.monotonic() < deadline:
        time.sleep(1)
        now = produced(endpoint, device)["depth"]
        if now == last:
            return True
        last = now
    return False


def wait_for(condition, timeout_s=10):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


class SilentServer:
    """Answers `who` with a `me` (with or without "commands") and ignores every command."""

    def __init__(self, commands):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.me = {"version": 1, "name": "silent",
                   "endpoints": {"control": f"tcp://127.0.0.1:{self.port}"},
                   "devices": [{"id": "dev0", "endpoints": {"depth": "tcp://127.0.0.1:1"}}]}
        if commands:
            self.me["commands"] = 1
        self.commands_seen = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            if not self.sock.poll(100):
                continue
            ident, *frames = self.sock.recv_multipart()
            if len(frames) < 2:
                continue
            if frames[1] == b"\x03":
                self.sock.send_multipart([ident, b"", b"\x04", json.dumps(self.me).encode()])
            elif frames[1] == b"\x01":
                self.sock.send_multipart([ident, b"", b"\x02"])
            elif frames[1] == b"\x09":
                self.commands_seen += 1

    def close(self):
        self.running = False
        self.thread.join(5)
        self.ctx.destroy(linger=0)


def main():
    cu.setup("ctl")
    proc, endpoint, _ = cu.start_server("--mock", "2", "--fps", "30")
    try:
        devices = [d["id"] for d in me(endpoint)["devices"]]
        dev = devices[0]

        r = cu.run("ctl", endpoint, "--list")
        cu.check("--list exits 0", r.returncode == 0, r.stderr)
        for key in ("running", "stream.depth", "stream.ir", "stream.color", "fps",
                    "jpeg_quality", "label", "location", "resolution", "codec",
                    "resolution.depth", "codec.depth"):
            cu.check(f"--list shows {key}", f"  {key} " in r.stdout, r.stdout)
        cu.check("--list shows both devices", all(f"device {d}" in r.stdout for d in devices),
                 r.stdout)
        cu.check("--list says resolution is read-only",
                 any(l.split()[:1] == ["resolution"] and "read-only" in l
                     for l in r.stdout.splitlines()), r.stdout)
        r = cu.run("ctl", endpoint, "--list", dev, "--json")
        answer = json.loads(r.stdout)
        cu.check("--list DEVICE --json lists that device only",
                 [d["id"] for d in answer["value"]["devices"]] == [dev], r.stdout)

        r = cu.run("ctl", endpoint, dev, "label", "Kitchen \u00e9")
        cu.check("label is set", r.returncode == 0 and "label = Kitchen \u00e9" in r.stdout,
                 r.stdout + r.stderr)
        r = cu.run("ctl", endpoint, dev, "location", "shelf 2")
        cu.check("location is set", r.returncode == 0, r.stderr)
        r = cu.run("ctl", endpoint, dev, "label")
        cu.check("ctl DEVICE KEY shows the value", r.stdout.strip() == "Kitchen \u00e9", r.stdout)
        record = device_record(endpoint, dev)
        cu.check("me carries label and location",
                 record.get("label") == "Kitchen \u00e9" and record.get("location") == "shelf 2",
                 record)
        info = cu.run("info", endpoint).stdout
        cu.check("sk2 info shows label and location",
                 "label    Kitchen \u00e9" in info and "location shelf 2" in info, info)
        cu.check("the other device has no label",
                 "label" not in device_record(endpoint, devices[1]), devices[1])

        r = cu.run("ctl", endpoint, dev, "fps", "12.5")
        cu.check("fps is set", r.returncode == 0, r.stderr)
        fps = [s["fps"] for s in device_record(endpoint, dev)["streams"]]
        cu.check("me advertises the new rate", fps and all(f == 12.5 for f in fps), fps)

        r = cu.run("ctl", endpoint, dev, "running", "false")
        cu.check("running false is applied", r.returncode == 0, r.stderr)
        # The stop is applied on the device's pipeline thread right after the answer: once the
        # counter stands still for a second, it must stay still.
        cu.check("the stopped device's counter stands still", stands_still(endpoint, dev))
        standing = produced(endpoint, dev)["depth"]
        time.sleep(1)
        cu.check("and produces nothing more", produced(endpoint, dev)["depth"] == standing)
        r = cu.run("ctl", endpoint, dev, "running", "true")
        cu.check("running true is applied", r.returncode == 0, r.stderr)
        cu.check("the device produces again",
                 wait_for(lambda: produced(endpoint, dev)["depth"] > standing))
        r = cu.run("ctl", endpoint, dev, "running")
        cu.check("running reads true", r.stdout.strip() == "true", r.stdout)

        r = cu.run("ctl", endpoint, dev, "stream.depth", "off")
        cu.check("stream.depth off is applied", r.returncode == 0, r.stderr)
        cu.check("depth frames stop", stands_still(endpoint, dev))
        r = cu.run("ctl", endpoint, dev, "stream.depth", "on")
        cu.check("stream.depth on is applied", r.returncode == 0, r.stderr)
        standing = produced(endpoint, dev)["depth"]
        cu.check("depth frames come back",
                 wait_for(lambda: produced(endpoint, dev)["depth"] > standing))

        before = stats(endpoint)["totals"]["commands_applied"]
        refusals = [
            ("an unknown device", ["nodevice", "fps", "10"], 4, "unknown-device"),
            ("- with two devices", ["-", "fps", "10"], 4, "name one"),
            ("an unknown key", [dev, "brightness", "3"], 5, "unknown key"),
            ("an unknown key to show", [dev, "brightness"], 5, "no key"),
            ("fps out of range", [dev, "fps", "5000"], 6, "0..1000"),
            ("fps not a number", [dev, "fps", "fast"], 6, "bad-value"),
            ("running not a boolean", [dev, "running", "maybe"], 6, "true or false"),
            ("jpeg_quality not an integer", [dev, "jpeg_quality", "50.5"], 6, "integer"),
            ("a label with a control character", [dev, "label", "a\tb"], 6, "control"),
            ("a label over 64 bytes", [dev, "label", "x" * 65], 6, "at most 64"),
            ("a resolution", [dev, "resolution", "640x480"], 6, "read-only"),
            ("a codec", [dev, "codec", "png"], 6, "codec.depth"),
            ("record without --record-dir", [dev, "record", "take"], 6, "--record-dir"),
        ]
        for name, args, status, text in refusals:
            r = cu.run("ctl", endpoint, *args)
            cu.check(f"{name}: exit {status} with a reason",
                     r.returncode == status and text in r.stderr + r.stdout,
                     f"exit {r.returncode}: {r.stdout} {r.stderr}")
        after = stats(endpoint)["totals"]
        cu.check("refused commands change nothing", after["commands_applied"] == before, after)
        cu.check("the label stayed", device_record(endpoint, dev).get("label") == "Kitchen \u00e9")

        for name, args in [("no SERVER", []), ("no KEY", [endpoint, dev]),
                           ("too many operands", [endpoint, dev, "fps", "1", "2"]),
                           ("a bad --ttl", [endpoint, dev, "fps", "1", "--ttl", "5"])]:
            r = cu.run("ctl", *args)
            cu.check(f"usage: {name} exits 2", r.returncode == 2, r.stderr)
    finally:
        status, _, err = cu.stop(proc)
        cu.check("the server stops cleanly (exit 0)", status == 0, err[-2000:])

    # Server-side recording, only into the folder the server was given.
    folder = cu.path("recordings")
    os.mkdir(folder)
    proc, endpoint, _ = cu.start_server("--mock", "1", "--record-dir", folder)
    try:
        r = cu.run("ctl", endpoint, "-", "record", "take1")
        cu.check("record take1 starts a recording", r.returncode == 0 and "take1.sk2r" in r.stdout,
                 r.stdout + r.stderr)
        file = os.path.join(folder, "take1.sk2r")
        cu.check("the recording grows", wait_for(
            lambda: os.path.exists(file) and os.path.getsize(file) > 1000000))
        r = cu.run("ctl", endpoint, "-", "record")
        cu.check("record reads the file being written", r.stdout.strip() == "take1.sk2r", r.stdout)
        r = cu.run("ctl", endpoint, "-", "record", "")
        cu.check("record \"\" stops it", r.returncode == 0, r.stderr)
        r = cu.run("inspect", file)
        cu.check("the recording holds depth frames and is complete",
                 r.returncode == 0 and "depth rvl" in r.stdout and "index ok" in r.stdout,
                 r.stdout + r.stderr)
        for name, value, text in [("a path", "../escape", "file name"),
                                  ("an absolute path", "/tmp/x", "file name"),
                                  ("a hidden name", ".hidden", "file name"),
                                  ("an existing file", "take1", "exists already")]:
            r = cu.run("ctl", endpoint, "-", "record", value)
            cu.check(f"record refuses {name} (exit 6)",
                     r.returncode == 6 and text in r.stderr, f"{r.returncode} {r.stderr}")
        cu.check("nothing was written outside the folder or over the file",
                 sorted(os.listdir(folder)) == ["take1.sk2r"]
                 and not os.path.exists(os.path.join(os.path.dirname(folder), "escape.sk2r")),
                 os.listdir(folder))
    finally:
        status, _, err = cu.stop(proc)
        cu.check("the server stops cleanly (exit 0)", status == 0, err[-2000:])

    # The web viewer's API shows the label and location (the gateway follows `me`).
    port = cu.free_port()
    proc, endpoint, _ = cu.start_server("--mock", "1", "--http", f"127.0.0.1:{port}")
    try:
        r = cu.run("ctl", endpoint, "-", "label", "Porch")
        r2 = cu.run("ctl", endpoint, "-", "location", "north wall")
        cu.check("label and location set beside a viewer", r.returncode == 0 == r2.returncode,
                 r.stderr + r2.stderr)

        def api_shows():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/devices", timeout=5) as f:
                    devices = json.loads(f.read())["devices"]
            except OSError:
                return False
            return any(d.get("label") == "Porch" and d.get("location") == "north wall"
                       for d in devices)
        cu.check("/api/devices shows the label and location", wait_for(api_shows, 20))
    finally:
        status, _, err = cu.stop(proc)
        cu.check("the server with a viewer stops cleanly (exit 0)", status == 0, err[-2000:])

    silent = SilentServer(commands=True)
    try:
        started = time.monotonic()
        r = cu.run("ctl", f"tcp://127.0.0.1:{silent.port}", "dev0", "label", "x", "--ttl", "1000")
        took = time.monotonic() - started
        cu.check("no answer within the ttl: exit 3", r.returncode == 3, f"{r.returncode} {r.stderr}")
        cu.check("and a message saying so", "no answer to command" in r.stderr, r.stderr)
        cu.check("the command was sent several times within the ttl",
                 2 <= silent.commands_seen <= 25, silent.commands_seen)
        cu.check("ctl ended soon after the ttl", took < 10, took)
    finally:
        silent.close()

    old = SilentServer(commands=False)
    try:
        r = cu.run("ctl", f"tcp://127.0.0.1:{old.port}", "dev0", "label", "x")
        cu.check("a server without commands: exit 1 and a reason",
                 r.returncode == 1 and "takes no commands" in r.stderr, r.stderr)
        cu.check("nothing was sent to it", old.commands_seen == 0, old.commands_seen)
    finally:
        old.close()
    sys.exit(cu.summary())


if __name__ == "__main__":
    main()
