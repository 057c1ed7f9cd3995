#!/usr/bin/python3
"""An independent version-1 streamkinect2 client, run as a test of a server.

It asks the server `who`, checks the `me` reply, pings it, subscribes to
every device's depth endpoint and decodes frames from each; optionally it
checks that the frames are the mock scene, and first sends malformed
requests that must each get exactly one error reply. Written from
PROTOCOL.md only. Exit status 0 when every check passes, 1 at the first
failure (with the reason on stderr).
"""

import argparse
import json
import sys
import time

import zmq

import v1proto

MAX_DEPTH_MESSAGE_BYTES = 4 * 1024 * 1024  # a 318 KB image compresses to less
BIG_PAYLOAD_BYTES = 1024 * 1024
DEEP_NESTING = 10000


class CheckFailed(Exception):
    """A check failed; the message says which and why."""


def expect(condition, message):
    """Raise CheckFailed(message) unless condition holds."""
    if not condition:
        raise CheckFailed(message)


def abuse_cases():
    """(description, request frames, is a pong an acceptable reply)."""
    big = json.dumps("x" * BIG_PAYLOAD_BYTES).encode()
    deep = b"[" * DEEP_NESTING + b"]" * DEEP_NESTING
    return [
        ("unknown type 0x7f", [b"\x7f"], False),
        ("type frame of 2 bytes", [b"\x01\x01"], False),
        ("3 frames", [b"\x01", b"{}", b"{}"], False),
        ("payload that is not JSON", [b"\x03", b"{not json"], False),
        ("empty payload frame", [b"\x01", b""], False),
        ("payload that is not UTF-8", [b"\x03", b'"\xff\xfe"'], False),
        ("pong sent by a client", [b"\x02"], False),
        ("me sent by a client", [b"\x04", b'{"version": 1}'], False),
        ("error sent by a client", [b"\x00", b'{"reason": "x"}'], False),
        ("1 MiB JSON payload", [b"\x01", big], False),
        ("ping with payload {}", [b"\x01", b"{}"], True),
        (f"ping with arrays nested {DEEP_NESTING} deep", [b"\x01", deep], True),
    ]


def dealer_exchange(sock, description, frames):
    """One request on a DEALER (adding the empty delimiter); the parsed reply."""
    try:
        reply = v1proto.exchange(sock, [b""] + frames)
    except TimeoutError:
        raise CheckFailed(f"{description}: no reply within "
                          f"{v1proto.REPLY_TIMEOUT_MS} ms") from None
    expect(reply[0] == b"", f"{description}: reply has no empty delimiter frame")
    try:
        return v1proto.parse_message(reply[1:])
    except v1proto.ProtocolError as exc:
        raise CheckFailed(f"{description}: bad reply: {exc}") from None


def check_abuse_case(ctx, endpoint, description, frames, pong_ok):
    """Send one malformed request from a fresh DEALER and check the answer.

    A DEALER with an empty delimiter frame talks to REP like a REQ but can
    send anything. After the reply, a `who` on the same socket must be
    answered by `me`: the server kept serving, and it did not send a second
    reply to the bad request (that would arrive first, and is never a `me`).
    """
    sock = v1proto.open_socket(ctx, zmq.DEALER, endpoint)
    try:
        reply = dealer_exchange(sock, description, frames)
        if pong_ok and reply.msg_type == v1proto.TYPE_PONG:
            expect(not reply.has_payload, f"{description}: pong has a payload frame")
        else:
            try:
                v1proto.validate_error(reply)
            except v1proto.ProtocolError as exc:
                raise CheckFailed(f"{description}: {exc}") from None
        after = dealer_exchange(sock, f"{description}, then who", [bytes([v1proto.TYPE_WHO])])
        expect(after.msg_type == v1proto.TYPE_ME,
               f"{description}: the who sent next was answered with {after.type_name}")
    finally:
        sock.close()


def check_who(ctx, endpoint):
    """Send who; check the me reply; return its devices (each with depth)."""
    try:
        reply = v1proto.request(ctx, endpoint, v1proto.TYPE_WHO)
        expect(reply.msg_type == v1proto.TYPE_ME,
               f"who answered with {reply.type_name}, expected me")
        devices = v1proto.validate_me(reply.payload)
    except (TimeoutError, v1proto.ProtocolError) as exc:
        raise CheckFailed(f"who: {exc}") from None
    for device in devices:
        expect(isinstance(device["endpoints"].get("depth"), str),
               f"who: device {device['id']} has no string depth endpoint")
    return devices


