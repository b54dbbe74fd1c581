"""Consensus figures: core step rate, commit verification, WAL, privval, simulation speed.

Run: ``.venv/bin/python bench/bft.py`` (not consensus.py: that name would shadow the package) (prints, and writes bench/results/consensus.json).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from consensus.commit import commit_from_votes, verify_commit
from consensus.core import RoundParams, CoreConfig, new_height_state, step
from primitives.crypto import PrivateKey, Signer
from consensus.events import Step, TimeoutFired, VoteReceived
from primitives.hashing import sha256
from consensus.privval import FilePrivvalStore, PrivValidator
from consensus.simulation import SimConfig, run_simulation
from consensus.types import BlockID, Vote, VoteType
from consensus.validators import Validator, ValidatorSet
from consensus.wal import WAL

CHAIN = "bench"


def _validators(n: int) -> tuple[list[Signer], ValidatorSet]:
    signers = [Signer(PrivateKey(sha256(b"bench-%d" % i))) for i in range(n)]
    vs = ValidatorSet.from_genesis(
        [Validator.from_public_key(s.public_key, 1 + i % 5) for i, s in enumerate(signers)]
    )
    by_address = {s.address: s for s in signers}
    return [by_address[v.address] for v in vs.validators], vs


def _vote(
    signer: Signer, index: int, kind: VoteType, height: int, round_: int, bid: BlockID | None
) -> Vote:
    v = Vote(kind, height, round_, bid, 1, signer.address, index)
    return replace(v, signature=signer.sign(v.sign_bytes(CHAIN)))


def bench_verify_commit(n: int) -> float:
    signers, vs = _validators(n)
    bid = BlockID(sha256(b"block"))
    votes = {i: _vote(s, i, VoteType.PRECOMMIT, 5, 0, bid) for i, s in enumerate(signers)}
    commit = commit_from_votes(vs, 5, 0, bid, votes)
    runs = max(3, 400 // n)
    start = time.perf_counter()
    for _ in range(runs):
        verify_commit(CHAIN, vs, bid, 5, commit)
    return (time.perf_counter() - start) / runs * 1000


def bench_step(n: int) -> float:
    """Events per second through ``step``: every validator's prevote and precommit for nil,
    three rounds per height (signature verification included, no cache)."""
    signers, vs = _validators(n)
    config = CoreConfig(CHAIN, RoundParams(), None)
    fresh, _ = step(new_height_state(config, 1, vs), TimeoutFired(1, 0, Step.NEW_HEIGHT))
    events = []
    for r in range(3):
        for kind in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            events += [VoteReceived(_vote(s, i, kind, 1, r, None)) for i, s in enumerate(signers)]
        events.append(TimeoutFired(1, r, Step.PRECOMMIT))
    repeats = max(1, 2000 // len(events))
    start = time.perf_counter()
    for _ in range(repeats):
        state = fresh
        for ev in events:
            state, _ = step(state, ev)
    return repeats * len(events) / (time.perf_counter() - start)


def bench_wal(directory: Path) -> dict[str, float]:
    signers, _ = _validators(4)
    ev = VoteReceived(_vote(signers[0], 0, VoteType.PREVOTE, 1, 0, None))
    out = {}
    with WAL.open(directory / "bench.wal") as wal:
        for sync in (False, True):
            count = 200 if sync else 20_000
            start = time.perf_counter()
            for _ in range(count):
                wal.append(ev, sync=sync)
            out["wal_append_synced_per_s" if sync else "wal_append_per_s"] = count / (
                time.perf_counter() - start
            )
    return out


def bench_privval(directory: Path) -> float:
    pv = PrivValidator(PrivateKey(sha256(b"bench-pv")), FilePrivvalStore(directory / "pv_state"))
    count = 200
    start = time.perf_counter()
    for h in range(1, count + 1):
        pv.sign_vote(CHAIN, Vote(VoteType.PREVOTE, h, 0, None, 1, pv.address, 0))
    return count / (time.perf_counter() - start)


def bench_simulation(n: int, seeds: int) -> float:
    start = time.perf_counter()
    for seed in range(seeds):
        run_simulation(SimConfig(seed=seed, validators=n))
    return seeds / (time.perf_counter() - start)


def main() -> None:
    logging.getLogger("consensus.wal").setLevel(logging.ERROR)  # the simulator tears WAL tails
    results: dict[str, float] = {}
    for n in (4, 10, 100):
        results[f"verify_commit_ms_{n}_validators"] = bench_verify_commit(n)
    for n in (4, 10):
        results[f"core_step_events_per_s_{n}_validators"] = bench_step(n)
    with tempfile.TemporaryDirectory() as tmp:
        results.update(bench_wal(Path(tmp)))
        results["privval_durable_signs_per_s"] = bench_privval(Path(tmp))
    for n, seeds in ((4, 100), (7, 40), (10, 20)):
        results[f"simulation_seeds_per_s_{n}_validators"] = bench_simulation(n, seeds)
    for key, value in results.items():
        print(f"{key:45s} {value:12.1f}")
    out = Path(__file__).parent / "results" / "consensus.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({k: round(v, 2) for k, v in results.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
