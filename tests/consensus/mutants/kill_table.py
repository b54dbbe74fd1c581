"""Run every named mutant against the rule checks and its simulator configurations, and
render the kill table that ``consensus/README.md`` carries.

``python tests/consensus/mutants/kill_table.py`` rewrites the table in the README;
``test_mutants.py`` fails when the README's table differs from what this computes.
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: reach the helpers and the project
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent), str(here.parents[2])]

import functools
from dataclasses import dataclass
from pathlib import Path

from algorithm1 import CHECKS
from consensus_helpers import Keys
from core_mutants import MUTANTS, Mutant, load

import consensus.core
from consensus.simulation import SimConfig, node, run_simulation

README = Path(__file__).resolve().parents[3] / "consensus" / "README.md"
BEGIN, END = "<!-- mutants:begin -->", "<!-- mutants:end -->"

SIMULATIONS: dict[str, dict] = {
    "lock_rotation": {
        "validators": 7,
        "heights": 4,
        "byzantine": "withhold",
        "faults": False,
        "delays": "lock_rotation",
    },
    "halves": {"validators": 7, "byzantine": "halves", "faults": False},
}
"""Simulator configurations a mutant may have to fail (``Mutant.simulations``)."""
SIM_SEEDS = 4
"""Seeds tried per configuration; the first failing one kills (they fail at seed 0 or 1)."""


@dataclass(frozen=True)
class Kill:
    mutant: Mutant
    checks: tuple[str, ...]
    """Rule checks that failed on the mutant (an AssertionError)."""
    errors: tuple[str, ...]
    """Rule checks that crashed on it (anything else: a broken edit, not a kill)."""
    simulations: dict[str, int | None]
    """Simulator configuration -> the first seed whose run failed (None: survived)."""

    @property
    def killed(self) -> bool:
        required = all(self.simulations.get(s) is not None for s in self.mutant.simulations)
        return bool(self.checks) and not self.errors and required


def simulate(core: object, config: dict) -> int | None:
    """The first of SIM_SEEDS seeds whose run with ``core`` fails, or None."""
    real = node.core
    node.core = core  # the simulated nodes drive this core
    try:
        for seed in range(SIM_SEEDS):
            if not run_simulation(SimConfig(seed=seed, **config)).ok:
                return seed
        return None
    finally:
        node.core = real


@functools.cache
def kill(mutant: Mutant) -> Kill:
    module = load(mutant)
    keys = Keys()
    checks, errors = [], []
    for name, (_, check) in CHECKS.items():
        try:
            check(keys, module)
        except AssertionError:
            checks.append(name)
        except Exception as exc:  # noqa: BLE001 - reported, and fails the mutation check
            errors.append(f"{name}: {exc!r}")
    simulations = {name: simulate(module, SIMULATIONS[name]) for name in mutant.simulations}
    return Kill(mutant, tuple(checks), tuple(errors), simulations)


def render() -> str:
    rows = [
        "| mutant | line | the edit | killed by rule checks (`tests/consensus/algorithm1.py`) "
        "| and by simulations |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mutant in MUTANTS:
        k = kill(mutant)
        name = f"`{mutant.name}`" + (" (issue 17)" if mutant.issue else "")
        checks = ", ".join(f"`{c}`" for c in k.checks) or "**none: survives**"
        sims = ", ".join(
            f"{s} (seed {seed})" if seed is not None else f"{s}: **survives**"
            for s, seed in k.simulations.items()
        )
        rows.append(f"| {name} | {mutant.line} | {mutant.what} | {checks} | {sims or '-'} |")
    killed = sum(kill(m).killed for m in MUTANTS)
    rows.append("")
    rows.append(f"{killed} of {len(MUTANTS)} mutants killed.")
    return "\n".join(rows)


def readme_table(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n")


def write_readme() -> None:
    text = README.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + render() + "\n" + text[end:])


if __name__ == "__main__":
    assert consensus.core is not None
    write_readme()
    print(render())
