"""`sk2 record` when the disk fills up and when the recorder is killed mid-write: every frame it
acknowledged (the status line's "synced N": flushed with fdatasync) must be readable afterwards
by `sk2 inspect`, `sk2 export` (which decodes every frame) and `sk2 serve --replay`.

The disk is a 4 MiB tmpfs mounted in a private mount namespace (`unshare --mount`), so nothing
outside the test sees it: the script runs itself again inside the namespace with --inside.
That needs root; without it, or without unshare or tmpfs, the test prints SKIP with the reason
and exits 77 (ctest's skip code), except under CI=true, where it must run and fails instead.

Usage: test_record_faults.py SK2 [--inside]
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cliutil as cu
from cliutil import check, path, run

SKIP = 77
SYNCED = re.compile(r"^frames (\d+) \| synced (\d+) \|")
SUMMARY = re.compile(r"^sk2 record: (\d+) frames, ")
INSPECTED = re.compile(r"^frames +(\d+)$", re.M)


def skip(reason):
    if os.environ.get("CI") == "true":
        print(f"FAIL the disk-full test cannot run on CI: {reason}", flush=True)
        sys.exit(1)
    print(f"SKIP test_record_faults: {reason}", flush=True)
    sys.exit(SKIP)


def outside():
    """Runs this script again in a private mount namespace, or says why it cannot."""
    if os.geteuid() != 0:
        skip("mounting a small tmpfs needs root (unshare --mount); run as root")
    unshare = shutil.which("unshare")
    if not unshare:
        skip("unshare (util-linux) is not installed")
    probe = subprocess.run([unshare, "--mount", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        skip(f"unshare --mount fails here: {probe.stderr.strip()}")
    r = subprocess.run([unshare, "--mount", "--propagation", "private", sys.executable,
                        os.path.abspath(__file__), sys.argv[1], "--inside"])
    sys.exit(r.returncode)


def inspected_frames(target):
    r = run("inspect", target, timeout=120)
    m = INSPECTED.search(r.stdout)
    return r, int(m.group(1)) if m else -1


def exported_frames(target, out_dir):
    """Exports a recording to a TUM folder (every frame decoded) and counts the depth lines."""
    r = run("export", target, out_dir, timeout=180)
    if r.returncode != 0:
        return r, -1
    with open(os.path.join(out_dir, "depth.txt")) as f:
        lines = [line for line in f if line.strip() and not line.startswith("#")]
    return r, len(lines)


def replays(target):
    """Serves a recording with --replay and receives depth frames from it with `sk2 stream`."""
    server, endpoint, _ = cu.start_server("--replay", target, "--rate", "0", "--loop")
    try:
        return run("stream", endpoint, "--stream", "depth:sk2d", "--frames", "10",
                   "--no-status", "--timeout", "20000", timeout=60)
    finally:
        cu.stop(server)


def disk_full(endpoint, disk):
    """Records depth onto the 4 MiB tmpfs until it is full."""
    take = os.path.join(disk, "take.sk2r")
    r = run("record", endpoint, "-o", take, "--streams", "depth", "--status-interval", "0.2",
            "--seconds", "60", timeout=120)
    acked = [int(m.group(2)) for m in map(SYNCED.match, r.stdout.splitlines()) if m]
    summary = [int(m.group(1)) for m in map(SUMMARY.match, r.stdout.splitlines()) if m]
    check("a full disk stops the recorder with exit 1 and says so",
          r.returncode == 1 and "No space left on device" in r.stderr,
          f"rc={r.returncode} {r.stderr[-400:]}")
    check("status lines acknowledged synced frames before the disk filled",
          acked and max(acked) > 0, r.stdout[-600:])
    check("the recording is FILE, no temporary left behind",
          os.path.exists(take) and not glob.glob(take + ".partial-*"), os.listdir(disk))
    written = summary[0] if summary else -1
    r, frames = inspected_frames(take)
    check("inspect reads the full-disk recording: every frame the summary counted, at least "
          "every acknowledged one, none damaged",
          r.returncode == 0 and frames == written and frames >= max(acked or [1 << 62])
          and "0 damaged" in r.stdout,
          f"rc={r.returncode} frames={frames} summary={written} acked={acked[-3:]} "
          f"{r.stdout[-300:]}{r.stderr[-300:]}")
    # The disk is full: the export goes to the ordinary scratch folder.
    r, exported = exported_frames(take, path("full-tum"))
    check("every frame of the full-disk recording decodes (export)",
          r.returncode == 0 and exported == frames, f"rc={r.returncode} {exported} {r.stderr}")
    r = replays(take)
    check("serve --replay plays the full-disk recording",
          r.returncode == 0, f"rc={r.returncode} {r.stdout[-300:]} {r.stderr[-300:]}")
    print(f"measured: disk full after {written} frames, last acknowledged {max(acked or [0])}",
          flush=True)


def killed(endpoint):
    """Kills a recorder with SIGKILL once it acknowledged 20 frames."""
    target = path("killed.sk2r")
    proc = subprocess.Popen([cu.SK2, "record", endpoint, "-o", target, "--streams", "depth",
                             "--status-interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and acked < 20:
        line = proc.stdout.readline()
        if not line:
            break
        m = SYNCED.match(line)
        if m:
            acked = int(m.group(2))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    check("the recorder acknowledged 20 frames before it was killed", acked >= 20, acked)
    partial = glob.glob(target + ".partial-*")
    check("a killed recorder leaves FILE.partial-XXXXXX beside FILE",
          len(partial) == 1 and not os.path.exists(target), os.listdir(cu.TMP))
    if len(partial) != 1:
        return
    r, frames = inspected_frames(partial[0])
    check("inspect reads the partial file as it is (index rebuilt by scanning), with every "
          "acknowledged frame",
          r.returncode == 0 and frames >= acked and "rebuilt by scanning" in r.stdout,
          f"rc={r.returncode} frames={frames} acked={acked} {r.stdout[-300:]}{r.stderr[-300:]}")
    r, exported = exported_frames(partial[0], path("killed-tum"))
    check("every frame of the partial file decodes (export)",
          r.returncode == 0 and exported == frames, f"rc={r.returncode} {exported} {r.stderr}")
    r = replays(partial[0])
    check("serve --replay plays the partial file as it is",
          r.returncode == 0, f"rc={r.returncode} {r.stdout[-300:]} {r.stderr[-300:]}")
    # Recovering it is renaming it (docs/recording.md): the same frames under the final name.
    os.rename(partial[0], target)
    r, renamed = inspected_frames(target)
    check("the renamed partial file reads the same", r.returncode == 0 and renamed == frames,
          f"{renamed} != {frames}")
    print(f"measured: killed after {acked} acknowledged frames, {frames} in the file", flush=True)


def inside():
    cu.setup("record-faults")
    disk = path("small-disk")
    os.mkdir(disk)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "sk2-test-disk", disk],
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip(f"cannot mount a tmpfs in the namespace: {r.stderr.strip()}")
    server, endpoint, _ = cu.start_server("--mock", "1")
    try:
        disk_full(endpoint, disk)
        killed(endpoint)
    finally:
        cu.stop(server)
        subprocess.run(["umount", disk])
    shutil.rmtree(cu.TMP, ignore_errors=True)
    sys.exit(cu.summary())


if __name__ == "__main__":
    if "--inside" in sys.argv[2:]:
        inside()
    else:
        outside()
