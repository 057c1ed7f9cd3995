#!/usr/bin/python3
"""An independent DNS-SD peer for _kinect2._tcp, on Debian's python3-zeroconf.

python-zeroconf is a complete mDNS responder and querier of its own (it does not
use avahi-daemon), so it is a second implementation to check sk2 against.

  announce NAME --port P [--strict]
      Registers NAME on 127.0.0.1:P with its own host name, prints one JSON line
      {"event": "registered", "name": ...} (or "conflict" and exit 3 with --strict
      when the name is taken), and withdraws it (goodbye) on SIGTERM/SIGINT.

  browse [--connect] [--timeout S]
      Browses like the original streamkinect2 ServerBrowser: for every service it
      asks for the full service info (SRV, TXT and the A record of the SRV target),
      and forms the control endpoint from the SRV target *host name* and port,
      tcp://<host>.local:<port>. Prints one JSON line per service added or
      removed. With --connect it also connects to the address the host name
      resolved to (over mDNS, in the same service info) with python3-zmq, sends
      `who` and prints the `me` it gets.

Only ever run inside tests/discovery/with-avahi-netns.sh: it binds to 127.0.0.1.
"""

import argparse
import json
import signal
import socket
import sys
import threading

import zmq
from zeroconf import IPVersion, NonUniqueNameException, ServiceBrowser, ServiceInfo, Zeroconf

SERVICE_TYPE = "_kinect2._tcp.local."
INFO_TIMEOUT_MS = 3000  # what the original ServerBrowser waited for a service's records
ME_TIMEOUT_MS = 5000  # the original client's response timeout


def emit(**record):
    print(json.dumps(record), flush=True)


def zeroconf_on_loopback():
    return Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)


def ask_me(address, port):
    """who -> me on tcp://address:port; returns the decoded payload or None."""
    ctx = zmq.Context.instance()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, ME_TIMEOUT_MS)
    try:
        req.connect(f"tcp://{address}:{port}")
        req.send(b"\x03")
        frames = req.recv_multipart()
        if len(frames) == 2 and frames[0] == b"\x04":
            return json.loads(frames[1].decode("utf-8"))
        return None
    except zmq.Again:
        return None
    finally:
        req.close()


class OriginalStyleListener:
    """The original ServerBrowser's listener, in today's python-zeroconf API."""

    def __init__(self, connect):
        self.connect = connect
        self.known = {}

    def add_service(self, zc, type_, name):
        if type_ != SERVICE_TYPE:
            return
        info = zc.get_service_info(type_, name, timeout=INFO_TIMEOUT_MS)
        if info is None:
            return  # gone before its records could be had, as the original skips it
        short_name = name[: -(len(SERVICE_TYPE) + 1)]
        host = info.server.rstrip(".")
        endpoint = f"tcp://{host}:{info.port}"
        self.known[name] = short_name
        txt = {k.decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace")
               for k, v in (info.properties or {}).items()}
        addresses = info.parsed_addresses(IPVersion.V4Only)
        emit(event="added", name=short_name, server=info.server, port=info.port,
             endpoint=endpoint, addresses=addresses, txt=txt)
        if self.connect and addresses:
            me = ask_me(addresses[0], info.port)
            emit(event="me", name=short_name, me=me)

    def update_service(self, zc, type_, name):
        pass

    def remove_service(self, zc, type_, name):
        if name in self.known:
            emit(event="removed", name=self.known.pop(name))


def run_browse(args, stop):
    zc = zeroconf_on_loopback()
    try:
        ServiceBrowser(zc, SERVICE_TYPE, OriginalStyleListener(args.connect))
        emit(event="browsing")
        stop.wait(args.timeout)
    finally:
        zc.close()
    return 0


def run_announce(args, stop):
    zc = zeroconf_on_loopback()
    host = f"zeroconf-peer-{socket.gethostname()}.local."
    info = ServiceInfo(SERVICE_TYPE, f"{args.name}.{SERVICE_TYPE}",
                       addresses=[socket.inet_aton("127.0.0.1")], port=args.port,
                       server=host, properties={"peer": "python-zeroconf"})
    try:
        try:
            zc.register_service(info, allow_name_change=not args.strict)
        except NonUniqueNameException:
            emit(event="conflict", name=args.name)
            return 3
        emit(event="registered", name=info.name[: -(len(SERVICE_TYPE) + 1)], host=host)
        stop.wait(args.timeout)
        zc.unregister_service(info)
        emit(event="unregistered", name=args.name)
    finally:
        zc.close()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    announce = sub.add_parser("announce")
    announce.add_argument("name")
    announce.add_argument("--port", type=int, required=True)
    announce.add_argument("--strict", action="store_true",
                          help="fail on a name conflict instead of choosing another name")
    announce.add_argument("--timeout", type=float, default=120.0)
    browse = sub.add_parser("browse")
    browse.add_argument("--connect", action="store_true")
    browse.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return run_browse(args, stop) if args.mode == "browse" else run_announce(args, stop)


if __name__ == "__main__":
    sys.exit(main())
