"""The typed client against the real clearing application (DevNode behind the RPC server):
every tx kind built, signed, submitted and committed, every query method typed, and errors
raised as their own types. Expectations are the chain's rules (balances, codes), not the
client's helpers."""

from __future__ import annotations

import time

import pytest
import trio

from client import (
    AsyncClient,
    Backstop,
    Cancel,
    Client,
    Deposit,
    Fills,
    OracleReport,
    Trade,
    Transfer,
    TxFailed,
    Vote,
    Withdraw,
    sign_order,
)
from client import errors
from client import results as r
from client.api import accepted
from localnet.demo import demo_signer
from localnet.dev_node import DevNode, dev_genesis
from primitives.crypto import PrivateKey, Signer, format_address
from primitives.hashing import sha256
from rpc.server import RPCServer
from state.builders import min_fee_proposal
from state.codes import Code

VALIDATOR = PrivateKey(b"\x31" * 32)  # the one validator: also the feeder and bridge operator
BOB = Signer(PrivateKey(b"\x32" * 32))


@pytest.fixture
async def chain(nursery):
    node = DevNode(dev_genesis(VALIDATOR, int(time.time() * 1000) - 1000), VALIDATOR)
    port = await nursery.start(RPCServer(node).serve, "127.0.0.1", 0)
    node.make_block()
    async with AsyncClient(f"http://127.0.0.1:{port}") as client:
        yield node, client


async def _commit(node: DevNode, client: AsyncClient, signer: Signer, message, **kw) -> r.TxInfo:
    sent = await client.send(signer, message, mode="sync", **kw)
    assert isinstance(sent, r.Broadcast) and sent.code == 0
    node.make_block()
    info = await client.tx(sent.hash)
    assert info.result.ok, info.result.log
    return info


async def test_every_tx_kind_is_built_signed_and_committed(chain):
    node, client = chain
    chain_id = node.genesis_doc.chain_id
    venue, validator = demo_signer("venue"), Signer(VALIDATOR)
    long0, short0, long1, short1 = (demo_signer(n) for n in ("long-0", "short-0", "long-1", "short-1"))

    info = await _commit(node, client, venue, Transfer(to=BOB.address, asset="USDC", amount=5_000_000))
    assert [e.type for e in info.result.events] == ["message", "transfer"]  # message: CometBFT's sender event
    assert (await client.account(BOB.address)).quote == 5_000_000

    await _commit(node, client, validator, Deposit(external_id="eth:0xabc", account=BOB.address, asset="USDC",
                                                   amount=7_000_000))
    assert (await client.account(BOB.address)).quote == 12_000_000

    await _commit(node, client, BOB, Withdraw(asset="USDC", amount=2_000_000, destination="0xdef"))
    fee = (await client.chain()).min_tx_fee
    assert (await client.account(BOB.address)).quote == 10_000_000 - fee  # BOB paid one fee

    expiry = node.app.last_height + 50
    bid = sign_order(long0, chain_id, market="BTC-PERP", side="buy", size=1000, price=500_000, order_id=1,
                     expiry=expiry)
    ask = sign_order(short0, chain_id, market="BTC-PERP", side="sell", size=1000, price=500_000, order_id=1,
                     expiry=expiry)
    info = await _commit(node, client, venue, Trade(maker=bid, taker=ask, size=1000, price=500_000))
    assert "trade" in [e.type for e in info.result.events]
    assert [(p.market, p.size) for p in await client.positions(long0.address)] == [("BTC-PERP", 1000)]

    pairs = []
    for order_id in (2, 3):
        pairs.append((
            sign_order(long1, chain_id, market="ETH-PERP", side="buy", size=100, price=300_000,
                       order_id=order_id, expiry=expiry),
            sign_order(short1, chain_id, market="ETH-PERP", side="sell", size=100, price=300_000,
                       order_id=order_id, expiry=expiry), 100, 300_000))
    info = await _commit(node, client, venue, Fills(fills=pairs))
    assert [e.type for e in info.result.events].count("trade") == 2
    assert [(p.market, p.size) for p in await client.positions(short1.address)] == [("ETH-PERP", -200)]

    info = await _commit(node, client, long0, Cancel(order_id=7, order_expiry=expiry))
    await _commit(node, client, validator, OracleReport(prices={"BTC-PERP": 510_000}))
    node.make_block()  # a report sets the price of the next block
    assert (await client.prices())["BTC-PERP"].price == 510_000
    await _commit(node, client, demo_signer("backstop"), Backstop(market="BTC-PERP", max_size=10_000,
                                                                  discount_ppm=5_000))
    await _commit(node, client, validator, Vote(proposal=min_fee_proposal("cheaper", 500)))
    node.make_block()
    assert (await client.account(BOB.address)).replay.min_tx_fee == 500  # the one validator's vote passed


async def test_a_tx_refused_at_admission_raises_tx_failed_with_its_code(chain):
    node, client = chain
    with pytest.raises(TxFailed) as refused:
        await client.send(demo_signer("venue"), Transfer(to=BOB.address, asset="USDC", amount=1), fee=1)
    assert refused.value.stage == "check_tx" and refused.value.code == Code.FEE_TOO_LOW
    assert refused.value.code_name == "FEE_TOO_LOW" and refused.value.height == 0
    assert node.pending == {}  # nothing entered the mempool


