"""RPC in front of the real clearing application (DevNode): codes, events, queries, proofs."""

from __future__ import annotations

import base64
import json
import time

import pytest
import trio

from primitives import codec
from primitives.crypto import PrivateKey, Signer, format_address
from primitives.hashing import sha256
from rpc import errors
from client import AsyncClient as TypedClient
from rpc.client import AsyncClient, RPCClientError, WebSocket
from localnet.demo import check_invariants, demo_names, demo_signer
from localnet.dev_node import DevNode, dev_genesis
from rpc.server import RPCServer
from state import builders
from state.codes import Code
from state.store import decode_proof, verify_proof

VALIDATOR = PrivateKey(b"\x31" * 32)


@pytest.fixture
async def chain(nursery):
    node = DevNode(dev_genesis(VALIDATOR, int(time.time() * 1000) - 1000), VALIDATOR)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    client = AsyncClient(f"http://127.0.0.1:{port}")
    node.make_block()
    yield node, client, port
    await client.aclose()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_transfer_commit_and_lookup(chain):
    node, client, _ = chain
    alice, bob = demo_signer("venue"), PrivateKey(b"\x32" * 32)
    tx = builders.build_transfer_tx(alice, node.genesis_doc.chain_id, bob.address, "USDC", 5_000_000, fee=1000, expiry=50)
    assert (await client.broadcast_tx_sync(tx))["code"] == 0
    node.make_block()
    record = await client.call("tx", hash=sha256(tx).hex())
    assert record["tx_result"]["code"] == 0
    assert record["tx_result"]["events"][-1]["type"] == "transfer"
    assert (await client.call("account", address=format_address(bob.address)))["quote"] == "5000000"


async def test_rejections_carry_app_codes(chain):
    node, client, _ = chain
    chain_id = node.genesis_doc.chain_id
    venue = demo_signer("venue")
    good = builders.build_transfer_tx(venue, chain_id, b"\x01" * 20, "USDC", 1, fee=1000, expiry=50)
    envelope = codec.decode(good)
    envelope["sig"] = bytes([envelope["sig"][0] ^ 1]) + envelope["sig"][1:]  # corrupt the signature
    assert (await client.broadcast_tx_sync(codec.encode(envelope)))["code"] == int(Code.BAD_SIGNATURE)
    wrong_chain = builders.build_transfer_tx(venue, "other", b"\x01" * 20, "USDC", 1, fee=1000, expiry=50)
    assert (await client.broadcast_tx_sync(wrong_chain))["code"] == int(Code.WRONG_CHAIN)
    cheap = builders.build_transfer_tx(venue, chain_id, b"\x01" * 20, "USDC", 1, fee=1, expiry=50)
    answer = await client.broadcast_tx_sync(cheap)
    assert answer["code"] == int(Code.FEE_TOO_LOW) and "minimum" in answer["log"]
    assert (await client.broadcast_tx_sync(good))["code"] == 0
    node.make_block()
    replay = await client.broadcast_tx_sync(good)
    assert replay["code"] == int(Code.DUPLICATE_TX)
    with pytest.raises(RPCClientError) as info:
        await client.call("broadcast_tx_sync", tx="not base64!")
    assert info.value.code == errors.INVALID_PARAMS
    assert (await client.call("health")) == {}


async def test_clearing_queries_against_the_app(chain):
    node, client, _ = chain
    long0 = format_address(demo_signer("long-0").address)
    markets = await client.call("markets")
    assert [m["id"] for m in markets][:1] == ["BTC-PERP"]
    assert (await client.call("market", market="BTC-PERP"))["oracle_price"] == "500000"
    assert (await client.call("prices"))["BTC-PERP"]["price"] == "500000"
    assert (await client.call("insurance_fund"))["insurance_fund"] == str(3_000 * 10**6)
    health = await client.call("account_health", address=long0)
    assert health["equity"] == str(20_000 * 10**6) and health["liquidatable"] is False
    ok = await client.call("check_margin", address=long0, market="BTC-PERP", side="buy", size=100_000)
    assert ok["allowed"] is True
    too_big = await client.call("check_margin", address=long0, market="BTC-PERP", side="buy", size=10_000_000)
    assert too_big["allowed"] is False and too_big["reason"] == "insufficient margin"
    assert (await client.call("liquidations"))["total"] == "0"
    with pytest.raises(RPCClientError) as info:
        await client.call("market", market="NOPE")
    assert info.value.code == errors.NOT_FOUND


