"""Mempool: admission, dedup, limits and eviction, reap order, update and recheck, gossip."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.hashing import sha256
from node.config import MempoolSection
from node.mempool import CODE_IN_MEMPOOL, CODE_MEMPOOL_FULL, CODE_TX_TOO_LARGE, Mempool


@dataclass
class Verdict:
    code: int
    log: str = ""
    priority: int = 0


class FakeApp:
    """Fee is the tx's first byte; txs in ``invalid`` fail; counts calls per tx."""

    def __init__(self) -> None:
        self.invalid: set[bytes] = set()
        self.calls: dict[bytes, int] = {}

    def fee_priority(self, tx: bytes) -> int | None:
        return tx[0]

    def check_tx(self, tx: bytes) -> Verdict:
        self.calls[tx] = self.calls.get(tx, 0) + 1
        if tx in self.invalid:
            return Verdict(4, "bad signature")
        return Verdict(0, "", tx[0])


def tx(fee: int, tag: int, size: int = 10) -> bytes:
    return bytes([fee]) + tag.to_bytes(4, "big") + b"." * (size - 5)


def pool(**limits: int) -> tuple[Mempool, FakeApp]:
    app = FakeApp()
    return Mempool(app, dataclasses.replace(MempoolSection(), **limits)), app


def test_admits_valid_rejects_invalid_with_app_code() -> None:
    mempool, app = pool()
    bad = tx(5, 1)
    app.invalid.add(bad)
    assert mempool.check_tx(tx(5, 0)).ok
    result = mempool.check_tx(bad)
    assert (result.code, result.log) == (4, "bad signature")
    assert len(mempool) == 1


def test_duplicates_are_not_checked_twice() -> None:
    mempool, app = pool()
    t = tx(5, 0)
    assert mempool.check_tx(t).ok
    assert mempool.check_tx(t).code == CODE_IN_MEMPOOL
    assert mempool.check_tx(t, peer="p1").code == CODE_IN_MEMPOOL
    assert app.calls[t] == 1


def test_known_txs_are_noted_without_a_check() -> None:
    mempool, app = pool()
    pending, committed, new = tx(5, 0), tx(5, 1), tx(5, 2)
    assert mempool.check_tx(pending).ok
    mempool.update([committed])
    assert mempool.note_known(pending, "p1") and mempool.note_known(committed, "p1")
    assert not mempool.note_known(new, "p1")
    assert mempool.senders(sha256(pending)) == {"p1"}  # not sent back to p1 by gossip
    assert app.calls == {pending: 1}


def test_failed_tx_leaves_cache_and_can_be_resubmitted() -> None:
    mempool, app = pool()
    t = tx(5, 0)
    app.invalid.add(t)
    assert not mempool.check_tx(t).ok
    app.invalid.clear()
    assert mempool.check_tx(t).ok


def test_committed_tx_is_not_readmitted() -> None:
    mempool, app = pool()
    t = tx(5, 0)
    assert mempool.check_tx(t).ok
    assert mempool.update([t, tx(1, 99)]) == 1
    assert len(mempool) == 0
    assert mempool.check_tx(t).code == CODE_IN_MEMPOOL
    assert mempool.check_tx(tx(1, 99)).code == CODE_IN_MEMPOOL  # committed elsewhere
    assert app.calls[t] == 1


def test_size_limit() -> None:
    mempool, _ = pool(max_tx_bytes=64, max_bytes=1000)
    assert mempool.check_tx(tx(1, 0, size=65)).code == CODE_TX_TOO_LARGE


def test_full_pool_evicts_only_for_a_higher_fee() -> None:
    mempool, app = pool(max_txs=3)
    low_old, low_new, mid = tx(1, 0), tx(1, 1), tx(5, 2)
    for t in (low_old, low_new, mid):
        assert mempool.check_tx(t).ok
    assert mempool.check_tx(tx(1, 3)).code == CODE_MEMPOOL_FULL  # same fee: refused
    assert tx(1, 3) not in app.calls  # ... on its fee alone, before its signatures are checked
    assert mempool.check_tx(tx(9, 4)).ok  # evicts the cheapest, newest first
    assert sha256(low_new) not in mempool and sha256(low_old) in mempool
    assert mempool.check_tx(low_new).ok is False  # still full of better txs
    assert len(mempool) == 3


def test_byte_limit_evicts_enough_cheaper_txs() -> None:
    mempool, _ = pool(max_bytes=100, max_tx_bytes=100, max_txs=100)
    for i in range(4):
        assert mempool.check_tx(tx(1, i, size=25)).ok
    assert mempool.check_tx(tx(2, 9, size=60)).ok
    assert mempool.total_bytes <= 100
    assert len(mempool) == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(6, 40)), min_size=0, max_size=40),
       st.integers(0, 400), st.integers(0, 30))
