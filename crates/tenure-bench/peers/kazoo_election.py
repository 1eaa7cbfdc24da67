#!/usr/bin/env python3
"""One kazoo Election candidate, for tenure's handover benchmark.

Usage: kazoo_election.py <connect string> <election path> <proposal>

Campaigns with kazoo.recipe.election.Election. The moment it leads it
prints "elected <proposal>" on stdout (flushed). On SIGTERM or SIGINT it
leaves cleanly: a leader returns from its leader function (kazoo then
deletes its lock node), a waiting candidate cancels its campaign; the
client is stopped, "resigned <proposal>" is printed and it exits 0.
"""

import signal
import sys
import threading

from kazoo.client import KazooClient
from kazoo.recipe.election import Election


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    hosts, path, proposal = sys.argv[1:]
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=20)
    election = Election(client, path, proposal)

    def lead():
        sys.stdout.write("elected %s\n" % proposal)
        sys.stdout.flush()
        # Short waits keep the main thread responsive to signals.
        while not stopping.wait(0.01):
            pass

    def cancel_on_stop():
        stopping.wait()
        election.cancel()

    threading.Thread(target=cancel_on_stop, daemon=True).start()
    election.run(lead)
    client.stop()
    client.close()
    sys.stdout.write("resigned %s\n" % proposal)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