def check_ping(ctx, endpoint):
    """Send ping; the reply must be a pong of exactly one frame."""
    sock = v1proto.open_socket(ctx, zmq.REQ, endpoint)
    try:
        reply = v1proto.exchange(sock, v1proto.make_message(v1proto.TYPE_PING))
    except TimeoutError as exc:
        raise CheckFailed(f"ping: {exc}") from None
    finally:
        sock.close()
    expect(reply == [bytes([v1proto.TYPE_PONG])],
           f"ping answered with {reply!r:.80}, expected the single frame b'\\x02'")


def check_frames(ctx, devices, frames_per_device, timeout_s, check_mock):
    """Receive and decode frames from every device; return how many.

    Each device must deliver each of its frames within timeout_s of its
    previous one (or of subscribing).
    """
    poller = zmq.Poller()
    pending = {}  # SUB socket -> [device id, frames still wanted, deadline]
    try:
        for device in devices:
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.MAXMSGSIZE, MAX_DEPTH_MESSAGE_BYTES)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(device["endpoints"]["depth"])
            poller.register(sub, zmq.POLLIN)
            pending[sub] = [device["id"], frames_per_device, time.monotonic() + timeout_s]
        decoded = 0
        while any(state[1] > 0 for state in pending.values()):
            now = time.monotonic()
            waiting = [state for state in pending.values() if state[1] > 0]
            late = [state[0] for state in waiting if state[2] <= now]
            expect(not late, f"depth: no frame within {timeout_s} s from device(s) "
                             f"{', '.join(late)}")
            wait_ms = (min(state[2] for state in waiting) - now) * 1000
            for sub, _ in poller.poll(wait_ms):
                state = pending[sub]
                message = sub.recv_multipart(zmq.NOBLOCK)
                if state[1] <= 0:
                    continue
                check_depth_message(state[0], message, check_mock)
                decoded += 1
                state[1] -= 1
                state[2] = time.monotonic() + timeout_s
        return decoded
    finally:
        for sub in pending:
            sub.close()


def check_depth_message(device_id, message, check_mock):
    """One depth message must be a single depth12 frame (of the mock scene)."""
    expect(len(message) == 1,
           f"depth: device {device_id} sent a message of {len(message)} frames")
    try:
        depth = v1proto.decode_depth12(message[0])
    except v1proto.ProtocolError as exc:
        raise CheckFailed(f"depth: device {device_id}: {exc}") from None
    if check_mock:
        expect(v1proto.find_mock_dx(depth) is not None,
               f"depth: device {device_id} sent a frame that is not the mock "
               "scene for any dx in -100..100")


def run(args):
    """All checks in order; returns (checks passed, frames decoded, devices)."""
    checks = 0
    with zmq.Context() as ctx:  # every socket is closed (linger 0) before term()
        if args.abuse:
            for description, frames, pong_ok in abuse_cases():
                check_abuse_case(ctx, args.endpoint, description, frames, pong_ok)
                checks += 1
        devices = check_who(ctx, args.endpoint)
        checks += 1
        check_ping(ctx, args.endpoint)
        checks += 1
        decoded = check_frames(ctx, devices, args.frames, args.timeout, args.check_mock)
        checks += len(devices)
    return checks, decoded, len(devices)


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the server's control endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--frames", type=int, default=30, help="frames to decode per device")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each device's next frame")
    parser.add_argument("--check-mock", action="store_true",
                        help="check that every frame is the mock scene for some dx")
    parser.add_argument("--abuse", action="store_true",
                        help="first send malformed requests that must get errors")
    args = parser.parse_args(argv)
    if args.frames < 0 or args.timeout <= 0:
        parser.error("--frames must be >= 0 and --timeout > 0")
    return args


def main(argv=None):
    """Run the checks; print a summary line; return the exit status."""
    args = parse_args(argv)
    try:
        checks, decoded, device_count = run(args)
    except CheckFailed as exc:
        print(f"v1_client: FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"v1_client: {checks} checks passed, {decoded} frames from "
          f"{device_count} devices decoded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
