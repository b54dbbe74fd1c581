"""Fixtures: the CLI's tx and query commands run against the real clearing application (the dev
node behind the RPC server), so the typed client parses the node's real answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trio

from localnet.dev_node import DevNode, dev_genesis
from primitives.crypto import PrivateKey
from rpc.server import RPCServer

VALIDATOR = PrivateKey(b"\x31" * 32)


@dataclass
class Chain:
    node: DevNode
    url: str


@pytest.fixture
async def chain(nursery: trio.Nursery) -> AsyncIterator[Chain]:
    """A dev chain whose blocks are made by the test (``node.make_block()``)."""
    node = DevNode(dev_genesis(VALIDATOR, int(time.time() * 1000) - 1000), VALIDATOR)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    node.make_block()
    yield Chain(node, f"http://127.0.0.1:{port}")
