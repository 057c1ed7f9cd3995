#!/usr/bin/env python3
"""The codec verbs as a user meets them: `sk2 codecs`, `sk2 encode`, `sk2 decode`.

Round trips every lossless codec bit-exact on the real frames (the PNGs are compared by
their pixels, decoded here with zlib, not by libpng), a colour PNG through jpeg and raw, and
the error cases: missing files, not a PNG, 8-bit grayscale to a depth codec, lossy codecs on
depth, unknown codec, bad quality, wrong magic, version, truncated and trailing bytes.

Usage: test_codecs_cli.py /path/to/sk2 /path/to/tests/data
Prints one line per check and ends with 'N passed, M failed'.
"""
import glob
import json
import os
import struct
import sys
import zlib

import cliutil as cu

DATA = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "data")
check, run = cu.check, cu.run


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png(path, width, height, bit_depth, color_type, rows):
    """A minimal PNG writer: filter type 0 on every row, one IDAT."""
    raw = b"".join(b"\x00" + row for row in rows)
    data = (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type,
                                             0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def read_png(path):
    """(width, height, bit depth, colour type, unfiltered bytes) of a non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert interlace == 0
        elif kind == b"IDAT":
            idat += body
    channels = {0: 1, 2: 3, 6: 4}[ctype]
    bpp = channels * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, depth, ctype, bytes(out)


def main():
    _, tmp = cu.setup("codecs")
    frames = sorted(glob.glob(os.path.join(DATA, "depth", "azure_kinect", "*.png")))
    check("the real frames are there", len(frames) == 6, frames)

    r = run("codecs")
    check("codecs lists every codec", r.returncode == 0 and all(
        n in r.stdout for n in ("depth12", "raw", "rvl", "sk2d", "jpeg", "png")), r.stdout)
    r = run("codecs", "--json")
    listed = {c["name"]: c for c in json.loads(r.stdout)} if r.returncode == 0 else {}
    check("codecs --json says which are lossless", listed.get("sk2d", {}).get("lossless") is True
          and listed.get("jpeg", {}).get("lossless") is False
          and "rgb24" in listed.get("jpeg", {}).get("formats", ""), r.stdout)

    for codec in ("raw", "rvl", "sk2d", "png"):
        exact = True
        for i, frame in enumerate(frames):
            out = os.path.join(tmp, f"{codec}_{i}.sk2f")
            back = os.path.join(tmp, f"{codec}_{i}.png")
            r1 = run("encode", "--codec", codec, frame, out)
            r2 = run("decode", out, back)
            if r1.returncode or r2.returncode:
                exact = False
                print(r1.stderr, r2.stderr)
                continue
            exact &= read_png(frame) == read_png(back)
        check(f"{codec} round-trips every real frame bit-exact", exact)

    sizes = {c: os.path.getsize(os.path.join(tmp, f"{c}_0.sk2f")) for c in ("raw", "rvl", "sk2d")}
    check("sk2d files are smaller than rvl's, rvl's than raw", sizes["sk2d"] < sizes["rvl"]
          < sizes["raw"], sizes)

    # Colour: an 8-bit RGB test card through raw (exact) and jpeg (close).
    w, h = 40, 24
    rows = [b"".join(bytes((x * 6 % 256, y * 10 % 256, (x + y) * 3 % 256)) for x in range(w))
            for y in range(h)]
    rgb = os.path.join(tmp, "card.png")
    write_png(rgb, w, h, 8, 2, rows)
    r = run("encode", "--codec", "raw", rgb, os.path.join(tmp, "card.raw"))
    r2 = run("decode", os.path.join(tmp, "card.raw"), os.path.join(tmp, "card_raw.png"))
    check("raw round-trips an RGB PNG", r.returncode == 0 and r2.returncode == 0 and
          read_png(os.path.join(tmp, "card_raw.png"))[4] == read_png(rgb)[4], r.stderr + r2.stderr)
    # png: exact, and its payload (after the SK2F header) is itself a PNG of the card.
    card_png = os.path.join(tmp, "card.png.sk2f")
    r = run("encode", "--codec", "png", rgb, card_png)
    r2 = run("decode", card_png, os.path.join(tmp, "card_png.png"))
    payload = os.path.join(tmp, "card_payload.png")
    if r.returncode == 0:
        with open(card_png, "rb") as f:
            data = f.read()
        with open(payload, "wb") as f:
            f.write(data[19 + data[6]:])
    check("png round-trips an RGB PNG, and its payload is a PNG of the same pixels",
          r.returncode == 0 and r2.returncode == 0 and
          read_png(os.path.join(tmp, "card_png.png"))[4] == read_png(rgb)[4] and
          read_png(payload) == read_png(rgb), r.stderr + r2.stderr)
    sizes = []
    for q in ("10", "95"):
        out = os.path.join(tmp, f"card_{q}.jpg.sk2f")
        r = run("encode", "--codec", "jpeg", "--quality", q, rgb, out)
        r2 = run("decode", out, os.path.join(tmp, f"card_{q}.png"))
        ok = r.returncode == 0 and r2.returncode == 0
        if ok:
            got = read_png(os.path.join(tmp, f"card_{q}.png"))
            ok = got[:4] == (w, h, 8, 2)
            err = sum(abs(a - b) for a, b in zip(got[4], read_png(rgb)[4])) / (w * h * 3)
            ok = ok and err < (20 if q == "10" else 4)
        sizes.append(os.path.getsize(out) if os.path.exists(out) else 0)
        check(f"jpeg at quality {q} comes back close", ok, r.stderr + r2.stderr)
    check("a lower quality makes a smaller file", 0 < sizes[0] < sizes[1], sizes)

    # 16-bit PNG written here (not by libpng), odd width: exact through sk2d.
    w, h = 7, 3
    pixels = [0, 1, 0xffff, 4000, 0, 0, 12345] * 3
    rows = [b"".join(struct.pack(">H", v) for v in pixels[y * w:(y + 1) * w]) for y in range(h)]
    small = os.path.join(tmp, "small16.png")
    write_png(small, w, h, 16, 0, rows)
    r = run("encode", "--codec", "sk2d", small, os.path.join(tmp, "small.sk2f"))
    r2 = run("decode", os.path.join(tmp, "small.sk2f"), os.path.join(tmp, "small_back.png"))
    check("a 7x3 16-bit PNG round-trips through sk2d", r.returncode == 0 and r2.returncode == 0
          and read_png(os.path.join(tmp, "small_back.png")) == read_png(small), r.stderr + r2.stderr)

    # Errors: usage (2) and failures (1), each with a message.
    gray8 = os.path.join(tmp, "gray8.png")
    write_png(gray8, 4, 2, 8, 0, [bytes(4), bytes(4)])
    notpng = os.path.join(tmp, "not.png")
    with open(notpng, "wb") as f:
        f.write(b"hello, not a picture")
    good = os.path.join(tmp, "sk2d_0.sk2f")
    with open(good, "rb") as f:
        good_bytes = f.read()

    def bad_file(name, content):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    cases = [
        ("unknown codec", 2, ["encode", "--codec", "nope", frames[0], os.path.join(tmp, "x")]),
        ("no codec", 2, ["encode", frames[0], os.path.join(tmp, "x")]),
        ("quality out of range", 2,
         ["encode", "--codec", "jpeg", "--quality", "0", rgb, os.path.join(tmp, "x")]),
        ("quality on a lossless codec", 2,
         ["encode", "--codec", "sk2d", "--quality", "50", frames[0], os.path.join(tmp, "x")]),
        ("encode without files", 2, ["encode", "--codec", "sk2d"]),
        ("decode without files", 2, ["decode"]),
        ("missing input PNG", 1,
         ["encode", "--codec", "sk2d", os.path.join(tmp, "nope.png"), os.path.join(tmp, "x")]),
        ("not a PNG", 1, ["encode", "--codec", "sk2d", notpng, os.path.join(tmp, "x")]),
        ("8-bit grayscale PNG to a depth codec", 1,
         ["encode", "--codec", "sk2d", gray8, os.path.join(tmp, "x")]),
        ("lossy colour codec on depth", 1,
         ["encode", "--codec", "jpeg", frames[0], os.path.join(tmp, "x")]),
        ("depth12 on depths it would change", 1,
         ["encode", "--codec", "depth12", frames[0], os.path.join(tmp, "x")]),
        ("colour to a depth codec", 1, ["encode", "--codec", "rvl", rgb, os.path.join(tmp, "x")]),
        ("missing input file", 1, ["decode", os.path.join(tmp, "nope"), os.path.join(tmp, "x.png")]),
        ("wrong magic", 1, ["decode", bad_file("magic", b"SK2X" + good_bytes[4:]),
                            os.path.join(tmp, "x.png")]),
        ("a PNG given to decode", 1, ["decode", frames[0], os.path.join(tmp, "x.png")]),
        ("wrong version", 1, ["decode", bad_file("version", good_bytes[:4] + b"\x09" +
                                                 good_bytes[5:]), os.path.join(tmp, "x.png")]),
        ("truncated file", 1, ["decode", bad_file("trunc", good_bytes[:-10]),
                               os.path.join(tmp, "x.png")]),
        ("truncated header", 1, ["decode", bad_file("trunc_header", good_bytes[:9]),
                                 os.path.join(tmp, "x.png")]),
        ("trailing bytes", 1, ["decode", bad_file("trail", good_bytes + b"\x00"),
                               os.path.join(tmp, "x.png")]),
        ("corrupt payload", 1, ["decode", bad_file("corrupt", good_bytes[:40] + bytes(
            len(good_bytes) - 40)), os.path.join(tmp, "x.png")]),
        ("unknown codec in the file", 1, ["decode", bad_file("codec", good_bytes[:7] + b"zzzz" +
                                                            good_bytes[11:]),
                                          os.path.join(tmp, "x.png")]),
    ]
    for name, want, args in cases:
        r = run(*args)
        check(f"{name} exits {want} with a message", r.returncode == want and r.stderr.strip(),
              f"rc={r.returncode} stderr={r.stderr!r}")
    r = run("encode", "--codec", "depth12", "--allow-lossy", frames[0], os.path.join(tmp, "d12"))
    check("depth12 with --allow-lossy encodes", r.returncode == 0, r.stderr)
    for verb in ("codecs", "encode", "decode"):
        r = run(verb, "--help")
        check(f"{verb} --help exits 0", r.returncode == 0 and verb in r.stdout, r.stdout)

    return cu.summary()


if __name__ == "__main__":
    sys.exit(main())
