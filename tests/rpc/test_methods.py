"""Every method's normal and error path against the fake node."""

from __future__ import annotations

import base64

import pytest
import trio

from primitives.crypto import PrivateKey, format_address
from primitives.hashing import sha256
from rpc import errors
from rpc.client import AsyncClient, RPCClientError
from rpc.limits import Limits
from tests.rpc.conftest import start_served
from tests.rpc.fake_node import CODE_BAD_SIGNATURE, CODE_REPLAY, CODE_UNDECODABLE, build_fake_tx


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def rpc_error(client, method, **params) -> RPCClientError:
    with pytest.raises(RPCClientError) as info:
        await client.call(method, **params)
    return info.value


async def deposit(served, key, amount=1_000) -> bytes:
    tx = build_fake_tx(key, "deposit", {"amount": amount})
    assert (await served.client.broadcast_tx_sync(tx))["code"] == 0
    served.node.make_block()
    return tx


async def test_health_status_net_info_genesis(served):
    c = served.client
    assert await c.call("health") == {}
    served.node.make_block()
    status = await c.call("status")
    assert status["sync_info"]["latest_block_height"] == "1"
    assert status["sync_info"]["catching_up"] is False
    assert len(status["sync_info"]["latest_block_hash"]) == 64
    assert status["validator_info"]["voting_power"] == "10"
    net = await c.call("net_info")
    assert net["n_peers"] == "1" and net["listening"] is True
    assert net["persistent_peers"] == [
        {"id": "peer1", "address": "/ip4/127.0.0.1/tcp/1/p2p/peer1", "connected": True,
         "since_ms": "1000", "dials": "0", "next_dial_ms": None, "last_error": ""},
        {"id": "peer2", "address": "/ip4/127.0.0.1/tcp/2/p2p/peer2", "connected": False,
         "since_ms": "2000", "dials": "3", "next_dial_ms": "3500",
         "last_error": "ConnectionRefusedError: refused"},
    ]
    assert (await c.call("genesis"))["genesis"]["initial_height"] == "1"


async def test_validators_paging(served):
    result = await served.client.call("validators")
    assert result["total"] == "1" and len(result["validators"]) == 1
    assert (await rpc_error(served.client, "validators", page=5)).code == errors.INVALID_PARAMS


async def test_block_block_by_hash_blockchain_results_commit(served, key):
    tx = await deposit(served, key)
    served.node.make_block()
    c = served.client
    first = await c.call("block", height=1)
    assert first["block"]["data"]["txs"] == [b64(tx)]
    assert (await c.call("block"))["block"]["header"]["height"] == "2"
    same = await c.call("block_by_hash", hash=first["block_id"]["hash"].lower())
    assert same == first
    chain = await c.call("blockchain", minHeight=1, maxHeight=2)
    assert [m["header"]["height"] for m in chain["block_metas"]] == ["2", "1"]
    assert chain["block_metas"][1]["num_txs"] == "1"
    results = await c.call("block_results", height=1)
    assert results["txs_results"][0]["code"] == 0
    assert results["txs_results"][0]["events"][-1]["type"] == "deposit"
    commit = await c.call("commit", height=2)
    assert commit["signed_header"]["header"]["height"] == "2" and commit["canonical"] is True
    for method, params in [("block", {"height": 99}), ("block_by_hash", {"hash": "AB" * 32}),
                           ("block_results", {"height": 99}), ("commit", {"height": 50})]:
        assert (await rpc_error(c, method, **params)).code == errors.NOT_FOUND, method
    assert (await rpc_error(c, "blockchain", minHeight=3, maxHeight=1)).code == errors.INVALID_PARAMS


async def test_blockchain_is_capped_at_20(served):
    for _ in range(25):
        served.node.make_block()
    metas = (await served.client.call("blockchain"))["block_metas"]
    assert [m["header"]["height"] for m in metas] == [str(h) for h in range(25, 5, -1)]


async def test_broadcast_sync_and_tx_lookup(served, key):
    tx = build_fake_tx(key, "deposit", {"amount": 5})
    reply = await served.client.broadcast_tx_sync(tx)
    assert reply == {"code": 0, "data": "", "log": "", "codespace": "", "hash": sha256(tx).hex().upper()}
    assert (await served.client.call("num_unconfirmed_txs"))["n_txs"] == "1"
    assert (await served.client.call("unconfirmed_txs"))["txs"] == [b64(tx)]
    served.node.make_block()
    found = await served.client.call("tx", hash=reply["hash"])
    assert found["height"] == "1" and found["index"] == 0 and found["tx"] == b64(tx)
    assert found["tx_result"]["code"] == 0
    assert (await rpc_error(served.client, "tx", hash="00" * 32)).code == errors.NOT_FOUND


