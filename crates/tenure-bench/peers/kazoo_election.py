#!/usr/bin/env python3
"""One kazoo Election candidate, for tenure's handover benchmark.

Usage: kazoo_election.py <connect string> <election path> <proposal>

Campaigns with kazoo.recipe.election.Election. The moment it leads it
prints "elected <proposal>" on stdout (flushed). On SIGTERM or SIGINT it
leaves cleanly: a leader returns from its leader function (kazoo then
deletes its lock node), a waiting candidate cancels its campaign; the
client is stopped, "resigned <proposal>" is printed and it exits 0.

The signals are blocked in every thread and taken by one thread with
sigwait, never by a Python signal handler: a handler runs on the main
thread between two bytecodes, and one that sets a threading.Event there
can find the Event's lock already held by that same thread (inside
Event.wait), and wait for it forever.
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
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Blocked before any thread starts, so every thread inherits the mask
    # and only the sigwait below ever takes them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=20)
    election = Election(client, path, proposal)

    def lead():
        sys.stdout.write("elected %s\n" % proposal)
        sys.stdout.flush()
        stopping.wait()

    def stop_on_signal():
        signal.sigwait(stop_signals)
        stopping.set()
        election.cancel()

    threading.Thread(target=stop_on_signal, daemon=True).start()
    election.run(lead)
    client.stop()
    client.close()
    sys.stdout.write("resigned %s\n" % proposal)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
