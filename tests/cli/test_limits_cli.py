#!/usr/bin/env python3
"""The frame limits, end to end (docs/protocol.md, "Limits"):

1. v1 depth of other sizes than 512x424: TUM folders of 640x480 and 320x288 replayed by
   `sk2 serve --replay` reach `sk2 stream SERVER` (the v1 endpoint) at their own size.
2. A hostile server (Python, written from docs/protocol.md) announces 512x424 depth and
   publishes forged frames: a 16384x16384 header with an 8-byte payload (RVL and raw), a 12 MiB
   payload (between the old 8 MiB socket limit and the header's 256 MiB), a depth12 frame that
   declares a huge plane. `sk2 stream` and the gateway (`sk2 view SERVER`) stay small, count
   the drops and still receive the legitimate frames sent after the forged ones; a legitimate
   9.4 MB colour frame (over the old 8 MiB socket limit) arrives.
3. A recording holding such a frame with valid checksums: `sk2 serve --replay` stays small and
   skips it with a log line; `sk2 inspect` names it and exits 1.

Usage: test_limits_cli.py /path/to/sk2
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib

import lz4.block
import zmq

import cliutil as cu

SK2, TMP = cu.setup("limits")
RSS_BOUND_KB = 200 * 1024  # generous: a forged header used to cost 535 MB to 1.06 GB
# Under AddressSanitizer (make asan) freed memory sits in a quarantine of 256 MB by default,
# which a replay churning frames fills: keep it small so that the bound measures the program.
os.environ["ASAN_OPTIONS"] = ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16"]))


check, path = cu.check, cu.path


def peak_rss_kb(pid):
    """VmHWM (the peak resident set) of a running process, in kB, or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_watched(args, timeout=30):
    """Runs sk2 with args; returns (returncode, stdout, stderr, peak RSS in kB seen)."""
    proc = subprocess.Popen([SK2, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak = 0
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, peak_rss_kb(proc.pid))
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    return proc.returncode, out, err, peak


# ---- A TUM folder of 16-bit PNGs, written here ----

def png16(file_name, width, height, pixel):
    rows = b"".join(b"\0" + b"".join(struct.pack(">H", pixel(x, y)) for x in range(width))
                    for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    with open(file_name, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def tum_folder(name, width, height, frames):
    folder = path(name)
    os.makedirs(os.path.join(folder, "depth"))
    with open(os.path.join(folder, "depth.txt"), "w") as f:
        for i in range(frames):
            png16(os.path.join(folder, "depth", f"{i}.png"), width, height,
                  lambda x, y: 500 + x + 2 * y + i)
            f.write(f"{1000 + i}.000000 depth/{i}.png\n")
    return folder


def start_server(*extra):
    proc, endpoint, _ = cu.start_server(*extra)
    return proc, endpoint


def stop(proc):
    _, out, err = cu.stop(proc)
    return out, err


# ---- A hostile server ----

COLOR_SIZE = (2048, 1536)  # an RGB frame of 9.4 MB: over the old 8 MiB socket limit
CODECS = {"depth12": 1, "raw": 2, "rvl": 3}
LEGIT_VALUE = 1234  # every pixel of a legitimate frame, in mm


def frame_header(codec, width, height, payload_size, sequence, kind=1, pixel_format=1):
    now = int(time.time() * 1e6)
    return (b"sk2h" + struct.pack("<HHBBBBIIIQqqq", 1, 64, kind, pixel_format, CODECS[codec], 0,
                                  width, height, payload_size, sequence, 0, now, now) +
            b"\0" * 8)


def rvl(counts_and_deltas):
    """RVL (docs/codecs.md): each number a variable-length code of 3-bit nibbles, high bit set
    when another follows, nibbles filling little-endian 32-bit words from the top."""
    nibbles = []
    for value in counts_and_deltas:
        while True:
            nibble, value = value & 7, value >> 3
            nibbles.append(nibble | (8 if value else 0))
            if not value:
                break
    nibbles += [0] * (-len(nibbles) % 8)
    words = [int("".join("%x" % n for n in nibbles[i:i + 8]), 16)
             for i in range(0, len(nibbles), 8)]
    return struct.pack(f"<{len(words)}I", *words)


def rvl_constant(count, value):
    """RVL of `count` pixels all `value`: no zeros, count non-zeros, one difference, then 0s."""
    return rvl([0, count, 2 * value] + [0] * (count - 1))


# The decompression bomb: 2^28 zero pixels (a whole 16384 x 16384 frame) in 8 bytes.
RVL_BOMB = rvl([16384 * 16384, 0])
assert len(RVL_BOMB) == 8


def depth12(width, height, value):
    count = width * height
    high = bytes([(value >> 4) & 0xFF]) * count
    low = bytes([((value & 15) << 4) | (value & 15)]) * (count // 2)
    return lz4.block.compress(high + low, store_size=True)


class Hostile:
    """Answers who with a `me` of one 512x424 depth device, then publishes forged frames and,
    after each round of them, legitimate ones (sequence numbers keep counting)."""

    def __init__(self, codecs, v1_size=None):
        self.ctx = zmq.Context()
        self.rep = self.ctx.socket(zmq.REP)
        self.rep.bind("tcp://127.0.0.1:*")
        self.v1 = self.ctx.socket(zmq.PUB)
        self.v1.bind("tcp://127.0.0.1:*")
        self.streams = self.ctx.socket(zmq.PUB)
        self.streams.bind("tcp://127.0.0.1:*")
        for s in (self.rep, self.v1, self.streams):
            s.linger = 0
        self.endpoint = self.rep.getsockopt_string(zmq.LAST_ENDPOINT)
        self.me = {"version": 1, "name": "hostile", "endpoints": {"control": self.endpoint},
                   "devices": [{"id": "evil", "endpoints": {
                       "depth": self.v1.getsockopt_string(zmq.LAST_ENDPOINT),
                       "streams": self.streams.getsockopt_string(zmq.LAST_ENDPOINT)},
                       "streams": [{"kind": "depth", "format": "depth_mm16", "width": 512,
                                    "height": 424, "fps": 30.0, "codecs": codecs},
                                   {"kind": "color", "format": "rgb24", "width": COLOR_SIZE[0],
                                    "height": COLOR_SIZE[1], "fps": 5.0, "codecs": ["raw"]}]}]}
        self.v1_size = v1_size
        if v1_size:
            # As the original server: no stream records, so the size is not said anywhere.
            device = self.me["devices"][0]
            del device["streams"], device["endpoints"]["streams"]
        self.running = True
        self.threads = [threading.Thread(target=self.answer), threading.Thread(target=self.publish)]
        for t in self.threads:
            t.start()

    def answer(self):
        poller = zmq.Poller()
        poller.register(self.rep, zmq.POLLIN)
        while self.running:
            if not poller.poll(100):
                continue
            request = self.rep.recv_multipart()
            kind = request[0][:1]
            if kind == b"\x03":
                self.rep.send_multipart([b"\x04", json.dumps(self.me).encode()])
            elif kind == b"\x01":
                self.rep.send_multipart([b"\x02"])
            else:
                self.rep.send_multipart([b"\x00", b'{"reason": "unknown message type"}'])

    def publish(self):
        sequence = 0
        legit_raw = struct.pack("<H", LEGIT_VALUE) * (512 * 424)
        legit_rvl = rvl_constant(512 * 424, LEGIT_VALUE)
        legit_v1 = depth12(*(self.v1_size or (512, 424)), LEGIT_VALUE)
        bomb_v1 = struct.pack("<I", 16384 * 16384 // 2 * 3) + b"\x10\x00"
        middle = b"\0" * (12 << 20)
        color = b"\x40" * (COLOR_SIZE[0] * COLOR_SIZE[1] * 3)
        rounds = 0
        while self.running:
            for codec, bomb in (("rvl", RVL_BOMB), ("raw", b"\x01" * 8)):
                self.streams.send_multipart([f"depth/{codec}/".encode(),
                                             frame_header(codec, 16384, 16384, 8, sequence),
                                             bomb])
                sequence += 1
            if rounds % 5 == 0:
                self.streams.send_multipart([b"depth/raw/",
                                             frame_header("raw", 512, 424, len(middle), sequence),
                                             middle])
                sequence += 1
            self.v1.send(bomb_v1)
            time.sleep(0.02)
            self.streams.send_multipart([b"depth/raw/",
                                         frame_header("raw", 512, 424, len(legit_raw), sequence),
                                         legit_raw])
            self.streams.send_multipart([b"depth/rvl/",
                                         frame_header("rvl", 512, 424, len(legit_rvl), sequence),
                                         legit_rvl])
            sequence += 1
            self.v1.send(legit_v1)
            if rounds % 3 == 0:
                self.streams.send_multipart([b"color/raw/",
                                             frame_header("raw", *COLOR_SIZE, len(color), rounds,
                                                          kind=2, pixel_format=3), color])
            rounds += 1
            time.sleep(0.1)

    def close(self):
        self.running = False
        for t in self.threads:
            t.join()
        self.ctx.destroy(linger=0)


# ---- Recordings ----

def chunks(data):
    """(offset, type, body) of every chunk of a recording (docs/recording.md)."""
    offset = 32
    while offset + 12 <= len(data):
        kind, size = data[offset:offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        yield offset, kind, data[offset + 12:offset + 12 + size]
        offset += 12 + size


def chunk(kind, body):
    head = kind + struct.pack("<I", len(body))
    return head + struct.pack("<I", zlib.crc32(head + body)) + body


def main():
    # 1. v1 depth at other sizes.
    for width, height in ((640, 480), (320, 288)):
        folder = tum_folder(f"tum{width}", width, height, 3)
        server, endpoint = start_server("--replay", folder, "--loop")
        r = subprocess.run([SK2, "stream", endpoint, "--frames", "3", "--seconds", "10",
                            "--no-status", "--json"], capture_output=True, text=True, timeout=30)
        stop(server)
        summary = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}
        frames = summary.get("frames", 0)
        check(f"sk2 stream (v1) receives {width}x{height} frames",
              r.returncode == 0 and frames >= 3, r.stdout + r.stderr)
        check(f"... decoded at {width}x{height}",
              frames and summary.get("raw_bytes") == frames * width * height * 2, summary)
        check(f"... with no undecodable frames", "undecodable" not in r.stderr, r.stderr[:300])

    # A version-1 server says no size: the length a depth12 frame declares gives it (the
    # forged depth12 frame it also sends is refused, as below).
    for size in ((640, 480), (320, 288)):
        v1 = Hostile([], v1_size=size)
        try:
            r = subprocess.run([SK2, "stream", v1.endpoint, "--frames", "3", "--seconds", "10",
                                "--no-status", "--json"], capture_output=True, text=True,
                               timeout=30)
        finally:
            v1.close()
        summary = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        check(f"from a v1 server without stream records, {size[0]}x{size[1]} frames decode",
              summary.get("frames", 0) >= 3 and
              summary.get("raw_bytes") == summary["frames"] * size[0] * size[1] * 2,
              r.stdout + r.stderr[-300:])

    # 2. A hostile server against sk2 stream (streams endpoint and v1) and the gateway.
    hostile = Hostile(["raw", "rvl"])
    try:
        rc, out, err, peak = run_watched(["stream", hostile.endpoint, "--stream", "depth:raw",
                                          "--stream", "depth:rvl", "--seconds", "3",
                                          "--no-status", "--json"])
        summary = json.loads(out) if out.strip().startswith("{") else {}
        check(f"sk2 stream against forged headers stays under 200 MB (peak {peak} kB)", 0 < peak < RSS_BOUND_KB,
              f"{peak} kB")
        check("... still receives the legitimate frames", summary.get("frames", 0) >= 6,
              out + err[-500:])
        check("... decodes only 512x424 frames",
              summary.get("frames") and summary.get("raw_bytes") == summary["frames"] * 512 * 424 * 2,
              summary)
        check("... and counts the forged ones", summary.get("rejected", 0) >= 3, summary)
        check("... naming each reason once in the log",
              err.count("16384x16384") == 1 and err.count("12582912") == 1,
              err[-800:])

        rc, out, err, peak = run_watched(["stream", hostile.endpoint, "--seconds", "3",
                                          "--no-status", "--json"])
        summary = json.loads(out) if out.strip().startswith("{") else {}
        check(f"sk2 stream (v1) against a forged depth12 frame stays small (peak {peak} kB)",
              0 < peak < RSS_BOUND_KB, f"{peak} kB")
        check("... receives the legitimate v1 frames, 512x424",
              summary.get("frames", 0) >= 3 and
              summary.get("raw_bytes") == summary["frames"] * 512 * 424 * 2, out + err[-300:])
        check("... and counts the forged ones once in the log",
              summary.get("rejected", 0) >= 3 and err.count("plane bytes") == 1, err[-500:])

    finally:
        hostile.close()
    # The gateway picks the best codec offered (rvl here): the bomb above decodes in it.
    hostile = Hostile(["raw", "rvl"])
    try:
        # sk2 record keeps frames encoded, but checks them all the same.
        recorded = path("hostile.sk2r")
        rc, out, err, peak = run_watched(["record", hostile.endpoint, "-o", recorded, "--streams",
                                          "depth", "--codec", "depth=rvl", "--seconds", "2",
                                          "--no-status"])
        check("sk2 record leaves the forged frames out and says so",
              rc == 0 and "not recorded" in out and err.count("16384x16384") == 1,
              out + err[-300:])
        r = subprocess.run([SK2, "inspect", recorded], capture_output=True, text=True, timeout=30)
        check("... so its recording is within limits", r.returncode == 0, r.stdout + r.stderr)

        # A legitimate frame larger than the old 8 MiB socket limit: it used to make the
        # subscriber drop the connection and reconnect in a silent loop.
        rc, out, err, peak = run_watched(["stream", hostile.endpoint, "--stream", "color:raw",
                                          "--frames", "2", "--seconds", "10", "--no-status",
                                          "--json"])
        summary = json.loads(out) if out.strip().startswith("{") else {}
        size = COLOR_SIZE[0] * COLOR_SIZE[1] * 3
        check("a legitimate 9.4 MB colour frame arrives (over the old 8 MiB socket limit)",
              summary.get("frames", 0) >= 2 and summary.get("raw_bytes") == summary["frames"] * size
              and summary.get("rejected") == 0, out + err[-300:])

        view = subprocess.Popen([SK2, "view", hostile.endpoint, "--http", "127.0.0.1:0",
                                 "--no-browse", "--no-status"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        url = None
        deadline = time.monotonic() + 10
        while url is None and time.monotonic() < deadline:
            line = view.stdout.readline()
            if "http://" in line:
                url = line[line.index("http://"):].strip()
        stats, peak = {}, 0
        deadline = time.monotonic() + 15
        while url and time.monotonic() < deadline:
            peak = max(peak, peak_rss_kb(view.pid))
            try:
                with urllib.request.urlopen(url + "api/stats", timeout=5) as response:
                    stats = json.load(response).get("gateway", {})
            except OSError:
                stats = {}
            if stats.get("frames_received", 0) >= 3 and stats.get("frames_rejected", 0) >= 3:
                break
            time.sleep(0.2)
        peak = max(peak, peak_rss_kb(view.pid))
        view.send_signal(signal.SIGINT)
        try:
            _, view_err = view.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            view.kill()
            _, view_err = view.communicate()
        check(f"the gateway (sk2 view) against forged headers stays under 200 MB (peak {peak} kB)",
              0 < peak < RSS_BOUND_KB, f"{peak} kB")
        check("... still receives the legitimate frames", stats.get("frames_received", 0) >= 3,
              stats)
        check("... and counts the forged ones in its stats", stats.get("frames_rejected", 0) >= 3,
              stats)
        check("... logging the reason once", view_err.count("16384x16384") == 1, view_err[-500:])
    finally:
        hostile.close()

    # 3. A recording with a forged frame whose checksums are valid.
    server, endpoint = start_server("--mock", "1")
    original = path("mock.sk2r")
    r = subprocess.run([SK2, "record", endpoint, "-o", original, "--frames", "4", "--streams",
                        "depth", "--codec", "depth=rvl", "--no-status"], capture_output=True,
                       text=True, timeout=30)
    stop(server)
    check("a short recording of a mock", r.returncode == 0, r.stderr)
    data = open(original, "rb").read()
    frames = [(o, body) for o, kind, body in chunks(data) if kind == b"FRAM"]
    first_index = min([o for o, kind, _ in chunks(data) if kind in (b"INDX", b"FOOT")] +
                      [len(data)])
    # Cut the index off (the reader then scans), add the forged frame, then a good one again.
    body = frames[-1][1]
    forged = body[:4] + frame_header("rvl", 16384, 16384, 8, 99) + RVL_BOMB
    bomb = path("bomb.sk2r")
    with open(bomb, "wb") as f:
        f.write(data[:first_index] + chunk(b"FRAM", forged) + chunk(b"FRAM", body))

    r = subprocess.run([SK2, "inspect", bomb], capture_output=True, text=True, timeout=30)
    check("sk2 inspect reports the forged frame as out of limits",
          r.returncode == 1 and "\nlimits " in r.stdout and "16384x16384" in r.stdout,
          r.stdout + r.stderr)
    r = subprocess.run([SK2, "inspect", original], capture_output=True, text=True, timeout=30)
    check("... and accepts the untouched recording", r.returncode == 0 and "\nlimits " not in r.stdout,
          r.stdout + r.stderr)

    proc = subprocess.Popen([SK2, "serve", "--bind", "127.0.0.1", "--no-status", "--no-announce",
                             "--replay", bomb, "--loop", "--rate", "0", "--no-wait"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and proc.poll() is None:
        peak = max(peak, peak_rss_kb(proc.pid))
        time.sleep(0.05)
    _, err = stop(proc)
    check(f"serve --replay of it stays under 200 MB (peak {peak} kB)", 0 < peak < RSS_BOUND_KB, f"{peak} kB")
    check("... and says why it skips the frame", "skipped" in err and "16384x16384" in err,
          err[-500:])

    shutil.rmtree(TMP, ignore_errors=True)
    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
