"""Poses and extrinsics from the command line (docs/rigs.md, "Poses and registration"):

- a mock device serves its depth-to-colour extrinsics (identity) and no pose until one is set;
- `sk2 ctl SERVER DEVICE pose JSON` sets it (matrix or quaternion), `sk2 info` shows it in
  text and `info --json` (that is, `me`) carries it; a bad pose is refused (exit 6) and changes
  nothing, the state file included; "" clears it;
- `sk2 serve --pose DEVICE=FILE` refuses bad files with exit 2 before serving, and an unknown
  device with exit 2; a good one is served and written to --state;
- `sk2 record` keeps pose and extrinsics in the recording: a replay of it serves them;
- --state keeps the pose across a restart (the replay's recorded device id is stable), and a
  pose set by command or --pose wins over the recording's own; a change the state file cannot
  keep is refused, and a file that is not a state file stops serve.

Usage: test_pose_cli.py SK2.
"""
import json
import math
import os
import sys

import cliutil as cu

SK2, TMP = cu.setup("pose")

QUARTER_TURN = {"rotation": [0, -1, 0, 1, 0, 0, 0, 0, 1], "translation": [1.5, -0.25, 2]}
# The same rotation as a unit quaternion (w, x, y, z): 90 degrees about z.
QUARTER_TURN_Q = {"rotation": [math.sqrt(0.5), 0, 0, math.sqrt(0.5)], "translation": [1.5, -0.25, 2]}
OTHER = {"rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "translation": [0.1, 0.2, 0.3]}
THIRD = {"rotation": [1, 0, 0, 0, 0, -1, 0, 1, 0], "translation": [-3, 0, 0.5]}
IDENTITY = {"rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "translation": [0, 0, 0]}

BAD_POSES = {
    "not orthonormal": '{"rotation": [1, 0.2, 0, 0, 1, 0, 0, 0, 1], "translation": [0, 0, 0]}',
    "a mirror": '{"rotation": [1, 0, 0, 0, 1, 0, 0, 0, -1], "translation": [0, 0, 0]}',
    "too far": '{"rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "translation": [0, 0, 5000]}',
    "an extra member": '{"rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "translation": [0, 0, 0], '
                       '"scale": 2}',
    "eight numbers": '{"rotation": [1, 0, 0, 0, 1, 0, 0, 0], "translation": [0, 0, 0]}',
    "a long quaternion": '{"rotation": [1, 1, 0, 0], "translation": [0, 0, 0]}',
    "not JSON": 'rotation = identity',
}


def write(name, text):
    p = cu.path(name)
    with open(p, "w") as f:
        f.write(text)
    return p


def me(endpoint):
    r = cu.run("info", endpoint, "--json")
    return json.loads(r.stdout)


def record_of(endpoint, device):
    return next(d for d in me(endpoint)["devices"] if d["id"] == device)


def close(a, b, tolerance=1e-6):
    """Whether two poses as JSON objects hold the same numbers."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    return all(len(a[k]) == len(b[k]) and all(abs(x - y) <= tolerance for x, y in zip(a[k], b[k]))
               for k in ("rotation", "translation"))


def start(*extra):
    proc, endpoint, _ = cu.start_server(*extra)
    device = me(endpoint)["devices"][0]["id"]
    return proc, endpoint, device


def read(p):
    with open(p, "rb") as f:
        return f.read()


state = cu.path("state.json")
good = write("good.json", json.dumps(QUARTER_TURN))

# ---- serve --pose refuses bad files before serving ------------------------------------------
for name, text in BAD_POSES.items():
    bad = write("bad.json", text)
    r = cu.run("serve", "--no-announce", "--no-status", "--mock", "1", "--state", state,
               "--pose", f"abc={bad}", timeout=20)
    cu.check(f"serve --pose refuses {name} with exit 2", r.returncode == 2 and "--pose" in r.stderr,
             f"{r.returncode} {r.stderr[-300:]}")
cu.check("no state file was written by the refused starts", not os.path.exists(state))
r = cu.run("serve", "--no-announce", "--no-status", "--pose", "abc=/nonexistent/pose.json")
cu.check("serve --pose refuses a missing file with exit 2", r.returncode == 2, r.stderr[-200:])
r = cu.run("serve", "--no-announce", "--no-status", "--pose", good)
cu.check("serve --pose refuses FILE without DEVICE= with exit 2", r.returncode == 2,
         r.stderr[-200:])

# ---- a mock: extrinsics, no pose, then pose by command ----------------------------------------
proc, endpoint, mock = start("--mock", "1", "--state", state)
try:
    rec = record_of(endpoint, mock)
    cu.check("a mock serves identity depth-to-colour extrinsics",
             close(rec.get("depth_to_color"), IDENTITY), rec.get("depth_to_color"))
    cu.check("a new device has no pose (unset, not identity)", "pose" not in rec, rec.get("pose"))
    r = cu.run("ctl", endpoint, mock, "pose", json.dumps(QUARTER_TURN_Q))
    cu.check("ctl pose takes a quaternion", r.returncode == 0, r.stderr)
    rec = record_of(endpoint, mock)
    cu.check("me carries the pose as a matrix", close(rec.get("pose"), QUARTER_TURN),
             rec.get("pose"))
    r = cu.run("ctl", endpoint, mock, "pose")
    cu.check("ctl shows the pose", r.returncode == 0 and '"translation"' in r.stdout, r.stdout)
    r = cu.run("info", endpoint)
    cu.check("sk2 info prints the pose", "pose     R [0.000000 -1.000000 0.000000;" in r.stdout
             and "t [1.5000 -0.2500 2.0000] m" in r.stdout, r.stdout[-800:])
    saved = json.loads(read(state))
    cu.check("the state file holds the pose",
             close(saved["devices"][mock]["pose"], QUARTER_TURN), saved)
    before = read(state)
    for name, text in BAD_POSES.items():
        r = cu.run("ctl", endpoint, mock, "pose", text)
        cu.check(f"ctl pose refuses {name} (exit 6)", r.returncode == 6 and "pose" in r.stderr,
                 f"{r.returncode} {r.stderr}")
    rec = record_of(endpoint, mock)
    cu.check("refused poses changed nothing in me", close(rec.get("pose"), QUARTER_TURN),
             rec.get("pose"))
    cu.check("refused poses changed nothing in the state file", read(state) == before)
    # A recording carries the pose and the extrinsics.
    recording = cu.path("posed.sk2r")
    r = cu.run("record", endpoint, "-o", recording, "--frames", "5", "--streams", "depth",
               "--no-status")
    cu.check("sk2 record records", r.returncode == 0, r.stderr[-300:])
    # Changed after the recording: the state file now differs from the recording.
    r = cu.run("ctl", endpoint, mock, "pose", json.dumps(OTHER))
    cu.check("ctl pose sets another pose", r.returncode == 0, r.stderr)
    r = cu.run("ctl", endpoint, mock, "pose", "")
    rec = record_of(endpoint, mock)
    cu.check('ctl pose "" clears it', r.returncode == 0 and "pose" not in rec, rec.get("pose"))
    r = cu.run("ctl", endpoint, mock, "pose", json.dumps(OTHER))
finally:
    cu.stop(proc)

# ---- a replay of the recording: the recorded pose, then the persisted one ---------------------
proc, endpoint, device = start("--replay", recording, "--loop")
try:
    rec = record_of(endpoint, device)
    cu.check("the replay is the recorded device", device == mock, device)
    cu.check("a replay serves the recorded pose", close(rec.get("pose"), QUARTER_TURN),
             rec.get("pose"))
    cu.check("a replay serves the recorded extrinsics", close(rec.get("depth_to_color"), IDENTITY),
             rec.get("depth_to_color"))
finally:
    cu.stop(proc)

proc, endpoint, device = start("--replay", recording, "--loop", "--state", state)
try:
    rec = record_of(endpoint, device)
    cu.check("after a restart the state file's pose is served (over the recording's)",
             close(rec.get("pose"), OTHER), rec.get("pose"))
finally:
    cu.stop(proc)

# serve --pose: a bad file leaves the state alone; an unknown device is refused; a good one wins.
before = read(state)
bad = write("bad.json", BAD_POSES["a mirror"])
r = cu.run("serve", "--no-announce", "--no-status", "--replay", recording, "--state", state,
           "--pose", f"{mock}={bad}", timeout=20)
cu.check("serve --pose with a bad file: exit 2, state unchanged",
         r.returncode == 2 and read(state) == before, f"{r.returncode} {r.stderr[-300:]}")
r = cu.run("serve", "--no-announce", "--no-status", "--bind", "127.0.0.1", "--replay", recording,
           "--state", state, "--pose", f"feedfacefeedfacefeedfacefeedface={good}", timeout=20)
cu.check("serve --pose for a device it does not serve: exit 2, state unchanged",
         r.returncode == 2 and "no device" in r.stderr and read(state) == before,
         f"{r.returncode} {r.stderr[-300:]}")
third = write("third.json", json.dumps(THIRD))
proc, endpoint, device = start("--replay", recording, "--loop", "--state", state, "--pose",
                               f"{mock}={third}")
try:
    rec = record_of(endpoint, device)
    cu.check("serve --pose serves the file's pose", close(rec.get("pose"), THIRD), rec.get("pose"))
finally:
    cu.stop(proc)
proc, endpoint, device = start("--replay", recording, "--loop", "--state", state)
try:
    rec = record_of(endpoint, device)
    cu.check("the --pose pose persists in --state", close(rec.get("pose"), THIRD),
             rec.get("pose"))
finally:
    cu.stop(proc)

# A state file that cannot be written: the change is refused and not served.
proc, endpoint, device = start("--mock", "1", "--state", cu.path("no-such-folder/state.json"))
try:
    r = cu.run("ctl", endpoint, device, "pose", json.dumps(OTHER))
    r2 = cu.run("ctl", endpoint, device, "label", "front")
    rec = record_of(endpoint, device)
    cu.check("a pose or label the state file cannot keep is refused and not served",
             r.returncode != 0 and r2.returncode != 0 and "state file" in r.stderr
             and "pose" not in rec and "label" not in rec, f"{r.stderr} {r2.stderr} {rec}")
finally:
    cu.stop(proc)

# A state file that is not one stops serve (exit 1) and is left as it was.
broken = write("broken.json", '{"version": 1, "devices": {"x": {"pose": 3}}}')
r = cu.run("serve", "--no-announce", "--no-status", "--mock", "1", "--state", broken, timeout=20)
cu.check("a malformed state file stops serve with exit 1, untouched",
         r.returncode == 1 and "state" in r.stderr and
         read(broken) == b'{"version": 1, "devices": {"x": {"pose": 3}}}',
         f"{r.returncode} {r.stderr[-300:]}")

sys.exit(cu.summary())