async def test_bad_signature_and_replay_get_app_codes(served, key):
    tx = build_fake_tx(key, "deposit", {"amount": 5})
    tampered = bytearray(tx)
    tampered[-1] ^= 1  # flips a bit of the signature
    bad = await served.client.broadcast_tx_sync(bytes(tampered))
    assert bad["code"] == CODE_BAD_SIGNATURE and "signature" in bad["log"]
    junk = await served.client.broadcast_tx_sync(b"\x01\x02\x03")
    assert junk["code"] == CODE_UNDECODABLE and junk["log"]
    assert (await served.client.broadcast_tx_sync(tx))["code"] == 0
    again = await served.client.broadcast_tx_sync(tx)
    assert again["code"] == CODE_REPLAY
    served.node.make_block()
    replay = await served.client.broadcast_tx_sync(tx)
    assert replay["code"] == CODE_REPLAY and "replay" in replay["log"]
    check = await served.client.call("check_tx", tx=b64(tx))
    assert check["code"] == CODE_REPLAY


async def test_broadcast_async_returns_hash(served, key):
    tx = build_fake_tx(key, "deposit", {"amount": 9})
    reply = await served.client.broadcast_tx_async(tx)
    assert reply["hash"] == sha256(tx).hex().upper() and reply["code"] == 0
    assert len(served.node.pending) == 1


async def test_check_tx_does_not_enter_mempool(served, key):
    tx = build_fake_tx(key, "deposit", {"amount": 9})
    assert (await served.client.call("check_tx", tx=b64(tx)))["code"] == 0
    assert served.node.pending == []


async def test_broadcast_tx_commit_waits_for_the_block(served, key, nursery):
    import trio

    tx = build_fake_tx(key, "deposit", {"amount": 9})

    async def produce_block_soon():
        await trio.sleep(0.1)
        served.node.make_block()

    nursery.start_soon(produce_block_soon)
    reply = await served.client.broadcast_tx_commit(tx)
    assert reply["height"] == "1" and reply["tx_result"]["code"] == 0
    assert reply["check_tx"]["code"] == 0 and reply["hash"] == sha256(tx).hex().upper()
    assert served.node.events.tx_waiters == 0


async def test_broadcast_tx_commit_timeout_returns_hash(served, key):
    tx = build_fake_tx(key, "deposit", {"amount": 9})
    error = await rpc_error(served.client, "broadcast_tx_commit", tx=b64(tx))
    assert error.code == errors.TIMEOUT
    assert error.data["hash"] == sha256(tx).hex().upper()
    assert "poll" in error.data["detail"]
    assert served.node.events.tx_waiters == 0


async def test_broadcast_tx_commit_rejected_returns_check_result(served, key):
    reply = await served.client.broadcast_tx_commit(b"\x00garbage")
    assert reply["check_tx"]["code"] == CODE_UNDECODABLE and reply["height"] == "0"


async def test_tx_too_large_is_invalid_params(served):
    error = await rpc_error(served.client, "broadcast_tx_sync", tx=b64(b"x" * 70_000))
    assert error.code in (errors.INVALID_PARAMS, errors.LIMIT_EXCEEDED)


async def test_query_with_and_without_proof(served, key):
    await deposit(served, key, 77)
    answer = (await served.client.call("query", path="/store", data=key.address.hex(), prove=True))["response"]
    assert base64.b64decode(answer["value"]) == b"77" and answer["proofOps"] is not None
    plain = (await served.client.call("query", data=key.address.hex()))["response"]
    assert plain["proofOps"] is None
    assert (await served.client.call("query", path="/nope"))["response"]["code"] == 1
    assert (await rpc_error(served.client, "query", data="xyz")).code == errors.INVALID_PARAMS


