"""Deterministic, seeded simulation of a validator network running the consensus core.

``python -m consensus.simulation --seed N [--validators 7 ...]`` runs one scenario and prints
the result; a failing run prints the exact command that replays it.
"""

from consensus.simulation.scenario import SimConfig
from consensus.simulation.world import SimResult, run_simulation

__all__ = ["SimConfig", "SimResult", "run_simulation"]
