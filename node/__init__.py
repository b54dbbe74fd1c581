"""The clearchain node process: config, home, storage, p2p, mempool, wiring, CLI."""

__version__ = "0.1.0"