async def test_clearing_queries(served, key):
    other = PrivateKey(b"\x08" * 32)
    await deposit(served, key, 500)
    await deposit(served, other, 500)
    trade = build_fake_tx(key, "trade", {"market": "BTC-USD", "size": 3, "counterparty": other.address})
    await served.client.broadcast_tx_sync(trade)
    served.node.make_block([{"type": "liquidation", "attrs": {"account": other.address, "size": 3}}])
    c, address = served.client, format_address(key.address)
    account = await c.call("account", address=address)
    assert account["quote_balance"] == "500"
    assert await c.call("positions", address=address) == [{"market": "BTC-USD", "size": "3"}]
    assert (await c.call("markets"))[0]["id"] == "BTC-USD"
    assert (await c.call("market", market="BTC-USD"))["status"] == "active"
    assert (await c.call("prices"))["BTC-USD"]["price"] == "50000000000"
    assert (await c.call("insurance_fund"))["balance"] == "1000000"
    health = await c.call("account_health", address=address)
    assert health["equity"] == "500"
    what_if = await c.call("check_margin", address=address, market="BTC-USD", side="buy", size=1, price=10_000)
    assert what_if["passes"] is True and what_if["imr_after"] == "500"
    liqs = await c.call("liquidations", min_height=1, max_height=10)
    assert liqs["total"] == "1" and liqs["liquidations"][0]["height"] == "3"
    assert liqs["total_exact"] is True
    assert (await c.call("liquidations", min_height=4))["total"] == "0"
    page2 = await c.call("liquidations", page=2, per_page=1)
    assert page2["liquidations"] == []
    unknown = format_address(b"\x09" * 20)
    for method, params in [("account", {"address": unknown}), ("positions", {"address": unknown}),
                           ("account_health", {"address": unknown}), ("market", {"market": "DOGE-USD"}),
                           ("check_margin", {"address": unknown, "market": "BTC-USD", "side": "sell", "size": 1})]:
        assert (await rpc_error(c, method, **params)).code == errors.NOT_FOUND, method
    assert (await rpc_error(c, "liquidations", min_height=5, max_height=2)).code == errors.INVALID_PARAMS
    deep = await rpc_error(c, "liquidations", page=2_000, per_page=100)
    assert deep.code == errors.INVALID_PARAMS and "narrow" in str(deep.data)


async def test_subscribe_over_http_is_refused(served):
    error = await rpc_error(served.client, "subscribe", query="tm.event='NewBlock'")
    assert error.code == errors.METHOD_NOT_FOUND and "websocket" in error.data


async def test_integers_are_strings_but_cometbfts_number_fields(served, key):
    """CometBFT v0.38 keeps 64-bit values as decimal strings and only these as JSON numbers."""
    await deposit(served, key)
    numbers = {"code", "index", "round", "block_id_flag", "total"}

    def walk(value, key=None):
        if key == "app_state":  # the clearing genesis, JSON as written
            return
        if key not in numbers:
            assert not isinstance(value, (int, float)) or isinstance(value, bool), (key, value)
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for method in ["status", "block", "block_results", "commit", "validators", "genesis", "markets", "prices"]:
        walk(await served.client.call(method))


async def test_broadcast_tx_commit_waiters_have_their_own_bounded_pool(nursery, key):
    served = await start_served(nursery, Limits(max_open_connections=1, max_commit_waiters=1,
                                                timeout_broadcast_tx_commit_ms=5_000))
    first = build_fake_tx(key, "deposit", {"amount": 1})
    replies = []

    async def wait_for_commit():
        async with AsyncClient(served.url) as client:
            replies.append(await client.broadcast_tx_commit(first))

    nursery.start_soon(wait_for_commit)
    with trio.fail_after(5):
        while served.server.admission.waiters == 0:
            await trio.sleep(0.01)
    # the waiting connection left the one-slot HTTP pool: a newcomer gets in without evicting it
    assert await served.client.call("health") == {}
    second = build_fake_tx(key, "deposit", {"amount": 2})
    error = await rpc_error(served.client, "broadcast_tx_commit", tx=b64(second))
    assert error.code == errors.LIMIT_EXCEEDED and "broadcast_tx_sync" in error.message + str(error.data)
    assert second not in served.node.pending  # refused before it was submitted
    served.node.make_block()
    with trio.fail_after(5):
        while not replies:
            await trio.sleep(0.01)
    assert replies[0]["height"] == "1" and served.server.admission.waiters == 0
    assert sum(served.server.admission.evictions.values()) == 0
    await served.client.aclose()
