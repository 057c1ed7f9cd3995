"""Process plumbing shared by selftest.py and run_against_sk2.py.

Starting peers as subprocesses, waiting for the endpoint file a server
writes once it is bound, and making sure every child is gone afterwards.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FILE_POLL_S = 0.05  # how often to look at an endpoint file while waiting
STOP_TIMEOUT_S = 5.0


def script(name):
    """Command prefix running one of the interop scripts with this Python."""
    return [sys.executable, os.path.join(HERE, name)]


@contextlib.contextmanager
def started(cmd, log_path):
    """Start `cmd` with stdout+stderr to log_path; kill it (by PID) on exit.

    A child that is still running when the block ends, normally or by an
    exception, is killed with its process group (it leads a new session, so
    the group is the child and whatever it started) and reaped, so no test
    leaves processes behind.
    """
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT_S)


def wait_for_endpoint_file(path, proc, timeout_s):
    """Return the endpoint a server wrote to `path`, waiting up to timeout_s.

    Raises TimeoutError if it does not appear in time and RuntimeError if
    the server exits first. The file should hold one line ending in a
    newline; a line without one counts only once two reads in a row agree,
    in case a writer neither renames nor ends with a newline.
    """
    deadline = time.monotonic() + timeout_s
    previous = None
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            text = None
        if text and text.strip() and (text.endswith("\n") or text == previous):
            return text.strip()
        previous = text
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before writing {path}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path} not written within {timeout_s} s")
        time.sleep(FILE_POLL_S)


def stop(proc, timeout_s=STOP_TIMEOUT_S, sig=None):
    """Send `sig` (SIGINT by default) and return the exit status.

    Raises subprocess.TimeoutExpired if the process does not exit in time;
    the caller's `started` block then kills it.
    """
    proc.send_signal(signal.SIGINT if sig is None else sig)
    return proc.wait(timeout_s)


def tail(path, lines=20):
    """The last lines of a log file, for failure messages."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def run_to_end(cmd, timeout_s):
    """Run cmd with captured text output; return (status or None on timeout, stdout, stderr).

    The command leads a new session; on timeout its whole process group is
    killed and reaped, so nothing it started outlives the check.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        return proc.returncode, stdout, stderr
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=STOP_TIMEOUT_S)
        return None, stdout, stderr
    finally:
        if proc.poll() is None:  # interrupted some other way
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT_S)
