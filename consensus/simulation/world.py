"""The simulated world: a seeded event loop, a faulty network, byzantine behaviour, checks.

Time is an integer number of simulated milliseconds; the only randomness comes from one
``random.Random`` seeded by the scenario, so a run is a pure function of its configuration.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from primitives.crypto import PrivateKey, Signer, verify
from consensus.events import ProposalMessage, ScheduleTimeout, TimeoutFired
from primitives.hashing import sha256
from consensus.simulation import byzantine
from consensus.simulation.node import SimNode, tx_is_valid
from consensus.simulation.rules import VoteRuleChecker
from consensus.simulation.scenario import Scenario, SimConfig, make_scenario
from consensus.commit import EvidenceError, verify_conflicting_commits
from consensus.types import (
    Block,
    BlockID,
    Commit,
    ConflictingCommits,
    DuplicateVoteEvidence,
    Proposal,
    Vote,
    VoteType,
)
from consensus.validators import Validator, ValidatorSet

CHAIN_ID = "clearchain-sim"
MAX_STEPS = 400_000
ROTATION_ROUNDS = 4
"""``lock_rotation`` delays hold in rounds 0-3 of every height up to the goal."""
ROTATION_DELAY_MS = 400
"""Longer than any of rounds 0-3 lasts (80-170 ms of timeouts): a held prevote arrives
rounds later, when its polka can only unlock (line 28), not lock."""


def _key(i: int) -> Signer:
    return Signer(PrivateKey(sha256(b"clearchain-sim-validator-%d" % i)))


_SIGNERS = [_key(i) for i in range(16)]
_VERIFY_CACHE: dict[tuple[bytes, bytes, bytes], bool] = {}


def cached_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The one verifier with its verdicts cached: the simulator only (verification dominates)."""
    key = (public_key, message, signature)
    verdict = _VERIFY_CACHE.get(key)
    if verdict is None:
        if len(_VERIFY_CACHE) > 200_000:
            _VERIFY_CACHE.clear()
        verdict = _VERIFY_CACHE[key] = verify(public_key, message, signature)
    return verdict


@dataclass
class SimResult:
    config: SimConfig
    ok: bool
    violations: list[str] = field(default_factory=list)
    heights: dict[int, int] = field(default_factory=dict)
    time_ms: int = 0
    steps: int = 0
    messages: int = 0
    evidence_committed: int = 0
    equivocations: int = 0
    refusals: int = 0
    crashes: int = 0
    halts: int = 0

    def summary(self) -> str:
        status = "OK" if self.ok else "FAILED"
        lines = [
            (
                f"{status} seed={self.config.seed} validators={self.config.validators} "
                f"time={self.time_ms}ms steps={self.steps} messages={self.messages} "
                f"heights={sorted(self.heights.values())} evidence_committed={self.evidence_committed} "
                f"equivocations={self.equivocations} privval_refusals={self.refusals} crashes={self.crashes}"
                f"{f' halts={self.halts}' if self.halts else ''}"
            )
        ]
        lines += [f"  violation: {v}" for v in self.violations]
        if not self.ok:
            lines.append(f"  replay: {self.config.command()}")
        return "\n".join(lines)