def test_reap_orders_by_fee_then_arrival_within_limits(specs: list[tuple[int, int]], max_bytes: int,
                                                       max_txs: int) -> None:
    mempool, _ = pool()
    txs = [tx(fee, i, size) for i, (fee, size) in enumerate(specs)]
    for t in txs:
        assert mempool.check_tx(t).ok
    reaped = mempool.reap(max_bytes, max_txs)
    assert len(reaped) <= max_txs and sum(map(len, reaped)) <= max_bytes
    keys = [(-t[0], txs.index(t)) for t in reaped]
    assert keys == sorted(keys)
    # greedy: every skipped tx ahead of the last reaped one was too big for the room left
    expected, room = [], max_bytes
    for t in sorted(txs, key=lambda t: (-t[0], txs.index(t))):
        if len(expected) < max_txs and len(t) <= room:
            expected.append(t)
            room -= len(t)
    assert reaped == expected


async def test_recheck_drops_txs_that_became_invalid() -> None:
    mempool, app = pool()
    keep, spoil = tx(3, 0), tx(3, 1)
    mempool.check_tx(keep)
    mempool.check_tx(spoil)
    app.invalid.add(spoil)
    assert await mempool.recheck() == 1
    assert mempool.txs() == [keep]
    app.invalid.clear()
    assert mempool.check_tx(spoil).ok  # dropped txs may come back once valid


async def test_gossip_batches_new_txs_with_their_holders() -> None:
    mempool, _ = pool()
    a, b = tx(1, 0), tx(1, 1)
    mempool.check_tx(a)
    mempool.check_tx(b, peer="peerB")
    mempool.check_tx(b, peer="peerC")
    assert mempool.note_known_hash(sha256(a), "peerD")  # peerD announced a: it holds it
    await mempool.wait_gossip()
    assert mempool.take_gossip() == [(a, sha256(a), frozenset({"peerD"}), False),
                                     (b, sha256(b), frozenset({"peerB", "peerC"}), True)]
    assert mempool.take_gossip() == []
    assert not mempool.note_known_hash(sha256(tx(1, 2)), "peerD")


def test_a_wanted_tx_is_handed_to_each_peer_once_and_never_to_its_holders() -> None:
    mempool, _ = pool()
    a = tx(1, 0)
    mempool.check_tx(a, peer="peerB")
    assert mempool.hand_over(sha256(a), "peerB") is None  # peerB sent it
    assert mempool.hand_over(sha256(a), "peerC") == a
    assert mempool.hand_over(sha256(a), "peerC") is None  # asking again gets nothing more
    assert mempool.hand_over(sha256(tx(1, 1)), "peerC") is None  # not pending


@dataclass
class SignedVerdict:
    code: int
    log: str = ""
    priority: int = 0
    sender: bytes = b""


class AccountApp(FakeApp):
    """The sender is the tx's second byte."""

    def check_tx(self, tx: bytes) -> SignedVerdict:  # type: ignore[override]
        self.calls[tx] = self.calls.get(tx, 0) + 1
        return SignedVerdict(4 if tx in self.invalid else 0, "", tx[0], tx[1:2])


async def test_targeted_recheck_only_touches_given_accounts() -> None:
    app = AccountApp()
    mempool = Mempool(app, MempoolSection())
    alice, bob = b"\x05A" + b"." * 8, b"\x05B" + b"." * 8
    mempool.check_tx(alice)
    mempool.check_tx(bob)
    app.invalid.update({alice, bob})
    assert await mempool.recheck({b"A"}) == 1
    assert mempool.txs() == [bob] and app.calls[bob] == 1
    assert await mempool.recheck() == 1  # a full recheck catches the rest
    assert len(mempool) == 0


def test_a_full_pool_refuses_on_the_fee_alone_before_any_signature_check() -> None:
    from primitives.codec import decode, encode
    from state import builders
    from tests.state.helpers import USDC, Chain, make_genesis, signer

    chain = Chain(make_genesis(balances={"alice": 10 * USDC}))
    mempool = Mempool(chain.app, dataclasses.replace(MempoolSection(), max_txs=1))

    def transfer(amount: int, fee: int) -> bytes:
        return builders.build_transfer_tx(signer("alice"), chain.cid(), signer("bob").address, "USDC",
                                          amount, fee=fee, expiry=chain.expiry())

    first = transfer(1, chain.fee())
    assert mempool.check_tx(first).ok
    envelope = decode(transfer(2, chain.fee()))
    forged = encode({**envelope, "sig": bytes(64)})
    assert mempool.check_tx(forged).code == CODE_MEMPOOL_FULL  # not BAD_SIGNATURE: never verified
    assert chain.app._verdicts.keys() == {chain.app._decode(first).hash}
    envelope = decode(transfer(3, 2 * chain.fee()))
    result = mempool.check_tx(encode({**envelope, "sig": bytes(64)}))  # could evict: checked in full
    assert result.code != CODE_MEMPOOL_FULL and not result.ok
