"""JSON-RPC over /websocket: subscriptions, filters, limits, slow subscribers."""

from __future__ import annotations

import json

import pytest
import trio
import trio.lowlevel

from primitives.crypto import PrivateKey, format_address
from rpc import errors
from rpc.client import ConnectionFailed, RPCClientError, WebSocket
from tests.rpc.fake_node import build_fake_tx
from rpc.limits import Limits
from tests.rpc.conftest import start_served


async def open_ws(served) -> WebSocket:
    return await WebSocket.connect("127.0.0.1", served.port)


async def request(ws, method, id=1, **params):
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
    with trio.fail_after(5):
        return json.loads(await ws.receive())


async def next_message(ws):
    with trio.fail_after(5):
        return json.loads(await ws.receive())


async def test_plain_calls_and_errors_over_websocket(served):
    async with await open_ws(served) as ws:
        assert (await request(ws, "health"))["result"] == {}
        assert (await request(ws, "nope"))["error"]["code"] == errors.METHOD_NOT_FOUND
        await ws.send("{broken")
        assert (await next_message(ws))["error"]["code"] == errors.PARSE_ERROR
        await ws.send_bytes(b"\x00binary")
        assert (await next_message(ws))["error"]["code"] == errors.PARSE_ERROR
        assert (await request(ws, "status"))["result"]["node_info"]["network"] == "fake-chain"


async def test_new_block_subscription(served):
    async with await open_ws(served) as ws:
        assert (await request(ws, "subscribe", id="blocks", query="tm.event='NewBlock'"))["result"] == {}
        served.node.make_block()
        served.node.make_block()
        heights = []
        for _ in range(2):
            event = await next_message(ws)
            assert event["id"] == "blocks"
            assert event["result"]["data"]["type"] == "tendermint/event/NewBlock"
            heights.append(event["result"]["data"]["value"]["block"]["header"]["height"])
        assert heights == ["1", "2"]


async def test_tx_filters_by_account_and_type_and_liquidation_events(served):
    alice, bob = PrivateKey(b"\x0a" * 32), PrivateKey(b"\x0b" * 32)
    async with await open_ws(served) as ws:
        await request(ws, "subscribe", id=1, query=f"tm.event='Tx' AND tx.account='{format_address(bob.address)}'")
        await request(ws, "subscribe", id=2, query="tm.event='Tx' AND tx.type='trade'")
        await request(ws, "subscribe", id=3, query="tm.event='Liquidation'")
        await served.client.broadcast_tx_sync(build_fake_tx(alice, "deposit", {"amount": 1}))
        await served.client.broadcast_tx_sync(build_fake_tx(bob, "deposit", {"amount": 2}))
        await served.client.broadcast_tx_sync(
            build_fake_tx(alice, "trade", {"market": "BTC-USD", "size": 1, "counterparty": bob.address}))
        served.node.make_block([{"type": "liquidation", "attrs": {"account": bob.address, "size": 1}}])
        received = [await next_message(ws) for _ in range(4)]
        by_id: dict = {}
        for message in received:
            by_id.setdefault(message["id"], []).append(message["result"])
        assert len(by_id[1]) == 2  # bob's deposit and the trade he is part of
        assert [r["events"]["tx.type"] for r in by_id[2]] == [["trade"]]
        liquidation = by_id[3][0]["data"]
        assert liquidation["type"] == "clearchain/event/Liquidation"
        assert liquidation["value"]["event"]["attrs"]["account"] == format_address(bob.address)
        with trio.move_on_after(0.2):
            extra = await ws.receive()
            raise AssertionError(f"unexpected extra event {extra}")


async def test_unsubscribe_and_unsubscribe_all(served):
    async with await open_ws(served) as ws:
        await request(ws, "subscribe", query="tm.event='NewBlock'")
        await request(ws, "subscribe", query="tm.event='Tx'")
        assert served.node.events.subscriber_count == 2
        assert (await request(ws, "unsubscribe", query="tm.event='NewBlock'"))["result"] == {}
        assert (await request(ws, "unsubscribe", query="tm.event='NewBlock'"))["error"]["code"] == errors.NOT_FOUND
        assert served.node.events.subscriber_count == 1
        assert (await request(ws, "unsubscribe_all"))["result"] == {}
        assert served.node.events.subscriber_count == 0
        served.node.make_block()
        with trio.move_on_after(0.2):
            raise AssertionError(f"event after unsubscribe: {await ws.receive()}")


async def test_subscription_errors_and_limit(served):
    async with await open_ws(served) as ws:
        assert (await request(ws, "subscribe", query="tm.event=NewBlock"))["error"]["code"] == errors.INVALID_PARAMS
        assert (await request(ws, "subscribe", query=""))["error"]["code"] == errors.INVALID_PARAMS
        assert (await request(ws, "subscribe"))["error"]["code"] == errors.INVALID_PARAMS
        for i in range(3):
            assert (await request(ws, "subscribe", query=f"tm.event='Tx' AND tx.height={i}"))["result"] == {}
        again = await request(ws, "subscribe", query="tm.event='Tx' AND tx.height=0")
        assert again["error"]["code"] == errors.INVALID_PARAMS and "already" in again["error"]["data"]
        over = await request(ws, "subscribe", query="tm.event='NewBlock'")
        assert over["error"]["code"] == errors.LIMIT_EXCEEDED and "limit of 3" in over["error"]["data"]
    await trio.sleep(0.05)
    assert served.node.events.subscriber_count == 0  # closing the socket dropped them all


