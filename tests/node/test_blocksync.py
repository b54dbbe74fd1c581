"""Block sync between in-process nodes over libp2p on 127.0.0.1."""

from __future__ import annotations

import dataclasses

import trio

from consensus.types import Commit
from primitives.codec import decode
from primitives.crypto import PrivateKey, Signer
from node.blocksync import BlockSync
from node.chain import AppHashMismatch, Chain
from node.init import DEFAULT_VALIDATOR_POWER, default_genesis_path
from node.config import P2PSection
from node.p2p.network import BLOCKSYNC_PROTOCOL, Network
from localnet.synthetic import append_block
from state.builders import build_transfer_tx
from state.genesis import load_genesis, parse_genesis, validator_entry
from state.store import MemoryDB

KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(4)]
T0 = 1_800_000_000_000


def genesis(keys=KEYS, insurance: int | None = None):  # type: ignore[no-untyped-def]
    document = load_genesis(default_genesis_path()).to_dict()
    document["validators"] = [validator_entry(f"v{i}", k.public_key, DEFAULT_VALIDATOR_POWER)
                               for i, k in enumerate(keys)]
    if insurance is not None:
        document["app_state"]["risk"]["insurance_fund_seed"] = insurance
    return parse_genesis(document)


def source_chain(blocks: int, keys=KEYS, **kwargs) -> Chain:  # type: ignore[no-untyped-def]
    chain = Chain(MemoryDB(), genesis(keys, **kwargs))
    signers = {Signer(k).address: Signer(k) for k in keys}
    for height in range(1, blocks + 1):
        tx = build_transfer_tx(Signer(keys[0]), chain.chain_id, keys[1].address, "USDC", height,
                               fee=1000, expiry=height + 50)
        append_block(chain, signers, [tx], T0 + height * 1000)
    return chain


def network(peers: tuple[str, ...] = (), **p2p: int) -> Network:
    config = dataclasses.replace(P2PSection(), listen_address="/ip4/127.0.0.1/tcp/0",
                                 persistent_peers=peers, dial_backoff_min_ms=50, **p2p)
    return Network(PrivateKey.generate(), config, protocols=(BLOCKSYNC_PROTOCOL,))


async def sync_from(source: Chain, target: Chain, *, stop_after: float | None = None,
                    **p2p: int) -> tuple[BlockSync, Network, list[str]]:
    """Run one sync; returns the syncer, its network and the peers it ended up connected to.
    ``stop_after``: seconds after which a sync that has not ended is stopped (else it must end
    within 60 s); ``p2p`` overrides the serving node's P2PSection (a small ``max_frame_bytes``)."""
    server = network(**p2p)
    BlockSync(source, server)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        client = network((server.listen_addrs()[0],))
        syncer = BlockSync(target, client)
        await nursery.start(client.run)
        with trio.fail_after(60) if stop_after is None else trio.move_on_after(stop_after):
            await syncer.sync(first_status_wait=10)
        await trio.sleep(0.2)
        peers = client.peers()
        nursery.cancel_scope.cancel()
    return syncer, client, peers


async def test_syncs_to_one_below_the_tip_with_identical_state() -> None:
    source = source_chain(70)  # more than two windows
    target = Chain(MemoryDB(), genesis())
    syncer, _, _ = await sync_from(source, target)
    assert target.height == 69  # consensus takes the last block (catch-up)
    assert target.block(69).hash() == source.block(69).hash()
    assert target.block(70) is None
    assert target.store.root_hash() == source.store.root_at(69)
    assert syncer.txs_synced == 69


async def test_a_node_syncs_from_a_peer_that_pruned_below_an_unaligned_height() -> None:
    # as after a state-sync restore at 40: the next block (41) is the pruning peer's earliest,
    # and not the start of a window counted from height 1 (33, 65, ...), which it no longer has
    full = source_chain(90)
    source, target = Chain(MemoryDB(), genesis(), keep_blocks=50), Chain(MemoryDB(), genesis())
    for height in range(1, 91):
        block, commit = full.block(height), Commit.from_obj(decode(full.blocks.commit(height)))
        source.execute(block, commit)
        if height <= 40:
            target.execute(block, commit)
    assert source.blocks.earliest_height() == 41
    syncer, _, peers = await sync_from(source, target)
    assert target.height == 89
    assert target.store.root_hash() == source.store.root_at(89)
    assert peers, "the pruning peer was dropped as a liar"
    assert syncer.blocks_synced == 49


async def test_a_peer_that_answers_each_window_with_fewer_blocks_still_brings_the_node_up() -> None:
    # Big blocks (a burst's) fill the serving peer's frame budget before a window's 32 blocks:
    # each answer then holds the first block or few of what was asked. The rest of the window
    # must be asked for from the next missing height, not again from the window's start (that
    # answer would repeat the blocks already applied, for ever).
    source = source_chain(40)
    one_block = len(source.blocks.block(1)) + len(source.blocks.commit(1))
    target = Chain(MemoryDB(), genesis())
    frame = max(1024, 3 * one_block)  # half of it (the answer's budget) holds one block
    syncer, _, peers = await sync_from(source, target, max_frame_bytes=frame, max_batch_bytes=frame)
    assert target.height == 39
    assert target.store.root_hash() == source.store.root_at(39)
    assert peers, "the peer answering with fewer blocks was dropped"
    assert syncer.blocks_synced == 39


async def test_a_stalled_sync_says_what_it_waits_for(caplog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("node.blocksync.STALL_REPORT_S", 0.5)
    full = source_chain(60)
    source = Chain(MemoryDB(), genesis(), keep_blocks=20)  # keeps 41-60: block 1 is gone
    for height in range(1, 61):
        source.execute(full.block(height), Commit.from_obj(decode(full.blocks.commit(height))))
    target = Chain(MemoryDB(), genesis())
    with caplog.at_level("INFO", logger="clearchain.blocksync"):
        await sync_from(source, target, stop_after=3)
    assert target.height == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("no peer stores block 1 any more" in m for m in messages), messages
    stalls = [m for m in messages if "no block applied for" in m]
    assert len(stalls) >= 2, messages  # repeated while it lasts, not once and then silence
    assert "at height 0 (peers reach 60)" in stalls[0] and "bases {" in stalls[0]


async def test_blocks_signed_by_another_validator_set_are_refused_and_the_peer_dropped(
        caplog) -> None:  # type: ignore[no-untyped-def]
    impostors = [PrivateKey(bytes([0x50 + i]) * 32) for i in range(4)]
    source = source_chain(10, keys=impostors)
    target = Chain(MemoryDB(), genesis())
    # same chain id, different validators: the first block's validators_hash cannot match
    with caplog.at_level("WARNING", logger="clearchain.p2p"):
        await sync_from(source, target)
    assert target.height == 0
    assert any("sent a bad block 1" in r.getMessage() and "validators_hash" in r.getMessage()
               for r in caplog.records)


async def test_a_different_state_halts_instead_of_forking() -> None:
    source = source_chain(5, insurance=123)  # the same validators, another genesis state
    target = Chain(MemoryDB(), genesis())
    try:
        await sync_from(source, target)
    except BaseExceptionGroup as group:  # noqa: F821
        assert group.subgroup(AppHashMismatch) is not None
    else:
        raise AssertionError("sync applied a block on top of a different state")
    assert target.height == 0
