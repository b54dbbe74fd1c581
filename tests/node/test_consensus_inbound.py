"""The catch-up buffer: copies kept per peer (bounded) and verified before use, so a peer that
pre-fills future heights with junk costs only itself, never the honest copy."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from consensus.events import CatchUp, Event
from localnet.synthetic import append_block, sign_commit
from node.chain import Chain
from node.config import Config
from node.consensus_inbound import CATCHUP_COPIES, InboundMessages
from node.messages import encode_consensus
from node.verifier import CachedVerifier
from state.store import MemoryDB
from tests.node.test_chain import SIGNERS, T0, genesis


class Peers:
    """The network as the inbound side uses it: its config, and who got disconnected."""

    def __init__(self) -> None:
        self.config = Config().p2p
        self.disconnected: dict[str, str] = {}

    def disconnect(self, peer: str, reason: str) -> None:
        self.disconnected[peer] = reason


def source_chain(blocks: int) -> Chain:
    chain = Chain(MemoryDB(), genesis())
    for n in range(blocks):
        append_block(chain, SIGNERS, [], T0 + n + 1)
    return chain


def inbound_over(chain: Chain) -> tuple[InboundMessages, Peers]:
    peers = Peers()
    send, _receive = trio.open_memory_channel[Event](100)
    inbound = InboundMessages(chain=chain, network=peers, mempool=SimpleNamespace(),  # type: ignore[arg-type]
                              verifier=CachedVerifier(), evidence=SimpleNamespace(),  # type: ignore[arg-type]
                              inbox=send, wire=encode_consensus)
    return inbound, peers


def junk_of(chain: Chain, height: int) -> CatchUp:
    """The right block with a commit one validator of four signed: not +2/3."""
    block = chain.block(height)
    validators = chain.validators(height)
    assert block is not None and validators is not None
    one = dict(list(SIGNERS.items())[:1])
    return CatchUp(block, sign_commit(chain.chain_id, validators, one, height, block.block_id(), T0))


def good_of(chain: Chain, height: int) -> CatchUp:
    block, commit = chain.block(height), chain.commit(height)
    assert block is not None and commit is not None
    return CatchUp(block, commit)


def deciding(height: int) -> SimpleNamespace:
    return SimpleNamespace(height=height, decision=None, round=0)


async def test_junk_sent_first_for_a_future_height_does_not_hide_the_honest_copy() -> None:
    source = source_chain(4)
    ours = Chain(MemoryDB(), genesis())
    inbound, peers = inbound_over(ours)
    # height 4: its validator set is not known at height 0 (sets are stored two ahead), so
    # neither copy can be verified on arrival
    assert ours.validators(4) is None
    await inbound.on_message("hostile", encode_consensus(junk_of(source, 4)), deciding(1))
    await inbound.on_message("honest", encode_consensus(good_of(source, 4)), deciding(1))
    assert set(inbound.buffered_copies(4)) == {"hostile", "honest"}
    for height in (1, 2, 3):  # we catch up to height 3 by other means
        ours.execute(source.block(height), source.commit(height))
    found = inbound.next_catchup(4)
    assert found is not None and found[0].block_id() == source.block(4).block_id()
    assert found[1] == source.commit(4)
    assert list(peers.disconnected) == ["hostile"]


async def test_a_bad_copy_found_out_drops_every_height_its_peer_buffered() -> None:
    source = source_chain(5)
    ours = Chain(MemoryDB(), genesis())
    inbound, peers = inbound_over(ours)
    for height in (4, 5):
        await inbound.on_message("hostile", encode_consensus(junk_of(source, height)), deciding(1))
    for height in (1, 2, 3):
        ours.execute(source.block(height), source.commit(height))
    assert inbound.next_catchup(4) is None  # only junk was sent for 4
    assert "hostile" in peers.disconnected
    assert inbound.buffered_copies(5) == {}  # its other heights went with it


async def test_copies_per_height_are_bounded_and_a_peer_replaces_its_own() -> None:
    source = source_chain(4)
    ours = Chain(MemoryDB(), genesis())
    inbound, _ = inbound_over(ours)
    for n in range(CATCHUP_COPIES + 3):
        await inbound.on_message(f"peer{n}", encode_consensus(junk_of(source, 4)), deciding(1))
    assert len(inbound.buffered_copies(4)) == CATCHUP_COPIES
    await inbound.on_message("peer0", encode_consensus(good_of(source, 4)), deciding(1))
    assert len(inbound.buffered_copies(4)) == CATCHUP_COPIES
    for height in (1, 2, 3):
        ours.execute(source.block(height), source.commit(height))
    found = inbound.next_catchup(4)
    assert found is not None and found[1] == source.commit(4)  # peer0's newer, good copy


async def test_a_forgotten_peer_frees_its_copies() -> None:
    source = source_chain(4)
    inbound, _ = inbound_over(Chain(MemoryDB(), genesis()))
    await inbound.on_message("gone", encode_consensus(junk_of(source, 4)), deciding(1))
    inbound.forget_peer("gone")
    assert inbound.buffered_copies(4) == {}
