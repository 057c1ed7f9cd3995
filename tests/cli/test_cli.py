#!/usr/bin/env python3
"""The sk2 command line as a user meets it: help, versions, exit codes, bad options,
a real `sk2 serve` on 127.0.0.1 queried by the other verbs, and clean shutdown.

Usage: test_cli.py /path/to/sk2 [/path/to/print_depth]
Prints one line per check and ends with 'N passed, M failed'.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import cliutil as cu

SK2, TMP = cu.setup("cli")
EXAMPLE = sys.argv[2] if len(sys.argv) > 2 else None  # examples/print_depth


def run(*args, timeout=20):
    return cu.run(*args, timeout=timeout)


check, free_port, start_server, stop_server = cu.check, cu.free_port, cu.start_server, cu.stop


def start_and_stop_quietly():
    """stderr of a serve --no-announce that starts and stops."""
    proc, _, _ = start_server("--mock", "0")
    _, _, err = stop_server(proc)
    return err


def listed_verbs(help_text):
    """The verbs under 'verbs:' in `sk2 --help`, one per indented line."""
    verbs, inside = [], False
    for line in help_text.splitlines():
        if line.startswith("verbs:"):
            inside = True
        elif inside and line.startswith("  ") and line.split():
            verbs.append(line.split()[0])
        elif inside:
            break
    return verbs


def repeated_options(help_text):
    """Options described more than once in a --help text: each line that starts (after its
    indent) with '-x', '--name' or '-x, --name' describes those options; the usage synopsis
    in brackets does not count."""
    import collections
    import re
    seen = collections.Counter()
    for line in help_text.splitlines():
        m = re.match(r"^\s+(-[A-Za-z0-9])?(?:,\s*)?(--[a-z0-9-]+)?(?=[\s=]|$)", line)
        if not m or not (m.group(1) or m.group(2)):
            continue
        for name in m.groups():
            if name:
                seen[name] += 1
    return sorted(name for name, n in seen.items() if n > 1)


def main():
    r = run("--help")
    check("--help exits 0 and lists the verbs", r.returncode == 0 and all(
        v in r.stdout for v in ("serve", "ping", "info", "stream", "browse")), r.stdout)
    r = run("--version")
    check("--version names the protocol", r.returncode == 0 and "protocol 1" in r.stdout,
          r.stdout)
    for verb in ("serve", "ping", "info", "stream", "browse"):
        r = run(verb, "--help")
        check(f"{verb} --help exits 0", r.returncode == 0 and verb in r.stdout, r.stdout)
    top = run("--help").stdout
    check("sk2 --help describes each option once", not repeated_options(top),
          repeated_options(top))
    verbs = listed_verbs(top)
    check("sk2 --help lists at least a dozen verbs", len(verbs) >= 12, verbs)
    for verb in verbs:
        text = run(verb, "--help").stdout
        check(f"{verb} --help describes each option once", not repeated_options(text),
              repeated_options(text))

    r = run("devices")
    check("devices exits 0 and names the mock backend",
          r.returncode == 0 and "mock: built in" in r.stdout, r.stdout)
    r = run("serve", "--no-announce", "--device", "nosuchbackend")
    check("serve --device with an unknown backend fails (1) and says so",
          r.returncode == 1 and "nosuchbackend" in r.stderr, r.stderr)

    usage_errors = [
        ("no verb", []),
        ("unknown verb", ["fly"]),
        ("unknown option", ["serve", "--frobnicate"]),
        ("fps out of range", ["serve", "--fps", "5000"]),
        ("fps not a number", ["serve", "--fps", "fast"]),
        ("negative mock count", ["serve", "--mock", "-1"]),
        ("port out of range", ["serve", "--port", "70000"]),
        ("empty name", ["serve", "--name", ""]),
        ("queue zero", ["serve", "--queue", "0"]),
        ("replug without unplug", ["serve", "--mock-replug-after", "1"]),
        ("unplug without a mock", ["serve", "--mock", "0", "--mock-unplug-after", "1"]),
        ("unplug too soon", ["serve", "--mock-unplug-after", "0"]),
        ("device without a backend", ["serve", "--device", ":x"]),
        ("devices with an argument", ["devices", "extra"]),
        ("browse with a bad timeout", ["browse", "--timeout", "soon"]),
        ("browse with an argument", ["browse", "extra"]),
        ("bad browse timeout", ["info", "somewhere", "--browse-timeout", "0"]),
        ("stream with bad frames", ["stream", "127.0.0.1:5", "--frames", "0"]),
        ("stream of an unknown kind", ["stream", "127.0.0.1:5", "--stream", "sound"]),
        ("stream in an unknown codec", ["stream", "127.0.0.1:5", "--stream", "depth:zip"]),
        ("stream in the v1 codec", ["stream", "127.0.0.1:5", "--stream", "depth:depth12"]),
        ("colour size odd", ["serve", "--color-size", "641x480"]),
        ("colour size too big", ["serve", "--color-size", "3840x2160"]),
        ("colour size malformed", ["serve", "--color-size", "640"]),
        ("jpeg quality zero", ["serve", "--jpeg-quality", "0"]),
        ("malformed endpoint", ["info", "tcp://nowhere"]),
        ("other transport", ["ping", "udp://1.2.3.4:5"]),
    ]
    for name, args in usage_errors:
        r = run(*args)
        check(f"usage error exits 2: {name}", r.returncode == 2 and r.stderr.strip(),
              f"rc={r.returncode} stderr={r.stderr!r}")

    # Nothing listens there: the tools report an unreachable server (3), in bounded time.
    dead = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    r = run("ping", dead, "--timeout", "500")
    check("ping of a dead endpoint exits 3", r.returncode == 3, f"rc={r.returncode}")
    r = run("stream", dead, "--seconds", "2", "--timeout", "500")
    check("stream of a dead endpoint exits 3", r.returncode == 3, f"rc={r.returncode}")
    check("dead endpoints are given up on promptly", time.monotonic() - started < 8)

    # Without an mDNS daemon: browsing says discovery is unavailable and why (1), and so do
    # the verbs given a server name or none; serve warns once and serves all the same.
    r = run("browse", "--timeout", "1")
    check("browse without a daemon exits 1", r.returncode == 1 and
          "discovery unavailable" in r.stderr and "avahi-daemon" in r.stderr,
          f"rc={r.returncode} {r.stderr!r}")
    for args in (["ping"], ["info", "Kitchen"], ["stream", "Kitchen", "--frames", "1"]):
        r = run(*args)
        check(f"{' '.join(args)} without a daemon exits 1 and says why", r.returncode == 1 and
              "discovery unavailable" in r.stderr, f"rc={r.returncode} {r.stderr!r}")
    tmp = tempfile.mkdtemp(prefix="sk2-cli-")
    endpoint_file = os.path.join(tmp, "endpoint")
    proc = subprocess.Popen([SK2, "serve", "--endpoint-file", endpoint_file, "--no-status",
                             "--name", "no daemon"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(endpoint_file) and proc.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    endpoint = open(endpoint_file).read().strip() if os.path.exists(endpoint_file) else "none"
    r = run("ping", endpoint)
    check("serve without a daemon still answers", r.returncode == 0, r.stderr)
    rc, out, err = stop_server(proc)
    warnings = [l for l in err.splitlines() if "warn" in l]
    check("serve without a daemon warns exactly once, and says it serves anyway",
          rc == 0 and len(warnings) == 1 and "cannot announce" in warnings[0] and
          "avahi-daemon is not running" in warnings[0] and
          "serving without announcing" in warnings[0], err)
    check("serve --no-announce says nothing about announcing",
          "announc" not in start_and_stop_quietly(), "")

    # A bind that cannot work fails with 1 and says why.
    r = run("serve", "--bind", "203.0.113.77", "--no-status", timeout=10)
    check("serve on an address not of this host exits 1", r.returncode == 1 and
          "bind" in r.stderr.lower(), f"rc={r.returncode} {r.stderr!r}")

    proc, endpoint, endpoint_file = start_server("--mock", "2", "--name", "CLI test")
    try:
        check("serve prints its control endpoint", True)
        r = run("ping", endpoint, "--count", "3")
        check("ping gets pongs", r.returncode == 0 and r.stdout.count("pong from") == 3, r.stdout)
        r = run("info", endpoint, "--json")
        me = json.loads(r.stdout) if r.returncode == 0 else {}
        check("info --json prints the me payload", me.get("version") == 1 and
              me.get("name") == "CLI test" and len(me.get("devices", [])) == 2, r.stdout)
        r = run("info", endpoint)
        check("info lists both devices", r.returncode == 0 and
              all(d["id"] in r.stdout for d in me.get("devices", [])), r.stdout)
        check("info lists each device's serial, streams endpoint, codecs and intrinsics",
              r.stdout.count("serial   mock-") == 2 and r.stdout.count("streams  tcp://") == 2 and
              r.stdout.count("depth  512x424 depth_mm16 30 fps, codecs raw,rvl,sk2d,png") == 2 and
              r.stdout.count("color  1920x1080 rgb24") == 2 and "fx 365.46" in r.stdout,
              r.stdout)
        r = run("stream", endpoint.replace("tcp://", ""), "--frames", "40", "--check-mock",
                "--json", "--no-status")
        summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
        check("stream decodes the mock scene exactly", summary.get("frames") == 40 and
              summary.get("mismatches") == 0 and summary.get("devices") == 2, r.stdout + r.stderr)
        check("stream reports a compression ratio", summary.get("ratio", 0) > 2, summary)
        one = me["devices"][0]["id"] if me.get("devices") else "x"
        r = run("stream", endpoint, "--frames", "10", "--device", one, "--json", "--no-status")
        summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
        check("stream --device limits to one device", summary.get("devices") == 1, r.stdout)
        # The streams endpoint: two codecs of depth plus colour, each measured on its own.
        r = run("stream", endpoint, "--device", one, "--stream", "depth", "--stream", "depth:rvl",
                "--stream", "color", "--frames", "45", "--check-mock", "--json", "--no-status")
        summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
        streams = {(s["kind"], s["codec"]): s for s in summary.get("streams", [])}
        check("stream --stream measures each stream and codec apart",
              set(streams) == {("depth", "sk2d"), ("depth", "rvl"), ("color", "jpeg")} and
              summary.get("mismatches") == 0, r.stdout + r.stderr)
        check("stream --stream reports latency percentiles and gaps",
              all(s["latency_p50_ms"] is not None and
                  s["latency_p99_ms"] >= s["latency_p50_ms"] >= 0 and s["gaps"] >= 0
                  for s in streams.values()) and summary.get("gaps") is not None, summary)
        check("stream --stream: sk2d compresses the mock depth better than rvl",
              streams.get(("depth", "sk2d"), {}).get("ratio", 0) >
              streams.get(("depth", "rvl"), {}).get("ratio", 1), summary)
        # png is offered for colour and encoded only for whoever asks; the client decodes it.
        r = run("stream", endpoint, "--device", one, "--stream", "color:png", "--frames", "3",
                "--json", "--no-status")
        summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
        got = [(s["kind"], s["codec"], s["frames"]) for s in summary.get("streams", [])]
        check("stream --stream color:png receives and decodes lossless colour",
              len(got) == 1 and got[0][:2] == ("color", "png") and got[0][2] >= 3 and
              summary.get("raw_bytes", 0) > summary.get("wire_bytes", 0) > 0,
              r.stdout + r.stderr)
        r = run("stream", endpoint, "--stream", "color:rvl", "--frames", "1", "--no-status")
        check("stream exits 1 when no device offers the asked codec", r.returncode == 1 and
              "only in" in r.stderr and "nothing to receive" in r.stderr, r.stderr)
        if EXAMPLE:
            r = subprocess.run([EXAMPLE, endpoint], capture_output=True, text=True, timeout=20)
            check("the README's C example prints 10 frames", r.returncode == 0 and
                  r.stdout.count("mm at the centre") == 10, r.stdout + r.stderr)
    finally:
        rc, out, err = stop_server(proc)
    check("serve exits 0 on Ctrl-C", rc == 0, f"rc={rc} {err!r}")
    check("serve removes its endpoint file", not os.path.exists(endpoint_file))
    check("serve prints a final summary", "stopped after" in out, out)

    proc, endpoint, _ = start_server("--mock", "1", "--color-size", "320x240")
    r = run("info", endpoint, "--json")
    me = json.loads(r.stdout) if r.returncode == 0 else {}
    colour = [s for d in me.get("devices", []) for s in d.get("streams", [])
              if s.get("kind") == "color"]
    check("serve --color-size sets the mock colour stream's size",
          len(colour) == 1 and (colour[0]["width"], colour[0]["height"]) == (320, 240), r.stdout)
    rc, _, err = stop_server(proc, signal.SIGTERM)

    # --jpeg-quality reaches the encoder: the same colour frames are smaller at a low quality.
    sizes = {}
    for quality in ("95", "20"):
        qproc, qendpoint, _ = start_server("--mock", "1", "--color-size", "320x240",
                                           "--jpeg-quality", quality)
        try:
            r = run("stream", qendpoint, "--stream", "color:jpeg", "--frames", "5", "--json",
                    "--no-status")
            summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}
            sizes[quality] = summary.get("wire_bytes", 0) / max(summary.get("frames", 0), 1)
        finally:
            stop_server(qproc)
    check("serve --jpeg-quality 20 sends smaller colour frames than 95",
          0 < sizes.get("20", 0) < 0.7 * sizes.get("95", 0), sizes)
    check("serve exits 0 on SIGTERM", rc == 0, f"rc={rc} {err!r}")

    # A server that dies mid-stream and stays away: with --give-up-after the client reports it
    # lost (3), it does not hang (without it, stream retries until stopped:
    # test_reconnect_cli.py).
    proc, endpoint, _ = start_server("--mock", "1")
    stream = subprocess.Popen([SK2, "stream", endpoint, "--seconds", "30", "--timeout", "1000",
                               "--give-up-after", "2", "--no-status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    time.sleep(1.0)  # let frames flow before the server goes away
    proc.kill()
    proc.wait()
    try:
        stream.communicate(timeout=10)
        check("stream exits 3 when the server dies mid-stream", stream.returncode == 3,
              f"rc={stream.returncode}")
    except subprocess.TimeoutExpired:
        stream.kill()
        stream.wait()
        check("stream exits 3 when the server dies mid-stream", False, "hung")

    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
