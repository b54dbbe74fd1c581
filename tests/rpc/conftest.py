"""Fixtures: an RPC server on 127.0.0.1 port 0 in front of the in-memory fake node."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import h11
import pytest
import trio

from primitives.crypto import PrivateKey
from rpc.client import AsyncClient
from tests.rpc.fake_node import FakeNode
from rpc.limits import Limits
from rpc.server import RPCServer


@dataclass
class Served:
    node: FakeNode
    server: RPCServer
    port: int
    client: AsyncClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_served(nursery: trio.Nursery, limits: Limits | None = None) -> Served:
    node = FakeNode()
    server = RPCServer(node, limits)
    port = await nursery.start(server.serve, "127.0.0.1", 0)
    return Served(node, server, port, AsyncClient(f"http://127.0.0.1:{port}"))


@pytest.fixture
async def served(nursery: trio.Nursery) -> AsyncIterator[Served]:
    result = await start_served(nursery, Limits(max_body_bytes=64 * 1024, max_batch_requests=10,
                                                max_open_connections=64, max_subscriptions_per_client=3,
                                                subscriber_queue=8, timeout_broadcast_tx_commit_ms=500))
    yield result
    await result.client.aclose()


@pytest.fixture
def key() -> PrivateKey:
    return PrivateKey(b"\x07" * 32)


async def raw_http(port: int, method: str, target: str, body: bytes = b"",
                   headers: list[tuple[str, str]] | None = None) -> tuple[int, bytes]:
    """One HTTP request with full control of the body; returns (status, body)."""
    status, _, data = await http_exchange(port, method, target, body, headers)
    return status, data


async def http_exchange(port: int, method: str, target: str, body: bytes = b"",
                        headers: list[tuple[str, str]] | None = None
                        ) -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP request; returns (status, response headers by lower-case name, body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        conn = h11.Connection(h11.CLIENT)
        all_headers = [("Host", "x"), ("Content-Length", str(len(body)))] + (headers or [])
        await stream.send_all(conn.send(h11.Request(method=method, target=target, headers=all_headers))
                              + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        status, response_headers, parts = 0, {}, []
        with trio.fail_after(10):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status, response_headers = event.status_code, dict(event.headers)
                elif isinstance(event, h11.Data):
                    parts.append(bytes(event.data))
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return status, response_headers, b"".join(parts)


async def post(port: int, body: bytes | str | Any) -> Any:
    """POST a body (bytes/str verbatim, anything else JSON-encoded); the decoded reply or None."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    status, data = await raw_http(port, "POST", "/", body, [("Content-Type", "application/json")])
    return json.loads(data) if data else None


def assert_valid_reply(reply: Any) -> None:
    """A JSON-RPC 2.0 response object: jsonrpc, id, and exactly one of result/error."""
    assert isinstance(reply, dict), reply
    assert reply.get("jsonrpc") == "2.0", reply
    assert "id" in reply, reply
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        error = reply["error"]
        assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), reply
