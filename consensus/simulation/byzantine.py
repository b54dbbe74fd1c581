"""What byzantine validators send. They run an honest core (to follow the chain) but sign
outside their private validator and choose per recipient what to send.

Behaviours (a node may have several):

- ``equivocate``: with each vote also send a second one for another block (or nil), both to
  everyone in random order;
- ``conflicting_proposals``: as proposer, also sign a second block and send it to half the peers
  (sometimes holding an invalid tx);
- ``random_votes``: now and then vote for a random block id;
- ``bad_signatures``: send votes with broken signatures, and votes forged in a correct
  validator's name;
- ``split`` (omniscient, used for the fork searches): the correct nodes are cut into two sides
  of balanced power; as proposer send one block to each side; vote, per recipient, for the block
  that recipient is considering;
- ``halves``: as proposer, send a forged proposal in our name to everyone, then one block
  to one half of the correct nodes and another (sometimes invalid) to the other half;
- ``withhold``: sign votes but send them to few or none of the correct nodes (see
  ``_withhold``), so polkas form only where the adversary wants them;
- ``lock`` (omniscient): like ``split`` for proposals and prevotes, but precommit only to one
  victim, so that one correct node decides while the others stay locked and move on: the attack
  a core that ignores its lock falls to.
"""

from __future__ import annotations

import random
from dataclasses import replace
from collections.abc import Callable
from typing import Any, Protocol

from consensus.blocks import make_block
from consensus.events import ProposalMessage
from consensus.simulation.node import SimNode, WorldView
from consensus.simulation.scenario import SimConfig
from consensus.types import Block, BlockID, Proposal, Vote, VoteType
from primitives.hashing import sha256


class World(WorldView, Protocol):
    """What byzantine behaviours also see: every node, the sides of a split, what was proposed
    and voted, and a broadcast (``world.World`` is the one implementation)."""

    config: SimConfig
    rng: random.Random
    nodes: list[SimNode]
    correct: list[SimNode]
    side_b: set[int]
    victim: int
    proposed: set[BlockID]
    byz_votes: dict[tuple[bytes, int, int, int], set[BlockID | None]]
    byz_proposals: dict[tuple[int, int], tuple[BlockID, BlockID]]
    byz_messages: dict[tuple[int, int, str], ProposalMessage]

    def broadcast(self, src: SimNode, message: Any) -> None: ...
    def note_byz_vote(self, node: SimNode, vote: Vote) -> None: ...
    def note_byz_proposal(self, proposal: Proposal, block: Block) -> None: ...
    def fast_node(self, height: int, round_: int) -> int: ...
    def rotating(self, height: int, round_: int) -> bool: ...


def _sign_vote(world: World, node: SimNode, vote: Vote) -> Vote:
    return replace(vote, signature=node.signer.sign(vote.sign_bytes(world.chain_id)))


def _peers(world: World, node: SimNode) -> list[int]:
    return [n.index for n in world.nodes if n is not node]


def send_vote(world: World, node: SimNode, vote: Vote) -> None:
    behaviours = node.behaviours
    rng = world.rng
    world.note_byz_vote(node, vote)
    if "split" in behaviours or "lock" in behaviours:
        _omniscient_vote(world, node, vote)
        return
    peers = _peers(world, node)
    if "withhold" in behaviours:
        _withhold(world, node, vote, peers)
        return
    if "equivocate" in behaviours and rng.random() < 0.5:
        twin = _sign_vote(
            world,
            node,
            replace(vote, block_id=_other_block(world, node, vote), timestamp_ms=world.now),
        )
        world.note_byz_vote(node, twin)
        for dst in peers:
            first, second = (vote, twin) if rng.random() < 0.5 else (twin, vote)
            world.send(node, dst, first)
            world.send(node, dst, second)
        return
    for dst in peers:
        world.send(node, dst, vote)
    if "random_votes" in behaviours and rng.random() < 0.3:
        kind = rng.choice([VoteType.PREVOTE, VoteType.PRECOMMIT])
        bogus = BlockID(sha256(b"random:%d" % rng.getrandbits(64)))
        extra = _sign_vote(
            world, node, replace(vote, type=kind, block_id=bogus, timestamp_ms=world.now)
        )
        world.note_byz_vote(node, extra)
        world.broadcast(node, extra)
    if "bad_signatures" in behaviours and rng.random() < 0.5:
        victim = rng.choice(world.correct) if world.correct else node
        vs = world.validator_set(vote.height)
        forged = replace(
            vote,
            validator_address=victim.address,
            validator_index=vs.index_of(victim.address),
            block_id=BlockID(sha256(b"forged:%d" % rng.getrandbits(64))),
            signature=bytes(64),
        )
        world.broadcast(node, forged)
        bad = replace(vote, signature=bytes([vote.signature[0] ^ 1]) + vote.signature[1:])
        world.broadcast(node, bad)


