#!/usr/bin/python3
"""How fast `sk2 stream` notices a lost server and receives again once it is back.

Usage: reconnect_times.py PATH_TO_SK2 [RUNS] [OUTAGE_S]

Each run: a mock server at 30 fps on a fixed loopback port, `sk2 stream --stream depth` with
status lines every 0.1 s, the server killed with SIGKILL, OUTAGE_S (default 3) seconds without
it, a new server on the same port. Measured per run, from stream's own output as it arrives:
  notice  kill -> the "lost ...; reconnecting" line
  back    new server listening (its control port takes a TCP connection) -> "back after"
  frame   new server listening -> the first status line after "back after" whose frame count
          grew (status lines come every 0.1 s, so this is up to 0.1 s late)
Prints one line per run and the medians. Loopback only; nothing is asserted.
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SK2 = sys.argv[1] if len(sys.argv) > 1 else "sk2"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
OUTAGE_S = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
TMP = tempfile.mkdtemp(prefix="sk2-reconnect-bench-")
os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/sk2-bench-bus"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port, n):
    path = os.path.join(TMP, f"endpoint-{port}-{n}")
    proc = subprocess.Popen([SK2, "serve", "--bind", "127.0.0.1", "--port", str(port),
                             "--endpoint-file", path, "--no-status", "--no-announce",
                             "--fps", "30"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Listening means its control port takes a TCP connection (the endpoint file comes later,
    # once the devices are started, and a client may be answered before it).
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.002)
    listening = time.monotonic()
    while not os.path.exists(path) or not open(path).read().strip():
        time.sleep(0.005)
    return proc, listening


def pump(stream, lines):
    for line in stream:
        lines.append((time.monotonic(), line))


def one_run(n):
    port = free_port()
    server, _ = serve(port, 2 * n)
    # Line-buffered stdout, so that each status line is timed as it is written.
    client = subprocess.Popen(["stdbuf", "-oL", SK2, "stream", f"tcp://127.0.0.1:{port}", "--stream", "depth",
                               "--status-interval", "0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    threading.Thread(target=pump, args=(client.stdout, lines), daemon=True).start()
    # Kill only once frames flow (a busy machine may take a while to connect).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            l.startswith("frames ") and int(l.split()[1]) > 0 for _, l in lines):
        time.sleep(0.01)
    time.sleep(0.5)
    killed = time.monotonic()
    server.kill()
    server.wait()
    time.sleep(OUTAGE_S)
    server, listening = serve(port, 2 * n + 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("back after" in l for _, l in lines):
        time.sleep(0.01)
    # A server may answer `who` before its device is added; the device then shows in the next
    # `me`, a heartbeat (1 s) later. Wait for frames for a while.
    time.sleep(4)
    client.send_signal(signal.SIGINT)
    client.wait()
    server.send_signal(signal.SIGINT)
    server.wait()
    notice = next((t for t, l in lines if "reconnecting" in l), None)
    back = next((t for t, l in lines if "back after" in l), None)
    # Frames counted by the status line before the "back after" line are the old server's.
    frames_before, first = None, None
    for t, l in lines:
        if l.startswith("frames "):
            count = int(l.split()[1])
            if back is None or t < back:
                frames_before = count
            elif frames_before is not None and count > frames_before:
                first = t
                break
    return (notice - killed if notice else None, back - listening if back else None,
            first - listening if first else None)


def main():
    rows = []
    print(f"sk2 stream, {RUNS} runs, SIGKILL and {OUTAGE_S:g} s outage, 30 fps mock")
    print("run  notice_s  back_s  first_frame_s")
    for n in range(RUNS):
        row = one_run(n)
        rows.append(row)
        print(f"{n:3d}  " + "  ".join("   n/a" if v is None else f"{v:7.3f}" for v in row),
              flush=True)
    for name, i in (("notice", 0), ("back", 1), ("first frame", 2)):
        values = [r[i] for r in rows if r[i] is not None]
        if values:
            print(f"median {name}: {statistics.median(values):.3f} s "
                  f"(min {min(values):.3f}, max {max(values):.3f}, {len(values)} runs)")


if __name__ == "__main__":
    main()
