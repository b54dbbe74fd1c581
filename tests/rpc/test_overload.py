"""A tx refused for load: -32002 with ``data.retry_after_ms``, HTTP 503 with ``Retry-After``;
invalid txs keep their result codes; AsyncClient honours the hint, a bounded number of times."""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any

import pytest
import trio

from rpc import errors
from rpc.admission import refusal_status
from rpc.client import AsyncClient, RPCClientError
from rpc.server import RPCServer
from rpc.views import TxResultView
from primitives.crypto import PrivateKey
from tests.rpc.conftest import http_exchange
from tests.rpc.fake_node import FakeNode, build_fake_tx

KEY = PrivateKey(b"\x07" * 32)


def fake_tx(amount: int) -> bytes:
    return build_fake_tx(KEY, "transfer", {"to": "x", "amount": amount})


class SheddingNode(FakeNode):
    """Refuses the first ``refuse`` broadcasts for load, then answers as the fake node does."""

    def __init__(self, refuse: int, retry_after_ms: int = 1500) -> None:
        super().__init__()
        self.refuse = refuse
        self.retry_after_ms = retry_after_ms
        self.calls = 0

    async def broadcast_tx(self, tx: bytes) -> TxResultView:
        self.calls += 1
        if self.calls <= self.refuse:
            raise errors.overloaded("mempool is full", self.retry_after_ms)
        return await super().broadcast_tx(tx)


async def request(port: int, body: bytes, method: str = "POST",
                  target: str = "/") -> tuple[int, dict[str, str], Any]:
    """One HTTP exchange: status, headers (lower-case names), decoded JSON body."""
    status, headers, data = await http_exchange(port, method, target, body,
                                                [("Content-Type", "application/json")])
    return status, headers, json.loads(data)


def broadcast(tx: bytes, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "broadcast_tx_sync",
            "params": {"tx": base64.b64encode(tx).decode()}}


def test_refusal_status_is_503_with_whole_seconds_only_for_a_single_refused_request() -> None:
    assert refusal_status(0, b'{"jsonrpc":"2.0"}') == (200, [])
    assert refusal_status(1500, b'{"jsonrpc":"2.0"}') == (503, [(b"retry-after", b"2")])
    assert refusal_status(200, b'{"a":1}') == (503, [(b"retry-after", b"1")])  # never 0
    assert refusal_status(1500, b'[{"a":1}]') == (200, [])  # a batch keeps its other answers


@pytest.mark.parametrize("method", ["broadcast_tx_sync", "broadcast_tx_async", "broadcast_tx_commit"])
async def test_a_tx_refused_for_load_is_503_with_retry_after_and_the_hint_in_data(
        nursery: trio.Nursery, method: str) -> None:
    node = SheddingNode(refuse=1, retry_after_ms=1500)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    tx = fake_tx(1)
    body = {**broadcast(tx), "method": method}
    status, headers, reply = await request(port, json.dumps(body).encode())
    assert status == 503
    assert headers["retry-after"] == "2"
    assert reply["error"]["code"] == errors.LIMIT_EXCEEDED == -32002
    assert reply["error"]["data"]["retry_after_ms"] == 1500
    assert node.pending == []  # refused before the mempool
    # the next answer on the same server is an ordinary one: no hint leaks into it
    status, headers, reply = await request(port, json.dumps(broadcast(tx, 2)).encode())
    assert status == 200 and "retry-after" not in headers
    assert reply["result"]["code"] == 0


async def test_an_invalid_tx_keeps_its_result_code_and_200(nursery: trio.Nursery) -> None:
    node = SheddingNode(refuse=0)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    status, headers, reply = await request(port, json.dumps(broadcast(b"\x01garbage")).encode())
    assert status == 200 and "retry-after" not in headers
    assert reply["result"]["code"] != 0  # a tx result code, not a JSON-RPC error


async def test_a_batch_with_a_refused_tx_stays_200_with_the_hint_in_its_error(nursery: trio.Nursery) -> None:
    node = SheddingNode(refuse=1)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    txs = [fake_tx(n) for n in (1, 2)]
    status, _, replies = await request(port, json.dumps([broadcast(t, i) for i, t in enumerate(txs)]).encode())
    assert status == 200
    assert replies[0]["error"]["data"]["retry_after_ms"] == 1500
    assert replies[1]["result"]["code"] == 0


async def test_uri_get_refused_for_load_is_503_too(nursery: trio.Nursery) -> None:
    node = SheddingNode(refuse=1, retry_after_ms=300)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    tx = urllib.parse.quote(base64.b64encode(fake_tx(1)).decode())
    status, headers, reply = await request(port, b"", "GET", f"/broadcast_tx_sync?tx={tx}")
    assert (status, headers["retry-after"]) == (503, "1")
    assert reply["error"]["data"]["retry_after_ms"] == 300


async def test_async_client_waits_the_hint_and_retries_until_admitted(nursery: trio.Nursery) -> None:
    node = SheddingNode(refuse=2, retry_after_ms=300)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    async with AsyncClient(f"http://127.0.0.1:{port}") as client:
        started = trio.current_time()
        answer = await client.broadcast_tx_sync(fake_tx(1))
        waited = trio.current_time() - started
    assert answer["code"] == 0
    assert node.calls == 3
    assert waited >= 0.6  # two hinted waits of 300 ms: it did not hammer the node


async def test_async_client_gives_up_after_its_bounded_retries(nursery: trio.Nursery) -> None:
    node = SheddingNode(refuse=100, retry_after_ms=10)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    async with AsyncClient(f"http://127.0.0.1:{port}", overload_retries=2) as client:
        with pytest.raises(RPCClientError) as info:
            await client.broadcast_tx_sync(fake_tx(1))
    assert info.value.code == -32002
    assert node.calls == 3  # one try and two retries, no more


async def test_async_client_does_not_retry_other_limit_errors(nursery: trio.Nursery) -> None:
    """A -32002 without a hint (a body, batch or waiter limit) would fail again: no retry."""

    class Limited(SheddingNode):
        async def broadcast_tx(self, tx: bytes) -> TxResultView:
            self.calls += 1
            raise errors.RPCError(errors.LIMIT_EXCEEDED, "some limit, no hint")

    node = Limited(refuse=0)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    async with AsyncClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(RPCClientError) as info:
            await client.broadcast_tx_sync(fake_tx(1))
    assert info.value.code == -32002
    assert node.calls == 1
