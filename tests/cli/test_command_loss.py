"""Keyed commands are applied exactly once when 30% of the commands and 30% of their answers
are lost on the way (issue 13).

Between `sk2 ctl` and the server's control endpoint sits a lossy proxy: a ROUTER the clients
connect to and, per client, a DEALER to the server, moving whole ZeroMQ messages (so the
framing stays intact, as a lossy network under ZeroMQ's own retransmission never breaks it).
The proxy drops each `command` (type 0x09) and each `command-reply` (0x0a) with probability
0.3, from a fixed seed; everything else passes: the version-1 requests (`who`, `ping`) are
answered in order and carry no ids, so losing them means a lost server by design, which other
tests cover. Each `sk2 ctl` sets the label of one device to "n<i>" and must end with exit 0
having seen it applied; afterwards the server's own counters must say that exactly N commands
were applied, that some copies were answered from the cache of ids (so resent commands
really arrived twice), and the label must be the last one set.

It also measures the round trip of one command, median over the runs, without the proxy and
through it (printed, never asserted: the machine is shared). Usage: test_command_loss.py SK2.
"""
import json
import random
import re
import statistics
import sys
import threading

import zmq

import cliutil as cu

N = 40
LOSS = 0.3


class LossyProxy:
    """ROUTER in front, one DEALER per client behind, in one thread; drops commands and their
    answers at random. Counts what it dropped each way."""

    def __init__(self, server_endpoint, loss=LOSS, seed=13):
        self.server = server_endpoint
        self.loss = loss
        self.random = random.Random(seed)
        self.ctx = zmq.Context()
        self.front = self.ctx.socket(zmq.ROUTER)
        self.front.setsockopt(zmq.LINGER, 0)
        self.port = self.front.bind_to_random_port("tcp://127.0.0.1")
        self.backs = {}  # client routing id -> DEALER
        self.dropped = {"command": 0, "command-reply": 0}
        self.passed = {"command": 0, "command-reply": 0}
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def _drop(self, frames, type_byte, name):
        # frames: [b"", type, payload?] as a REQ-style envelope carries them.
        if len(frames) >= 2 and frames[1] == bytes([type_byte]):
            if self.random.random() < self.loss:
                self.dropped[name] += 1
                return True
            self.passed[name] += 1
        return False

    def run(self):
        poller = zmq.Poller()
        poller.register(self.front, zmq.POLLIN)
        while self.running:
            for sock, _ in poller.poll(100):
                if sock is self.front:
                    ident, *frames = self.front.recv_multipart()
                    back = self.backs.get(ident)
                    if back is None:
                        back = self.ctx.socket(zmq.DEALER)
                        back.setsockopt(zmq.LINGER, 0)
                        back.connect(self.server)
                        self.backs[ident] = back
                        poller.register(back, zmq.POLLIN)
                    if not self._drop(frames, 0x09, "command"):
                        back.send_multipart(frames)
                else:
                    frames = sock.recv_multipart()
                    ident = next(i for i, b in self.backs.items() if b is sock)
                    if not self._drop(frames, 0x0a, "command-reply"):
                        self.front.send_multipart([ident, *frames])

    def close(self):
        self.running = False
        self.thread.join(5)
        self.ctx.destroy(linger=0)


def stats(endpoint):
    """The server's `stats` totals, asked directly."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sock.send_multipart([b"", b"\x05"])
    if not sock.poll(10000):
        ctx.destroy(linger=0)
        raise RuntimeError("no stats reply")
    reply = sock.recv_multipart()
    ctx.destroy(linger=0)
    return json.loads(reply[2])["totals"]


def label_of(endpoint, device):
    out = cu.run("info", endpoint, "--json").stdout
    for record in json.loads(out)["devices"]:
        if record["id"] == device:
            return record.get("label")
    return None


def run_commands(target, device, prefix, count):
    """Sets the label `count` times through `target`; returns (all ok, round trips in ms,
    sends per command, first failure)."""
    rtts, sends, failure = [], [], ""
    for i in range(count):
        r = cu.run("ctl", target, device, "label", f"{prefix}{i}", "--ttl", "20000")
        m = re.search(r"applied after (\d+) sends?, ([0-9.]+) ms", r.stdout)
        if r.returncode != 0 or not m:
            failure = failure or f"run {i}: exit {r.returncode}: {r.stdout} {r.stderr}"
            continue
        sends.append(int(m.group(1)))
        rtts.append(float(m.group(2)))
    return not failure, rtts, sends, failure


def main():
    cu.setup("command-loss")
    proc, endpoint, _ = cu.start_server("--mock", "1")
    proxy = None
    try:
        info = json.loads(cu.run("info", endpoint, "--json").stdout)
        device = info["devices"][0]["id"]
        cu.check("the server says it takes commands", info.get("commands") == 1, info)

        ok, direct_rtts, direct_sends, failure = run_commands(endpoint, device, "d", 10)
        cu.check("10 commands without loss are all applied", ok, failure)
        cu.check("without loss each command is sent once", direct_sends == [1] * len(direct_sends),
                 direct_sends)
        before = stats(endpoint)
        cu.check("the server applied each of them once", before["commands_applied"] == 10, before)

        clean = LossyProxy(endpoint, loss=0.0)
        ok, proxy_rtts, _, failure = run_commands(f"tcp://127.0.0.1:{clean.port}", device, "p", 10)
        clean.close()
        cu.check("10 commands through the proxy without loss are all applied", ok, failure)
        before = stats(endpoint)

        proxy = LossyProxy(endpoint)
        target = f"tcp://127.0.0.1:{proxy.port}"
        ok, lossy_rtts, lossy_sends, failure = run_commands(target, device, "n", N)
        cu.check(f"{N} commands through 30% loss each way all end applied", ok, failure)
        after = stats(endpoint)
        applied = after["commands_applied"] - before["commands_applied"]
        repeated = after["commands_repeated"] - before["commands_repeated"]
        received = after["commands"] - before["commands"]
        cu.check(f"the server applied exactly {N} of them", applied == N,
                 f"applied {applied}, repeated {repeated}, received {received}")
        cu.check("the proxy dropped commands and answers",
                 proxy.dropped["command"] > 0 and proxy.dropped["command-reply"] > 0,
                 proxy.dropped)
        cu.check("copies sent again reached the server and were answered from its cache",
                 repeated > 0 and received == applied + repeated,
                 f"applied {applied}, repeated {repeated}, received {received}")
        cu.check("some commands needed more than one send",
                 any(s > 1 for s in lossy_sends), lossy_sends)
        cu.check("the label is the last one set", label_of(endpoint, device) == f"n{N - 1}",
                 label_of(endpoint, device))
        cu.check("nothing was refused", after["commands_refused"] == 0, after)

        print(f"round trip of one command, median of {len(direct_rtts)} without loss: "
              f"{statistics.median(direct_rtts):.2f} ms; of {len(proxy_rtts)} through the proxy "
              f"without loss: {statistics.median(proxy_rtts):.2f} ms; of {len(lossy_rtts)} through "
              f"30% loss each way: {statistics.median(lossy_rtts):.2f} ms "
              f"(sends per command: mean {statistics.mean(lossy_sends):.2f}, "
              f"max {max(lossy_sends)}); proxy dropped {proxy.dropped}, passed {proxy.passed}")
    finally:
        if proxy:
            proxy.close()
        status, _, err = cu.stop(proc)
        cu.check("the server stops cleanly (exit 0)", status == 0, err[-2000:])
    sys.exit(cu.summary())


if __name__ == "__main__":
    main()