class World:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.scenario: Scenario = make_scenario(config)
        self.rng = random.Random(f"world:{config.seed}")
        self.chain_id = CHAIN_ID
        self.verify = cached_verify
        self.now = 0
        self.queue: list[tuple[int, int, str, Any, Any, Any]] = []
        self.seq = 0
        self.steps = 0
        self.messages = 0
        self.refusals = 0
        self.replayed_events = 0
        self.crash_count = 0
        sc = self.scenario
        genesis = [
            Validator.from_public_key(_SIGNERS[i].public_key, p) for i, p in enumerate(sc.powers)
        ]
        self._valsets = [ValidatorSet.from_genesis(genesis)]
        self.nodes = [
            SimNode(self, i, _SIGNERS[i], sc.byzantine.get(i, frozenset()))
            for i in range(len(sc.powers))
        ]
        self.correct = [n for n in self.nodes if not n.byzantine]
        # observations for the checks
        self.committed: dict[int, dict[int, BlockID]] = {n.index: {} for n in self.nodes}
        self.proposed: set[BlockID] = set()
        self.signed: dict[tuple[bytes, int, int, int], tuple] = {}
        self.privval_conflicts: list[str] = []
        self.byz_votes: dict[tuple[bytes, int, int, int], set[BlockID | None]] = {}
        self.both_delivered: set[tuple[bytes, int, int, int]] = set()
        self.delivered: dict[tuple, set[BlockID | None]] = {}
        self.detected: set[tuple[bytes, int, int, int]] = set()
        self.committed_evidence: dict[bytes, DuplicateVoteEvidence] = {}
        self.height_at_gst: dict[int, int] = {}
        self.proposal_blocks: dict[BlockID, Block] = {}
        self.byz_proposals: dict[tuple[int, int], tuple[BlockID, BlockID]] = {}
        self.byz_messages: dict[tuple[int, int, str], ProposalMessage] = {}
        self.rules = VoteRuleChecker(
            self.validator_set, lambda block: all(tx_is_valid(tx) for tx in block.txs)
        )
        self._held: dict[tuple[int, int, int], frozenset[int]] = {}
        self._node_by_address = {n.address: n.index for n in self.nodes}
        self.halts: dict[int, ConflictingCommits] = {}
        """node index -> the conflicting quorums it halted on."""
        self.halt_errors: list[str] = []
        self.side_b, self.victim = self._sides()

    # --- validator sets -------------------------------------------------------------------

    def validator_set(self, height: int) -> ValidatorSet:
        """The set of ``height`` (>= 1): constant membership, priorities advanced per height."""
        while len(self._valsets) < height:
            self._valsets.append(self._valsets[-1].advance())
        return self._valsets[height - 1]

    # --- the event loop -------------------------------------------------------------------

    def _push(self, at: int, kind: str, a: Any = None, b: Any = None, c: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, a, b, c))

    def schedule_timeout(self, node: SimNode, action: ScheduleTimeout) -> None:
        event = TimeoutFired(action.height, action.round, action.step)
        self._push(self.now + action.duration_ms, "timeout", node.index, node.epoch, event)

    def schedule_gossip(self, node: SimNode) -> None:
        jitter = self.rng.randint(0, 10)
        self._push(
            self.now + self.scenario.gossip_interval_ms + jitter, "gossip", node.index, node.epoch
        )

    def run(self) -> SimResult:
        sc = self.scenario
        for node in self.nodes:
            node.start()
        for plan in sc.crashes:
            self._push(plan.at_ms, "crash", plan.node)
            self._push(plan.restart_ms, "restart", plan.node)
        self._push(sc.gst_ms, "gst")
        deadline = sc.gst_ms + sc.liveness_window_ms
        violations: list[str] = []
        while self.queue:
            at, _, kind, a, b, c = heapq.heappop(self.queue)
            if at > deadline:
                break
            self.now = at
            if kind == "deliver":
                self.nodes[a].on_message(b, c)
            elif kind == "timeout":
                node = self.nodes[a]
                if node.up and node.epoch == b:
                    node.feed(c)
            elif kind == "gossip":
                node = self.nodes[a]
                if node.up and node.epoch == b:
                    for message in node.gossip():
                        if isinstance(message, (Vote, ProposalMessage)):
                            self.broadcast_own(node, message)
                        else:
                            self.broadcast(node, message)
                    self.schedule_gossip(node)
            elif kind == "crash":
                node = self.nodes[a]
                node.crash(self.rng.random())
                self.crash_count += 1
            elif kind == "restart":
                self.nodes[a].start()
            elif kind == "gst":
                self.height_at_gst = {n.index: n.height for n in self.correct}
            if self.steps > MAX_STEPS:
                violations.append(f"step budget of {MAX_STEPS} exceeded at {self.now} ms")
                break
            if at >= sc.gst_ms and self._done():
                break
        return self._result(violations)

    def _done(self) -> bool:
        goal = self.config.heights
        for node in self.correct:
            h = node.height
            if h < goal or h < self.height_at_gst.get(node.index, 0) + 2:
                return False
        # every detected equivocation must have been committed as evidence
        return self._uncommitted_detections() == set()

    # --- network --------------------------------------------------------------------------

    def send(self, src: SimNode, dst: int, message: Any, fast: bool = False) -> None:
        """Send over the faulty network; ``fast``: the adversary's own 1 ms link."""
        sc = self.scenario
        self.messages += 1
        if self.now < sc.gst_ms:
            if sc.partition is not None:
                start, end, side = sc.partition
                if start <= self.now < end and ((src.index in side) != (dst in side)):
                    return
            if self.rng.random() < sc.drop_p:
                return
        copies = 2 if (self.now < sc.gst_ms and self.rng.random() < sc.dup_p) else 1
        for _ in range(copies):
            delay = 1 if fast else self.rng.randint(1, sc.max_delay_ms)
            if self._rotation_holds(message, dst):
                delay += ROTATION_DELAY_MS
            self._push(self.now + delay, "deliver", dst, src.index, message)

    def fast_node(self, height: int, round_: int) -> int:
        """``lock_rotation``: the one correct node that sees the prevotes of (height, round)
        in time; it changes every round, so locks land on different nodes round after round."""
        return self.correct[(height + round_) % len(self.correct)].index

    def _held_senders(self, height: int, round_: int, dst: int) -> frozenset[int]:
        """The correct validators whose prevotes for a value reach ``dst`` late: the
        heaviest ones (never ``dst``, whose own vote it counts, nor the fast node), until the
        rest hold at most 2/3 of the power. With the byzantine nil prevotes ``dst`` then sees
        +2/3 prevotes of any kind but no polka: it times out and precommits nil unlocked."""
        key = (height, round_, dst)
        held = self._held.get(key)
        if held is None:
            powers = self.scenario.powers
            total = sum(powers)
            arriving = sum(powers[n.index] for n in self.correct)
            chosen: set[int] = set()
            fast = self.fast_node(height, round_)
            for node in sorted(self.correct, key=lambda n: (-powers[n.index], n.index)):
                if 3 * arriving <= 2 * total:
                    break
                if node.index in (dst, fast):
                    continue
                chosen.add(node.index)
                arriving -= powers[node.index]
            held = self._held[key] = frozenset(chosen)
        return held

    def rotating(self, height: int, round_: int) -> bool:
        return (
            self.config.delays == "lock_rotation"
            and height <= self.config.heights
            and round_ < ROTATION_ROUNDS
        )

    def _rotation_holds(self, message: Any, dst: int) -> bool:
        """In a rotating round, prevotes for a value signed by the held senders or by a
        byzantine validator reach the correct nodes other than the round's fast one late
        (after the round is over), whoever relays them."""
        if not isinstance(message, Vote) or message.type != VoteType.PREVOTE:
            return False
        if message.block_id is None or self.nodes[dst].byzantine:
            return False
        h, r = message.height, message.round
        if not self.rotating(h, r) or dst == self.fast_node(h, r):
            return False
        signer = self._node_by_address.get(message.validator_address)
        if signer is None:
            return False
        return self.nodes[signer].byzantine or signer in self._held_senders(h, r, dst)

    def broadcast(self, src: SimNode, message: Any) -> None:
        for node in self.nodes:
            if node is not src:
                self.send(src, node.index, message)

    def broadcast_own(self, src: SimNode, message: Any) -> None:
        """Our own signed message leaves; a byzantine node misbehaves here (until the goal)."""
        if src.byzantine:
            if isinstance(message, Vote) and message.height <= self.config.heights:
                byzantine.send_vote(self, src, message)
                return
            if (
                isinstance(message, ProposalMessage)
                and message.proposal.height <= self.config.heights
            ):
                byzantine.send_proposal(self, src, message)
                return
        elif isinstance(message, Vote) and self.config.byzantine == "lock":
            byzantine.shadow_vote(self, src, message)
        self.broadcast(src, message)

    def _sides(self) -> tuple[set[int], int]:
        """Side B of the omniscient attacks, and the ``lock`` attack's victim.

        ``split``: two sides of balanced power. ``lock``: side A is the fewest strongest
        correct nodes that reach +2/3 with the byzantine power; the victim (allowed to decide)
        is the weakest node of side A.
        """
        powers = self.scenario.powers
        ranked = sorted(self.correct, key=lambda n: (-powers[n.index], n.index))
        if self.config.byzantine == "lock":
            total = sum(powers)
            power = sum(powers[i] for i in self.scenario.byzantine)
            side_a: list[SimNode] = []
            for node in ranked:
                if 3 * power > 2 * total:
                    break
                side_a.append(node)
                power += powers[node.index]
            victim = side_a[-1].index if side_a else -1
            return {n.index for n in ranked if n not in side_a}, victim
        side_a, side_b = [], []
        for node in ranked:
            power_a = sum(powers[n.index] for n in side_a)
            power_b = sum(powers[n.index] for n in side_b)
            (side_a if power_a <= power_b else side_b).append(node)
        return {n.index for n in side_b}, -1

    def note_byz_vote(self, node: SimNode, vote: Vote) -> None:
        key = (node.address, vote.height, vote.round, int(vote.type))
        self.byz_votes.setdefault(key, set()).add(vote.block_id)
        self.rules.note_vote(vote)

    def note_byz_proposal(self, proposal: Proposal, block: Block) -> None:
        """A byzantine proposer's extra proposal, signed by it (not a forgery)."""
        self.proposed.add(proposal.block_id)
        self.rules.note_proposal(proposal, block)

    def note_halt(self, node: SimNode, evidence: ConflictingCommits) -> None:
        if node.index in self.halts:
            return
        self.halts[node.index] = evidence
        try:
            verify_conflicting_commits(
                self.chain_id, self.validator_set(evidence.height), evidence, self.verify
            )
        except EvidenceError as exc:
            self.halt_errors.append(f"node {node.index} halted on bad evidence: {exc}")

    # --- observations ---------------------------------------------------------------------

    def note_delivery(self, node: SimNode, vote: Vote) -> None:
        if node.byzantine or node.state is None or vote.height != node.state.height:
            return
        key = (vote.validator_address, vote.height, vote.round, int(vote.type))
        if key not in self.byz_votes:
            return
        vs = self.validator_set(vote.height)
        signer = vs.get(vote.validator_address)
        if signer is None or not self.verify(
            signer.public_key, vote.sign_bytes(self.chain_id), vote.signature
        ):
            return
        seen = self.delivered.setdefault((node.index, node.epoch, *key), set())
        seen.add(vote.block_id)
        if len(seen) > 1 and node.state.decision is None:
            self.both_delivered.add(key)

    def note_detection(self, node: SimNode, ev: DuplicateVoteEvidence) -> None:
        if node.byzantine:
            return
        v = ev.vote_a
        self.detected.add((v.validator_address, v.height, v.round, int(v.type)))

    def note_signed(self, node: SimNode, vote: Vote) -> None:
        step = 2 if vote.type == VoteType.PREVOTE else 3
        self._note_sign(node, (vote.height, vote.round, step), (vote.block_id,))
        if node.byzantine:
            self.rules.note_vote(vote)
        else:
            self.rules.check_correct_vote(vote)

    def note_proposal(self, node: SimNode, proposal: Proposal, block: Block) -> None:
        self.proposed.add(proposal.block_id)
        self.rules.note_proposal(proposal, block)
        self._note_sign(
            node, (proposal.height, proposal.round, 1), (proposal.block_id, proposal.pol_round)
        )

    def _note_sign(self, node: SimNode, hrs: tuple[int, int, int], content: tuple) -> None:
        key = (node.address, *hrs)
        previous = self.signed.setdefault(key, content)
        if previous != content:
            self.privval_conflicts.append(
                f"validator {node.index} signed {content} and {previous} at {hrs}"
            )

    def note_commit(self, node: SimNode, block: Block, commit: Commit) -> None:
        self.committed[node.index][block.height] = block.block_id()
        self.proposal_blocks.setdefault(block.block_id(), block)
        for ev in block.evidence:
            self.committed_evidence[ev.hash()] = ev

    def _uncommitted_detections(self) -> set:
        committed = {
            (e.vote_a.validator_address, e.height, e.vote_a.round, int(e.vote_a.type))
            for e in self.committed_evidence.values()
        }
        return (self.detected | self.both_delivered) - committed

    # --- checks ---------------------------------------------------------------------------

    def _result(self, violations: list[str]) -> SimResult:
        correct = [n.index for n in self.correct]
        # agreement: one block per height across correct nodes
        by_height: dict[int, set[BlockID]] = {}
        for i in correct:
            for h, bid in self.committed[i].items():
                by_height.setdefault(h, set()).add(bid)
        for h, bids in sorted(by_height.items()):
            if len(bids) > 1:
                violations.append(
                    f"agreement: height {h} committed as {sorted(b.hash.hex()[:8] for b in bids)}"
                )
        # determinism: one app hash per height on every correct node
        app_hashes: dict[int, set[bytes]] = {}
        for i in correct:
            for h, app_hash in self.nodes[i].app_hashes.items():
                app_hashes.setdefault(h, set()).add(app_hash)
        for h, hashes in sorted(app_hashes.items()):
            if len(hashes) > 1:
                violations.append(f"app hash: {len(hashes)} different app hashes after height {h}")
        # validity: committed blocks were proposed and hold only valid txs
        for i in correct:
            for h, (block, _) in self.nodes[i].blocks.items():
                if block.block_id() not in self.proposed:
                    violations.append(f"validity: node {i} committed unproposed block at {h}")
                if not all(tx_is_valid(tx) for tx in block.txs):
                    violations.append(f"validity: node {i} committed an invalid tx at {h}")
                for ev in block.evidence:
                    if ev.validator_address in {self.nodes[j].address for j in correct}:
                        violations.append(f"evidence against correct validator at {h}")
        # liveness after the network healed
        for node in self.correct:
            start = self.height_at_gst.get(node.index, 0)
            if node.height < max(self.config.heights, start + 2):
                violations.append(
                    f"liveness: node {node.index} at height {node.height} (height {start} at GST "
                    f"{self.scenario.gst_ms} ms), deadline {self.scenario.gst_ms + self.scenario.liveness_window_ms} ms"
                )
        # evidence: every detected or fully delivered equivocation is committed
        missing = self._uncommitted_detections()
        for key in sorted(missing, key=lambda k: (k[1], k[2], k[3], k[0])):
            violations.append(
                f"evidence: equivocation by {key[0].hex()[:8]} at h={key[1]} r={key[2]} type={key[3]} "
                "not committed"
            )
        violations.extend(f"privval: {c}" for c in self.privval_conflicts)
        violations.extend(f"rules: {v}" for v in self.rules.violations)
        violations.extend(f"halt: {e}" for e in self.halt_errors)
        if self.config.byzantine_power == "below_third":
            violations.extend(
                f"halt: node {i} halted below a third of byzantine power"
                for i in sorted(self.halts)
            )
        equivocations = sum(1 for ids in self.byz_votes.values() if len(ids) > 1)
        return SimResult(
            config=self.config,
            ok=not violations,
            violations=violations,
            heights={n.index: n.height for n in self.correct},
            time_ms=self.now,
            steps=self.steps,
            messages=self.messages,
            evidence_committed=len(self.committed_evidence),
            equivocations=equivocations,
            refusals=self.refusals,
            crashes=self.crash_count,
            halts=len(self.halts),
        )


def run_simulation(config: SimConfig) -> SimResult:
    return World(config).run()
