#!/usr/bin/python3
"""`sk2 stream NAME` follows a server that comes back under the same name on another port.

Runs inside tests/discovery/with-avahi-netns.sh (refuses otherwise): a server announced as
"Moving Rig" on one port is streamed from by name; it is stopped, and another starts under the
same name on a different port. The stream must report the loss, find the name again through
the namespace's avahi-daemon on each reconnection attempt, receive frames from the new server
and exit 0 at the end of --seconds. On the code before reconnection the stream exits 3 (lost);
with reconnection to the old endpoint only, no frame would come after the restart.

Usage: run_moved_server.py --sk2 PATH        (about 35 s)
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

results = []
NAME = "Moving Rig"


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("PASS " if condition else "FAIL ") + name + ("" if condition else f": {detail}"),
          flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(sk2, port):
    return subprocess.Popen([sk2, "serve", "--name", NAME, "--bind", "127.0.0.1", "--port",
                             str(port), "--fps", "5", "--no-status"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sk2", required=True)
    args = parser.parse_args()
    if os.environ.get("SK2_NETNS_INSIDE") != "1":
        print("run_moved_server.py runs only inside with-avahi-netns.sh", file=sys.stderr)
        return 2
    first_port, second_port = free_port(), free_port()
    while second_port == first_port:
        second_port = free_port()
    server = serve(args.sk2, first_port)
    time.sleep(1.5)
    stream = subprocess.Popen([args.sk2, "stream", NAME, "--stream", "depth", "--json",
                               "--no-status", "--seconds", "30", "--browse-timeout", "15"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    server.send_signal(signal.SIGINT)
    server.communicate(timeout=20)
    time.sleep(2)
    server = serve(args.sk2, second_port)
    try:
        out, err = stream.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        stream.kill()
        out, err = stream.communicate()
    server.send_signal(signal.SIGINT)
    server.communicate(timeout=20)
    check("stream NAME: exits 0 at the end of --seconds", stream.returncode == 0,
          f"rc {stream.returncode}: {err[-800:]}")
    check("stream NAME: found the name on the first port", f":{first_port}" in err, err[-800:])
    try:
        summary = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        summary = {}
    outages = summary.get("outage_list", [])
    check("stream NAME: one outage reported", summary.get("outages") == 1 and len(outages) == 1,
          out[-800:])
    check("stream NAME: frames from the server on the new port after the outage",
          outages and 0 < outages[0]["frames_before"] < summary.get("frames", 0) and
          len(summary.get("streams", [])) == 2, out[-800:])
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
