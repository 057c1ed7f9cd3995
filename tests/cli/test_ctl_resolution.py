"""`sk2 ctl` sets a stream's size and default codec on a running `sk2 serve --mock`.

- resolution.depth 256x212: `me` gives the depth stream that size and intrinsics scaled with it
  (fx, fy by the size ratio, the principal point about pixel centres), IR keeps its own size;
  `sk2 stream --check-mock` then gets 256x212 depth frames that are exactly the mock scene, on
  the streams endpoint and on the version-1 endpoint (depth12);
- resolution.ir 1024x848 and resolution.color 640x360 take; a client already streaming when the
  size changes gets frames of the new size, and they still match the scene;
- "0x0", "abc", "640x480" (a size the mock does not have), "256x212x" are refused with exit 6
  and change nothing; a size change while recording depth is refused (exit 1);
- codec.depth png: `me` names png as the depth stream's default, and `sk2 stream --stream
  depth` (no codec) receives png; a codec not offered for the stream is refused (exit 6);
- a replay cannot change its size: refused as unsupported (exit 6), naming the size it has;
- the gateway's index (GET /api) lists POST /api/devices/{id}/command.

Usage: test_ctl_resolution.py SK2.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import cliutil as cu

DEPTH = {"fx": 365.456, "fy": 365.456, "cx": 254.878, "cy": 205.395}


def stream_record(endpoint, kind):
    info = json.loads(cu.run("info", endpoint, "--json").stdout)
    device = info["devices"][0]
    return next(s for s in device["streams"] if s["kind"] == kind)


def ctl(endpoint, *args):
    return cu.run("ctl", endpoint, "-", *args)


def stream_json(endpoint, *args, frames=15):
    result = cu.run("stream", endpoint, "--frames", str(frames), "--check-mock", "--no-status",
                    "--json", *args, timeout=120)
    try:
        return json.loads(result.stdout)
    except ValueError:
        return {"error": result.stderr}


def close(a, b):
    return abs(a - b) < 1e-3


def sizes_and_intrinsics(endpoint):
    proc_ok = True
    r = ctl(endpoint, "resolution.depth", "256x212")
    cu.check("resolution.depth 256x212 is applied (exit 0)", r.returncode == 0,
             r.stdout + r.stderr)
    depth = stream_record(endpoint, "depth")
    cu.check("me: depth is 256x212", (depth["width"], depth["height"]) == (256, 212), depth)
    k = depth.get("intrinsics", {})
    want = {"fx": DEPTH["fx"] / 2, "fy": DEPTH["fy"] / 2,
            "cx": (DEPTH["cx"] + 0.5) / 2 - 0.5, "cy": (DEPTH["cy"] + 0.5) / 2 - 0.5}
    cu.check("me: depth intrinsics scaled to 256x212",
             all(close(k.get(n, 0), v) for n, v in want.items()), (k, want))
    ir = stream_record(endpoint, "ir")
    cu.check("me: IR keeps 512x424", (ir["width"], ir["height"]) == (512, 424), ir)
    r = ctl(endpoint, "resolution.depth")
    cu.check("ctl resolution.depth shows 256x212", "256x212" in r.stdout, r.stdout + r.stderr)

    s = stream_json(endpoint, "--stream", "depth:rvl")
    cu.check("streams endpoint: 15 depth frames of 256x212, all the mock scene",
             s.get("frames") == 15 and s.get("mismatches") == 0 and
             s.get("raw_bytes") == 15 * 256 * 212 * 2, s)
    s = stream_json(endpoint)
    cu.check("version-1 endpoint: 15 depth12 frames of 256x212, all the mock scene",
             s.get("frames") == 15 and s.get("mismatches") == 0 and
             s.get("raw_bytes") == 15 * 256 * 212 * 2, s)

    r = ctl(endpoint, "resolution.ir", "1024x848")
    cu.check("resolution.ir 1024x848 is applied", r.returncode == 0, r.stdout + r.stderr)
    s = stream_json(endpoint, "--stream", "ir:raw", frames=5)
    cu.check("5 IR frames of 1024x848", s.get("frames") == 5 and
             s.get("raw_bytes") == 5 * 1024 * 848 * 2, s)
    r = ctl(endpoint, "resolution.color", "640x360")
    color = stream_record(endpoint, "color")
    cu.check("resolution.color 640x360: me says so",
             r.returncode == 0 and (color["width"], color["height"]) == (640, 360),
             (r.stderr, color))
    return proc_ok


def resize_while_streaming(endpoint):
    """A client already receiving depth gets the new size, every frame still the scene."""
    frames = 90
    proc = subprocess.Popen([cu.SK2, "stream", endpoint, "--frames", str(frames), "--stream",
                             "depth:rvl", "--check-mock", "--no-status", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    r = ctl(endpoint, "resolution.depth", "1024x848")
    cu.check("resolution.depth 1024x848 while a client streams", r.returncode == 0, r.stderr)
    try:
        out, err = proc.communicate(timeout=120)  # generous: ASan builds on a loaded machine
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    s = json.loads(out) if out.strip() else {}
    small = frames * 256 * 212 * 2
    cu.check("the streaming client got frames of the new size, all the mock scene",
             s.get("frames") == frames and s.get("mismatches") == 0 and
             s.get("raw_bytes", 0) > small, (s, err[-400:]))
    depth = stream_record(endpoint, "depth")
    cu.check("me: depth is 1024x848 with fx doubled",
             (depth["width"], depth["height"]) == (1024, 848) and
             close(depth["intrinsics"]["fx"], DEPTH["fx"] * 2), depth)


def refusals(endpoint):
    before = stream_record(endpoint, "depth")
    for value in ("0x0", "abc", "640x480", "256x212x", "1024x", "99999x1"):
        r = ctl(endpoint, "resolution.depth", value)
        cu.check(f"resolution.depth {value!r} refused (exit 6)",
                 r.returncode == 6 and "bad-value" in r.stderr, (r.returncode, r.stderr))
    r = ctl(endpoint, "resolution.depth", "640x480")
    cu.check("the refusal names the sizes the mock has",
             "256x212, 512x424, 1024x848" in r.stderr, r.stderr)
    cu.check("refusals changed nothing", stream_record(endpoint, "depth") == before,
             (before, stream_record(endpoint, "depth")))
    r = ctl(endpoint, "resolution", "256x212")
    cu.check("the bare key resolution stays read-only (exit 6)",
             r.returncode == 6 and "read-only" in r.stderr, r.stderr)


def codecs(endpoint):
    depth = stream_record(endpoint, "depth")
    cu.check("me names sk2d as depth's default codec", depth.get("codec") == "sk2d", depth)
    s = stream_json(endpoint, "--stream", "depth", frames=5)
    cu.check("stream --stream depth (no codec) receives sk2d",
             [m["codec"] for m in s.get("streams", [])] == ["sk2d"], s)
    r = ctl(endpoint, "codec.depth", "png")
    cu.check("codec.depth png is applied", r.returncode == 0, r.stderr)
    cu.check("me names png as depth's default codec",
             stream_record(endpoint, "depth").get("codec") == "png")
    s = stream_json(endpoint, "--stream", "depth", frames=5)
    cu.check("stream --stream depth (no codec) now receives png, still the mock scene",
             [m["codec"] for m in s.get("streams", [])] == ["png"] and s.get("mismatches") == 0,
             s)
    s = stream_json(endpoint, "--stream", "depth:rvl", frames=5)
    cu.check("a client naming its codec still gets it",
             [m["codec"] for m in s.get("streams", [])] == ["rvl"], s)
    for value in ("bogus", "jpeg", "depth12"):
        r = ctl(endpoint, "codec.depth", value)
        cu.check(f"codec.depth {value} refused (exit 6), naming what is offered",
                 r.returncode == 6 and "raw, rvl, sk2d, png" in r.stderr,
                 (r.returncode, r.stderr))
    cu.check("refused codecs changed nothing",
             stream_record(endpoint, "depth").get("codec") == "png")
    r = ctl(endpoint, "codec.color", "png")
    cu.check("codec.color png is applied",
             r.returncode == 0 and stream_record(endpoint, "color").get("codec") == "png",
             r.stderr)


def recording_and_replay():
    folder = cu.path("takes")
    os.makedirs(folder, exist_ok=True)
    proc, endpoint, _ = cu.start_server("--mock", "1", "--record-dir", folder)
    try:
        r = ctl(endpoint, "record", "take")
        cu.check("record take starts", r.returncode == 0, r.stderr)
        time.sleep(1.0)
        r = ctl(endpoint, "resolution.depth", "256x212")
        cu.check("resolution.depth refused while recording depth (exit 1)",
                 r.returncode == 1 and "record" in r.stderr, (r.returncode, r.stderr))
        r = ctl(endpoint, "record", "")
        cu.check("record stops", r.returncode == 0, r.stderr)
    finally:
        cu.stop(proc)
    proc, endpoint, _ = cu.start_server("--replay", os.path.join(folder, "take.sk2r"))
    try:
        r = ctl(endpoint, "resolution.depth", "256x212")
        cu.check("a replay refuses a size change as unsupported (exit 6), naming its size",
                 r.returncode == 6 and "unsupported" in r.stderr and "512x424 only" in r.stderr,
                 (r.returncode, r.stderr))
        depth = stream_record(endpoint, "depth")
        cu.check("the replay's size is unchanged", (depth["width"], depth["height"]) == (512, 424),
                 depth)
    finally:
        cu.stop(proc)


def api_index(port):
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=10) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main():
    cu.setup("ctl_resolution")
    port = cu.free_port()
    proc, endpoint, _ = cu.start_server("--mock", "1", "--http", f"127.0.0.1:{port}")
    try:
        index = api_index(port).get("endpoints", [])
        cu.check("GET /api lists POST /api/devices/{id}/command",
                 "POST /api/devices/{id}/command" in index, index)
        sizes_and_intrinsics(endpoint)
        resize_while_streaming(endpoint)
        refusals(endpoint)
        codecs(endpoint)
    finally:
        code, _, err = cu.stop(proc)
        cu.check("the server stops cleanly", code == 0, err[-400:])
    recording_and_replay()
    sys.exit(cu.summary())


if __name__ == "__main__":
    main()
