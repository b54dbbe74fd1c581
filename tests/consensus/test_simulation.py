"""Deterministic simulation: 1,000 seeded runs must hold every property; and the checker
must be able to fail (a fork with >= 1/3 byzantine power, a core that ignores its lock)."""

from __future__ import annotations

import pytest

from consensus.simulation import SimConfig, run_simulation
from consensus.simulation.__main__ import main
from consensus.simulation.world import World

# (validators, first seed, count): 600 + 250 + 150 = 1,000 seeds
CHUNKS = [(4, start, 100) for start in range(0, 600, 100)]
CHUNKS += [(7, start, 50) for start in range(0, 250, 50)]
CHUNKS += [(10, start, 50) for start in range(0, 150, 50)]


@pytest.mark.parametrize(("validators", "start", "count"), CHUNKS)
def test_seeds_hold_every_property(validators: int, start: int, count: int) -> None:
    failures = []
    for seed in range(start, start + count):
        result = run_simulation(SimConfig(seed=seed, validators=validators))
        if not result.ok:
            failures.append(result.summary())
    assert not failures, "\n".join(failures)


def test_runs_are_deterministic() -> None:
    config = SimConfig(seed=11, validators=7)
    first, second = run_simulation(config), run_simulation(config)
    assert first.summary() == second.summary()
    assert (first.steps, first.messages, first.heights) == (
        second.steps,
        second.messages,
        second.heights,
    )


def test_faults_are_really_exercised() -> None:
    """Across a few seeds: crashes with WAL replay, evidence committed, privval refusals possible."""
    replayed = crashes = evidence = 0
    for seed in range(40):
        world = World(SimConfig(seed=seed, validators=4))
        result = world.run()
        assert result.ok, result.summary()
        replayed += world.replayed_events
        crashes += result.crashes
        evidence += result.evidence_committed
    assert crashes > 0 and replayed > 0 and evidence > 0


def test_a_third_or_more_byzantine_power_forks() -> None:
    """With byzantine power above 1/3, omniscient equivocators split the correct nodes."""
    forks = []
    for seed in range(30):
        result = run_simulation(
            SimConfig(
                seed=seed,
                validators=4,
                byzantine="split",
                byzantine_power="above_third",
                faults=False,
            )
        )
        if any(v.startswith("agreement") for v in result.violations):
            forks.append(result)
    assert forks, "the checker never saw the fork that >= 1/3 byzantine power allows"
    assert "python -m consensus.simulation --seed" in forks[0].summary()


LOCK_ATTACK = {
    "validators": 7,
    "heights": 6,
    "byzantine": "lock",
    "faults": False,
    "relay": False,
    "gossip_ms": 1000,
}


def test_a_core_that_ignores_its_lock_is_caught() -> None:
    """The same attack, below 1/3, forks only the deliberately broken core."""
    forked = []
    for seed in range(30, 60):
        result = run_simulation(SimConfig(seed=seed, broken_lock=True, **LOCK_ATTACK))
        if any(v.startswith("agreement") for v in result.violations):
            forked.append(seed)
    assert forked, "the broken core was not caught"
    for seed in forked:
        correct = run_simulation(SimConfig(seed=seed, **LOCK_ATTACK))
        assert correct.ok, correct.summary()


def test_command_line_prints_the_replay_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "3", "--validators", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK seed=3 validators=4") and "1/1 runs passed" in out
    code = main(
        [
            "--seed",
            "0",
            "--count",
            "4",
            "--validators",
            "4",
            "--byzantine",
            "split",
            "--byzantine-power",
            "above_third",
            "--no-faults",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    if code:  # a fork among these seeds: the exact replay command is printed
        assert "replay: python -m consensus.simulation --seed" in out
        assert "--byzantine split --byzantine-power above_third --no-faults" in out


LOCK_ROTATION = {
    "heights": 4,
    "byzantine": "withhold",
    "delays": "lock_rotation",
}
# (name, options, seeds): byzantine proposers splitting the correct nodes, votes withheld,
# targeted delays that move locks around; with the scenario's faults unless switched off
ADVERSARIES = [
    ("halves-4", {"validators": 4, "byzantine": "halves"}, 60),
    ("halves-7", {"validators": 7, "byzantine": "halves"}, 30),
    ("withhold-7", {"validators": 7, "byzantine": "withhold"}, 30),
    ("lock-rotation-4", {"validators": 4, **LOCK_ROTATION}, 30),
    ("lock-rotation-7", {"validators": 7, "faults": False, **LOCK_ROTATION}, 8),
]


@pytest.mark.parametrize(
    ("options", "seeds"), [a[1:] for a in ADVERSARIES], ids=[a[0] for a in ADVERSARIES]
)
def test_locking_adversaries_hold_every_property(options: dict, seeds: int) -> None:
    failures = []
    for seed in range(seeds):
        result = run_simulation(SimConfig(seed=seed, **options))
        if not result.ok:
            failures.append(result.summary())
    assert not failures, "\n".join(failures)


def _locked_values(world: World) -> tuple[int, int]:
    """(heights where correct validators locked on different values, validators that locked
    on one value and later on another), from the precommits they signed."""
    byzantine = {n.address for n in world.nodes if n.byzantine}
    per_height: dict[int, set] = {}
    per_validator: dict[tuple, set] = {}
    for (address, height, _, step), signed in world.signed.items():
        block_id = signed[0]
        if step == 3 and block_id is not None and address not in byzantine:
            per_height.setdefault(height, set()).add(block_id)
            per_validator.setdefault((address, height), set()).add(block_id)
    return (
        sum(1 for ids in per_height.values() if len(ids) > 1),
        sum(1 for ids in per_validator.values() if len(ids) > 1),
    )


def test_lock_rotation_locks_validators_on_different_values() -> None:
    split = relocked = 0
    for seed in range(3):
        world = World(SimConfig(seed=seed, validators=7, faults=False, **LOCK_ROTATION))
        result = world.run()
        assert result.ok, result.summary()
        heights, validators = _locked_values(world)
        split += heights
        relocked += validators
    assert split > 0 and relocked > 0
    plain = World(SimConfig(seed=0, validators=7, faults=False, heights=4, byzantine="none"))
    assert plain.run().ok and _locked_values(plain) == (0, 0)  # the adversary makes them


def test_the_rule_checker_catches_a_broken_lock_without_a_fork() -> None:
    """A core that ignores its lock breaks line 22 under lock_rotation: the checker sees the
    vote itself, whether or not the run forks."""
    caught = []
    for seed in range(3):
        result = run_simulation(
            SimConfig(seed=seed, validators=7, faults=False, broken_lock=True, **LOCK_ROTATION)
        )
        caught += [v for v in result.violations if v.startswith("rules:")]
    assert caught and "locked on" in caught[0]
