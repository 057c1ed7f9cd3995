#!/usr/bin/env python3
"""One clock from the command line (docs/rigs.md "One clock").

Two servers whose clocks read 250 ms ahead and 40 ms behind this host's (`sk2 serve
--clock-offset-ms`): `sk2 info SERVER --json` shows a `clock` object whose offset_ms (server
clock - ours) is within 1 ms of the truth, with a round trip and an error bound that hold it;
the text form prints one clock line. Frames of the server 250 ms ahead, whose capture times
read 250 ms in the future, get latencies from `sk2 stream` that are positive and below the
offset: their capture times were mapped to our clock. A server without the option is
estimated at 0. The web gateway (`serve --http`) gives its own estimate of each server in
/api/stats. Bad offsets are usage errors.

Usage: test_clock_cli.py /path/to/sk2
"""
import http.client
import json
import re
import time

import cliutil as cu

SK2, TMP = cu.setup("clock")
check = cu.check


def info_clock(endpoint):
    """The clock object of `sk2 info --json`. Every run is a new client with a new estimate;
    the client says how good each is (error_ms). On a machine busy enough to slow every
    exchange of a burst the bound exceeds 1 ms, and then the run is tried again, at most 5
    times: the bound must hold the truth in every run, and 1 ms is checked on the first run
    whose bound promises it."""
    for _ in range(5):
        r = cu.run("info", endpoint, "--json", timeout=30)
        try:
            clock = json.loads(r.stdout).get("clock") if r.returncode == 0 else None
        except ValueError:
            clock = None
        if not isinstance(clock, dict) or clock["error_ms"] <= 1.0:
            return clock, r
        check("a run whose bound exceeds 1 ms still holds the truth within it",
              abs(clock["offset_ms"] - TRUTH[endpoint]) <= clock["error_ms"] + 0.002, clock)
    return clock, r


for bad in ("86400001", "-86400001", "1.5", "soon", ""):
    r = cu.run("serve", "--clock-offset-ms", bad, "--no-announce")
    check(f"serve --clock-offset-ms '{bad}' is a usage error", r.returncode == 2 and
          "--clock-offset-ms" in r.stderr, f"rc={r.returncode} {r.stderr!r}")

def api_stats(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/api/stats")
        reply = conn.getresponse()
        return json.loads(reply.read()) if reply.status == 200 else {}
    except (OSError, ValueError, http.client.HTTPException):
        return {}
    finally:
        conn.close()


servers = {}
TRUTH = {}
http_port = cu.free_port()
try:
    for offset in (250, -40, 0):
        extra = ["--clock-offset-ms", str(offset)] if offset else []
        if offset == -40:
            extra += ["--http", f"127.0.0.1:{http_port}"]
        servers[offset] = cu.start_server("--mock", "1", "--port", str(cu.free_port()), *extra)
        TRUTH[servers[offset][1]] = offset
    for offset, (proc, endpoint, _) in servers.items():
        clock, r = info_clock(endpoint)
        detail = f"{clock} rc={r.returncode} {r.stdout[-400:]!r} {r.stderr!r}"
        check(f"info --json shows a clock object for the server at {offset:+d} ms",
              isinstance(clock, dict) and all(
                  k in clock for k in ("offset_ms", "rtt_ms", "error_ms", "drift_ppm",
                                       "samples", "synced")), detail)
        if not isinstance(clock, dict):
            continue
        miss = abs(clock["offset_ms"] - offset)
        check(f"its offset_ms is within 1 ms of {offset:+d}", miss <= 1.0, detail)
        check("the round trip and the bound are sane, and the bound holds the truth",
              0 <= clock["rtt_ms"] < 1000 and clock["error_ms"] >= clock["rtt_ms"] / 2 - 0.002
              and miss <= clock["error_ms"] + 0.002, detail)
        check("the estimate rests on the first burst of exchanges, drift not yet measured",
              clock["samples"] >= 8 and clock["drift_ppm"] is None, detail)
        check("the server says whether its clock is disciplined",
              isinstance(clock["synced"], bool), detail)

    proc, endpoint, _ = servers[250]
    r = cu.run("info", endpoint, timeout=30)
    lines = [line for line in r.stdout.splitlines() if line.startswith("clock ")]
    shown = re.search(r"offset ([+-][0-9.]+) ms \+- ([0-9.]+) ms", lines[0]) if lines else None
    check("info prints one clock line with the offset and its bound",
          r.returncode == 0 and len(lines) == 1 and shown is not None and
          abs(float(shown.group(1)) - 250) <= 1.0 and "rtt" in lines[0], r.stdout[-600:])

    r = cu.run("stream", endpoint, "--stream", "depth", "--frames", "30", "--json",
               "--no-status", timeout=60)
    try:
        streams = json.loads(r.stdout)["streams"] if r.returncode == 0 else []
    except ValueError:
        streams = []
    p50 = streams[0].get("latency_p50_ms") if streams else None
    check("stream: frames of the server 250 ms ahead have latencies in our clock "
          "(positive, below the offset)", p50 is not None and 0 <= p50 < 250,
          f"p50={p50} rc={r.returncode} {r.stdout[-600:]!r} {r.stderr[-300:]!r}")

    # The gateway is a client of the server too: its estimate rides on /api/stats, once a second.
    clock, stats, deadline = None, {}, time.monotonic() + 20
    while clock is None and time.monotonic() < deadline:
        stats = api_stats(http_port)
        found = stats.get("servers") or [{}]
        clock = found[0].get("clock")
        if clock is None:
            time.sleep(0.2)
    check("the gateway's /api/stats gives the server's clock within 1 ms of -40 ms",
          isinstance(clock, dict) and abs(clock.get("offset_ms", 1e9) + 40) <= 1.0 and
          clock.get("error_ms", -1) >= 0 and "rtt_ms" in clock, f"{clock} {str(stats)[:400]}")
finally:
    for proc, _, _ in servers.values():
        cu.stop(proc)

raise SystemExit(cu.summary())
