#!/usr/bin/python3
"""sk2's discovery against an independent mDNS implementation, and the sk2 CLI on names.

Runs inside tests/discovery/with-avahi-netns.sh (refuses otherwise): sk2 talks to the
namespace's avahi-daemon, the peer (zeroconf_peer.py) is python3-zeroconf with an mDNS
stack of its own, both on the namespace's loopback.

Usage: run_interop.py --sk2 PATH
Prints one line per check and ends with 'N passed, M failed'.
"""

import argparse
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(os.path.dirname(HERE), "interop")
WAIT_S = 15.0  # longest wait for anything to show up on the network
results = []
SK2 = "sk2"


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("PASS " if condition else "FAIL ") + name + ("" if condition else f": {detail}"),
          flush=True)


class Child:
    """A child process whose stdout lines are read by a thread, to wait on with deadlines."""

    def __init__(self, cmd, stderr=subprocess.PIPE):
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr,
                                     stdin=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()
        self.seen = []
        self.err = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        if stderr == subprocess.PIPE:
            threading.Thread(target=self._collect, daemon=True).start()

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.put(line.rstrip("\n"))
        sink.put(None)

    def _collect(self):
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def expect(self, predicate, timeout=WAIT_S):
        """The first line (JSON-decoded if it parses) for which predicate holds, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            self.seen.append(line)
            try:
                item = json.loads(line)
            except ValueError:
                item = line
            try:
                if predicate(item):
                    return item
            except (KeyError, TypeError, AttributeError):
                pass

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode


def peer(*args):
    return Child([sys.executable, os.path.join(HERE, "zeroconf_peer.py"), *args])


def serve(name, *extra):
    return Child([SK2, "serve", "--bind", "127.0.0.1", "--no-status", "--name", name, *extra])


def announced(child):
    """The name `sk2 serve` says it is announced as, or None."""
    line = child.expect(lambda l: isinstance(l, str) and "announced as" in l)
    return line.split('"')[1] if line else None


def port_of(child):
    line = child.expect(lambda l: isinstance(l, str) and "control endpoint" in l)
    return int(line.rsplit(":", 1)[1]) if line else 0


def run(*args, timeout=30):
    return subprocess.run([SK2, *args], capture_output=True, text=True, timeout=timeout)


def test_zeroconf_finds_sk2_like_the_original_browser():
    server = serve("sk2 interop", "--mock", "2")
    port = port_of(server)
    check("sk2 serve announces", announced(server) == "sk2 interop", server.seen + server.err)
    browser = peer("browse", "--connect")
    added = browser.expect(lambda r: r["event"] == "added" and r["name"] == "sk2 interop")
    host = socket.gethostname()
    check("python-zeroconf finds the sk2 server", added is not None, browser.seen)
    added = added or {}
    check("its SRV target is this host's mDNS name", added.get("server") == f"{host}.local.",
          added)
    check("the original browser's endpoint is tcp://<host>.local:<control port>",
          added.get("endpoint") == f"tcp://{host}.local:{port}", added)
    check("the SRV target has an address record", "127.0.0.1" in added.get("addresses", []),
          added)
    txt = added.get("txt", {})
    check("TXT carries sk2's keys", txt.get("txtvers") == "1" and txt.get("protocol") == "1" and
          txt.get("devices") == "2" and txt.get("sk2"), txt)
    me = browser.expect(lambda r: r["event"] == "me" and r["name"] == "sk2 interop")
    me = (me or {}).get("me") or {}
    check("python3-zmq gets `me` from the endpoint found", me.get("name") == "sk2 interop" and
          me.get("version") == 1 and len(me.get("devices", [])) == 2, me)
    rc = server.stop()
    check("sk2 serve stops cleanly", rc == 0, server.err)
    removed = browser.expect(lambda r: r["event"] == "removed" and r["name"] == "sk2 interop")
    check("python-zeroconf sees the sk2 server go (goodbye)", removed is not None, browser.seen)
    browser.stop(signal.SIGTERM)


def test_sk2_finds_a_zeroconf_announcement():
    tmp = tempfile.mkdtemp(prefix="sk2-disc-")
    endpoint_file = os.path.join(tmp, "endpoint")
    v1 = Child([sys.executable, os.path.join(INTEROP, "v1_server.py"), "--name", "python v1",
                "--endpoint-file", endpoint_file, "--seconds", "120"])
    deadline = time.monotonic() + WAIT_S
    while (not os.path.exists(endpoint_file) and v1.proc.poll() is None and
           time.monotonic() < deadline):
        time.sleep(0.05)  # a bounded wait for the file, as tests/interop/harness.py does
    v1_endpoint = open(endpoint_file).read().strip() if os.path.exists(endpoint_file) else ""
    check("the independent v1 server starts", v1_endpoint.startswith("tcp://"), v1.err)
    v1_port = int(v1_endpoint.rsplit(":", 1)[1]) if v1_endpoint else 1

    browse = Child([SK2, "browse", "--json", "--timeout", "60"])
    announcer = peer("announce", "py interop", "--port", str(v1_port))
    check("python-zeroconf announces",
          announcer.expect(lambda r: r["event"] == "registered") is not None, announcer.seen)
    added = browse.expect(lambda r: r["event"] == "added" and r["name"] == "py interop")
    check("sk2 browse finds the zeroconf announcement", added is not None, browse.seen + browse.err)
    added = added or {}
    check("with a numeric endpoint on its port",
          added.get("endpoint") == f"tcp://127.0.0.1:{v1_port}", added)
    check("and the host it points at",
          added.get("host") == f"zeroconf-peer-{socket.gethostname()}.local", added)
    r = run("info", "py interop", "--json")
    me = json.loads(r.stdout) if r.returncode == 0 else {}
    check("sk2 info NAME reaches the python server", me.get("name") == "python v1",
          r.stdout + r.stderr)
    r = run("ping", "PY INTEROP")
    check("names are matched ignoring case", r.returncode == 0 and "pong" in r.stdout, r.stderr)
    announcer.stop(signal.SIGTERM)
    removed = browse.expect(lambda r: r["event"] == "removed" and r["name"] == "py interop")
    check("sk2 browse sees the zeroconf service go", removed is not None, browse.seen)
    browse.stop()
    v1.stop(signal.SIGTERM)


def test_name_conflicts_across_implementations():
    # zeroconf holds the name first: sk2 must pick another and say so.
    holder = peer("announce", "clash one", "--port", "9")
    check("zeroconf holds \"clash one\"",
          holder.expect(lambda r: r["event"] == "registered") is not None, holder.seen)
    server = serve("clash one")
    name = announced(server)
    check("sk2 announces under another name", name is not None and name != "clash one" and
          name.startswith("clash one"), server.seen + server.err)
    check("and logs both names", any("clash one" in l and str(name) in l for l in server.err),
          server.err)
    r = subprocess.run([SK2, "browse", "--json", "--timeout", "3"], capture_output=True,
                       text=True, timeout=30)
    names = {json.loads(l)["name"] for l in r.stdout.splitlines() if l.startswith("{")}
    check("sk2 browse lists both", {"clash one", name} <= names, r.stdout)
    server.stop()
    holder.stop(signal.SIGTERM)

    # sk2 holds the name first: zeroconf's probe must find it taken.
    server = serve("clash two")
    check("sk2 holds \"clash two\"", announced(server) == "clash two", server.seen + server.err)
    taker = peer("announce", "clash two", "--port", "9", "--strict")
    conflict = taker.expect(lambda r: r["event"] in ("conflict", "registered"))
    check("zeroconf finds \"clash two\" taken", (conflict or {}).get("event") == "conflict",
          taker.seen)
    taker.stop(signal.SIGTERM)
    server.stop()


def test_cli_verbs_take_names_or_nothing():
    server = serve("only one", "--mock", "1")
    check("the only server is announced", announced(server) == "only one", server.err)
    r = run("ping")
    check("ping with no server named pings the only one", r.returncode == 0 and
          "pong" in r.stdout and "only one" in r.stderr, r.stdout + r.stderr)
    r = run("stream", "only one", "--frames", "5", "--json", "--no-status", "--check-mock")
    summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
    check("stream NAME receives frames", summary.get("frames") == 5, r.stdout + r.stderr)
    r = run("info", "nobody here", "--browse-timeout", "1")
    check("a name nobody has exits 3", r.returncode == 3 and "nobody here" in r.stderr,
          f"rc={r.returncode} {r.stderr!r}")
    other = serve("second one")
    check("a second server is announced", announced(other) == "second one", other.err)
    r = run("info")
    check("with two servers and no name, info lists them and exits 2", r.returncode == 2 and
          "only one" in r.stderr and "second one" in r.stderr, f"rc={r.returncode} {r.stderr!r}")
    other.stop()
    server.stop()
    r = run("info", "--browse-timeout", "1.5")
    check("with no server at all, info exits 3", r.returncode == 3, f"rc={r.returncode}")


def http_json(port, path):
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.loads(r.read().decode())
    except (OSError, ValueError):
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None


def test_view_follows_servers_as_they_come_and_go():
    """`sk2 view` with no SERVER shows every announced server, live (issue: web viewer)."""
    port = free_port()
    view = Child([SK2, "view", "--http", f"127.0.0.1:{port}", "--no-status"])
    first = serve("view one", "--mock", "1")
    check("a server for the viewer is announced", announced(first) == "view one", first.err)

    def names():
        servers = (http_json(port, "/api/servers") or {}).get("servers", [])
        return {s.get("name"): s for s in servers if s.get("connected")}

    seen = wait_for(lambda: "view one" in names() and names())
    check("the viewer lists the announced server, connected", seen and "view one" in seen,
          names())
    devices = wait_for(lambda: (http_json(port, "/api/devices") or {}).get("devices"))
    check("and its device", devices and len(devices) == 1, devices)
    second = serve("view two", "--mock", "2")
    announced(second)
    both = wait_for(lambda: {"view one", "view two"} <= set(names()) and names())
    check("a second server appears on its own", both, names())
    devices = wait_for(lambda: len((http_json(port, "/api/devices") or {})
                                   .get("devices", [])) == 3)
    check("with its devices (1 + 2)", devices, http_json(port, "/api/devices"))
    first.stop()
    gone = wait_for(lambda: "view one" not in names() and "view two" in names())
    check("a server that stops vanishes from the viewer", gone, names())
    second.stop()
    rc = view.stop()
    check("sk2 view exits 0 on Ctrl-C", rc == 0, f"rc={rc} {view.err[-3:]}")


def daemon_pid():
    try:
        return int(open("/run/avahi-daemon/pid").read())
    except (OSError, ValueError):
        return 0


def test_server_announces_again_after_the_daemon_restarts():
    server = serve("phoenix")
    check("announced before the restart", announced(server) == "phoenix", server.err)
    browser = peer("browse")
    check("seen before the restart", browser.expect(
        lambda r: r["event"] == "added" and r["name"] == "phoenix") is not None, browser.seen)
    pid = daemon_pid()
    os.kill(pid, signal.SIGTERM)  # the namespace's own daemon, by the PID it wrote
    deadline = time.monotonic() + WAIT_S
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    check("the daemon's goodbye removes it",
          browser.expect(lambda r: r["event"] == "removed" and r["name"] == "phoenix")
          is not None, browser.seen)
    started = subprocess.run(["avahi-daemon", "-f", os.environ["SK2_AVAHI_CONF"],
                              "--no-drop-root", "--no-chroot", "--no-rlimits", "-D"],
                             capture_output=True, text=True, timeout=30)
    check("a new daemon starts", started.returncode == 0, started.stderr)
    check("the server is found again", browser.expect(
        lambda r: r["event"] == "added" and r["name"] == "phoenix", timeout=30) is not None,
        browser.seen)
    check("sk2 serve said it lost the daemon", any("went away" in l for l in server.err),
          server.err)
    browser.stop(signal.SIGTERM)
    check("sk2 serve still stops cleanly", server.stop() == 0, server.err)


def main():
    global SK2
    parser = argparse.ArgumentParser()
    parser.add_argument("--sk2", required=True)
    SK2 = parser.parse_args().sk2
    if os.environ.get("SK2_NETNS_INSIDE") != "1":
        print("run_interop.py runs only inside tests/discovery/with-avahi-netns.sh",
              file=sys.stderr)
        return 77
    for test in (test_zeroconf_finds_sk2_like_the_original_browser,
                 test_sk2_finds_a_zeroconf_announcement,
                 test_name_conflicts_across_implementations,
                 test_cli_verbs_take_names_or_nothing,
                 test_view_follows_servers_as_they_come_and_go,
                 test_server_announces_again_after_the_daemon_restarts):
        print(f"-- {test.__name__}", flush=True)
        test()
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
