"""JSON-RPC framing, HTTP handling and limits: every malformed input gets the right error and
the server keeps serving."""

from __future__ import annotations

import json

import trio

from rpc import errors
from rpc.limits import Limits
from tests.rpc.conftest import assert_valid_reply, post, raw_http, start_served


def _error_code(reply: dict) -> int:
    assert_valid_reply(reply)
    return reply["error"]["code"]


async def test_single_request(served):
    reply = await post(served.port, {"jsonrpc": "2.0", "id": 7, "method": "health"})
    assert reply == {"jsonrpc": "2.0", "id": 7, "result": {}}


async def test_string_id_is_echoed(served):
    reply = await post(served.port, {"jsonrpc": "2.0", "id": "abc", "method": "health"})
    assert reply["id"] == "abc"


async def test_malformed_json_is_parse_error(served):
    for body in [b"{", b"not json", b'{"jsonrpc": "2.0", "id": 1,}', b"\xff\xfe", b"NaN", b""]:
        reply = await post(served.port, body)
        assert _error_code(reply) == errors.PARSE_ERROR, body
        assert reply["id"] is None
        assert reply["error"]["data"]


async def test_invalid_requests(served):
    cases = [
        ("[1]", None),
        ('"a string"', None),
        ('{"id": 1, "method": "health"}', "jsonrpc"),
        ('{"jsonrpc": "1.0", "id": 1, "method": "health"}', "jsonrpc"),
        ('{"jsonrpc": "2.0", "id": 1}', "method is missing"),
        ('{"jsonrpc": "2.0", "id": 1, "method": 5}', "method must be a string"),
        ('{"jsonrpc": "2.0", "id": 1, "method": "block", "params": "height=1"}', "object or an array"),
        ('{"jsonrpc": "2.0", "id": {"x": 1}, "method": "health"}', "id must be"),
        ("[]", "empty batch"),
    ]
    for body, detail in cases:
        reply = await post(served.port, body)
        if isinstance(reply, list):
            reply = reply[0]
        assert _error_code(reply) == errors.INVALID_REQUEST, body
        if detail:
            assert detail in reply["error"]["data"], (body, reply)


async def test_unknown_method(served):
    reply = await post(served.port, {"jsonrpc": "2.0", "id": 1, "method": "no_such_method"})
    assert _error_code(reply) == errors.METHOD_NOT_FOUND
    assert "no_such_method" in reply["error"]["data"]


async def test_wrong_param_types_are_invalid_params(served):
    cases = [
        ("block", {"height": "abc"}, "height"),
        ("block", {"height": -1}, "height"),
        ("block", {"height": True}, "boolean"),
        ("block", {"heigth": 1}, "unknown param"),
        ("block", [1, 2, 3], "at most"),
        ("tx", {"hash": "zz"}, "hex"),
        ("tx", {"hash": "00"}, "32 bytes"),
        ("tx", {}, "missing required param 'hash'"),
        ("account", {"address": "clr1notanaddress"}, "address"),
        ("account", {"address": 12}, "string"),
        ("check_margin", {"address": "00" * 20, "market": "BTC-USD", "side": "up", "size": 1}, "side"),
        ("check_margin", {"address": "00" * 20, "market": "BTC-USD", "side": "buy", "size": 0}, "size"),
        ("broadcast_tx_sync", {"tx": "%%%not base64"}, "base64"),
        ("broadcast_tx_sync", {"tx": 5}, "base64"),
        ("broadcast_tx_sync", {"tx": ""}, "empty"),
        ("tx", {"hash": "00" * 32, "prove": "maybe"}, "boolean"),
    ]
    for method, params, detail in cases:
        reply = await post(served.port, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        assert _error_code(reply) == errors.INVALID_PARAMS, (method, params, reply)
        assert detail in reply["error"]["data"], (method, params, reply)


async def test_positional_params(served):
    served.node.make_block()
    reply = await post(served.port, {"jsonrpc": "2.0", "id": 1, "method": "block", "params": [1]})
    assert reply["result"]["block"]["header"]["height"] == "1"


async def test_batch_mixes_results_errors_and_notifications(served):
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "health"},
        {"jsonrpc": "2.0", "method": "health"},  # notification: no reply
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        {"jsonrpc": "2.0", "method": "nope"},  # failing notification: still no reply
        5,
    ]
    replies = await post(served.port, batch)
    assert [r["id"] for r in replies] == [1, 2, None]
    for reply in replies:
        assert_valid_reply(reply)
    assert "result" in replies[0] and replies[1]["error"]["code"] == errors.METHOD_NOT_FOUND
    assert replies[2]["error"]["code"] == errors.INVALID_REQUEST


