#!/usr/bin/env python3
"""sk2.browse() inside tests/discovery/with-avahi-netns.sh: a server announced from Python is
found by name with its endpoint, and a client connects to what browse returned."""
import sys
import time

import sk2


def main():
    with sk2.Server(mock=1, name="Python Kinect", announce=True) as srv:
        deadline = time.monotonic() + 30
        while srv.announce_state[0] != "active" and time.monotonic() < deadline:
            time.sleep(0.1)
        state = srv.announce_state
        print("announce:", state)
        if state[0] != "active":
            print("FAIL: the server was not announced")
            return 1
        found = []
        while time.monotonic() < deadline:
            found = [s for s in sk2.browse(timeout=3) if s.name == state[1]]
            if found:
                break
        print("browse:", found)
        if not found or not found[0].endpoint.endswith(f":{srv.port}"):
            print(f"FAIL: browse did not find {state[1]!r} on port {srv.port}")
            return 1
        with sk2.Client(found[0].endpoint) as c:
            fs = c.wait_for_frames(timeout_ms=10000)
            if fs.device_id != srv.device_ids[0]:
                print("FAIL: frames from the wrong device")
                return 1
    print("ok: found and streamed from", found[0].endpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
