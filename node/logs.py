"""Operator-readable logs: UTC timestamps, the component, and ``key=value`` facts.

The node logs height, round and step changes, peers coming and going, and every commit with
its round, tx count, app hash and timings (``committed height=.. round=.. txs=.. exec_ms=..``),
so ``grep committed`` gives a node's progress; at ``debug`` also every step change, timeout and
proposal arrival (with its delay since signing). py-libp2p is chatty even at INFO: it is held at
WARNING unless the node runs at ``trace`` (the node at debug, libraries too).
"""

from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)-5s %(name)s: %(message)s"


def setup_logging(level: str, moniker: str = "") -> None:
    import libp2p  # noqa: F401 - it configures its loggers on import; ours must come after
    formatter = logging.Formatter(
        FORMAT if not moniker else FORMAT.replace("%(name)s", f"[{moniker}] %(name)s"),
        datefmt="%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    trace = level == "trace"
    root.setLevel(logging.DEBUG if trace else level.upper())
    library_level = logging.DEBUG if trace else logging.WARNING
    for name in ("libp2p", "multiaddr", "async_service", "trio_websocket"):
        logger = logging.getLogger(name)
        logger.setLevel(library_level)
        logger.propagate = True  # py-libp2p detaches itself unless LIBP2P_DEBUG is set
    # a failed dial is expected while a peer is down; our dialer reports it with its backoff
    logging.getLogger("libp2p.transport.tcp").setLevel(logging.DEBUG if trace else logging.CRITICAL)
