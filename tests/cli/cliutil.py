"""What every command-line test needs: the sk2 program, PASS/FAIL lines with a final count, a
scratch folder, and servers started and stopped the way a user would.

A test script does `import cliutil as cu`, calls `cu.setup(name)` once (it takes the path of
sk2 from argv[1]), then `cu.check(...)`, `cu.start_server(...)`, ... and ends with
`sys.exit(cu.summary())`.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SK2 = "sk2"
TMP = None
results = []


def setup(name):
    """Takes sk2's path from argv[1], makes a scratch folder and turns mDNS off for this
    process and its children: the system bus address points nowhere, so announcing and browsing
    fail at once (the real thing is tested in a private namespace by tests/discovery/). Also
    keeps AddressSanitizer's quarantine of freed memory small for the programs it starts."""
    global SK2, TMP
    SK2 = sys.argv[1] if len(sys.argv) > 1 else "sk2"
    TMP = tempfile.mkdtemp(prefix=f"sk2-{name}-")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = f"unix:path=/nonexistent/sk2-{name}-test-bus"
    # Under AddressSanitizer (make asan) freed memory waits in a quarantine of 256 MB by default,
    # which a busy server fills: keep it small, so that a test's memory bound measures sk2.
    if "quarantine_size_mb" not in os.environ.get("ASAN_OPTIONS", ""):
        os.environ["ASAN_OPTIONS"] = ":".join(
            filter(None, [os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16"]))
    return SK2, TMP


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("PASS " if condition else "FAIL ") + name + ("" if condition else f": {detail}"),
          flush=True)


def summary():
    """Prints the count and gives the exit status: 0 only if every check passed."""
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1


def path(name):
    return os.path.join(TMP, name)


def run(*args, timeout=60):
    return subprocess.run([SK2, *args], capture_output=True, text=True, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*extra, wait_s=10):
    """Starts `sk2 serve` on loopback, unannounced, and waits for its endpoint file.
    Returns (process, endpoint, endpoint file)."""
    endpoint_file = path(f"endpoint-{time.monotonic_ns()}")
    proc = subprocess.Popen([SK2, "serve", "--bind", "127.0.0.1", "--endpoint-file",
                             endpoint_file, "--no-status", "--no-announce", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(endpoint_file):
            with open(endpoint_file) as f:
                endpoint = f.read().strip()
            if endpoint:
                return proc, endpoint, endpoint_file
        time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate()
    raise RuntimeError(f"sk2 serve {' '.join(extra)} did not start within {wait_s} s: {err}")


def stop(proc, sig=signal.SIGINT, timeout=10):
    """Stops a process as Ctrl-C would (or with `sig`). Returns (exit status, stdout, stderr);
    the status is None if it had to be killed."""
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, out, err + f"\n(did not stop within {timeout} s)"
