"""Algorithm 1's vote rules checked from outside, on every vote a correct validator signs.

The checker sees everything signed anywhere in the simulated world (every proposal signed by a
round's proposer, every vote of every validator, byzantine ones included) and asks of each
vote a correct validator signs whether the paper allows it, whatever that validator received:

- a prevote for v in round r (lines 22 and 28): v was proposed in r by proposer(h, r) with
  valid round vr, v is valid, and either vr = -1 and the validator is unlocked or locked on v,
  or +2/3 of the power prevoted v in vr and the validator's lock is no newer than vr (or is
  on v);
- a precommit for v in round r (line 36): v was proposed in r, is valid, and +2/3 of the power
  prevoted v in r.

A validator's lock is its last precommit for a value at the height (line 36 sets
``lockedValue``/``lockedRound`` exactly when it precommits one). Votes the world saw signed are
a superset of what any node counted, so a violation is a real breach of the rule, never a
message that merely had not arrived. This catches a core that breaks a lock or a polka
condition even when the run does not fork.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus.types import Block, BlockID, Proposal, Vote, VoteType
from consensus.validators import ValidatorSet


class VoteRuleChecker:
    def __init__(
        self,
        validator_set: Callable[[int], ValidatorSet],
        block_is_valid: Callable[[Block], bool],
    ) -> None:
        self._validator_set = validator_set
        self._block_is_valid = block_is_valid
        self.proposals: dict[tuple[int, int, BlockID], set[int]] = {}
        """(height, round, block id) -> valid rounds it was proposed with by the proposer."""
        self.blocks: dict[BlockID, Block] = {}
        self.prevoters: dict[tuple[int, int, BlockID | None], set[bytes]] = {}
        """(height, round, block id) -> addresses that signed a prevote for it."""
        self.locks: dict[tuple[bytes, int], tuple[int, BlockID]] = {}
        """(address, height) -> (round, value) of its latest precommit for a value."""
        self.violations: list[str] = []

    def note_proposal(self, proposal: Proposal, block: Block) -> None:
        """A proposal signed by its round's proposer."""
        key = (proposal.height, proposal.round, proposal.block_id)
        self.proposals.setdefault(key, set()).add(proposal.pol_round)
        self.blocks[proposal.block_id] = block

    def note_vote(self, vote: Vote) -> None:
        """Any vote signed by anyone (correct or byzantine)."""
        if vote.type == VoteType.PREVOTE:
            key = (vote.height, vote.round, vote.block_id)
            self.prevoters.setdefault(key, set()).add(vote.validator_address)

    def check_correct_vote(self, vote: Vote) -> None:
        """A vote a correct validator signed: is the paper's rule for it met?"""
        self.note_vote(vote)
        bid = vote.block_id
        if bid is None:
            return
        h, r, who = vote.height, vote.round, vote.validator_address
        where = f"validator {who.hex()[:8]} h={h} r={r}"
        valid_rounds = self.proposals.get((h, r, bid))
        if valid_rounds is None:
            self.violations.append(f"{where}: voted for {bid.hash.hex()[:8]}, not proposed in r")
            return
        if not self._block_is_valid(self.blocks[bid]):
            self.violations.append(f"{where}: voted for invalid block {bid.hash.hex()[:8]}")
            return
        if vote.type == VoteType.PRECOMMIT:
            if not self._polka(h, r, bid):
                self.violations.append(
                    f"{where}: precommitted {bid.hash.hex()[:8]} without a polka"
                )
                return
            previous = self.locks.get((who, h))
            if previous is None or previous[0] <= r:
                self.locks[(who, h)] = (r, bid)
            return
        lock_round, lock_value = self.locks.get((who, h), (-1, None))
        for vr in sorted(valid_rounds):
            if vr == -1 and (lock_round == -1 or lock_value == bid):
                return  # line 22
            if 0 <= vr < r and self._polka(h, vr, bid) and (lock_round <= vr or lock_value == bid):
                return  # line 28
        self.violations.append(
            f"{where}: prevoted {bid.hash.hex()[:8]} (valid rounds {sorted(valid_rounds)}) while "
            f"locked on {lock_value.hash.hex()[:8] if lock_value else None} from round "
            f"{lock_round}, against lines 22/28"
        )

    def _polka(self, height: int, round_: int, bid: BlockID) -> bool:
        vs = self._validator_set(height)
        power = sum(vs.get(a).voting_power for a in self.prevoters.get((height, round_, bid), ()))
        return vs.two_thirds(power)
