#!/usr/bin/env python3
"""Runs the README's shell examples as a user would paste them, and checks what they print.

Every fenced ```sh block of README.md is a part of one terminal session, in order: commands
are the lines that start with "$ " (a block with no such line is a list of plain commands),
lines after a command are the output the README promises for it. A command ending in "&"
runs in the background for the rest of the session, as it would in a terminal; the session
waits for its first line of output before going on (a server has bound once it prints its
endpoint). A block that cannot run here says so in the line right above it:

    <!-- readme-test: skip: needs an mDNS daemon on the network -->

and the test prints each skipped block with its reason, so nothing is skipped silently.

Every ```python block is a program run on its own with this Python and the build's sk2
package (BUILD_TOOLS_DIR/../python) on PYTHONPATH; it must exit 0 and print something. Where
the binding was not built, its blocks are reported as skipped.

An output line is matched loosely where the README cannot know the value: every number
matches any number, a hex id or serial (8 digits or more) any of its length, runs of spaces any
run of spaces, a line "..." any number of lines, and case is ignored (HTTP header names vary).
Each promised line must appear, in order, in what the command printed (on stdout or stderr);
lines starting with "#" are comments. A command NAME=$(...) sets NAME for the rest of the
session, as in a shell. Every command must exit 0.

usage: test_readme.py README.md BUILD_TOOLS_DIR
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.*?)\s*-->")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
HEX_ID = re.compile(r"[0-9a-f]*[0-9][0-9a-f]*")
ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=\$\(.*\)$")

failures = 0
passes = 0


def check(ok, what, detail=""):
    global failures, passes
    print(("ok   " if ok else "FAIL ") + what)
    passes += 1 if ok else 0
    if not ok:
        failures += 1
        if detail:
            print("     " + detail.replace("\n", "\n     "))


def blocks(readme, language="sh"):
    """(line number, skip reason or None, lines) for every ```sh (or other language) block."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m.group(1) == language:
            start = i
            reason = None
            for back in range(i - 1, max(i - 3, -1), -1):
                s = SKIP.search(lines[back])
                if s:
                    reason = s.group(1)
                    break
                if lines[back].strip():
                    break
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append((start + 1, reason, body))
        i += 1
    return out


def commands(body):
    """(command, promised output lines) pairs of a block."""
    if not any(l.startswith("$ ") for l in body):
        return [(l.split("  #")[0].strip(), []) for l in body
                if l.strip() and not l.lstrip().startswith("#")]
    out = []
    for line in body:
        if line.startswith("$ "):
            out.append((line[2:].strip(), []))
        elif out and not line.lstrip().startswith("#"):
            out[-1][1].append(line)
    return out


def pattern(line):
    """A regex for one promised output line."""
    text = line.strip()
    parts, pos = [], 0
    for m in re.finditer(r"\b[0-9a-f]*\d[0-9a-f]*\b|\d+(?:\.\d+)?|\s+", text):
        parts.append(re.escape(text[pos:m.start()]))
        token = m.group(0)
        if token.isspace():
            parts.append(r"\s+")
        elif len(token) >= 8 and HEX_ID.fullmatch(token):
            parts.append(r"[0-9a-f]{%d}" % len(token))
        else:
            parts.append(r"\d+(?:\.\d+)?")
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    return re.compile("".join(parts), re.IGNORECASE)


def matches_in_order(promised, printed):
    """None if every promised line appears in order, else the first one that does not."""
    lines = [l.strip() for l in printed.split("\n")]
    at = 0
    for want in promised:
        if not want.strip() or want.strip() == "...":
            continue
        rx = pattern(want)
        while at < len(lines) and not rx.fullmatch(lines[at]):
            at += 1
        if at == len(lines):
            return want
        at += 1
    return None


def main():
    readme, tools = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="sk2-readme-")
    env = dict(os.environ)
    env["PATH"] = os.path.abspath(tools) + os.pathsep + env.get("PATH", "")
    background = []
    ran = skipped = 0
    try:
        for line_no, reason, body in blocks(readme):
            if reason:
                skipped += 1
                print(f"skip README.md:{line_no}: {reason}")
                continue
            for command, promised in commands(body):
                if not command:
                    continue
                ran += 1
                where = f"README.md:{line_no}: $ {command}"
                if command.endswith("&"):
                    log = open(os.path.join(work, f"bg{len(background)}.log"), "w+")
                    proc = subprocess.Popen(["bash", "-c", command[:-1]], cwd=work, env=env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
                    background.append((proc, log, where))
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline and proc.poll() is None:
                        log.seek(0)
                        if log.read().strip():
                            break
                        time.sleep(0.1)
                    log.seek(0)
                    first = log.read()
                    check(proc.poll() is None and first.strip(), where + "  (running)",
                          first[-2000:])
                    continue
                # NAME=$(...) sets a variable for the rest of the session, as in a shell.
                assign = ASSIGN.match(command)
                if assign:
                    r = subprocess.run(["bash", "-o", "pipefail", "-c",
                                        f"{command} && printf %s \"${assign.group(1)}\""],
                                       cwd=work, env=env, capture_output=True, text=True,
                                       timeout=120)
                    check(r.returncode == 0 and r.stdout.strip() != "", where,
                          f"exit {r.returncode}: {r.stderr[-2000:]}")
                    env[assign.group(1)] = r.stdout.strip()
                    continue
                try:
                    r = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work,
                                       env=env, capture_output=True, text=True, timeout=120)
                    printed = r.stdout + r.stderr
                    missing = matches_in_order(promised, printed)
                    check(r.returncode == 0 and missing is None, where,
                          (f"exit {r.returncode}; " if r.returncode else "") +
                          (f"promised line not printed: {missing!r}\n" if missing else "") +
                          printed[-3000:])
                except subprocess.TimeoutExpired as e:
                    check(False, where, f"did not finish within 120 s: {e}")
    finally:
        for proc, log, where in background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()
        shutil.rmtree(work, ignore_errors=True)
    python_dir = os.path.join(os.path.abspath(tools), "..", "python")
    for line_no, reason, body in blocks(readme, "python"):
        if not reason and not os.path.isdir(os.path.join(python_dir, "sk2")):
            reason = "the Python binding was not built"
        if not reason and os.environ.get("SK2_README_PYTHON_SKIP"):
            reason = os.environ["SK2_README_PYTHON_SKIP"]
        if reason:
            skipped += 1
            print(f"skip README.md:{line_no}: {reason}")
            continue
        ran += 1
        penv = dict(env, PYTHONPATH=python_dir)
        try:
            r = subprocess.run([sys.executable, "-c", "\n".join(body)],
                               cwd=tempfile.gettempdir(), env=penv, capture_output=True,
                               text=True, timeout=120)
            check(r.returncode == 0 and r.stdout.strip() != "",
                  f"README.md:{line_no}: python block",
                  f"exit {r.returncode}: {(r.stdout + r.stderr)[-3000:]}")
        except subprocess.TimeoutExpired as e:
            check(False, f"README.md:{line_no}: python block", f"did not finish: {e}")
    check(ran > 0, f"{ran} README commands ran, {skipped} block(s) skipped with a reason")
    print(f"{passes} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
