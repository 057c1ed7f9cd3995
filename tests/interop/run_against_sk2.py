#!/usr/bin/python3
"""Interoperability checks between the sk2 binary and the independent peers.

(a) sk2 as the server: `sk2 serve --mock 2` is checked by v1_client.py
    (--check-mock --abuse) and must exit 0 on SIGINT.
(b) sk2 as the client: against v1_server.py, which hands out host-name
    endpoints, `sk2 info --json`, `sk2 ping` and `sk2 stream --check-mock`
    must succeed, and `sk2 stream` to an endpoint nobody listens on must fail
    within 10 s.

Prints one PASS/FAIL line per check and, last, `N passed, M failed`; the
exit status is 0 only if every check passed. Every child process is killed
by PID when its check ends, whatever happened.

Usage: run_against_sk2.py --sk2 /path/to/sk2
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import zmq

import harness
import v1proto

ENDPOINT_TIMEOUT_S = 10
CLIENT_TIMEOUT_S = 120
SHORT_COMMAND_TIMEOUT_S = 15
STREAM_TIMEOUT_S = 60
REFUSED_TIMEOUT_S = 10
NOBODY_LISTENS = "tcp://127.0.0.1:1"
WHO_LOG_LINE = "request who answered with me"  # what v1_server logs
PING_LOG_LINE = "request ping answered with pong"
OTHER_LOG_LINE = "request other answered"  # a type byte version 1 does not know


class Report:
    """Counts and prints check results."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        """Record one check; print PASS/FAIL, with the detail on failure."""
        if ok:
            self.passed += 1
            print(f"PASS: {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL: {name}", flush=True)
            if detail:
                print("  " + detail.rstrip().replace("\n", "\n  "), flush=True)


@dataclasses.dataclass
class Outcome:
    """How a finished command went; status is None if it timed out."""

    status: int | None
    stdout: str
    stderr: str
    seconds: float

    def detail(self):
        """Failure detail: exit status (or timeout) and output."""
        head = "timed out" if self.status is None else f"exit status {self.status}"
        return f"{head} after {self.seconds:.1f} s\nstdout:\n{self.stdout}stderr:\n{self.stderr}"


def run_command(cmd, timeout_s):
    """Run cmd to completion within timeout_s (killing it if not); return an Outcome."""
    started = time.monotonic()
    status, stdout, stderr = harness.run_to_end(cmd, timeout_s)
    return Outcome(status, stdout, stderr, time.monotonic() - started)


def device_ids_of(info):
    """Device ids from `sk2 info --json` output: a list of records or ids."""
    devices = info.get("devices") if isinstance(info, dict) else None
    if isinstance(devices, dict):
        return set(devices)
    if not isinstance(devices, list):
        return None
    return {d.get("id") if isinstance(d, dict) else d for d in devices}


def count_in_log(path, text):
    """How many lines of a log file contain `text`."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(text in line for line in f)


def check_sk2_server(sk2, tmp, report):
    """(a) sk2 serve against v1_client.py."""
    endpoint_file = os.path.join(tmp, "sk2-serve.endpoint")
    log = os.path.join(tmp, "sk2-serve.log")
    cmd = [sk2, "serve", "--no-announce", "--bind", "127.0.0.1", "--port", "0", "--mock", "2",
           "--fps", "30", "--endpoint-file", endpoint_file]
    with harness.started(cmd, log) as proc:
        name = "sk2 serve writes its endpoint file"
        try:
            endpoint = harness.wait_for_endpoint_file(endpoint_file, proc, ENDPOINT_TIMEOUT_S)
        except (TimeoutError, RuntimeError) as exc:
            report.check(name, False, f"{exc}\n{harness.tail(log)}")
            return
        report.check(name, True)

        client = harness.script("v1_client.py") + [
            endpoint, "--frames", "20", "--check-mock", "--abuse"]
        outcome = run_command(client, CLIENT_TIMEOUT_S)
        report.check("v1_client --check-mock --abuse passes against sk2 serve",
                     outcome.status == 0, outcome.detail() + harness.tail(log))

        name = "sk2 serve exits 0 within 5 s of SIGINT"
        try:
            status = harness.stop(proc)
            report.check(name, status == 0, f"exit status {status}\n{harness.tail(log)}")
        except subprocess.TimeoutExpired:
            report.check(name, False, "still running after 5 s")