def _withhold(world: World, node: SimNode, vote: Vote, peers: list[int]) -> None:
    """``withhold``: in a ``lock_rotation`` round the vote goes only to that round's fast
    node (a prevote for the proposal that node is considering, so its polka forms), and the
    other correct nodes get a nil prevote instead (so they count +2/3 prevotes without a
    polka); otherwise, each time it is (re)sent, to nobody correct half of the time."""
    allies = [dst for dst in peers if world.nodes[dst].byzantine]
    if world.rotating(vote.height, vote.round):
        fast = world.fast_node(vote.height, vote.round)
        targets = allies
        state = world.nodes[fast].state
        if state is not None and state.height == vote.height:  # back the fast node's choice
            chosen = state.first_proposal.get(vote.round, vote.block_id)
            if vote.type == VoteType.PREVOTE and chosen != vote.block_id:
                backing = _sign_vote(
                    world, node, replace(vote, block_id=chosen, timestamp_ms=world.now)
                )
                world.note_byz_vote(node, backing)
                world.send(node, fast, backing)
            else:
                targets = allies + [fast]
        if vote.type == VoteType.PREVOTE:
            nil = vote
            if vote.block_id is not None:
                nil = _sign_vote(world, node, replace(vote, block_id=None, timestamp_ms=world.now))
                world.note_byz_vote(node, nil)
            for dst in peers:
                if dst != fast and not world.nodes[dst].byzantine:
                    world.send(node, dst, nil)
    elif world.rng.random() < 0.5:
        targets = allies
    else:
        targets = peers
    for dst in targets:
        world.send(node, dst, vote)


def _omniscient_vote(world: World, node: SimNode, vote: Vote) -> None:
    signed: dict[BlockID | None, Vote] = {vote.block_id: vote}
    victim = world.victim
    for dst in _peers(world, node):
        peer = world.nodes[dst]
        if peer.byzantine:
            world.send(node, dst, vote, fast=True)
            continue
        target = vote.block_id
        sent = world.byz_proposals.get((vote.height, vote.round))
        state = peer.state
        if sent is not None:
            target = sent[1] if dst in world.side_b else sent[0]
        elif state is not None and state.height == vote.height:
            target = state.first_proposal.get(vote.round, target)
        if vote.type == VoteType.PRECOMMIT and "lock" in node.behaviours and dst != victim:
            target = None
        if target not in signed:
            twin = _sign_vote(world, node, replace(vote, block_id=target, timestamp_ms=world.now))
            world.note_byz_vote(node, twin)
            signed[target] = twin
        world.send(node, dst, signed[target], fast=True)


def _other_block(world: World, node: SimNode, vote: Vote) -> BlockID | None:
    state = node.state
    if state is not None:
        for bid in state.proposals.get(vote.round, {}):
            if bid != vote.block_id:
                return bid
    if vote.block_id is None:
        return BlockID(sha256(b"twin:%d" % world.rng.getrandbits(64)))
    return None


