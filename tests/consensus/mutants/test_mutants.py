"""The mutation check: every named edit of consensus/core.py (core_mutants.py) must be killed
by the rule checks (algorithm1.py) and by the simulator configurations it names; the kill
table in consensus/README.md must be the one computed here."""

from __future__ import annotations

import pytest
from core_mutants import CORE, MUTANTS, Mutant, load
from kill_table import README, kill, readme_table, render


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed(mutant: Mutant) -> None:
    k = kill(mutant)
    assert not k.errors, f"checks crashed on {mutant.name} (a broken edit?): {k.errors}"
    assert k.checks, f"{mutant.name} ({mutant.what}) survives every rule check"
    survived = [s for s in mutant.simulations if k.simulations[s] is None]
    assert not survived, f"{mutant.name} survives the simulations {survived}"


def test_every_rule_has_a_mutant_and_the_issue_names_four() -> None:
    assert {m.line for m in MUTANTS} >= {22, 28, 36, 44, 49, 55, 57, 61, 65}
    assert sum(m.issue for m in MUTANTS) == 4
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


def test_a_mutant_whose_text_is_gone_is_refused() -> None:
    with pytest.raises(ValueError, match="occurs 0 times"):
        load(Mutant("gone", 22, "", "text that is not in the core", ""))
    assert "def step(" in CORE.read_text()


def test_the_readme_kill_table_is_current() -> None:
    expected = render()
    assert readme_table(README.read_text()) == expected, (
        "consensus/README.md's kill table is stale; run "
        "`python tests/consensus/mutants/kill_table.py`, or paste:\n" + expected
    )