def test_a_tx_refused_in_its_block_raises_tx_failed_with_the_height():
    answer = r.Committed.from_json({
        "check_tx": {"code": 0}, "tx_result": {"code": int(Code.INSUFFICIENT_BALANCE), "log": "short"},
        "hash": "AB" * 32, "height": "9"})
    with pytest.raises(TxFailed) as failed:
        accepted(answer)
    assert (failed.value.stage, failed.value.height, failed.value.code_name) == ("deliver", 9, "INSUFFICIENT_BALANCE")
    ok = r.Committed.from_json({"check_tx": {"code": 0}, "tx_result": {"code": 0}, "hash": "AB" * 32, "height": "9"})
    assert accepted(ok) is ok


async def test_json_rpc_errors_raise_the_type_of_their_code(chain):
    _node, client = chain
    with pytest.raises(errors.NotFound):
        await client.tx(b"\x00" * 32)
    with pytest.raises(errors.NotFound):
        await client.account(BOB.address)
    with pytest.raises(errors.NotFound):
        await client.market("NOPE-PERP")
    with pytest.raises(errors.MethodNotFound):
        await client.call("no_such_method")
    with pytest.raises(errors.InvalidParams) as bad:
        await client.check_margin(BOB.address, "BTC-PERP", "sideways", 1)
    assert "side" in bad.value.data
    assert isinstance(bad.value, errors.RPCClientError)  # callers catching the transport's type still do


async def test_every_query_method_answers_its_type_over_the_blocking_client(chain):
    node, client = chain
    venue = demo_signer("venue")
    sent = await client.send(venue, Transfer(to=BOB.address, asset="USDC", amount=1), mode="sync")
    node.make_block()
    url = client.url

    def read() -> None:
        with Client(url) as sync:
            height = node.app.last_height
            status = sync.status()
            assert (status.chain_id, status.height) == (node.genesis_doc.chain_id, height)
            assert sync.health() == {}
            assert sync.genesis().chain_id == node.genesis_doc.chain_id
            assert sync.validators().validators[0].address == VALIDATOR.address
            block = sync.block(height)
            assert block.height == height and block.txs == (node.records[sent.hash].tx,)
            assert sync.block_by_hash(block.block_id.hash).height == height
            assert [m.header.height for m in sync.blockchain(1, height).block_metas] == list(range(height, 0, -1))
            (transfer,) = [e for e in sync.block_results(height).txs_results[0].events if e.type == "transfer"]
            assert transfer.get("amount") == "1"
            assert sync.commit(height).header.app_hash == block.header.app_hash
            info = sync.tx(sent.hash)
            assert (info.height, sha256(info.tx)) == (height, sent.hash)
            assert sync.unconfirmed_txs().n_txs == 0 and sync.num_unconfirmed_txs().total_bytes == 0
            assert sync.net_info().peers == ()
            assert sync.query("/store", b"\x00").height == height
            assert sync.abci_query("/store", b"\x00").height == height
            account = sync.account(format_address(venue.address))
            assert account.address == format_address(venue.address)
            assert sync.account_health(venue.address).equity == account.health.equity
            assert sync.positions(venue.address) == ()
            assert [m.id for m in sync.markets()] == sorted(node.app.ledger.markets)
            assert sync.market("BTC-PERP").oracle_price == node.app.ledger.markets["BTC-PERP"].price
            assert set(sync.prices()) == set(node.app.ledger.markets)
            assert sync.insurance_fund().insurance_fund == node.app.ledger.globals.insurance
            assert sync.liquidations().total == 0
            assets = sync.assets()
            assert (assets.quote.symbol, assets.quote.decimals) == ("USDC", 6)
            assert all(c.symbol and c.price_market for c in assets.collateral)
            at_risk = sync.accounts_at_risk(per_page=5)
            assert at_risk.per_page == 5 and at_risk.page == 1 and len(at_risk.accounts) <= 5
            assert sync.check_margin(venue.address, "BTC-PERP", "buy", 10).allowed
            check = sync.check_tx(sync.build(venue, Transfer(to=BOB.address, asset="USDC", amount=1)))
            assert check.result.ok
            raw_tx = sync.build(venue, Transfer(to=BOB.address, asset="USDC", amount=2))
            assert sync.broadcast_tx_async(raw_tx).hash == sha256(raw_tx)

    await trio.to_thread.run_sync(read)


async def test_a_batch_answers_each_call_typed_or_with_its_own_error(chain):
    node, client = chain
    venue = demo_signer("venue")
    good = await client.build(venue, Transfer(to=BOB.address, asset="USDC", amount=1))
    cheap = await client.build(venue, Transfer(to=BOB.address, asset="USDC", amount=2), fee=1)
    from client import calls

    answers = await client.batch([calls.broadcast_tx_sync(good), calls.broadcast_tx_sync(cheap),
                                  calls.tx(b"\x00" * 32), calls.market("BTC-PERP")])
    sent, refused, missing, market = answers
    assert isinstance(sent, r.Broadcast) and sent.code == 0 and sent.hash == sha256(good)
    assert isinstance(refused, r.Broadcast) and refused.code == Code.FEE_TOO_LOW
    assert isinstance(missing, errors.NotFound)
    assert isinstance(market, r.Market) and market.id == "BTC-PERP"
    with pytest.raises(errors.LimitExceeded):  # the server's fixture limit is 20 per batch
        await client.batch([calls.health()] * 21)
