"""Compact proposals: txs named by hash, rebuilt from the mempool, whole on request."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio

from consensus.blocks import InvalidBlockError, check_block_integrity
from primitives.codec import encode
from primitives.crypto import PrivateKey
from consensus.events import ProposalMessage
from primitives.hashing import sha256
from consensus.types import Block, Header, Proposal, txs_hash
from node.compact import FRESH_SECONDS, compact, rebuild
from node.messages import (
    BadMessage,
    CompactProposal,
    ProposalRequest,
    decode_consensus,
    encode_consensus,
)
from tests.node.test_node_inprocess import make_node, wait_for

TXS = tuple(bytes([n]) * (50 + n) for n in range(6))


class Pool:
    """A mempool stand-in: pending txs with their ages in seconds."""

    def __init__(self, ages: dict[bytes, float]) -> None:
        self.ages = {sha256(tx): (tx, age) for tx, age in ages.items()}

    def get(self, tx_hash: bytes) -> bytes | None:
        return self.ages[tx_hash][0] if tx_hash in self.ages else None

    def age(self, tx_hash: bytes) -> float | None:
        return self.ages[tx_hash][1] if tx_hash in self.ages else None


def whole_proposal(txs: tuple[bytes, ...] = TXS) -> ProposalMessage:
    header = Header(chain_id="c", height=5, time_ms=1, last_block_id=None, last_commit_hash=b"\x01" * 32,
                    data_hash=txs_hash(list(txs)), validators_hash=b"\x02" * 32,
                    next_validators_hash=b"\x02" * 32, app_hash=b"\x03" * 32, last_results_hash=b"\x04" * 32,
                    evidence_hash=b"\x05" * 32, proposer_address=b"\x06" * 20)
    block = Block(header, txs, (), None)
    return ProposalMessage(Proposal(5, 0, -1, block.block_id(), 1, b"\x07" * 64), block)


def test_txs_travel_by_hash_except_fresh_or_unknown_ones_and_the_block_rebuilds_exactly() -> None:
    message = whole_proposal()
    proposer_pool = Pool({TXS[0]: 5.0, TXS[1]: FRESH_SECONDS / 2, TXS[2]: 5.0, TXS[4]: 5.0, TXS[5]: 5.0})
    small = compact(message, proposer_pool)
    assert small.tx_hashes == tuple(sha256(tx) for tx in TXS)
    assert small.included == ((1, TXS[1]), (3, TXS[3]))  # fresh, and not in the proposer's pool
    assert small.block.txs == () and small.block.block_id() == message.block.block_id()
    decoded = decode_consensus(encode_consensus(small), 1 << 20)
    assert decoded == small
    receiver = Pool({tx: 1.0 for tx in (TXS[0], TXS[2], TXS[4], TXS[5])})
    rebuilt = rebuild(decoded, receiver)
    assert isinstance(rebuilt, ProposalMessage)
    assert rebuilt.block.encode() == message.block.encode() and rebuilt.proposal == message.proposal
    assert rebuild(decoded, Pool({TXS[0]: 1.0})) == 3  # TXS 2, 4 and 5 are missing


def test_a_compact_proposal_that_lies_about_its_txs_is_refused() -> None:
    message = whole_proposal()
    small = compact(message, Pool({}))  # every tx included
    swapped = rebuild(replace(small, included=((0, TXS[1]),) + small.included[1:]), Pool({}))
    with pytest.raises(InvalidBlockError, match="data_hash"):
        check_block_integrity(swapped.block)  # what the node runs on every proposal it takes
    other = compact(whole_proposal(TXS[:5] + (b"other",)), Pool({}))
    with pytest.raises(InvalidBlockError, match="data_hash"):
        check_block_integrity(rebuild(replace(other, block=small.block), Pool({})).block)


@pytest.mark.parametrize("mutate", [
    lambda v: v.__setitem__(3, [b"\x00" * 31]),
    lambda v: v.__setitem__(3, "hashes"),
    lambda v: v.__setitem__(4, [[0, b"x"], [0, b"y"]]),
    lambda v: v.__setitem__(4, [[9, b"x"]]),
    lambda v: v.__setitem__(4, [[0, "x"]]),
    lambda v: v[2].__setitem__("txs", [b"x"]),
])
def test_malformed_compact_proposals_are_bad_messages(mutate) -> None:
    from primitives.codec import decode, encode

    value = decode(encode_consensus(compact(whole_proposal(), Pool({}))))
    mutate(value)
    with pytest.raises(BadMessage):
        decode_consensus(encode(value), 1 << 20)
    assert decode_consensus(encode_consensus(ProposalRequest(7, 2)), 100) == ProposalRequest(7, 2)
    named = ProposalRequest(7, 2, b"\x05" * 32)
    assert decode_consensus(encode_consensus(named), 100) == named
    assert decode_consensus(encode(["get_proposal", 7, 2]), 100) == ProposalRequest(7, 2)  # older peers
    with pytest.raises(BadMessage):
        decode_consensus(encode(["get_proposal", 7, 2, b"short"]), 100)


async def test_missing_txs_bring_one_request_and_a_request_brings_the_whole_proposal(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    sent: list[tuple[str, object]] = []

    async def capture(peer: str, protocol: str, data: bytes) -> None:
        sent.append((peer, decode_consensus(data, 1 << 24)))

    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 2)
        node.network.send = capture  # type: ignore[method-assign]
        driver = node.driver
        state = driver.state
        # a proposal of the current height and round, signed by its proposer (this node)
        block = replace(node.chain.block(1), txs=())
        unsigned = Proposal(state.height, state.round, -1, block.block_id(), 1, b"")
        proposal = replace(unsigned, signature=node.validator_key.sign(unsigned.sign_bytes(node.chain.chain_id)))
        missing = CompactProposal(proposal, block, (b"\x01" * 32,), ())
        for _ in range(3):
            await driver.on_message("peer-a", encode_consensus(missing))
        assert [m for p, m in sent if p == "peer-a"] == [
            ProposalRequest(state.height, state.round, block.block_id().hash)]  # names the block
        forged = CompactProposal(replace(proposal, signature=PrivateKey(b"\x09" * 32).sign(b"x")), block,
                                 (b"\x01" * 32,), ())
        from node.p2p.network import PeerMisbehaviour

        with pytest.raises(PeerMisbehaviour):
            await driver.on_message("peer-b", encode_consensus(forged))
        assert not [m for p, m in sent if p == "peer-b"]  # an unsigned proposal asks nothing

        # asked for a proposal it holds, the node sends it whole, once per peer and round (a
        # solo validator holds its proposal only within one turn: give the state one)
        whole = ProposalMessage(proposal, node.chain.block(1))
        holding = replace(state, first_proposal={state.round: block.block_id()},
                          proposals={state.round: {block.block_id(): proposal}},
                          blocks={block.block_id(): whole.block})
        sent.clear()
        running, driver.state = driver.state, holding  # no checkpoint until it is restored
        try:
            for request in (ProposalRequest(state.height, state.round), ProposalRequest(state.height, state.round),
                            ProposalRequest(state.height, state.round + 1), ProposalRequest(state.height + 1, 0)):
                await driver.on_message("peer-c", encode_consensus(request))
        finally:
            driver.state = running
        assert sent == [("peer-c", whole)]  # whole, not compact; once; nothing for what it lacks

        # a byzantine proposer signed two blocks this round: a request naming the second gets
        # the second, not the round's first (which is all a request by round could name)
        other = replace(node.chain.block(1), txs=(b"another tx",))
        second = replace(Proposal(state.height, state.round, -1, other.block_id(), 2, b""))
        second = replace(second, signature=node.validator_key.sign(second.sign_bytes(node.chain.chain_id)))
        both = replace(holding, proposals={state.round: {block.block_id(): proposal, other.block_id(): second}},
                       blocks={block.block_id(): whole.block, other.block_id(): other})
        sent.clear()
        running, driver.state = driver.state, both
        try:
            for request in (ProposalRequest(state.height, state.round, other.block_id().hash),
                            ProposalRequest(state.height, state.round, b"\x07" * 32)):
                await driver.on_message("peer-d", encode_consensus(request))
        finally:
            driver.state = running
        assert sent == [("peer-d", ProposalMessage(second, other))]
        nursery.cancel_scope.cancel()


async def test_a_signed_proposal_with_altered_contents_is_misbehaviour_and_not_taken(tmp_path: Path) -> None:
    from node.p2p.network import PeerMisbehaviour, PeerUnavailable

    node = make_node(tmp_path)
    calls: list[object] = []

    async def flaky(peer: str, protocol: str, data: bytes) -> None:
        calls.append(decode_consensus(data, 1 << 24))
        if len(calls) == 1:
            raise PeerUnavailable(peer)

    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 2)
        node.network.send = flaky  # type: ignore[method-assign]
        driver, state = node.driver, node.driver.state
        genuine = node.chain.block(2)
        unsigned = Proposal(state.height, state.round, -1, genuine.block_id(), 1, b"")
        proposal = replace(unsigned, signature=node.validator_key.sign(unsigned.sign_bytes(node.chain.chain_id)))
        altered = ProposalMessage(proposal, replace(genuine, txs=(b"not the proposer's tx",)))
        with pytest.raises(PeerMisbehaviour, match="data_hash"):
            await driver.on_message("peer-x", encode_consensus(altered))
        assert proposal.signature not in driver.inbound._seen  # the genuine copy can still be taken

        # a request that could not be sent is sent again on the next copy
        missing = CompactProposal(proposal, replace(genuine, txs=()), (b"\x01" * 32,), ())
        for _ in range(3):
            await driver.on_message("peer-y", encode_consensus(missing))
        assert calls == [ProposalRequest(state.height, state.round, genuine.block_id().hash)] * 2
        nursery.cancel_scope.cancel()
