#!/usr/bin/env python3
"""Recording and replay end to end, as a user runs them: record a mock server, replay the file
with `sk2 serve --replay`, record the replay, and check every depth and IR frame bit for bit;
a recorder killed with SIGKILL leaves a readable file; export to a TUM folder and import back
gives the same pixels (same sk2d bytes) and times; damaged files give clear errors.

The recordings are read here by an independent reader written from docs/recording.md, which
checks every chunk's CRC and the index.

Usage: test_record_cli.py /path/to/sk2
"""
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

import cliutil as cu
from test_codecs_cli import read_png

SK2, TMP = cu.setup("record")
KINDS = {1: "depth", 2: "color", 3: "ir", 4: "body"}


check, path = cu.check, cu.path


def run(*args, timeout=60):
    return cu.run(*args, timeout=timeout)


# ---- An independent reader of the format (docs/recording.md) ----

def read_recording(file_name):
    """Returns (devices, frames, has_index); frames are dicts with the header fields and the
    payload. Stops at the first incomplete or damaged chunk, as the format says."""
    data = open(file_name, "rb").read()
    assert data[:8] == b"SK2REC\r\n", "magic"
    major, minor, header_size = struct.unpack_from("<HHI", data, 8)
    assert (major, header_size) == (1, 32), "version or header size"
    assert zlib.crc32(data[:28]) == struct.unpack_from("<I", data, 28)[0], "file header CRC"
    devices, frames, offset, has_index = [], [], 32, False
    while offset + 12 <= len(data):
        kind, size, crc = data[offset:offset + 4], *struct.unpack_from("<II", data, offset + 4)
        body = data[offset + 12:offset + 12 + size]
        if len(body) < size or zlib.crc32(data[offset:offset + 8] + body) != crc:
            break
        if kind == b"DEVC":
            assert struct.unpack_from("<H", body)[0] == len(devices)
            devices.append(json.loads(body[4:]))
        elif kind == b"FRAM":
            device, = struct.unpack_from("<H", body)
            head = body[4:68]
            assert head[:4] == b"sk2h"
            hsize, = struct.unpack_from("<H", head, 6)
            width, height, payload_size, seq, dev_ts, capture = struct.unpack_from(
                "<IIIQqq", head, 12)
            payload = body[4 + hsize:]
            assert len(payload) == payload_size
            frames.append(dict(device=device, kind=KINDS[head[8]], codec=head[10], width=width,
                               height=height, seq=seq, capture=capture, payload=payload,
                               offset=offset))
        elif kind == b"INDX":
            ndev, nframes, entry = struct.unpack_from("<III", body)
            assert entry == 48 and nframes == len(frames) and ndev == len(devices)
            for i, f in enumerate(frames):
                at = 16 + 8 * ndev + 48 * i
                assert struct.unpack_from("<QQ", body, at) == (f["offset"], f["seq"])
        elif kind == b"FOOT":
            has_index = offset + 12 + size == len(data)
        offset += 12 + size
    return devices, frames, has_index


# ---- Servers ----

def start_server(*extra):
    proc, endpoint, _ = cu.start_server(*extra)
    return proc, endpoint


def stop_server(proc):
    _, out, err = cu.stop(proc)
    return out, err


def by_kind(frames):
    out = {}
    for f in frames:
        out.setdefault(f["kind"], []).append(f)
    return out


