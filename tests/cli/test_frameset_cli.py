#!/usr/bin/env python3
"""Matched framesets from the command line (docs/rigs.md "Matched framesets").

Three mock devices on two servers whose clocks read 250 ms ahead and 40 ms behind this host's
(`sk2 serve --mock 2 --clock-offset-ms 250 --mock-align`, `--mock 1 --clock-offset-ms -40
--mock-align`): their frames are captured on the same instants of the true clock, so
`sk2 stream A B --frameset --json` must find framesets holding every device, with a spread
under 1 ms once each server's times are mapped to this host's clock; with `--no-clock` the
servers' own times are 290 ms apart and only wrong partners match (a spread far above 1 ms),
or nothing when the queues do not reach across. All at 10 fps (5 for the half rate), so
that a sanitizer build keeps up. A device at half the rate pairs
with its own capture, and the others' extra frames are counted unmatched. Depth and IR of one
device come as one frameset. Bad options are usage errors.

Only counts and content are checked; the 1 ms is a property of matching aligned captures with
a clock estimate good to a fraction of a millisecond on loopback, not of speed. A run whose
clock estimates were poor (a busy machine slowing every exchange of a burst) is tried again, at
most three times, as tests/cli/test_clock_cli.py does.

Usage: test_frameset_cli.py /path/to/sk2
"""
import json
import sys

import cliutil as cu

SK2, TMP = cu.setup("frameset")
check = cu.check


def frameset(*args, seconds=4):
    r = cu.run("stream", *args, "--frameset", "--json", "--seconds", str(seconds), timeout=60)
    try:
        return json.loads(r.stdout), r
    except ValueError:
        return None, r


def good_run(*args):
    """The first of up to three runs whose spread p99 is under 1 ms, or the last one."""
    for _ in range(3):
        out, r = frameset(*args)
        if out and out["framesets"] > 0 and out["spread_p99_ms"] < 1.0:
            return out, r
    return out, r


# ---- Bad options ------------------------------------------------------------------------
for bad, why in ((["--frameset"], "no SERVER"),
                 (["127.0.0.1:1", "--frameset", "--tolerance-ms", "0"], "tolerance 0"),
                 (["127.0.0.1:1", "--frameset", "--tolerance-ms", "soon"], "tolerance not a number"),
                 (["127.0.0.1:1", "--frameset", "--tolerance-ms", "10001"], "tolerance too large"),
                 (["127.0.0.1:1", "--frameset", "--stream", "depth:raw"], "a codec"),
                 (["127.0.0.1:1", "--frameset", "--queue", "0"], "queue 0"),
                 (["127.0.0.1:1"] * 9 + ["--frameset"], "nine servers"),
                 (["nohost", "--frameset"], "not an endpoint")):
    r = cu.run("stream", *bad)
    check(f"stream --frameset with {why} is a usage error", r.returncode == 2,
          f"rc={r.returncode} {r.stderr!r}")
r = cu.run("serve", "--device", "mock:sideways", "--no-announce", "--bind", "127.0.0.1",
           "--port", str(cu.free_port()), timeout=30)
check("a mock uri other than align is refused", r.returncode != 0 and "mock" in r.stderr,
      f"rc={r.returncode} {r.stderr!r}")

# ---- Three devices on two servers, 10 fps (light enough for a sanitizer build) -----------
a = cu.start_server("--mock", "2", "--port", str(cu.free_port()), "--fps", "10",
                    "--clock-offset-ms", "250", "--mock-align")
b = cu.start_server("--mock", "1", "--port", str(cu.free_port()), "--fps", "10",
                    "--clock-offset-ms", "-40", "--mock-align")
try:
    out, r = good_run(a[1], b[1])
    check("frameset: a JSON summary", out is not None, f"rc={r.returncode} {r.stderr!r}")
    if out:
        devices = {m["device"] for m in out["unmatched"]}
        check("frameset: 3 members, one per device", out["members"] == 3 and len(devices) == 3,
              out)
        check("frameset: framesets matched, exit 0", out["framesets"] > 0 and r.returncode == 0,
              out)
        check("frameset: every device's frames arrived and most are in framesets", all(
            m["frames"] > 0 and m["frames"] - m["unmatched"] >= out["framesets"]
            for m in out["unmatched"]), out)
        check("frameset: spread p99 under 1 ms in this host's clock",
              out["spread_p99_ms"] is not None and out["spread_p99_ms"] < 1.0, out)
        check("frameset: the clock mapping was on, with both servers' estimates",
              out["clock_mapping"] is True and
              abs(out["servers"][0]["clock_offset_ms"] - 250) < 5 and
              abs(out["servers"][1]["clock_offset_ms"] + 40) < 5, out)
        check("frameset: default tolerance is half a period at 10 fps",
              abs(out["tolerance_ms"] - 50.0) < 0.01, out)

    # Without the mapping the servers' times are 290 ms apart: the default queue (8 frames,
    # 800 ms at 10 fps) reaches across, and so does a longer one; either way the partners
    # found are captures 300 ms away, 10 ms apart in the wrong clocks (or, when the queues do
    # not reach, there is no match at all).
    for extra in ([], ["--queue", "64"]):
        out, r = frameset(a[1], b[1], "--no-clock", *extra)
        check(f"no-clock {extra}: a JSON summary", out is not None,
              f"rc={r.returncode} {r.stderr!r}")
        if out:
            check(f"no-clock {extra}: no frameset, or a spread far above 1 ms",
                  out["clock_mapping"] is False and
                  (out["framesets"] == 0 or out["spread_p50_ms"] >= 5.0), out)
            check(f"no-clock {extra}: the frames left alone are counted",
                  sum(m["unmatched"] for m in out["unmatched"]) > 0, out)
            if out["framesets"] == 0:
                check(f"no-clock {extra}: exit 1 without framesets", r.returncode == 1, r.returncode)

    # Depth and IR of one device: one frameset per capture.
    out, r = frameset(b[1], "--stream", "depth", "--stream", "ir", seconds=3)
    check("depth+ir of one device: framesets of 2 members with the same capture time",
          out is not None and out["members"] == 2 and out["framesets"] > 0 and
          out["spread_p50_ms"] == 0.0, out or r.stderr)
finally:
    cu.stop(b[0])

# ---- The third device at half the rate ---------------------------------------------------
b = cu.start_server("--mock", "1", "--port", str(cu.free_port()), "--fps", "5",
                    "--clock-offset-ms", "-40", "--mock-align")
try:
    out, r = good_run(a[1], b[1])
    check("half rate: a JSON summary", out is not None, f"rc={r.returncode} {r.stderr!r}")
    if out:
        fast = out["unmatched"][:2]
        slow = out["unmatched"][2]
        check("half rate: default tolerance is half the slowest period",
              abs(out["tolerance_ms"] - 100.0) < 0.01, out)
        check("half rate: the slow device's frames nearly all pair",
              out["framesets"] > 0 and slow["unmatched"] <= slow["frames"] * 0.1 + 3, out)
        check("half rate: they pair with their own capture (spread p99 under 1 ms, not 100 ms)",
              out["spread_p99_ms"] is not None and out["spread_p99_ms"] < 1.0, out)
        check("half rate: about half of each fast device's frames are counted unmatched", all(
            0.3 * m["frames"] <= m["unmatched"] <= 0.7 * m["frames"] for m in fast), out)
finally:
    cu.stop(b[0])
    cu.stop(a[0])

sys.exit(cu.summary())