async def test_notifications_only_get_no_body(served):
    status, body = await raw_http(served.port, "POST", "/", json.dumps(
        [{"jsonrpc": "2.0", "method": "health"}, {"jsonrpc": "2.0", "method": "status"}]).encode())
    assert (status, body) == (204, b"")
    status, body = await raw_http(served.port, "POST", "/", b'{"jsonrpc": "2.0", "method": "health"}')
    assert (status, body) == (204, b"")


async def test_batch_limit(served):
    batch = [{"jsonrpc": "2.0", "id": i, "method": "health"} for i in range(11)]
    reply = await post(served.port, batch)
    assert _error_code(reply) == errors.LIMIT_EXCEEDED
    assert "limit of 10" in reply["error"]["data"]


async def test_oversized_body_rejected_with_413(served):
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "health", "pad": "' + b"x" * 70_000 + b'"}'
    status, data = await raw_http(served.port, "POST", "/", body)
    assert status == 413
    assert _error_code(json.loads(data)) == errors.LIMIT_EXCEEDED
    assert (await post(served.port, {"jsonrpc": "2.0", "id": 1, "method": "health"}))["result"] == {}


async def test_oversized_chunked_body_rejected(served):
    stream = await trio.open_tcp_stream("127.0.0.1", served.port)
    async with stream:
        await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 30_000
        for _ in range(3):
            await stream.send_all(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        with trio.fail_after(5):
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(4096)
        assert data.startswith(b"HTTP/1.1 413")


async def test_get_lists_methods_with_params(served):
    status, data = await raw_http(served.port, "GET", "/")
    assert status == 200
    listing = {m["name"]: m for m in json.loads(data)["result"]["methods"]}
    for name in ["status", "broadcast_tx_commit", "liquidations", "check_margin", "subscribe", "query"]:
        assert name in listing
    assert [p["name"] for p in listing["block"]["params"]] == ["height"]
    assert listing["tx"]["params"][0] == {"name": "hash", "required": True, "description": "32 bytes, hex or base64"}


async def test_uri_style_get(served):
    served.node.make_block()
    status, data = await raw_http(served.port, "GET", "/block?height=1")
    assert json.loads(data)["result"]["block"]["header"]["height"] == "1"
    status, data = await raw_http(served.port, "GET", '/market?market="BTC-USD"')
    assert json.loads(data)["result"]["id"] == "BTC-USD"


async def test_wrong_http_method_and_path(served):
    status, data = await raw_http(served.port, "PUT", "/")
    assert status == 405 and _error_code(json.loads(data)) == errors.INVALID_REQUEST
    status, data = await raw_http(served.port, "POST", "/elsewhere", b"{}")
    assert status == 404 and _error_code(json.loads(data)) == errors.METHOD_NOT_FOUND


async def test_keep_alive_serves_many_requests_on_one_connection(served):
    for i in range(20):
        assert await served.client.call("health") == {}
    assert len(served.client._idle) == 1


async def test_garbage_and_dropped_connections_do_not_hurt_the_server(served):
    for garbage in [b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab",
                    b"A" * 20_000]:
        stream = await trio.open_tcp_stream("127.0.0.1", served.port)
        await stream.send_all(garbage)
        await stream.aclose()
    stream = await trio.open_tcp_stream("127.0.0.1", served.port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await stream.aclose()  # leaves before the answer
    await trio.sleep(0.05)
    assert await served.client.call("health") == {}


async def test_internal_error_is_reported_and_server_continues(served):
    served.node.fail_next_status = True
    reply = await post(served.port, {"jsonrpc": "2.0", "id": 1, "method": "status"})
    assert _error_code(reply) == errors.INTERNAL_ERROR
    assert "simulated node failure" in reply["error"]["data"]
    assert (await served.client.call("status"))["node_info"]["network"] == "fake-chain"


async def _closed_by_server(stream: trio.SocketStream, within: float) -> bool:
    """True if the server closes ``stream`` (EOF or reset) within ``within`` seconds."""
    with trio.move_on_after(within):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


async def _keep_alive(port: int) -> trio.SocketStream:
    """A connection that made one request and now sits idle between requests."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(10):
        data = b""
        while b'"result":{}' not in data:
            data += await stream.receive_some(65536)
    return stream


async def test_a_full_server_evicts_the_longest_idle_connection_for_a_newcomer(nursery):
    served = await start_served(nursery, Limits(max_open_connections=2))
    oldest = await trio.open_tcp_stream("127.0.0.1", served.port)  # sent nothing yet
    await trio.sleep(0.05)
    idle = await _keep_alive(served.port)
    await trio.sleep(0.2)
    assert await served.client.call("health") == {}  # a newcomer gets in
    assert await _closed_by_server(oldest, 5)
    assert not await _closed_by_server(idle, 0.2)
    assert served.server.admission.evictions["idle"] == 1
    for stream in (oldest, idle):
        await stream.aclose()
    await served.client.aclose()


async def test_a_request_dribbled_below_the_minimum_rate_goes_before_an_idle_keep_alive(nursery):
    served = await start_served(nursery, Limits(max_open_connections=2))
    idle = await _keep_alive(served.port)
    slow = await trio.open_tcp_stream("127.0.0.1", served.port)
    for byte in b"POST / HT":
        await slow.send_all(bytes([byte]))
        await trio.sleep(0.03)
    assert await served.client.call("health") == {}
    assert await _closed_by_server(slow, 5)
    assert not await _closed_by_server(idle, 0.2)
    assert served.server.admission.evictions["slow request"] == 1
    for stream in (slow, idle):
        await stream.aclose()
    await served.client.aclose()


async def test_a_full_server_of_busy_requests_refuses_with_503(nursery):
    served = await start_served(nursery, Limits(max_open_connections=2))
    release = trio.Event()
    real_status = served.node.status

    async def slow_status():
        await release.wait()
        return await real_status()

    served.node.status = slow_status
    for _ in range(2):
        nursery.start_soon(post, served.port, {"jsonrpc": "2.0", "id": 1, "method": "status"})
    await trio.sleep(0.3)
    status, data = await raw_http(served.port, "GET", "/")
    assert status == 503
    assert "too many open connections" in json.loads(data)["error"]["data"]
    release.set()
    await trio.sleep(0.1)
    assert await served.client.call("health") == {}
    await served.client.aclose()


async def test_idle_connection_is_closed_after_header_timeout(nursery):
    served = await start_served(nursery, Limits(header_timeout_ms=200))
    stream = await trio.open_tcp_stream("127.0.0.1", served.port)
    async with stream:
        await stream.send_all(b"POST / HTTP/1.1\r\n")  # and never finishes: slowloris
        with trio.fail_after(3):
            assert await stream.receive_some(100) == b""
    await trio.sleep(0.05)
    assert served.server.open_connections == 0
    await served.client.aclose()


async def test_every_request_on_a_connection_gets_the_header_deadline(nursery):
    served = await start_served(nursery, Limits(header_timeout_ms=300, idle_timeout_ms=30_000))
    stream = await _keep_alive(served.port)
    async with stream:
        await stream.send_all(b"POST / HTTP/1.1\r\n")  # the second request never finishes
        assert await _closed_by_server(stream, 3)


async def test_a_body_dribbled_below_the_minimum_rate_is_closed(nursery):
    served = await start_served(nursery, Limits(min_request_rate=1000))
    stream = await trio.open_tcp_stream("127.0.0.1", served.port)
    async with stream:
        await stream.send_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        started = trio.current_time()
        with trio.move_on_after(10):
            try:
                while True:
                    await stream.send_all(b" ")
                    await trio.sleep(0.1)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        assert await _closed_by_server(stream, 1)
        assert trio.current_time() - started < 6  # 2 s grace + what 20 bytes buy at 1,000 B/s


async def test_unserialisable_result_is_an_internal_error(served):
    async def broken_genesis():
        return {"app_state": {"x": object()}}

    served.node.genesis = broken_genesis
    reply = await post(served.port, [{"jsonrpc": "2.0", "id": 1, "method": "genesis"},
                                     {"jsonrpc": "2.0", "id": 2, "method": "health"}])
    assert reply[0]["error"]["code"] == errors.INTERNAL_ERROR and reply[1]["result"] == {}
