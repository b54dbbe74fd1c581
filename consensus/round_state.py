"""The consensus core's state and configuration (see :mod:`consensus.core` for the rules).

``ConsensusState`` is what :func:`consensus.core.step` maps to a new value: everything one node
knows about the height it is deciding. It holds no I/O handles and is never mutated in place by
the core (``copy()`` first), so an old state stays valid: replay and tests rely on that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.blocks import BlockLimits
from consensus.commit import Verifier
from primitives.crypto import verify
from consensus.events import Event, Step
from consensus.types import Block, BlockID, Commit, ConflictingCommits, Proposal, Vote, VoteType
from consensus.validators import ValidatorSet
from consensus.voteset import VoteSet

MAX_PROPOSALS_PER_ROUND = 2
"""Distinct signed proposals kept per round (a byzantine proposer may send many)."""
MAX_FUTURE_EVENTS = 10_000
"""Messages of the next height buffered while this one finishes."""
MAX_ROUNDS_AHEAD = 1_000
"""Messages of rounds further ahead are dropped (the sender re-gossips them)."""


@dataclass(frozen=True)
class RoundParams:
    """Timeouts in milliseconds (round r waits ``base + delta * r``) and block limits."""

    timeout_propose: int = 3000
    timeout_propose_delta: int = 500
    timeout_prevote: int = 1000
    timeout_prevote_delta: int = 500
    timeout_precommit: int = 1000
    timeout_precommit_delta: int = 500
    timeout_commit: int = 1000
    block_max_bytes: int = 4 * 1024 * 1024
    block_max_txs: int = 10_000

    def propose_timeout(self, round_: int) -> int:
        return self.timeout_propose + self.timeout_propose_delta * round_

    def prevote_timeout(self, round_: int) -> int:
        return self.timeout_prevote + self.timeout_prevote_delta * round_

    def precommit_timeout(self, round_: int) -> int:
        return self.timeout_precommit + self.timeout_precommit_delta * round_

    @property
    def limits(self) -> BlockLimits:
        return BlockLimits(self.block_max_bytes, self.block_max_txs)


@dataclass(frozen=True)
class CoreConfig:
    chain_id: str
    params: RoundParams
    my_address: bytes | None
    """Our validator address; None for a non-validating (full) node."""
    verifier: Verifier = verify
    """The one verifier or a caching wrapper of it; never another algorithm."""
    ignore_lock_for_tests: bool = False
    """Deliberately broken: prevote ignoring the lock. Only tests switch this on."""


@dataclass
class ConsensusState:
    """Everything the core knows. Treat as immutable: :func:`step` returns a new one."""

    config: CoreConfig
    height: int
    validators: ValidatorSet
    last_validators: ValidatorSet | None
    last_block_id: BlockID | None
    last_block_time_ms: int
    last_commit: Commit | None
    app_hash: bytes
    round: int = 0
    step: Step = Step.NEW_HEIGHT
    locked_round: int = -1
    locked_block: BlockID | None = None
    valid_round: int = -1
    valid_block: BlockID | None = None
    proposals: dict[int, dict[BlockID, Proposal]] = field(default_factory=dict)
    """round -> block id -> proposal signed by that round's proposer (first ones only)."""
    first_proposal: dict[int, BlockID] = field(default_factory=dict)
    """round -> the first proposal accepted in it (the one gossip re-sends)."""
    blocks: dict[BlockID, Block] = field(default_factory=dict)
    verdicts: dict[BlockID, bool | None] = field(default_factory=dict)
    """block id -> valid? (None: the application has not answered yet)."""
    votes: dict[tuple[int, VoteType], VoteSet] = field(default_factory=dict)
    prevote_timeout_round: int = -1
    precommit_timeout_round: int = -1
    polka_round: int = -1
    """Round in which line 36 fired (it fires once per round)."""
    own_requests: dict[tuple[int, int], Vote | tuple[Proposal, Block]] = field(default_factory=dict)
    """(round, kind) -> what we asked the private validator to sign (kind 0: proposal)."""
    proposal_requested: int = -1
    evidence_seen: frozenset[bytes] = frozenset()
    decision: tuple[Block, Commit] | None = None
    halted: ConflictingCommits | None = None
    """Set when two blocks gathered +2/3 precommits: the core then decides nothing."""
    future: tuple[Event, ...] = ()

    def copy(self) -> ConsensusState:
        """Shallow copy with fresh containers (the values inside are immutable)."""
        new = object.__new__(ConsensusState)
        new.__dict__.update(self.__dict__)
        new.proposals = {r: dict(p) for r, p in self.proposals.items()}
        new.first_proposal = dict(self.first_proposal)
        new.blocks = dict(self.blocks)
        new.verdicts = dict(self.verdicts)
        new.votes = dict(self.votes)
        new.own_requests = dict(self.own_requests)
        return new

    @property
    def my_index(self) -> int:
        address = self.config.my_address
        return -1 if address is None else self.validators.index_of(address)


def new_height_state(
    config: CoreConfig,
    height: int,
    validators: ValidatorSet,
    *,
    last_validators: ValidatorSet | None = None,
    last_block_id: BlockID | None = None,
    last_block_time_ms: int = 0,
    last_commit: Commit | None = None,
    app_hash: bytes = b"",
) -> ConsensusState:
    """The state at the start of ``height`` (step NEW_HEIGHT); follow with :func:`resume`."""
    return ConsensusState(
        config=config,
        height=height,
        validators=validators,
        last_validators=last_validators,
        last_block_id=last_block_id,
        last_block_time_ms=last_block_time_ms,
        last_commit=last_commit,
        app_hash=app_hash,
    )