async def test_slow_subscriber_is_disconnected_and_node_never_waits(served):
    async with await open_ws(served) as ws:
        await request(ws, "subscribe", id="s", query="tm.event='NewBlock'")
        # the client reads nothing while many blocks are published: publish must not block
        with trio.fail_after(2):
            for _ in range(200):
                served.node.make_block()
                await trio.lowlevel.checkpoint()
        messages = []
        with trio.fail_after(5):
            while (text := await ws.receive()) is not None:
                messages.append(json.loads(text))
        assert ws.close_code == 1008
        assert "error" in messages[-1]
        assert messages[-1]["error"]["code"] == errors.LIMIT_EXCEEDED
        assert "too slow" in messages[-1]["error"]["data"]
    assert served.node.events.subscriber_count == 0


async def test_websocket_message_size_limit(nursery):
    served = await start_served(nursery, Limits(max_body_bytes=1000))
    async with await open_ws(served) as ws:
        await ws.send("x" * 5000)
        with trio.fail_after(5):
            assert json.loads(await ws.receive())["error"]["code"] == errors.LIMIT_EXCEEDED
            assert await ws.receive() is None
        assert ws.close_code == 1009 and "larger than 1000" in ws.close_reason
    assert await served.client.call("health") == {}
    await served.client.aclose()


async def test_async_client_subscribe(served):
    async with served.client.subscribe("tm.event='NewBlock'") as events:
        served.node.make_block()
        with trio.fail_after(5):
            event = await events.receive()
        assert event["data"]["value"]["block"]["header"]["height"] == "1"


async def test_async_client_subscribe_reports_slow_disconnect(served):
    async with served.client.subscribe("tm.event='NewBlock'", queue=1) as events:
        for _ in range(100):  # neither the client's pump nor the server queue keeps up
            served.node.make_block()
            await trio.lowlevel.checkpoint()
        received = []
        with trio.fail_after(5):
            async for item in events:
                received.append(item)
        assert isinstance(received[-1], RPCClientError)
        assert received[-1].code == errors.LIMIT_EXCEEDED


async def test_sync_client_subscribe(served):
    from rpc.client import Client

    def listen() -> list:
        with Client(served.url) as client:
            events = client.subscribe("tm.event='NewBlock'", timeout=5)
            got = [next(events), next(events)]
            events.close()
            return got

    async with trio.open_nursery() as nursery:
        async def blocks() -> None:
            while True:
                await trio.sleep(0.05)
                served.node.make_block()

        nursery.start_soon(blocks)
        got = await trio.to_thread.run_sync(listen)
        nursery.cancel_scope.cancel()
    assert [int(e["data"]["value"]["block"]["header"]["height"]) for e in got][1] > 1


async def test_websocket_outlives_the_http_request_deadline(served, autojump_clock):
    """A subscription is long-lived: the per-request deadline must not close it."""
    async with await open_ws(served) as ws:
        await request(ws, "subscribe", query="tm.event='NewBlock'")
        with trio.move_on_after(300):  # virtual time: far beyond header + request timeouts,
            assert await ws.receive() is None  # reading (so answering the server's pings)
        assert ws.close_code is None
        served.node.make_block()
        message = await next_message(ws)
        assert message["result"]["data"]["value"]["block"]["header"]["height"] == "1"


async def unread_websocket(port: int, query: str = "tm.event='NewBlock'") -> trio.SocketStream:
    """Upgrade, subscribe, and never read again (nor answer the server's pings)."""
    import wsproto

    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(ws.send(wsproto.events.Request(host="x", target="/websocket")))
    data = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
    assert data.startswith(b"HTTP/1.1 101"), data[:100]
    ws.receive_data(data)
    list(ws.events())
    await stream.send_all(ws.send(wsproto.events.TextMessage(data=json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"query": query}}))))
    return stream


async def test_websockets_have_their_own_pool_and_unread_ones_make_room(nursery):
    served = await start_served(nursery, Limits(max_open_connections=2, max_websocket_clients=2))
    unread = [await unread_websocket(served.port) for _ in range(2)]
    await trio.sleep(0.3)
    assert served.server.admission.open_connections == 2
    assert await served.client.call("health") == {}  # the HTTP pool is untouched
    readers = [await open_ws(served) for _ in range(2)]  # newcomers that read get in
    for ws in readers:
        assert (await request(ws, "health"))["result"] == {}
    assert served.server.admission.evictions["unread websocket"] == 2
    with pytest.raises(ConnectionFailed, match="503"):  # every session reads: refused
        await open_ws(served)
    for ws in readers:
        await ws.aclose()
    for stream in unread:
        await stream.aclose()
    await served.client.aclose()


async def test_a_websocket_that_never_answers_a_ping_is_closed(nursery):
    served = await start_served(nursery, Limits(websocket_ping_interval_ms=300, websocket_pong_timeout_ms=200))
    stream = await unread_websocket(served.port)
    async with await open_ws(served) as reader:
        with trio.fail_after(5):
            while served.server.admission.open_connections > 1:
                with trio.move_on_after(0.05):
                    await reader.receive()  # reading answers the pings
        with trio.move_on_after(1):  # several pings later the reading client is still served
            await reader.receive()
        assert (await request(reader, "health"))["result"] == {}
    await stream.aclose()
    await served.client.aclose()
