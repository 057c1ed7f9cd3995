#!/usr/bin/python3
"""How long discovery takes: from starting `sk2 serve` until a running `sk2 browse` lists it,
and from Ctrl-C (SIGINT) on the server until the browser lists it as gone.

Runs inside tests/discovery/with-avahi-netns.sh (a private network namespace with its own
avahi-daemon on loopback), so nothing is sent to any real network:

    sh tests/discovery/with-avahi-netns.sh /usr/bin/python3 bench/bench_discovery.py \\
        --sk2 build/tools/sk2 --runs 10

Prints a Markdown table (median, min, max over the runs). Loopback has no packet loss or
latency, so these are the protocol's own delays: Avahi probes a new name three times 250 ms
apart before announcing it, and a goodbye reaches browsers at once.
"""

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time

WAIT_S = 20.0


def reader(stream, sink):
    for line in stream:
        sink.put((time.monotonic(), line))
    sink.put((time.monotonic(), None))


def wait_for(lines, event, name):
    """Monotonic time at which browse printed `event` for `name`, or None."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            stamp, line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            return None
        if line is None:
            return None
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event and record.get("name") == name:
            return stamp
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sk2", required=True)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if os.environ.get("SK2_NETNS_INSIDE") != "1":
        print("bench_discovery.py runs only inside tests/discovery/with-avahi-netns.sh",
              file=sys.stderr)
        return 2

    browse = subprocess.Popen([args.sk2, "browse", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    lines = queue.Queue()
    threading.Thread(target=reader, args=(browse.stdout, lines), daemon=True).start()
    appear, vanish = [], []
    try:
        for run in range(args.runs):
            name = f"bench {run}"
            started = time.monotonic()
            serve = subprocess.Popen([args.sk2, "serve", "--name", name, "--no-status", "-q"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seen = wait_for(lines, "added", name)
            stopped = time.monotonic()
            serve.send_signal(signal.SIGINT)
            gone = wait_for(lines, "removed", name)
            serve.wait(10)
            if seen is None or gone is None:
                print(f"run {run}: not seen (added {seen}, removed {gone})", file=sys.stderr)
                continue
            appear.append((seen - started) * 1000)
            vanish.append((gone - stopped) * 1000)
    finally:
        browse.send_signal(signal.SIGINT)
        browse.wait(10)

    def row(label, values):
        return (f"| {label} | {len(values)} | {statistics.median(values):.0f} | "
                f"{min(values):.0f} | {max(values):.0f} |")

    print("| what (sk2 browse watching) | runs | median ms | min ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    if appear:
        print(row("`sk2 serve` started -> listed (`+`)", appear))
        print(row("SIGINT to `sk2 serve` -> listed as gone (`-`)", vanish))
    return 0 if len(appear) == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
