"""A device that fails mid-stream and comes back, seen by real clients: `sk2 serve` unplugs its
mock camera after a few seconds and plugs it back a few seconds later (--mock-unplug-after,
--mock-replug-after: fault injection for test rigs), while two `sk2 stream` clients receive it,
one from the version-1 depth endpoint and one from the streams endpoint (depth and IR in sk2d).
Each must print the removal, then the addition of the same device, and receive frames of the
mock scene again afterwards without being restarted.

Usage: test_device_faults.py SK2
"""
import re
import subprocess
import sys

import cliutil as cu
from cliutil import check

STATUS = re.compile(r"^frames (\d+) \|(?:.*\|)? devices (\d+) \|")
FINAL = re.compile(r"^sk2 stream: (\d+) frames in .* (\d+) removed$")
MOCK_FPS = 10
AFTER_READD_MIN = 10  # frames each client must receive after the device came back


def stream(endpoint, *extra):
    return subprocess.Popen([cu.SK2, "stream", endpoint, "--seconds", "16", "--check-mock",
                             "--status-interval", "0.2", "--timeout", "20000", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def analyse(label, proc):
    """Checks one client's output: removed, then added, then frames again."""
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = out.splitlines()
    removed = [i for i, line in enumerate(lines) if re.match(r"^sk2 stream: device \S+ removed$",
                                                              line)]
    added = [i for i, line in enumerate(lines) if re.match(r"^sk2 stream: device \S+ added$",
                                                           line)]
    # --check-mock: exit 1 if any frame is not the mock scene.
    check(f"{label}: exits 0 with the mock scene in every frame", proc.returncode == 0,
          f"rc={proc.returncode} {err[-400:]}")
    check(f"{label}: says the device was removed, then added again", len(removed) == 1
          and len(added) == 1 and added[0] > removed[0]
          and lines[removed[0]].split()[3] == lines[added[0]].split()[3], out[-1500:])
    if len(removed) != 1 or len(added) != 1 or added[0] < removed[0]:
        return
    between = [STATUS.match(line) for line in lines[removed[0]:added[0]]]
    between = [m for m in between if m]
    check(f"{label}: no device while it was unplugged",
          between and all(m.group(2) == "0" for m in between), lines[removed[0]:added[0]])
    if not between:
        return
    # No frame of a removed device arrives (its sockets are closed), so the count on the last
    # status line before the addition is the count when the device came back.
    at_readd = int(between[-1].group(1))
    final = [FINAL.match(line) for line in lines]
    final = [m for m in final if m]
    total = int(final[-1].group(1)) if final else -1
    check(f"{label}: frames flow again on the re-added device (at least {AFTER_READD_MIN})",
          total - at_readd >= AFTER_READD_MIN and final[-1].group(2) == "1",
          f"{total} frames in all, {at_readd} before it came back")
    after = [m for m in (STATUS.match(line) for line in lines[added[0]:]) if m]
    check(f"{label}: the device counts again after the addition",
          any(m.group(2) == "1" for m in after), lines[added[0]:added[0] + 5])
    print(f"measured: {label}: {at_readd} frames before the device came back, "
          f"{total - at_readd} after", flush=True)


def main():
    cu.setup("device-faults")
    server, endpoint, _ = cu.start_server("--mock", "1", "--fps", str(MOCK_FPS),
                                          "--mock-unplug-after", "4", "--mock-replug-after", "3")
    try:
        v1 = stream(endpoint)
        streams = stream(endpoint, "--stream", "depth:sk2d", "--stream", "ir:sk2d")
        analyse("v1 depth client", v1)
        analyse("streams client (depth, ir)", streams)
    finally:
        rc, out, err = cu.stop(server)
    check("serve says it unplugged the mock and plugged it back",
          "unplugged (fault injection)" in out + err and "plugged back" in out + err,
          (out + err)[-800:])
    sys.exit(cu.summary())


if __name__ == "__main__":
    main()