async def test_clearing_answers_say_how_to_show_their_integers(chain):
    """genesis.json: USDC 6 places, BTC 8, ETH 9; BTC-PERP size_exponent -5, price_exponent -1.
    Integers stay decimal strings in the JSON; the typed client reads them as ints."""
    node, client, port = chain
    long0 = format_address(demo_signer("long-0").address)
    btc = (await client.call("market", market="BTC-PERP"))
    assert (btc["size_decimals"], btc["price_decimals"], btc["quote_decimals"], btc["quote_asset"]) == \
        ("5", "1", "6", "USDC")
    assert (await client.call("prices"))["BTC-PERP"]["price_decimals"] == "1"
    fund = await client.call("insurance_fund")
    assert fund["decimals"] == {"USDC": "6", "BTC": "8", "ETH": "9"} and fund["quote_asset"] == "USDC"
    account = await client.call("account", address=long0)
    assert account["decimals"] == fund["decimals"] and account["health"]["quote_decimals"] == "6"
    typed = TypedClient(f"http://127.0.0.1:{port}")
    try:
        market = await typed.market("BTC-PERP")
        assert (market.size_decimals, market.price_decimals, market.quote_decimals) == (5, 1, 6)
        assert (await typed.insurance_fund()).decimals == {"USDC": 6, "BTC": 8, "ETH": 9}
        health = await typed.account_health(long0)
        assert (health.quote_asset, health.quote_decimals) == ("USDC", 6)
    finally:
        await typed.aclose()


async def test_query_proof_verifies_against_app_hash(chain):
    node, client, _ = chain
    key = b"g/"
    for candidate, _value in node.store.iterate(b"", None):
        key = candidate
        break
    answer = (await client.call("query", path="/store", data=key.hex(), prove=True))["response"]
    value = base64.b64decode(answer["value"])
    assert base64.b64decode(answer["proofOps"]["ops"][0]["key"]) == key
    proof = decode_proof(base64.b64decode(answer["proofOps"]["ops"][0]["data"]))
    root = node.app.app_hash
    assert verify_proof(root, key, value, proof)
    assert not verify_proof(root, key, value + b"x", proof)


async def test_liquidation_events_over_websocket(chain):
    """Build a leveraged long, crash the oracle, and receive the waterfall over /websocket."""
    node, client, port = chain
    chain_id = node.genesis_doc.chain_id
    long0, short0, venue = demo_signer("long-0"), demo_signer("short-0"), demo_signer("venue")
    feeder = Signer(VALIDATOR)
    async with await WebSocket.connect("127.0.0.1", port) as ws:
        for query in ["tm.event='NewBlock'", "tm.event='Liquidation'"]:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": query, "method": "subscribe", "params": {"query": query}}))
            assert json.loads(await ws.receive())["result"] == {}
        bid = builders.build_order(long0, chain_id, market="BTC-PERP", side="buy", size=500_000, price=500_000,
                                   order_id=1, expiry=100)
        ask = builders.build_order(short0, chain_id, market="BTC-PERP", side="sell", size=500_000, price=500_000,
                                   order_id=1, expiry=100)
        trade = builders.build_trade_tx(venue, chain_id, bid, ask, 500_000, 500_000, fee=1000, expiry=50)
        assert (await client.broadcast_tx_sync(trade))["code"] == 0
        node.make_block()
        price = 500_000
        for _ in range(8):  # walk down 5% per block: 10x leverage is gone well before 40%
            price = price * 95 // 100 // 10 * 10
            oracle = builders.build_oracle_tx(feeder, chain_id, {"BTC-PERP": price}, fee=1000, expiry=60)
            assert (await client.broadcast_tx_sync(oracle))["code"] == 0
            node.make_block()
        kinds = []
        with trio.fail_after(5):
            while (text := await ws.receive()) is not None:
                message = json.loads(text)
                if message["id"] == "tm.event='Liquidation'":
                    kinds.append(message["result"]["data"]["value"]["event"]["type"])
                    if kinds[-1] == "liquidation_done":
                        break
                else:
                    assert message["result"]["data"]["type"] == "tendermint/event/NewBlock"
        assert kinds[0] == "liquidation" and kinds[-1] == "liquidation_done"
    liquidations = await client.call("liquidations")
    assert int(liquidations["total"]) >= 2
    assert liquidations["liquidations"][0]["type"] == "liquidation"
    addresses = [demo_signer(n).address for n in demo_names()] + [VALIDATOR.address]
    async with TypedClient(client.url) as typed:
        assert await check_invariants(typed, addresses) == []
        missing_short = [a for a in addresses if a != short0.address]  # the check must notice a gap
        assert await check_invariants(typed, missing_short) != []


