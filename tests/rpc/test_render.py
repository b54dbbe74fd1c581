"""The output rule and the parameter parsers, and the ``serve`` entry point a node calls."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pytest

from primitives.crypto import format_address
from rpc import errors
from rpc.client import AsyncClient
from rpc.errors import RPCError
from rpc.events import QueryError, parse_query
from tests.rpc.fake_node import FakeNode
from rpc.render import parse_address, parse_base64, parse_height, parse_hex, parse_int, render
from rpc.server import serve


class Flag(enum.IntEnum):
    COMMIT = 2


@dataclass(frozen=True)
class Header:
    height: int
    app_hash: bytes
    proposer_address: bytes
    flag: Flag


def test_render_rules():
    header = Header(2**60 + 1, b"\xab\xcd", b"\x01" * 20, Flag.COMMIT)
    assert render(header) == {"height": str(2**60 + 1), "app_hash": "ABCD", "proposer_address": "01" * 20,
                              "flag": "COMMIT"}
    assert render({"account": b"\x02" * 20, "n": [1, True, None]}) == {
        "account": format_address(b"\x02" * 20), "n": ["1", True, None]}
    assert render({b"\x01": {3, 1}}) == {"01": ["1", "3"]}


def test_parsers_reject_with_the_param_name():
    assert parse_int("x", "12") == 12 and parse_int("x", 12.0) == 12
    assert parse_height("height", 0) is None and parse_height("height", "5") == 5
    assert parse_hex("h", "0xABcd") == b"\xab\xcd"
    assert parse_address("a", "02" * 20) == b"\x02" * 20
    assert parse_address("a", format_address(b"\x03" * 20)) == b"\x03" * 20
    for call in [lambda: parse_int("size", "1e3"), lambda: parse_int("size", 1.5),
                 lambda: parse_int("size", 0, minimum=1), lambda: parse_hex("hash", "xyz"),
                 lambda: parse_base64("tx", "a" * 100, max_bytes=10), lambda: parse_base64("tx", "@@", 10),
                 lambda: parse_address("address", "clr1qqqq")]:
        with pytest.raises(RPCError) as info:
            call()
        assert info.value.code == errors.INVALID_PARAMS
    with pytest.raises(RPCError) as info:
        parse_int("size", "abc")
    assert "size" in info.value.data


def test_query_language():
    query = parse_query("tm.event = 'Tx' AND tx.height=5 and tx.account='clr1x'")
    assert [(c.key, c.op, c.operand) for c in query.conditions] == [
        ("tm.event", "=", "Tx"), ("tx.height", "=", 5), ("tx.account", "=", "clr1x")]
    assert query.matches({"tm.event": ["Tx"], "tx.height": ["5"], "tx.account": ["clr1y", "clr1x"]})
    assert not query.matches({"tm.event": ["Tx"], "tx.height": ["6"], "tx.account": ["clr1x"]})
    for bad in ["", "tm.event", "tm.event='x' OR a='b'", "a=b", "x" * 600, " AND ".join(["a='b'"] * 9)]:
        with pytest.raises(QueryError):
            parse_query(bad)


async def test_serve_entry_point_binds_host_port(nursery):
    port = await nursery.start(serve, FakeNode(), "127.0.0.1:0")
    async with AsyncClient(f"http://127.0.0.1:{port}") as client:
        assert await client.call("health") == {}
    with pytest.raises(ValueError):
        await serve(FakeNode(), "no-port")


def test_a_refused_fill_reaches_fill_rejected_and_account_subscribers() -> None:
    from rpc.events import clearing_message

    maker, taker = b"\x01" * 20, b"\x02" * 20
    event = {"type": "fill_rejected", "attrs": {"index": 3, "code": 30, "log": "order 7 has only 0 left",
                                                "maker": maker, "maker_order": 7, "taker": taker, "taker_order": 8}}
    message = clearing_message(12, event, b"\xaa" * 32)
    assert parse_query("tm.event='FillRejected'").matches(message.keys)
    assert parse_query(f"tm.event='Clearing' AND clearing.account='{format_address(taker)}'").matches(message.keys)
    assert not parse_query("tm.event='Trade'").matches(message.keys)
    assert message.data["type"] == "clearchain/event/FillRejected"