def check_sk2_client(sk2, tmp, report):
    """(b) sk2 info, ping and stream against v1_server.py."""
    endpoint_file = os.path.join(tmp, "v1-server.endpoint")
    log = os.path.join(tmp, "v1-server.log")
    cmd = harness.script("v1_server.py") + [
        "--devices", "2", "--hostname-endpoints", "--endpoint-file", endpoint_file]
    with harness.started(cmd, log) as proc:
        name = "v1_server starts and describes its 2 devices"
        try:
            endpoint = harness.wait_for_endpoint_file(endpoint_file, proc, ENDPOINT_TIMEOUT_S)
            with zmq.Context() as ctx:
                server_ids = {d["id"] for d in v1proto.query_devices(ctx, endpoint)}
        except (TimeoutError, RuntimeError, v1proto.ProtocolError) as exc:
            report.check(name, False, f"{exc}\n{harness.tail(log)}")
            return
        report.check(name, len(server_ids) == 2, f"ids {sorted(server_ids)}")

        # v1_server logs each request before replying, so a command that got
        # its answer has left its line in the log: exit 0 alone proves little.
        whos = count_in_log(log, WHO_LOG_LINE)
        outcome = run_command([sk2, "info", endpoint, "--json"], SHORT_COMMAND_TIMEOUT_S)
        ids = None
        if outcome.status == 0:
            try:
                ids = device_ids_of(json.loads(outcome.stdout))
            except ValueError:
                pass
        report.check("sk2 info --json asks who and lists the server's 2 device ids",
                     ids == server_ids and count_in_log(log, WHO_LOG_LINE) > whos,
                     f"expected {sorted(server_ids)}, got {ids}\n" + outcome.detail())
        clock = "missing"
        if outcome.status == 0:
            try:
                clock = json.loads(outcome.stdout).get("clock", "missing")
            except ValueError:
                pass
        # sk2's clock exchange (0x0d) goes only to servers whose `me` offers it.
        report.check("sk2 info --json has no clock estimate and sent nothing but version 1",
                     clock is None and count_in_log(log, OTHER_LOG_LINE) == 0,
                     f"clock {clock!r}\n" + harness.tail(log))

        pongs = count_in_log(log, PING_LOG_LINE)
        outcome = run_command([sk2, "ping", endpoint], SHORT_COMMAND_TIMEOUT_S)
        report.check("sk2 ping gets a pong and exits 0",
                     outcome.status == 0 and count_in_log(log, PING_LOG_LINE) > pongs,
                     outcome.detail())

        whos = count_in_log(log, WHO_LOG_LINE)
        outcome = run_command([sk2, "stream", endpoint, "--frames", "30", "--check-mock"],
                              STREAM_TIMEOUT_S)
        report.check("sk2 stream --frames 30 --check-mock asks who and exits 0",
                     outcome.status == 0 and count_in_log(log, WHO_LOG_LINE) > whos,
                     outcome.detail())

        report.check("the sk2 clients sent v1_server no message version 1 does not know",
                     count_in_log(log, OTHER_LOG_LINE) == 0, harness.tail(log))
        report.check("v1_server is still serving after the sk2 clients",
                     proc.poll() is None, harness.tail(log))

    outcome = run_command([sk2, "stream", NOBODY_LISTENS, "--seconds", "3"], REFUSED_TIMEOUT_S)
    report.check(f"sk2 stream {NOBODY_LISTENS} fails within {REFUSED_TIMEOUT_S} s",
                 outcome.status not in (None, 0), outcome.detail())


def main(argv=None):
    """Run every check; print the summary line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sk2", required=True, help="path to the sk2 binary")
    args = parser.parse_args(argv)
    report = Report()
    sk2 = os.path.abspath(args.sk2)
    if not os.access(sk2, os.X_OK):
        report.check(f"{sk2} is an executable", False)
    else:
        with tempfile.TemporaryDirectory(prefix="sk2-interop-") as tmp:
            for suite in (check_sk2_server, check_sk2_client):
                try:
                    suite(sk2, tmp, report)
                except Exception as exc:  # report and go on to the next suite
                    report.check(f"{suite.__name__} ran to the end", False, repr(exc))
    print(f"{report.passed} passed, {report.failed} failed")
    return 0 if report.failed == 0 and report.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
