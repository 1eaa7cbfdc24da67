"""A kazoo Election participant for tenure's interop tests.

Usage: kazoo_election.py <connect string> <election path> <identifier>

Campaigns with kazoo.recipe.election.Election (built on kazoo's Lock
recipe: nodes <uuid hex>__lock__<seq>, the identifier as node data). On
winning it prints "LEADER <identifier>" and holds leadership until stdin
closes or SIGTERM/SIGINT arrives; then it releases (deletes its node),
stops the client, prints "EXITED <identifier>" and exits 0. A candidate
that is still waiting when told to stop cancels its campaign the same way.
Lines go to stdout, flushed; kazoo's own logging goes to stderr.
"""

import logging
import signal
import sys
import threading

from kazoo.client import KazooClient
from kazoo.recipe.election import Election


def say(line):
    print(line, flush=True)


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    connect, path, identifier = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin():
        # Returns at EOF: the test closed our stdin (or died).
        for _ in sys.stdin:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    client = KazooClient(hosts=connect, timeout=4.0)
    client.start(timeout=15)
    election = Election(client, path, identifier)

    def cancel_when_stopped():
        stop.wait()
        # Ends a campaign still waiting for the lock; a leader leaves
        # lead() below on its own.
        election.cancel()

    threading.Thread(target=cancel_when_stopped, daemon=True).start()

    def lead():
        say("LEADER " + identifier)
        # Poll, so that signals are handled promptly in the main thread.
        while not stop.wait(0.1):
            pass

    say("CAMPAIGNING " + identifier)
    # Blocks until we lead and lead() returns (the lock is released on the
    # way out), or until cancel().
    election.run(lead)
    client.stop()
    client.close()
    say("EXITED " + identifier)
    return 0


if __name__ == "__main__":
    sys.exit(main())
