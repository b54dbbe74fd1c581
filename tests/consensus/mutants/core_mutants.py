"""Named mutants of ``consensus/core.py``: each one edit that breaks one rule of Algorithm 1.

A mutant is a text replacement on the core's source (the ``old`` text must occur exactly
once, so an edit cannot silently stop applying when the core changes), loaded as a module
under another name: ``consensus.core`` itself is never touched. The mutation check
(``test_mutants.py``) runs every check of ``algorithm1.py`` on every mutant, and the
simulator configurations a mutant names, and requires each mutant to be killed. The kill
table in ``consensus/README.md`` is generated from this list (and checked to be current).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

CORE = Path(__file__).resolve().parents[3] / "consensus" / "core.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    line: int
    """The line of Algorithm 1 the edit breaks."""
    what: str
    old: str
    new: str
    issue: bool = False
    """Named in issue 17 (mutants that survived the earlier suite)."""
    simulations: tuple[str, ...] = ()
    """Simulator configurations (``SIMULATIONS`` in test_mutants.py) that must also kill it."""


MUTANTS = [
    Mutant(
        "line28_ignores_the_lock",
        28,
        "prevote a line-28 proposal whatever the lock",
        "ok = valid and (s.locked_round <= vr or s.locked_block == bid or ignore_lock)",
        "ok = valid",
        issue=True,
        simulations=("lock_rotation",),
    ),
    Mutant(
        "line28_needs_no_polka",
        28,
        "accept a line-28 proposal whose valid round has no +2/3 prevotes for it",
        "if prevotes is None or not s.validators.two_thirds(prevotes.power_for(bid)):\n"
        "                continue",
        "pass",
        issue=True,
        simulations=("lock_rotation",),
    ),
    Mutant(
        "line22_prevotes_invalid_blocks",
        22,
        "prevote a proposal that fails validation",
        "ok = valid and (s.locked_round == -1",
        "ok = (s.locked_round == -1",
        issue=True,
        simulations=("halves",),
    ),
    Mutant(
        "proposal_signature_unchecked",
        22,
        "accept a proposal without checking the proposer's signature",
        "        if not s.config.verifier(proposer.public_key, sign_bytes, proposal.signature):\n"
        "            return\n",
        "",
        issue=True,
        simulations=("halves",),
    ),
    Mutant(
        "line22_ignores_the_lock",
        22,
        "prevote a fresh proposal while locked on another value",
        "ok = valid and (s.locked_round == -1 or s.locked_block == bid or ignore_lock)",
        "ok = valid",
        simulations=("lock_rotation",),
    ),
    Mutant(
        "line22_first_proposal_only",
        22,
        "consider only the round's first proposal (the earlier core)",
        "for bid, proposal in s.proposals.get(s.round, {}).items():",
        "for bid, proposal in list(s.proposals.get(s.round, {}).items())[:1]:",
    ),
    Mutant(
        "line28_lock_round_strict",
        28,
        "require lockedRound < vr instead of lockedRound <= vr",
        "s.locked_round <= vr",
        "s.locked_round < vr",
    ),
    Mutant(
        "line28_prevotes_invalid_blocks",
        28,
        "prevote an invalid line-28 proposal",
        "ok = valid and (s.locked_round <= vr",
        "ok = (s.locked_round <= vr",
    ),
    Mutant(
        "line28_polka_of_any_value",
        28,
        "take +2/3 prevotes of any kind in the valid round as its polka",
        "two_thirds(prevotes.power_for(bid)):\n                continue",
        "two_thirds(prevotes.power):\n                continue",
    ),
    Mutant(
        "line34_needs_one_value",
        34,
        "schedule timeoutPrevote only when one value has +2/3",
        "if prevotes is None or not s.validators.two_thirds(prevotes.power):\n"
        "        return False\n    s.prevote_timeout_round",
        "if prevotes is None or not s.validators.two_thirds(\n"
        "        max(prevotes.power_by_block.values())\n    ):\n"
        "        return False\n    s.prevote_timeout_round",
        simulations=("halves",),
    ),
    Mutant(
        "line36_ignores_validity",
        36,
        "lock and precommit a polka for an invalid block",
        "if _valid(s, bid) and s.validators.two_thirds(prevotes.power_for(bid)):",
        "if s.validators.two_thirds(prevotes.power_for(bid)):",
    ),
    Mutant(
        "line36_does_not_lock",
        36,
        "precommit a polka without locking on it",
        "                s.locked_block, s.locked_round = bid, s.round\n",
        "",
        simulations=("lock_rotation",),
    ),
    Mutant(
        "line36_locks_after_precommitting",
        36,
        "lock on a polka seen after precommitting nil",
        "            if s.step == Step.PREVOTE:\n"
        "                s.locked_block, s.locked_round = bid, s.round\n",
        "            s.locked_block, s.locked_round = bid, s.round\n"
        "            if s.step == Step.PREVOTE:\n",
    ),
    Mutant(
        "line44_any_two_thirds",
        44,
        "precommit nil on +2/3 prevotes of any kind",
        "not s.validators.two_thirds(prevotes.power_for(None)):",
        "not s.validators.two_thirds(prevotes.power):",
    ),
    Mutant(
        "line44_in_step_propose",
        44,
        "precommit nil on a nil polka before prevoting",
        '"""Line 44: +2/3 prevotes for nil: precommit nil."""\n    if s.step != Step.PREVOTE:',
        '"""Line 44: +2/3 prevotes for nil: precommit nil."""\n'
        "    if s.step not in (Step.PROPOSE, Step.PREVOTE):",
    ),
    Mutant(
        "line47_nil_only",
        47,
        "schedule timeoutPrecommit only on +2/3 nil precommits",
        "not s.validators.two_thirds(precommits.power):",
        "not s.validators.two_thirds(precommits.power_for(None)):",
        simulations=("lock_rotation",),
    ),
    Mutant(
        "line49_ignores_validity",
        49,
        "decide a block with +2/3 precommits that the application refused",
        "        if _valid(s, commit.block_id):\n",
        "        if commit.block_id in s.blocks:\n",
    ),
    Mutant(
        "line49_first_quorum_wins",
        49,
        "decide the first of two blocks with +2/3 precommits (the earlier core)",
        "    if others:\n",
        "    if False:\n",
    ),
    Mutant(
        "catch_up_ignores_our_quorum",
        49,
        "decide a catch-up commit that conflicts with our own +2/3 precommits",
        "        if ours.block_id != bid:\n",
        "        if False:\n",
    ),
    Mutant(
        "line55_any_power",
        55,
        "skip to a higher round on any message of it",
        "if s.validators.one_third(power):",
        "if power > 0:",
    ),
    Mutant(
        "line57_any_step",
        57,
        "timeoutPropose prevotes nil whatever the step",
        "if event.step == Step.PROPOSE and s.step == Step.PROPOSE:  # line 57",
        "if event.step == Step.PROPOSE:  # line 57",
    ),
    Mutant(
        "line61_any_step",
        61,
        "timeoutPrevote precommits nil whatever the step",
        "elif event.step == Step.PREVOTE and s.step == Step.PREVOTE:  # line 61",
        "elif event.step == Step.PREVOTE:  # line 61",
    ),
    Mutant(
        "line65_after_deciding",
        65,
        "timeoutPrecommit starts a new round after the decision",
        "elif event.step == Step.PRECOMMIT and s.step in "
        "(Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT):",
        "elif event.step == Step.PRECOMMIT:",
    ),
    Mutant(
        "stale_timeouts_act",
        65,
        "a timeout of an earlier round acts on the current one",
        "    if event.round != s.round:\n        return\n",
        "",
    ),
]


def load(mutant: Mutant) -> ModuleType:
    """The core with ``mutant`` applied, as a fresh module (``consensus.core`` is untouched)."""
    source = CORE.read_text()
    count = source.count(mutant.old)
    if count != 1:
        raise ValueError(f"mutant {mutant.name}: its text occurs {count} times in {CORE}")
    module = ModuleType(f"consensus.core_mutant_{mutant.name}")
    module.__file__ = str(CORE)
    code = compile(source.replace(mutant.old, mutant.new), f"<mutant {mutant.name}>", "exec")
    exec(code, module.__dict__)  # noqa: S102 - our own source, edited by the table above
    return module
