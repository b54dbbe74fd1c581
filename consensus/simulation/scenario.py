"""A simulation scenario: everything random about one run, derived from the seed and options.

The same (seed, options) always gives the same scenario and, the simulator being deterministic,
the same run; :meth:`SimConfig.command` prints the one command that replays it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from consensus.core import RoundParams

BYZANTINE_BEHAVIOURS = (
    "equivocate",
    "conflicting_proposals",
    "random_votes",
    "bad_signatures",
    "halves",
    "withhold",
)
OMNISCIENT = ("split", "lock")
TARGETED = ("halves", "withhold")
"""Byzantine modes where every byzantine node has the one behaviour of the mode's name."""


@dataclass(frozen=True)
class SimConfig:
    seed: int
    validators: int = 4
    heights: int = 3
    """Heights every correct node must commit (and at least 2 more after the network heals)."""
    faults: bool = True
    """Drops, duplicates, partitions and crashes before the network heals."""
    byzantine: str = "mixed"
    """none | mixed (random subset, random behaviours) | split | lock | halves | withhold
    (see ``byzantine``)."""
    byzantine_power: str = "below_third"
    """below_third (safety must hold) | above_third (a fork may happen: the checker must see it)."""
    broken_lock: bool = False
    """Run correct nodes with a core that ignores its lock (tests only)."""
    relay: bool = True
    """Correct nodes forward first-seen messages (flood gossip)."""
    gossip_ms: int = 60
    """Interval of the periodic re-gossip and catch-up (status) messages."""
    delays: str = "random"
    """random | lock_rotation: in rounds 0-3 of each height only one correct node (another
    each round) gets the round's prevotes in time, so validators lock on different values in
    successive rounds (``world.World.fast_node``)."""

    def command(self) -> str:
        parts = [
            f"python -m consensus.simulation --seed {self.seed} --validators {self.validators}"
        ]
        parts.append(f"--heights {self.heights} --byzantine {self.byzantine}")
        parts.append(f"--byzantine-power {self.byzantine_power}")
        if not self.faults:
            parts.append("--no-faults")
        if self.broken_lock:
            parts.append("--broken-lock")
        if not self.relay:
            parts.append("--no-relay")
        if self.gossip_ms != 60:
            parts.append(f"--gossip-ms {self.gossip_ms}")
        if self.delays != "random":
            parts.append(f"--delays {self.delays}")
        return " ".join(parts)


@dataclass(frozen=True)
class CrashPlan:
    node: int
    at_ms: int
    restart_ms: int


@dataclass
class Scenario:
    config: SimConfig
    powers: list[int]
    byzantine: dict[int, frozenset[str]]
    params: RoundParams
    gst_ms: int
    """Global stabilisation time: no drops, partitions or crashes from here on."""
    drop_p: float
    dup_p: float
    max_delay_ms: int
    partition: tuple[int, int, frozenset[int]] | None
    """(start, end, one side) or None."""
    crashes: list[CrashPlan] = field(default_factory=list)
    gossip_interval_ms: int = 60
    liveness_window_ms: int = 30_000


def make_scenario(config: SimConfig) -> Scenario:
    rng = random.Random(f"scenario:{config.seed}")
    n = config.validators
    powers = [rng.randint(1, 6) for _ in range(n)]
    total = sum(powers)
    byzantine: dict[int, frozenset[str]] = {}
    order = list(range(n))
    rng.shuffle(order)
    if config.byzantine != "none":
        chosen: list[int] = []
        power = 0
        if config.byzantine_power == "above_third":
            for i in order:
                if 3 * power > total:
                    break
                chosen.append(i)
                power += powers[i]
            if 3 * power >= 2 * total and len(chosen) > 1:  # keep some correct nodes deciding
                power -= powers[chosen.pop()]
        else:
            greedy = config.byzantine in OMNISCIENT + TARGETED
            for i in order:
                if 3 * (power + powers[i]) < total and (greedy or rng.random() < 0.7):
                    chosen.append(i)
                    power += powers[i]
        for i in chosen:
            if config.byzantine in OMNISCIENT + TARGETED:
                byzantine[i] = frozenset({config.byzantine})
            else:
                picks = [b for b in BYZANTINE_BEHAVIOURS if rng.random() < 0.5]
                byzantine[i] = frozenset(picks or [rng.choice(BYZANTINE_BEHAVIOURS)])
    params = RoundParams(
        timeout_propose=40,
        timeout_propose_delta=10,
        timeout_prevote=20,
        timeout_prevote_delta=10,
        timeout_precommit=20,
        timeout_precommit_delta=10,
        timeout_commit=30,
        block_max_bytes=1 << 20,
        block_max_txs=100,
    )
    correct = [i for i in range(n) if i not in byzantine]
    gst, drop_p, dup_p, partition, crashes = 0, 0.0, 0.0, None, []
    max_delay = rng.choice([3, 10, 25])
    if config.faults:
        drop_p = rng.choice([0.0, 0.05, 0.2])
        dup_p = rng.choice([0.0, 0.1])
        gst = rng.randint(50, 250)
        if rng.random() < 0.5:
            start = rng.randint(0, gst)
            side = frozenset(i for i in range(n) if rng.random() < 0.5)
            partition = (start, gst, side)
        if rng.random() < 0.5 and correct:
            node = rng.choice(correct)
            at = rng.randint(0, gst)
            crashes.append(CrashPlan(node, at, rng.randint(at + 1, gst + 1)))
    return Scenario(
        config=config,
        powers=powers,
        byzantine=byzantine,
        params=params,
        gst_ms=gst,
        drop_p=drop_p,
        dup_p=dup_p,
        max_delay_ms=max_delay,
        partition=partition,
        crashes=crashes,
        gossip_interval_ms=config.gossip_ms,
    )