def send_proposal(world: World, node: SimNode, message: ProposalMessage) -> None:
    """Our (byzantine) proposal leaves: maybe with a conflicting twin. Others' proposals
    (which our core re-gossips) are passed on as they are."""
    behaviours = node.behaviours
    p = message.proposal
    if world.validator_set(p.height).proposer_for_round(p.round).address != node.address:
        world.broadcast(node, message)
        return
    if "withhold" in behaviours:
        _propose_fresh(world, node, message)
        return
    if "halves" in behaviours:
        _send_halves(world, node, message)
        return
    omniscient = "split" in behaviours or "lock" in behaviours
    if not omniscient and "conflicting_proposals" not in behaviours:
        world.broadcast(node, message)
        return
    block = message.block
    rng = world.rng
    tag = b"bad" if (not omniscient and rng.random() < 0.3) else b"ok"
    alt_message = _twin(world, node, message, tag)
    proposal = alt_message.proposal
    if "lock" in behaviours and message.proposal.pol_round >= 0:
        world.broadcast(node, alt_message)  # never re-propose: tempt the locked nodes
        return
    if omniscient:
        world.byz_proposals[(block.height, message.proposal.round)] = (
            message.proposal.block_id,
            proposal.block_id,
        )
        for dst in _peers(world, node):
            world.send(node, dst, alt_message if dst in world.side_b else message, fast=True)
        return
    world.broadcast(node, message)
    peers = _peers(world, node)
    rng.shuffle(peers)
    for dst in peers[: max(1, len(peers) // 2)]:
        world.send(node, dst, alt_message)


def _twin(
    world: World,
    node: SimNode,
    message: ProposalMessage,
    tag: bytes,
    signed: bool = True,
    claim: bool = False,
) -> ProposalMessage:
    """Another block for the same height and round, proposed with valid round -1 (``claim``:
    the previous round, polka or not) and signed by us (``signed=False``: with a signature
    that is not ours, a forgery)."""
    block = message.block
    alt = make_block(
        chain_id=world.chain_id,
        height=block.height,
        time_ms=block.header.time_ms,
        last_block_id=block.header.last_block_id,
        last_commit=block.last_commit,
        txs=(b"%s:alt:%d:%d" % (tag, block.height, world.rng.getrandbits(32)),),
        evidence=block.evidence,
        validators=world.validator_set(block.height),
        next_validators=world.validator_set(block.height + 1),
        app_hash=block.header.app_hash,
        last_results_hash=block.header.last_results_hash,
        proposer_address=block.header.proposer_address,
    )
    pol_round = message.proposal.round - 1 if claim else -1
    proposal = replace(
        message.proposal, block_id=alt.block_id(), pol_round=pol_round, timestamp_ms=world.now
    )
    if not signed:
        return ProposalMessage(replace(proposal, signature=bytes(64)), alt)
    proposal = replace(proposal, signature=node.signer.sign(proposal.sign_bytes(world.chain_id)))
    world.note_byz_proposal(proposal, alt)
    return ProposalMessage(proposal, alt)


def _once(
    world: World, key: tuple[int, int, str], make: Callable[[], ProposalMessage]
) -> ProposalMessage:
    """The same made-up proposal each time ours is re-gossiped in the round."""
    made = world.byz_messages.get(key)
    if made is None:
        made = world.byz_messages[key] = make()
    return made


def _propose_fresh(world: World, node: SimNode, message: ProposalMessage) -> None:
    """``withhold``: never re-propose the valid value; a fresh block tempts the nodes locked
    on it (line 22) and, when it gathers a polka, moves the locks around. Past the rotating
    rounds the fresh block claims a valid round (the previous one) where it has no polka:
    line 28 must wait for +2/3 prevotes that never come."""
    p = message.proposal
    claim = p.round > 0 and not world.rotating(p.height, p.round)
    if p.pol_round >= 0 or claim:
        key = (p.height, p.round, "fresh")
        message = _once(world, key, lambda: _twin(world, node, message, b"ok", claim=claim))
    world.broadcast(node, message)


def _send_halves(world: World, node: SimNode, message: ProposalMessage) -> None:
    """``halves``: first a forgery in our name (a third block, signature not ours) to every
    peer, then our proposal to one half of the correct nodes and the twin (invalid a third
    of the time) to the other half. Relay brings both halves both proposals later."""
    p = message.proposal
    forged = _once(
        world, (p.height, p.round, "forged"), lambda: _twin(world, node, message, b"ok", False)
    )
    alt = _once(
        world,
        (p.height, p.round, "alt"),
        lambda: _twin(world, node, message, b"bad" if world.rng.random() < 0.3 else b"ok"),
    )
    world.broadcast(node, forged)
    for dst in _peers(world, node):
        world.send(node, dst, alt if dst in world.side_b else message)


def shadow_vote(world: World, voter: SimNode, vote: Vote) -> None:
    """``lock``: every byzantine node echoes a correct node's vote for a block to the correct
    nodes other than the victim, even in rounds its own core has left behind."""
    if vote.block_id is None or vote.height > world.config.heights:
        return
    vs = world.validator_set(vote.height)
    for node in world.nodes:
        if not node.byzantine:
            continue
        key = (node.address, vote.height, vote.round, int(vote.type))
        if vote.block_id in world.byz_votes.get(key, set()):
            continue
        echo = _sign_vote(
            world,
            node,
            replace(
                vote,
                validator_address=node.address,
                validator_index=vs.index_of(node.address),
                timestamp_ms=world.now,
            ),
        )
        world.note_byz_vote(node, echo)
        for peer in world.correct:
            if peer.index != world.victim and peer is not voter:
                world.send(node, peer.index, echo, fast=True)