def main():
    for verb in ("record", "inspect", "export", "import"):
        r = run(verb, "--help")
        check(f"{verb} --help exits 0", r.returncode == 0 and verb in r.stdout, r.stdout)
    for name, args in [("record without -o", ["record", "127.0.0.1:5"]),
                       ("record with a bad stream", ["record", "-o", "x", "--streams", "sound"]),
                       ("record with a bad codec", ["record", "-o", "x", "--codec", "depth=zip"]),
                       ("inspect without a file", ["inspect"]),
                       ("--loop without --replay", ["serve", "--loop"])]:
        r = run(*args)
        check(f"usage error exits 2: {name}", r.returncode == 2 and r.stderr.strip(),
              f"rc={r.returncode} {r.stderr!r}")

    # 1. Record 40 frames of a mock server at 10 fps (a rate that a sanitizer build on a busy
    # machine replays and re-encodes without dropping frames, which section 2 needs).
    a = path("a.sk2r")
    server, endpoint = start_server("--mock", "1", "--fps", "10")
    r = run("record", endpoint, "-o", a, "--frames", "40", "--streams", "depth,ir",
            "--status-interval", "0.5")
    stop_server(server)
    check("record of a mock server exits 0", r.returncode == 0, r.stderr)
    check("record prints status lines with frames, MB and drops",
          "frames" in r.stdout and "MB" in r.stdout and "drops" in r.stdout, r.stdout)
    devices_a, frames_a, has_index = read_recording(a)
    kinds_a = by_kind(frames_a)
    check("the recording is closed with an index", has_index)
    check("40 frames of depth and IR were recorded",
          len(frames_a) == 40 and len(kinds_a.get("depth", [])) >= 15 and
          len(kinds_a.get("ir", [])) >= 15, {k: len(v) for k, v in kinds_a.items()})
    check("the device description has intrinsics and a serial",
          devices_a and devices_a[0]["serial"].startswith("mock-") and
          "intrinsics" in devices_a[0]["streams"][0], devices_a)
    r = run("inspect", a)
    check("inspect shows devices, streams and frame counts",
          r.returncode == 0 and "index ok" in r.stdout and
          f"frames    {len(frames_a)}" in r.stdout and "gaps" in r.stdout, r.stdout + r.stderr)

    # 2. Replay it (looping, at half speed), record the replay for two loops. Half speed gives
    # the server's encoder twice the time per frame: it drops a frame it cannot encode in time
    # (newest wins), which a sanitizer build on a loaded machine would otherwise make happen.
    b = path("b.sk2r")
    server, endpoint = start_server("--replay", a, "--loop", "--rate", "0.5")
    info = run("info", endpoint, "--json")
    me = json.loads(info.stdout) if info.returncode == 0 else {}
    record = (me.get("devices") or [{}])[0]
    check("the replay serves the recorded id, serial and intrinsics, as backend replay",
          record.get("backend") == "replay" and record.get("id") == devices_a[0]["id"] and
          record.get("serial") == devices_a[0]["serial"] and
          record["streams"][0]["intrinsics"]["fx"] ==
          devices_a[0]["streams"][0]["intrinsics"]["fx"], info.stdout)
    r = run("record", endpoint, "-o", b, "--seconds", "9", "--streams", "depth,ir",
            "--no-status")
    stop_server(server)
    check("record of the replay exits 0", r.returncode == 0, r.stderr)
    _, frames_b, _ = read_recording(b)
    mismatches, seen = 0, set()
    for kind, frames in by_kind(frames_b).items():
        originals = {f["seq"]: f for f in kinds_a[kind]}
        first, last = min(originals), max(originals)
        span = last - first + 1
        for f in frames:
            original = originals.get(first + (f["seq"] - first) % span)
            if (original is None or original["payload"] != f["payload"] or
                    original["codec"] != f["codec"] or original["width"] != f["width"]):
                mismatches += 1
            else:
                seen.add((kind, original["seq"]))
    check("every replayed frame is bit for bit the recorded one (sequence numbers kept)",
          mismatches == 0 and len(frames_b) > 0, f"{mismatches} of {len(frames_b)} differ")
    check("every recorded frame came back at least once",
          seen == {(f["kind"], f["seq"]) for f in frames_a},
          f"{len(seen)} of {len(frames_a)}; missing "
          f"{sorted({(f['kind'], f['seq']) for f in frames_a} - seen)[:8]}")
    gaps_b = [g["capture"] - f["capture"] for f, g in zip(by_kind(frames_b)["depth"],
                                                          by_kind(frames_b)["depth"][1:])]
    check("--rate 0.5 doubles the recorded spacing",
          gaps_b and 150000 < sorted(gaps_b)[len(gaps_b) // 2] < 2000000, gaps_b[:10])

    # By default a replay runs in real time: the recorded ~100 ms between frames (as fast as
    # possible would give next to nothing; a busy machine only adds).
    c = path("c.sk2r")
    server, endpoint = start_server("--replay", a)
    r = run("record", endpoint, "-o", c, "--seconds", "1.5", "--streams", "depth",
            "--no-status")
    stop_server(server)
    _, frames_c, _ = read_recording(c)
    depth_c = by_kind(frames_c).get("depth", [])
    gaps_c = [g["capture"] - f["capture"] for f, g in zip(depth_c, depth_c[1:])]
    check("the replay keeps the recorded spacing (real time)",
          r.returncode == 0 and gaps_c and 75000 < sorted(gaps_c)[len(gaps_c) // 2] < 1000000,
          gaps_c[:10])

    # 3. A recorder killed with SIGKILL leaves a readable file.
    k = path("killed.sk2r")
    server, endpoint = start_server("--mock", "1")
    proc = subprocess.Popen([SK2, "record", endpoint, "-o", k, "--streams", "depth",
                             "--no-status"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The recorder writes k.partial-XXXXXX and renames it onto k only when it closes.
    deadline = time.monotonic() + 10
    partial = []
    while time.monotonic() < deadline and (
            not partial or os.path.getsize(partial[0]) < 200000):
        partial = glob.glob(k + ".partial-*")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop_server(server)
    check("a killed recorder leaves FILE.partial-XXXXXX, not FILE",
          len(partial) == 1 and not os.path.exists(k), partial)
    if partial:
        os.rename(partial[0], k)
    _, frames_k, has_index = read_recording(k)
    r = run("inspect", k)
    check("a recorder killed with SIGKILL leaves frames that read back",
          len(frames_k) > 3 and not has_index and r.returncode == 0 and
          "rebuilt by scanning" in r.stdout, r.stdout + r.stderr)
    r = run("export", k, path("killed-tum"))
    check("and it exports like a closed one", r.returncode == 0, r.stderr)

    # 4. Export to TUM and import back: the same sk2d bytes, so the same pixels, and times.
    tum, c = path("tum"), path("c-imported.sk2r")
    r = run("export", a, tum)
    check("export writes a TUM folder", r.returncode == 0 and
          os.path.exists(os.path.join(tum, "depth.txt")), r.stderr)
    lines = [l for l in open(os.path.join(tum, "depth.txt")) if not l.startswith("#")]
    check("depth.txt lists every depth frame as 'timestamp depth/<t>.png'",
          len(lines) == len(kinds_a["depth"]) and lines[0].split()[1].startswith("depth/"),
          lines[:2])
    r = run("export", a, tum)
    check("export refuses a folder that holds an export",
          r.returncode == 2 and "not an empty folder" in r.stderr, r.stderr)
    r = run("import", tum, c)
    check("import turns the folder into a recording", r.returncode == 0, r.stderr)
    _, frames_c, _ = read_recording(c)
    same = {(f["kind"], f["capture"]): f["payload"] for f in frames_c}
    lossless = all(same.get((f["kind"], f["capture"])) == f["payload"] for f in frames_a)
    check("export then import gives back every frame losslessly",
          lossless and len(frames_c) == len(frames_a), f"{len(frames_c)} vs {len(frames_a)}")
    server, endpoint = start_server("--replay", tum, "--rate", "0")
    info = run("info", endpoint, "--json")
    stop_server(server)
    check("serve --replay plays a TUM folder directly",
          info.returncode == 0 and '"backend":"replay"' in info.stdout.replace(" ", ""),
          info.stdout + info.stderr)

    # 5. Damaged files: clear errors.
    data = open(a, "rb").read()
    cut = path("cut.sk2r")
    open(cut, "wb").write(data[:len(data) // 2])
    r = run("inspect", cut)
    check("a truncated file reads up to its last whole frame",
          r.returncode == 0 and "ignored" in r.stdout, r.stdout + r.stderr)
    bad = bytearray(data)
    bad[20] ^= 1
    open(path("crc.sk2r"), "wb").write(bad)
    r = run("inspect", path("crc.sk2r"))
    check("a damaged file header is refused", r.returncode == 1 and "CRC" in r.stderr, r.stderr)
    bad = bytearray(data)
    bad[8:12] = struct.pack("<HH", 2, 0)
    bad[28:32] = struct.pack("<I", zlib.crc32(bytes(bad[:28])))
    open(path("v2.sk2r"), "wb").write(bad)
    r = run("inspect", path("v2.sk2r"))
    check("another major version is refused by name",
          r.returncode == 1 and "version 2.0" in r.stderr, r.stderr)
    r = run("serve", "--replay", path("v2.sk2r"), "--no-announce", "--no-status")
    check("serve --replay of an unreadable file exits 1", r.returncode == 1 and r.stderr,
          r.stderr)
    r = run("inspect", path("nothing-here"))
    check("a missing file is said to be missing", r.returncode == 1 and "No such file" in r.stderr,
          r.stderr)

    # 6. Damage inside a frame is found by inspect, which names the frame and fails.
    bad = bytearray(data)
    victim = frames_a[5]
    bad[victim["offset"] + 12 + 4 + 64 + 10] ^= 0x10
    open(path("flipped.sk2r"), "wb").write(bad)
    r = run("inspect", path("flipped.sk2r"))
    check("inspect reports a frame with a flipped byte and exits 1",
          r.returncode == 1 and "damaged   frame 5: device 0 " + victim["kind"] in r.stdout and
          "fails its CRC" in r.stdout and "1 damaged" in r.stdout, r.stdout + r.stderr)
    r = run("inspect", a)
    check("inspect checks every frame of an intact recording",
          r.returncode == 0 and f"checked   {len(frames_a)} frames, 0 damaged" in r.stdout,
          r.stdout + r.stderr)
    open(path("header-only.sk2r"), "wb").write(data[:32])
    r = run("inspect", path("header-only.sk2r"))
    check("a recording with no device says so in plain words (the note is not garbled)",
          r.returncode == 1 and "the recording describes no device (index missing (no footer" in
          r.stderr, r.stderr)

    # 7. Never destroy a user's file.
    mine = path("mine.sk2r")
    open(mine, "wb").write(b"my precious recording")
    # 640x480 colour: a sanitizer build on a busy machine encodes 1080p JPEG too slowly for the
    # colour recording below to be sure of frames.
    server, endpoint = start_server("--mock", "1", "--color-size", "640x480")
    r = run("record", endpoint, "-o", mine, "--frames", "5", "--no-status")
    check("record -o EXISTING without --force is refused and the file is unchanged",
          r.returncode == 2 and "--force" in r.stderr and
          open(mine, "rb").read() == b"my precious recording", r.stderr)
    r = run("record", endpoint, "-o", path("lossy.sk2r"), "--codec", "depth=jpeg", "--frames",
            "5", "--no-status")
    check("record --codec depth=jpeg is refused as lossy",
          r.returncode == 2 and "lossy" in r.stderr and "--allow-lossy" in r.stderr and
          not os.path.exists(path("lossy.sk2r")), r.stderr)
    r = run("record", endpoint, "-o", path("ir-only.sk2r"), "--streams", "ir", "--codec",
            "depth=rvl", "--frames", "5", "--no-status")
    check("a kind asked for with --codec that recorded nothing fails the run",
          r.returncode == 1 and "no depth frames were recorded" in r.stderr, r.stderr)
    col = path("colour.sk2r")
    r = run("record", endpoint, "-o", col, "--seconds", "4", "--streams", "depth,ir,color",
            "--no-status")
    check("record of depth, IR and colour exits 0", r.returncode == 0, r.stderr)
    r = run("record", endpoint, "-o", mine, "--frames", "5", "--no-status", "--force")
    stop_server(server)
    check("record --force replaces an existing file with a recording",
          r.returncode == 0 and read_recording(mine)[1], r.stderr)
    open(mine, "wb").write(b"my precious recording")
    r = run("record", "127.0.0.1:1", "-o", mine, "--force", "--timeout", "500", "--no-status")
    check("record with no server leaves an existing file intact",
          r.returncode == 3 and open(mine, "rb").read() == b"my precious recording" and
          not glob.glob(mine + ".partial-*"), f"rc={r.returncode} {r.stderr}")

    # Import compresses colour (a TUM folder of PNGs stored raw grew 17-fold).
    _, frames_col, _ = read_recording(col)
    colour = by_kind(frames_col).get("color", [])
    tum_col, imported = path("tum-colour"), path("imported-colour.sk2r")
    r = run("export", col, tum_col)
    check("export of a colour recording", r.returncode == 0 and colour, r.stderr)
    r = run("import", tum_col, imported)
    _, frames_imp, _ = read_recording(imported)
    colour_imp = by_kind(frames_imp).get("color", [])
    raw_bytes = sum(f["width"] * f["height"] * 3 for f in colour_imp)
    stored = sum(len(f["payload"]) for f in colour_imp)
    check("import stores colour as JPEG, far under its raw size",
          r.returncode == 0 and len(colour_imp) == len(colour) and
          all(f["payload"][:2] == b"\xff\xd8" for f in colour_imp) and stored * 5 < raw_bytes,
          f"rc={r.returncode} {len(colour_imp)} frames, {stored} of {raw_bytes} bytes {r.stderr}")
    r = run("inspect", imported)
    check("and the imported colour decodes", r.returncode == 0 and "0 damaged" in r.stdout,
          r.stdout + r.stderr)

    # --color-codec png keeps every colour pixel. All frames: exported again, the colour PNGs
    # are the very files of the folder (sk2's exporter writes the same bytes for the same
    # pixels, and PNG files with the same bytes have the same pixels), while those of the JPEG
    # import differ. One frame also directly: the stored payload and the folder's PNG, both
    # decoded here by test_codecs_cli's own PNG reader (zlib, not libpng).
    imported_png = path("imported-png.sk2r")
    r = run("import", tum_col, imported_png, "--color-codec", "png")
    _, frames_png, _ = read_recording(imported_png) if r.returncode == 0 else ({}, [], 0)
    colour_png = by_kind(frames_png).get("color", [])
    stored_png = sum(len(f["payload"]) for f in colour_png)
    check("import --color-codec png stores colour as PNG (codec 6), far under its raw size",
          r.returncode == 0 and len(colour_png) == len(colour) and
          all(f["payload"][:8] == b"\x89PNG\r\n\x1a\n" and f["codec"] == 6
              for f in colour_png) and stored_png * 5 < raw_bytes,
          f"rc={r.returncode} {len(colour_png)} frames, {stored_png} of {raw_bytes} {r.stderr}")
    again_png, again_jpeg = path("tum-again-png"), path("tum-again-jpeg")
    r1, r2 = run("export", imported_png, again_png), run("export", imported, again_jpeg)

    def rgb_files(folder):
        names = sorted(os.listdir(os.path.join(folder, "rgb")))
        return {n: open(os.path.join(folder, "rgb", n), "rb").read() for n in names}
    source = rgb_files(tum_col) if os.path.isdir(tum_col) else {}
    check("and every colour frame comes back bit for bit (the JPEG import's do not)",
          r1.returncode == 0 and r2.returncode == 0 and len(source) == len(colour) and
          rgb_files(again_png) == source and rgb_files(again_jpeg) != source,
          r1.stderr + r2.stderr)
    if colour_png and source:
        middle = colour_png[len(colour_png) // 2]
        name = "%d.%06d.png" % divmod(middle["capture"], 1000000)
        payload_file = path("payload.png")
        open(payload_file, "wb").write(middle["payload"])
        decoded = read_png(payload_file)
        expected = read_png(os.path.join(tum_col, "rgb", name))
        check("and a stored PNG decodes, without libpng, to the folder's pixels",
              decoded[:4] == (middle["width"], middle["height"], 8, 2) and
              decoded == expected, f"{decoded[:4]} vs {expected[:4]}")
    else:
        check("and a stored PNG decodes, without libpng, to the folder's pixels", False,
              "no colour frames")
    smaller = path("imported-q30.sk2r")
    r = run("import", tum_col, smaller, "--color-quality", "30")
    _, frames_q30, _ = read_recording(smaller) if r.returncode == 0 else ({}, [], 0)
    stored_q30 = sum(len(f["payload"]) for f in by_kind(frames_q30).get("color", []))
    check("import --color-quality 30 stores smaller JPEGs than the default 90",
          r.returncode == 0 and 0 < stored_q30 < stored, f"{stored_q30} vs {stored} {r.stderr}")
    for name, extra, words in [
            ("--color-quality with png", ["--color-codec", "png", "--color-quality", "50"],
             "png is lossless and has no quality"),
            ("--color-quality with raw", ["--color-codec", "raw", "--color-quality", "50"],
             "raw is lossless and has no quality"),
            ("--color-quality 0", ["--color-quality", "0"], "takes 1..100, not '0'"),
            ("--color-quality 101", ["--color-quality", "101"], "takes 1..100, not '101'"),
            ("--color-quality x", ["--color-quality", "x"], "takes 1..100, not 'x'"),
            ("a depth codec for colour", ["--color-codec", "rvl"], "rvl cannot store colour")]:
        refused = path("refused.sk2r")
        r = run("import", tum_col, refused, *extra)
        check(f"import with {name} is a usage error that writes nothing",
              r.returncode == 2 and words in r.stderr and not os.path.exists(refused) and
              not glob.glob(refused + ".partial-*"), f"rc={r.returncode} {r.stderr}")

    # Ctrl-C during export or import leaves no half-written output, and an existing file as
    # it was. The signal is sent once the temporary output holds some frames (process state,
    # not timing); the 1080p colour makes both run long enough.
    out_dir = path("interrupted-tum")
    proc = subprocess.Popen([SK2, "export", col, out_dir], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and \
            not glob.glob(out_dir + ".partial-*/depth.txt"):
        time.sleep(0.02)
    was_running = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    check("export stopped by SIGINT exits 130 and leaves nothing behind",
          was_running and proc.returncode == 130 and not os.path.exists(out_dir) and
          not glob.glob(out_dir + ".partial-*"), f"rc={proc.returncode} {err}")
    open(mine, "wb").write(b"my precious recording")
    proc = subprocess.Popen([SK2, "import", tum_col, mine, "--force"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and not any(
            os.path.getsize(p) > 100000 for p in glob.glob(mine + ".partial-*")):
        time.sleep(0.02)
    was_running = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    check("import stopped by SIGINT exits 130 and leaves the existing file as it was",
          was_running and proc.returncode == 130 and
          open(mine, "rb").read() == b"my precious recording" and
          not glob.glob(mine + ".partial-*"), f"rc={proc.returncode} {err}")

    # 8. Replay behaves like a tool: it waits for a first listener, pauses, resumes, seeks and
    # says when it reached the end.
    depth_a = kinds_a["depth"]
    origin = frames_a[0]["capture"]
    server, endpoint = start_server("--replay", a)
    time.sleep(2)  # a client that comes late; not a measurement
    r = run("record", endpoint, "-o", path("late.sk2r"), "--frames", "5", "--seconds", "10",
            "--streams", "depth", "--no-status")
    _, frames_late, _ = read_recording(path("late.sk2r")) if r.returncode == 0 else ({}, [], 0)
    check("a replay waits for its first listener: a late client gets the first frame",
          frames_late and frames_late[0]["seq"] == depth_a[0]["seq"],
          f"{[f['seq'] for f in frames_late]} vs first {depth_a[0]['seq']} {r.stderr}")
    stop_server(server)

    def status(endpoint):
        r = run("replay", endpoint, "status", "--json")
        return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr}

    def wait_status(endpoint, test, seconds=10):
        deadline = time.monotonic() + seconds
        st = status(endpoint)
        while time.monotonic() < deadline and not test(st):
            time.sleep(0.05)
            st = status(endpoint)
        return st

    server, endpoint = start_server("--replay", a, "--loop")
    st = status(endpoint)
    check("sk2 replay status says the replay waits, with its frames and duration",
          st.get("state") == "waiting" and st.get("played") == 0 and
          st.get("frames") == len(frames_a) and 1.5 < st.get("duration", 0) < 10, st)
    r = run("replay", endpoint, "pause")
    check("sk2 replay pause answers paused", r.returncode == 0 and ": paused at " in r.stdout,
          r.stdout + r.stderr)
    r = run("record", endpoint, "-o", path("paused.sk2r"), "--seconds", "1", "--streams",
            "depth", "--no-status")
    check("a paused replay sends nothing", r.returncode == 1 and "no frames" in r.stderr,
          r.stdout + r.stderr)
    r = run("replay", endpoint, "seek", "1.0")
    st = wait_status(endpoint, lambda st: st.get("position", 0) >= 1.0)
    check("seek moves the paused replay to the first frame at or after 1 s",
          r.returncode == 0 and st.get("state") == "paused" and 1.0 <= st["position"] < 1.5, st)
    expected = next(f for f in depth_a if f["capture"] - origin >= 1000000)
    span = depth_a[-1]["seq"] - depth_a[0]["seq"] + 1
    proc = subprocess.Popen([SK2, "record", endpoint, "-o", path("seek.sk2r"), "--frames", "5",
                             "--streams", "depth", "--no-status"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    st = wait_status(endpoint, lambda st: st.get("listened"))
    r = run("replay", endpoint, "resume")
    out, err = proc.communicate(timeout=30)
    _, frames_seek, _ = read_recording(path("seek.sk2r")) if proc.returncode == 0 else (
        {}, [], 0)
    seqs = [f["seq"] for f in frames_seek]
    check("after seek and resume the first frame is the recorded one at 1 s, numbers growing",
          st.get("listened") and r.returncode == 0 and seqs and
          (seqs[0] - expected["seq"]) % span == 0 and seqs == sorted(seqs), f"{seqs} expected {expected['seq']} (mod {span}) {err}")
    r = run("replay", endpoint, "seek", "0.1")
    st = wait_status(endpoint, lambda st: st.get("position", 9) < 1.0)
    check("a seek backwards plays on and says where it is",
          r.returncode == 0 and st.get("state") == "playing" and st.get("played", 0) > 5, st)
    r = run("record", endpoint, "-o", path("back.sk2r"), "--frames", "3", "--streams", "depth",
            "--no-status")
    _, frames_back, _ = read_recording(path("back.sk2r")) if r.returncode == 0 else ({}, [], 0)
    check("after a seek backwards sequence numbers still grow",
          frames_back and frames_back[0]["seq"] > seqs[-1], [f["seq"] for f in frames_back])
    r = run("replay", endpoint, "--device", "no-such-device", "status")
    check("sk2 replay of an unknown device is refused by the server",
          r.returncode == 1 and "no such device" in r.stderr, r.stderr)
    r = run("replay", endpoint, "seek")
    check("sk2 replay seek without SECONDS is a usage error", r.returncode == 2, r.stderr)
    stop_server(server)
    server, endpoint = start_server("--mock", "1")
    r = run("replay", endpoint, "status")
    stop_server(server)
    check("sk2 replay of a server without a replay is refused",
          r.returncode == 1 and "plays no recording" in r.stderr, r.stderr)

    server, endpoint = start_server("--replay", a, "--rate", "0", "--no-wait")
    st = wait_status(endpoint, lambda st: st.get("state") == "ended")
    out, err = stop_server(server)
    check("--no-wait plays at once and the status says ended with every frame played",
          st.get("state") == "ended" and st.get("played") == len(frames_a), st)
    check("serve says when the replay reached the end",
          f"reached the end after {len(frames_a)} frames" in out, out + err)

    shutil.rmtree(TMP, ignore_errors=True)
    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
