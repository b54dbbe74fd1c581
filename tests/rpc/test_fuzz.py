"""Random request bodies: the server never crashes or hangs, and every reply is valid JSON-RPC."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from primitives.crypto import PrivateKey
from localnet.dev_node import DevNode, dev_genesis
from rpc.limits import Limits
from rpc.methods import METHODS
from rpc.server import RPCServer
from tests.rpc.conftest import assert_valid_reply

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["", "0", "1", "-1", "abc", "00" * 32, "clr1qqqq", "AAAA", "latest", "%%", "BTC-PERP", "buy",
                     "clr1l9ja4qkprdl0d6qvuyfmx27aqs6qlgnjqm2ql7"]),
    st.binary(min_size=1, max_size=120).map(lambda b: __import__("base64").b64encode(b).decode()),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
param_names = st.sampled_from(sorted({p.name for m in METHODS.values() for p in m.params} | {"x"}))
requests = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2])},
    optional={
        "id": st.one_of(st.none(), st.integers(), st.text(max_size=8), st.booleans(), st.lists(st.integers(), max_size=2)),
        "method": st.one_of(st.sampled_from(sorted(METHODS)), st.text(max_size=12), st.integers()),
        "params": st.one_of(st.dictionaries(param_names, json_values, max_size=4), st.lists(json_values, max_size=4), json_scalars),
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    requests.map(lambda r: json.dumps(r).encode()),
    st.lists(requests, min_size=1, max_size=4).map(lambda r: json.dumps(r).encode()),
    requests.map(lambda r: json.dumps(r).encode()[: max(1, len(json.dumps(r)) // 2)]),  # truncated
)


@pytest.fixture(scope="module")
def server_in_thread() -> Iterator[tuple[int, DevNode]]:
    """A server on its own trio loop in a thread, so hypothesis can drive it synchronously."""
    key = PrivateKey(b"\x0c" * 32)
    node = DevNode(dev_genesis(key), key)  # the real application behind RPC
    node.make_block()
    started: dict = {}
    ready = threading.Event()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            started["port"] = await nursery.start(RPCServer(node, Limits(max_body_bytes=4096)).serve, "127.0.0.1", 0)
            started["token"] = trio.lowlevel.current_trio_token()
            started["cancel"] = nursery.cancel_scope.cancel
            ready.set()

    thread = threading.Thread(target=trio.run, args=(run,), daemon=True)
    thread.start()
    ready.wait(10)
    yield started["port"], node
    trio.from_thread.run_sync(started["cancel"], trio_token=started["token"])
    thread.join(10)


def post(port: int, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_random_bodies_get_valid_replies(server_in_thread, body):
    port, node = server_in_thread
    status, data = post(port, body)
    if status == 204:
        assert data == b""
    else:
        assert status == 200, (status, data)
        reply = json.loads(data)
        for item in reply if isinstance(reply, list) else [reply]:
            assert_valid_reply(item)
            if "error" in item:
                assert item["error"]["code"] != -32603, (body, item)  # no internal errors from input
    status, data = post(port, b'{"jsonrpc":"2.0","id":1,"method":"health"}')
    assert json.loads(data)["result"] == {}