async def test_old_heights(chain):
    node, client, _ = chain
    node.make_block()
    with pytest.raises(RPCClientError) as info:
        await client.call("markets", height=1)
    assert info.value.code == errors.UNAVAILABLE and "latest" in info.value.data
    key = next(iter(node.store.iterate(b"", None)))[0]
    old = (await client.call("query", data=key.hex(), height=1, prove=True))["response"]
    assert old["height"] == "1" and old["code"] == 0
    root = node.store.root_at(1)
    assert verify_proof(root, key, base64.b64decode(old["value"]),
                        decode_proof(base64.b64decode(old["proofOps"]["ops"][0]["data"])))
    missing = (await client.call("query", data=key.hex(), height=99))["response"]
    assert missing["code"] == 2 and missing["log"]


async def test_accounts_at_risk_pages_the_liquidation_index(chain):
    """Two leveraged longs against a short: the 10x long first, both exact; bounded pages."""
    node, client, _ = chain
    chain_id = node.genesis_doc.chain_id
    venue = demo_signer("venue")
    for oid, (name, size) in enumerate([("long-0", 400_000), ("long-1", 100_000)], start=1):
        bid = builders.build_order(demo_signer(name), chain_id, market="BTC-PERP", side="buy", size=size,
                                   price=500_000, order_id=oid, expiry=100)
        ask = builders.build_order(demo_signer("short-0"), chain_id, market="BTC-PERP", side="sell", size=size,
                                   price=500_000, order_id=oid, expiry=100)
        trade = builders.build_trade_tx(venue, chain_id, bid, ask, size, 500_000, fee=1000, expiry=50)
        assert (await client.broadcast_tx_sync(trade))["code"] == 0
    node.make_block()
    node.make_block()
    page = await client.call("accounts_at_risk", per_page=2)
    assert page["index_ready"] is True and page["page"] == "1" and page["per_page"] == "2"
    assert [a["address"] for a in page["accounts"]] == [
        format_address(demo_signer("long-0").address), format_address(demo_signer("long-1").address)]
    for item in page["accounts"]:  # the same figures account_health gives, as decimal strings
        health = await client.call("account_health", address=item["address"])
        assert item["equity"] == health["equity"] and item["margin_ratio_ppm"] == health["margin_ratio_ppm"]
    second = await client.call("accounts_at_risk", page=2, per_page=2)
    assert [a["address"] for a in second["accounts"]] == [format_address(demo_signer("short-0").address)]
    capped = await client.call("accounts_at_risk", per_page=10_000)
    assert capped["per_page"] == "100"  # max_per_page, never an unbounded list
    for bad in [{"page": 11, "per_page": 100}, {"page": 0}, {"per_page": -1}, {"page": "x"}]:
        with pytest.raises(RPCClientError) as info:
            await client.call("accounts_at_risk", **bad)
        assert info.value.code == errors.INVALID_PARAMS, bad


async def test_assets_carry_the_genesis_symbols_and_decimals(chain):
    node, client, _ = chain
    answer = await client.call("assets")
    app_state = node.genesis_doc.app_state
    assert answer["quote"] == {"symbol": "USDC", "decimals": "6"} == {
        "symbol": app_state.quote.symbol, "decimals": str(app_state.quote.decimals)}
    assert [(c["symbol"], c["decimals"], c["price_market"]) for c in answer["collateral"]] == [
        ("BTC", "8", "BTC-PERP"), ("ETH", "9", "ETH-PERP")]  # genesis.json, as a person reads it
