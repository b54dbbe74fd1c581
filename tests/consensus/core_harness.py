"""A minimal node shell around a consensus core, for driving the core's rules by hand.

The harness signs through a real private validator, answers the application's questions at
once (or never, for a block the test keeps pending) and keeps every other action for the test
to inspect. It takes the core as a module, so the mutation check (``mutants/``) drives edited
copies of ``consensus/core.py`` through exactly the same scenarios.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import ModuleType

from consensus_helpers import CHAIN, Keys

import consensus.core
from consensus.blocks import make_block
from consensus.events import (
    BlockValidated,
    Broadcast,
    CommitBlock,
    Halt,
    ProposalBlock,
    ProposalMessage,
    ProposalReceived,
    ProposalSigned,
    RequestProposal,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    Step,
    TimeoutFired,
    ValidateBlock,
    VoteReceived,
    VoteSigned,
)
from consensus.privval import DoubleSignError, MemoryPrivvalStore, PrivValidator
from consensus.round_state import CoreConfig, RoundParams, new_height_state
from consensus.types import Block, BlockID, Proposal, Vote, VoteType
from primitives.hashing import EMPTY_HASH

PARAMS = RoundParams(
    timeout_propose=100,
    timeout_propose_delta=10,
    timeout_prevote=50,
    timeout_prevote_delta=5,
    timeout_precommit=60,
    timeout_precommit_delta=6,
    timeout_commit=7,
)
APP_HASH = bytes(32)


class Harness:
    """One validator's core at height 1, fed by hand.

    ``valid(block)`` is the application's verdict: True, False, or None for "no answer yet"
    (the block stays pending until the test calls :meth:`answer`).
    """

    def __init__(
        self,
        keys: Keys,
        me: int | None = None,
        broken: bool = False,
        core: ModuleType = consensus.core,
    ) -> None:
        self.keys = keys
        self.core = core
        vs = keys.valset
        if me is None:  # a validator that proposes in none of the rounds 0-3
            me = next(
                i
                for i, v in enumerate(vs.validators)
                if all(vs.proposer_for_round(r).address != v.address for r in range(4))
            )
        self.me = me
        self.config = CoreConfig(
            CHAIN, PARAMS, vs.validators[me].address, ignore_lock_for_tests=broken
        )
        self.pv = PrivValidator(keys.signer_at(me), MemoryPrivvalStore())
        self.state = new_height_state(self.config, 1, vs, app_hash=APP_HASH)
        self.valid: Callable[[Block], bool | None] = lambda block: True
        self.actions: list = []
        self.events: list = []

    def feed(self, event: object) -> None:
        queue = [event]
        while queue:
            ev = queue.pop(0)
            self.events.append(ev)
            self.state, actions = self.core.step(self.state, ev)
            for a in actions:
                if isinstance(a, SignVote):
                    try:
                        signed = self.pv.sign_vote(CHAIN, replace(a.vote, timestamp_ms=1))
                    except DoubleSignError as exc:
                        raise AssertionError(f"the core asked to double sign: {exc}") from exc
                    queue.append(VoteSigned(signed))
                elif isinstance(a, SignProposal):
                    p = self.pv.sign_proposal(CHAIN, replace(a.proposal, timestamp_ms=1))
                    queue.append(ProposalSigned(ProposalMessage(p, a.block)))
                elif isinstance(a, ValidateBlock):
                    verdict = self.valid(a.block)
                    if verdict is not None:
                        queue.append(BlockValidated(a.block.block_id(), verdict))
                elif isinstance(a, RequestProposal):
                    queue.append(
                        ProposalBlock(a.height, a.round, self.block(b"mine", a.proposer_address))
                    )
                self.actions.append(a)

    def answer(self, block: Block, verdict: bool) -> None:
        """The application's late verdict on a pending block."""
        self.feed(BlockValidated(block.block_id(), verdict))

    def start(self) -> None:
        self.state, actions = self.core.resume(self.state)
        self.actions.extend(actions)
        self.feed(TimeoutFired(1, 0, Step.NEW_HEIGHT))

    def to_round(self, round_: int) -> None:
        """Leave rounds through timeoutPrecommit (line 65) until ``round_``."""
        while self.state.round < round_:
            self.feed(TimeoutFired(1, self.state.round, Step.PRECOMMIT))
        assert self.state.round == round_ and self.state.step == Step.PROPOSE

    def block(self, tag: bytes, proposer: bytes | None = None, app_hash: bytes = APP_HASH) -> Block:
        vs = self.keys.valset
        return make_block(
            chain_id=CHAIN,
            height=1,
            time_ms=5,
            last_block_id=None,
            last_commit=None,
            txs=[tag],
            evidence=[],
            validators=vs,
            next_validators=vs,
            app_hash=app_hash,
            last_results_hash=EMPTY_HASH,
            proposer_address=proposer or vs.proposer_for_round(0).address,
        )

    def proposal(self, round_: int, block: Block, pol_round: int = -1, signer: int | None = None):
        """The signed proposal message of ``round_`` (by its proposer unless ``signer``)."""
        vs = self.keys.valset
        if signer is None:
            signer = vs.index_of(vs.proposer_for_round(round_).address)
        p = Proposal(1, round_, pol_round, block.block_id(), 3)
        p = replace(p, signature=self.keys.signer_at(signer).sign(p.sign_bytes(CHAIN)))
        return ProposalMessage(p, block)

    def propose(self, round_: int, block: Block, pol_round: int = -1) -> None:
        """The round's proposer proposes ``block``."""
        self.feed(ProposalReceived(self.proposal(round_, block, pol_round)))

    def votes(
        self, kind: VoteType, round_: int, block: Block | BlockID | None, who: list[int]
    ) -> None:
        bid = block.block_id() if isinstance(block, Block) else block
        for i in who:
            self.feed(VoteReceived(self.keys.vote(i, kind, 1, round_, bid)))

    def others(self, n: int) -> list[int]:
        """The ``n`` most powerful validators other than us."""
        return [i for i in range(len(self.keys.valset)) if i != self.me][:n]

    def my_votes(self, kind: VoteType, round_: int) -> list:
        return [
            a.message.block_id
            for a in self.actions
            if isinstance(a, Broadcast)
            and isinstance(a.message, Vote)
            and a.message.type == kind
            and a.message.round == round_
        ]

    def timeouts(self) -> list[ScheduleTimeout]:
        return [a for a in self.actions if isinstance(a, ScheduleTimeout)]

    def commits(self) -> list[CommitBlock]:
        return [a for a in self.actions if isinstance(a, CommitBlock)]

    def halts(self) -> list[Halt]:
        return [a for a in self.actions if isinstance(a, Halt)]
