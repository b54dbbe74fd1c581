"""Section 7 of the JSON-RPC 2.0 specification (https://www.jsonrpc.org/specification), over
real HTTP and over the WebSocket: every example gets exactly the response the spec shows.

The examples call methods of the spec's own ("subtract", "sum", "get_data", ...): a server is
started with a table holding them (``EXAMPLE_METHODS``), served by the same dispatcher and
transports as the node's table. The rules that do not depend on a method (parse errors, invalid
Request objects, batches, notifications, unknown methods, invalid params) are checked again
against the node's own table (``NODE_CASES``), so the real server's wire behaviour is the same.

Expected replies are copied from the spec's text, not produced by our helpers. The one member
we add is ``error.data`` (the spec: "This may be omitted"; we use it to say precisely what was
wrong); it is compared apart: always a non-empty string, and every other member exactly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from rpc import errors
from rpc.client import WebSocket
from rpc.limits import Limits
from rpc.methods import Context, Method, Param
from rpc.server import RPCServer
from tests.rpc.conftest import raw_http
from tests.rpc.fake_node import FakeNode

NOTHING = object()
"""The expected answer when the spec says nothing is returned."""


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.invalid_params(f"{name}: must be a number, got {value!r}")
    return value


def _numbers(*names: str) -> tuple[Param, ...]:
    return tuple(Param(name, _number, default=0) for name in names)


async def _subtract(ctx: Context, minuend: int, subtrahend: int) -> int:
    return minuend - subtrahend


async def _sum(ctx: Context, **terms: int) -> int:
    return sum(terms.values())


async def _get_data(ctx: Context) -> list[Any]:
    return ["hello", 5]


async def _ignored(ctx: Context, **_: Any) -> dict[str, Any]:
    return {}


EXAMPLE_METHODS: dict[str, Method] = {m.name: m for m in [
    Method("subtract", _subtract, (Param("minuend", _number, required=True),
                                   Param("subtrahend", _number, required=True)), ""),
    Method("sum", _sum, _numbers("a", "b", "c"), ""),
    Method("get_data", _get_data, (), ""),
    Method("update", _ignored, _numbers("a", "b", "c", "d", "e"), ""),
    Method("notify_hello", _ignored, _numbers("a"), ""),
    Method("notify_sum", _ignored, _numbers("a", "b", "c"), ""),
]}


def _error(code: int, message: str, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}


INVALID_REQUEST = _error(-32600, "Invalid Request", None)

# (name, request text, the response the spec shows); verbatim from section 7.
SPEC_EXAMPLES: list[tuple[str, str, Any]] = [
    ("positional params",
     '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
     {"jsonrpc": "2.0", "result": 19, "id": 1}),
    ("positional params, swapped",
     '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
     {"jsonrpc": "2.0", "result": -19, "id": 2}),
    ("named params",
     '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
     {"jsonrpc": "2.0", "result": 19, "id": 3}),
    ("named params, other order",
     '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
     {"jsonrpc": "2.0", "result": 19, "id": 4}),
    ("notification", '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', NOTHING),
    ("notification of a method that does not exist", '{"jsonrpc": "2.0", "method": "foobar"}',
     NOTHING),
    ("non-existent method", '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
     _error(-32601, "Method not found", "1")),
    ("invalid JSON", '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
     _error(-32700, "Parse error", None)),
    ("invalid Request object", '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
     INVALID_REQUEST),
    ("batch, invalid JSON",
     '[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
     '  {"jsonrpc": "2.0", "method"\n]',
     _error(-32700, "Parse error", None)),
    ("empty Array", "[]", INVALID_REQUEST),
    ("invalid batch (but not empty)", "[1]", [INVALID_REQUEST]),
    ("invalid batch", "[1,2,3]", [INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST]),
    ("batch",
     '[\n'
     '  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n'
     '  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},\n'
     '  {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},\n'
     '  {"foo": "boo"},\n'
     '  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},\n'
     '  {"jsonrpc": "2.0", "method": "get_data", "id": "9"}\n'
     ']',
     [{"jsonrpc": "2.0", "result": 7, "id": "1"},
      {"jsonrpc": "2.0", "result": 19, "id": "2"},
      INVALID_REQUEST,
      _error(-32601, "Method not found", "5"),
      {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}]),
    ("batch, all notifications",
     '[\n  {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},\n'
     '  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}\n]',
     NOTHING),
    # Not among section 7's examples; the rules of sections 4 and 5 they follow.
    ("invalid params (section 5.1)",
     '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": "x", "subtrahend": 1}, "id": 6}',
     _error(-32602, "Invalid params", 6)),
    ("a notification with invalid params is not answered either (section 4.1)",
     '{"jsonrpc": "2.0", "method": "subtract", "params": ["x"]}', NOTHING),
    ("params that are not structured (section 4.2)",
     '{"jsonrpc": "2.0", "method": "subtract", "params": "bar", "id": 7}',
     _error(-32600, "Invalid Request", 7)),
    ("an id that is not a string, number or null (section 4)",
     '{"jsonrpc": "2.0", "method": "get_data", "id": {"a": 1}}', INVALID_REQUEST),
    ("a Request without jsonrpc is not a notification",
     '{"method": "get_data"}', INVALID_REQUEST),
    ("invalid Request objects without an id inside a batch",
     '[{"jsonrpc": "2.0", "method": 1}, {"jsonrpc": "1.0", "method": "get_data"}, '
     '{"jsonrpc": "2.0", "method": "get_data", "id": null}]',
     [INVALID_REQUEST, INVALID_REQUEST, {"jsonrpc": "2.0", "result": ["hello", 5], "id": None}]),
]

# The same rules against the node's own method table.
NODE_CASES: list[tuple[str, str, Any]] = [
    ("call", '{"jsonrpc": "2.0", "method": "health", "id": 1}', {"jsonrpc": "2.0", "result": {}, "id": 1}),
    ("notification", '{"jsonrpc": "2.0", "method": "health"}', NOTHING),
    ("notification of an unknown method", '{"jsonrpc": "2.0", "method": "foobar"}', NOTHING),
    ("notification with invalid params", '{"jsonrpc": "2.0", "method": "block", "params": {"height": "x"}}',
     NOTHING),
    ("non-existent method", '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
     _error(-32601, "Method not found", "1")),
    ("invalid JSON", '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
     _error(-32700, "Parse error", None)),
    ("invalid Request object", '{"jsonrpc": "2.0", "method": 1, "params": "bar"}', INVALID_REQUEST),
    ("invalid params", '{"jsonrpc": "2.0", "method": "block", "params": {"height": "x"}, "id": 2}',
     _error(-32602, "Invalid params", 2)),
    ("empty Array", "[]", INVALID_REQUEST),
    ("invalid batch (but not empty)", "[1]", [INVALID_REQUEST]),
    ("invalid batch", "[1,2,3]", [INVALID_REQUEST] * 3),
    ("batch",
     '[{"jsonrpc": "2.0", "method": "health", "id": "1"}, {"jsonrpc": "2.0", "method": "health"},'
     ' {"foo": "boo"}, {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"}]',
     [{"jsonrpc": "2.0", "result": {}, "id": "1"}, INVALID_REQUEST,
      _error(-32601, "Method not found", "5")]),
    ("batch, all notifications",
     '[{"jsonrpc": "2.0", "method": "health"}, {"jsonrpc": "2.0", "method": "num_unconfirmed_txs"}]',
     NOTHING),
]


def _spec_view(reply: Any) -> Any:
    """The reply as the spec would print it: ``error.data`` (ours; the spec lets it be omitted)
    is checked to be a non-empty string and left out."""
    if isinstance(reply, list):
        return [_spec_view(item) for item in reply]
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict) and "data" in reply["error"]:
        error = dict(reply["error"])
        data = error.pop("data")
        assert isinstance(data, str) and data, reply
        return {**reply, "error": error}
    return reply


async def _start(nursery: trio.Nursery, methods: dict[str, Method] | None) -> int:
    server = RPCServer(FakeNode(), Limits(max_body_bytes=4096), methods=methods)
    return await nursery.start(server.serve, "127.0.0.1", 0)


@pytest.fixture
async def example_port(nursery: trio.Nursery) -> int:
    return await _start(nursery, EXAMPLE_METHODS)


@pytest.fixture
async def node_port(nursery: trio.Nursery) -> int:
    return await _start(nursery, None)


async def _over_http(port: int, text: str) -> Any:
    status, body = await raw_http(port, "POST", "/", text.encode(), [("Content-Type", "application/json")])
    if status == 204:
        assert body == b""
        return NOTHING
    assert status == 200, (status, body)
    return json.loads(body)


PROBE = '{"jsonrpc": "2.0", "method": "no.such.probe", "id": "probe"}'
"""Sent after each case over the WebSocket: its reply coming next proves the case got none."""


async def _over_websocket(port: int, text: str) -> Any:
    async with await WebSocket.connect("127.0.0.1", port) as ws:
        await ws.send(text)
        await ws.send(PROBE)
        with trio.fail_after(10):
            first = json.loads(await ws.receive() or "null")
            if isinstance(first, dict) and first.get("id") == "probe":
                return NOTHING
            probe = json.loads(await ws.receive() or "null")
        assert probe["id"] == "probe", probe
        return first


def _ids(cases: list[tuple[str, str, Any]]) -> list[str]:
    return [name for name, _, _ in cases]


@pytest.mark.parametrize("transport", [_over_http, _over_websocket], ids=["http", "websocket"])
@pytest.mark.parametrize(("name", "request_text", "expected"), SPEC_EXAMPLES, ids=_ids(SPEC_EXAMPLES))
async def test_section_7_example(example_port, transport, name, request_text, expected):
    reply = await transport(example_port, request_text)
    assert _spec_view(reply) == expected


@pytest.mark.parametrize("transport", [_over_http, _over_websocket], ids=["http", "websocket"])
@pytest.mark.parametrize(("name", "request_text", "expected"), NODE_CASES, ids=_ids(NODE_CASES))
async def test_the_node_table_follows_the_same_rules(node_port, transport, name, request_text, expected):
    reply = await transport(node_port, request_text)
    assert _spec_view(reply) == expected


async def test_an_oversized_body_gets_413_and_a_json_rpc_error_naming_the_limit(node_port):
    body = '{"jsonrpc": "2.0", "method": "health", "id": 1, "pad": "' + "x" * 5000 + '"}'
    status, data = await raw_http(node_port, "POST", "/", body.encode())
    assert status == 413
    reply = json.loads(data)
    assert reply["id"] is None and set(reply) == {"jsonrpc", "id", "error"}
    assert reply["error"]["code"] == errors.LIMIT_EXCEEDED
    assert "4096 bytes" in reply["error"]["data"] and "max_body_bytes" in reply["error"]["data"]


async def test_an_oversized_websocket_message_gets_the_same_error_then_a_close(node_port):
    async with await WebSocket.connect("127.0.0.1", node_port) as ws:
        await ws.send("x" * 5000)
        with trio.fail_after(10):
            reply = json.loads(await ws.receive() or "null")
            assert await ws.receive() is None
    assert reply["id"] is None and reply["error"]["code"] == errors.LIMIT_EXCEEDED
    assert "4096 bytes" in reply["error"]["data"]
    assert ws.close_code == 1009
