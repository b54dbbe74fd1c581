"""The NodeAPI contract, held against every implementation behind the same RPC server.

The real :class:`node.node.Node` (one validator, in-process) and the dev node must answer
alike where the contract says how: unknown accounts are NOT_FOUND for ``account``,
``positions`` and ``account_health``; clearing queries at another height are UNAVAILABLE;
``abci_query`` reports an unknown path and an unknown version in its ``code``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from primitives.crypto import PrivateKey, format_address
from localnet.demo import demo_signer, patch_genesis
from localnet.dev_node import DevNode, dev_genesis
from node.config import Config, replace
from node.home import Home
from node.init import init_home
from node.node import Node
from rpc import errors
from rpc.client import AsyncClient, RPCClientError
from rpc.server import RPCServer


@asynccontextmanager
async def real_node(tmp_path: Path, *, funded: bool = False) -> AsyncIterator[AsyncClient]:
    """A real 1-validator node in this process (``funded``: the demo cast has balances)."""
    home = Home.at(tmp_path / "solo")
    config = replace(Config(), p2p={"listen_address": "/ip4/127.0.0.1/tcp/0"},
                     rpc={"listen_address": "127.0.0.1:0"})
    init_home(home, moniker="solo", config=config)
    if funded:
        home.genesis_file.write_text(json.dumps(patch_genesis(json.loads(home.genesis_file.read_text()))))
    node = Node(home)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.fail_after(20):
            while node.chain.height < 1:
                await trio.sleep(0.02)
        client = AsyncClient(f"http://127.0.0.1:{node.rpc_port}")
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def dev_node(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    key = PrivateKey(b"\x31" * 32)
    node = DevNode(dev_genesis(key), key)
    node.make_block()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
        client = AsyncClient(f"http://127.0.0.1:{port}")
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()


IMPLEMENTATIONS = {"node": real_node, "dev_node": dev_node}


async def rpc_error(client: AsyncClient, method: str, **params) -> RPCClientError:  # type: ignore[no-untyped-def]
    with pytest.raises(RPCClientError) as info:
        await client.call(method, **params)
    return info.value


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
async def test_every_node_api_answers_every_read_method(implementation: str, tmp_path: Path) -> None:
    async with IMPLEMENTATIONS[implementation](tmp_path) as client:
        for method, params in [("status", {}), ("net_info", {}), ("genesis", {}), ("validators", {}),
                               ("block", {"height": 1}), ("block_results", {"height": 1}),
                               ("commit", {"height": 1}), ("num_unconfirmed_txs", {}),
                               ("unconfirmed_txs", {}), ("markets", {}), ("prices", {}),
                               ("insurance_fund", {})]:
            assert await client.call(method, **params) is not None, method


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
async def test_every_node_api_answers_queries_alike(implementation: str, tmp_path: Path) -> None:
    async with IMPLEMENTATIONS[implementation](tmp_path) as client:
        unknown = format_address(b"\x09" * 20)
        for method in ("account", "positions", "account_health"):
            assert (await rpc_error(client, method, address=unknown)).code == errors.NOT_FOUND, method
        assert (await rpc_error(client, "market", market="NO-SUCH-PERP")).code == errors.NOT_FOUND

        height = await client.latest_height()
        stale = await rpc_error(client, "account", address=unknown, height=height + 100)
        assert stale.code == errors.UNAVAILABLE

        assert isinstance(await client.call("markets"), list)
        assert isinstance(await client.call("prices"), (dict, list))
        assert await client.call("insurance_fund") is not None

        wrong_path = await client.call("abci_query", path="/nothing", data="00")
        assert wrong_path["response"]["code"] == 1
        future = await client.call("abci_query", path="/store", data="00", height=height + 100)
        assert future["response"]["code"] == 2
        present = await client.call("abci_query", path="/store", data="00", prove=True)
        assert present["response"]["code"] == 0 and present["response"]["proofOps"] is not None


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
async def test_every_node_api_reports_its_consensus_round(implementation: str, tmp_path: Path) -> None:
    """The height being decided is past the latest committed one; the step is one CometBFT
    numbers (1 NewHeight, 3 Propose, 4 Prevote, 6 Precommit, 8 Commit)."""
    async with IMPLEMENTATIONS[implementation](tmp_path) as client:
        latest = await client.latest_height()
        state = (await client.call("consensus_state"))["round_state"]
        height, round_, step = (int(part) for part in state["height/round/step"].split("/"))
        assert height >= latest + 1 and round_ >= 0 and step in (1, 3, 4, 6, 8), state


async def test_a_funded_account_has_positions_and_health_on_the_dev_node(tmp_path: Path) -> None:
    async with dev_node(tmp_path) as client:
        funded = format_address(demo_signer("long-0").address)
        assert await client.call("positions", address=funded) == []
        health = await client.call("account_health", address=funded)
        assert health["liquidatable"] is False
