#!/usr/bin/env python3
"""A live depth and colour viewer in 20 lines: python3 viewer.py [ENDPOINT] [--frames N]."""
import sys

import matplotlib.pyplot as plt

import sk2

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
frames = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--frames" else None
with sk2.Client(endpoint, streams=["depth", "color"]) as c:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    fs = c.wait_for_frames(timeout_ms=5000)
    depth = left.imshow(fs.depth.asarray(), cmap="turbo", vmin=500, vmax=4500)
    color = right.imshow(fs.color.asarray())
    fig.colorbar(depth, ax=left, label="mm")
    while plt.fignum_exists(fig.number) and (frames is None or (frames := frames - 1) > 0):
        fs = c.wait_for_frames(timeout_ms=5000)
        depth.set_data(fs.depth.asarray())   # zero-copy views of the decoded frames
        color.set_data(fs.color.asarray())
        left.set_title(f"depth #{fs.depth.seq}, {fs.depth.latency_us or 0} µs after capture")
        plt.pause(0.001)
