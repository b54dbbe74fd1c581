"""A seeded nemesis run on 4 validators in network namespaces, checked from outside.

::

    python -m tests.fault.run --minutes 30 --seed 7      # writes bench/results/faults.json

Starts the testbed and the client load, applies the seeded faults one after another for the
given minutes (an equivocating validator last), stops the load, waits for every node to catch
up, checks the clearing invariants and the validator sets over RPC, stops the nodes, reads every
store, and runs the checks of :mod:`tests.fault.checks`. The report holds the faults applied,
heights, recovery time per fault kind, txs acknowledged vs found, and every problem found
(``safety_violations`` must be 0). Exit code 0 only when no check failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trio

from client import AsyncClient
from localnet.demo import check_invariants, demo_names, demo_signer
from tests.fault import checks
from tests.fault.nemesis import REPEATABLE, WITHOUT_SMALL_DISKS, Fault, Nemesis, schedule
from tests.fault.testbed import Load, Testbed

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.json"
CATCH_UP_S = 90.0


def run(root: Path, seed: int, *, minutes: float | None = None, faults: list[Fault] | None = None,
        kinds: tuple[str, ...] | None = None, equivocate: bool = True, namespaces: bool = True,
        out: Any = print) -> dict[str, Any]:
    """Run the nemesis (``faults`` as given, or the seeded schedule of ``kinds`` for ``minutes``;
    every repeatable kind by default, without disk-full where data cannot sit on small disks)
    and check."""
    bed = Testbed(root, seed=seed, namespaces=namespaces)
    load = Load(bed, seed)
    nemesis = Nemesis(bed, seed)
    started = time.monotonic()
    problems: dict[str, list[str]] = {}
    try:
        bed.start()
        load.start()
        if kinds is None:
            kinds = REPEATABLE if bed.disks else WITHOUT_SMALL_DISKS
        planned = iter(faults) if faults is not None else schedule(seed, bed.size, kinds)
        reserve = 60.0 if equivocate else 0.0
        for fault in planned:
            if minutes is not None and time.monotonic() - started > minutes * 60 - reserve - 15:
                break
            applied = nemesis.run(fault)
            rec = applied.recovery
            out(f"[{time.monotonic() - started:6.0f}s] {fault.kind:<18} node(s) {applied.targets} "
                f"hold {fault.hold_s:g}s amount {fault.amount}: heights {applied.heights_at_heal}, "
                f"moved on {rec.seconds if rec else '?'} s after healing {applied.detail or ''}")
        byzantine = None
        if equivocate:
            byzantine_node = (seed % bed.size)
            byzantine = bed.cluster.keys[byzantine_node].address
            applied = nemesis.run(Fault("equivocate", byzantine_node, 8.0))
            out(f"[{time.monotonic() - started:6.0f}s] equivocate        node {byzantine_node}: "
                f"moved on {applied.recovery.seconds if applied.recovery else '?'} s after it turned honest")
        load.stop()
        top = max(bed.heights())
        bed.cluster.wait_height(list(range(bed.size)), max(top, max((a.height for a in load.acks), default=0)),
                                timeout=CATCH_UP_S)
        addresses = [demo_signer(name).address for name in demo_names()] + [k.address for k in bed.cluster.keys]
        problems["invariants"] = trio.run(_invariants, bed.rpc_url(0), addresses)
        validators_after = {f"node{i}": bed.validator_addresses(i) for i in range(bed.size)}
    finally:
        load.stop()
        bed.close()
    chains = {f"node{i}": checks.read_store(home.store_dir) for i, home in enumerate(bed.cluster.homes)}
    problems["safety"] = checks.check_safety(chains)
    problems["acknowledged"] = checks.check_acknowledged(load.acks, chains)
    problems["liveness"] = checks.check_liveness(a.recovery for a in nemesis.log if a.recovery)
    problems["progress"] = checks.check_progress(chains, at_least=10)
    problems["bursts"] = checks.check_bursts(
        checks.Burst(a.detail["admitted"], a.detail["refused_for_load"],
                     max(a.heights_at_heal) - max(a.heights_before))
        for a in nemesis.log if a.fault.kind == "burst")
    problems["disk_full"] = checks.check_disk_full(
        a.detail["exit_code"] for a in nemesis.log if a.fault.kind == "disk-full")
    if byzantine is not None:
        problems["equivocation"] = checks.check_equivocation(byzantine, chains, validators_after)
    return _report(seed, minutes, bed, nemesis, load, chains, problems, time.monotonic() - started)


async def _invariants(url: str, addresses: list[bytes]) -> list[str]:
    async with AsyncClient(url, timeout=10) as client:
        return await check_invariants(client, addresses)


def _report(seed: int, minutes: float | None, bed: Testbed, nemesis: Nemesis, load: Load,
            chains: dict[str, checks.Chain], problems: dict[str, list[str]], seconds: float) -> dict[str, Any]:
    by_kind: dict[str, list[float | None]] = defaultdict(list)
    for applied in nemesis.log:
        by_kind[applied.fault.kind].append(applied.recovery.seconds if applied.recovery else None)
    found = sum(all(a.tx_hash in chain.get(a.height, checks.BlockFacts(b"", b"", (), (), ())).txs
                    for chain in chains.values()) for a in load.acks)
    return {
        "seed": seed,
        "minutes": minutes,
        "wall_s": round(seconds, 1),
        "validators": bed.size,
        "namespaces": bed.net is not None,
        "faults_applied": {kind: len(times) for kind, times in sorted(by_kind.items())},
        "recover_s": {kind: {"max": max((t for t in times if t is not None), default=None),
                             "median": statistics.median([t for t in times if t is not None] or [0.0]),
                             "not_recovered": sum(t is None for t in times)}
                      for kind, times in sorted(by_kind.items())},
        "faults": [{**asdict(a.fault), "targets": list(a.targets), "heights_at_heal": a.heights_at_heal,
                    "recovered_s": a.recovery.seconds if a.recovery else None,
                    "bound_s": a.recovery.bound_s if a.recovery else None, **a.detail} for a in nemesis.log],
        "heights": {name: max(chain, default=0) for name, chain in chains.items()},
        "txs": {"sent": load.sent, "acknowledged": len(load.acks), "found_on_every_node": found,
                "client_errors": load.failed},
        "safety_violations": len(problems.get("safety", [])),
        "problems": {name: listed for name, listed in problems.items() if listed},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-equivocation", action="store_true")
    parser.add_argument("--loopback", action="store_true", help="no namespaces, even as root")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nemesis-") as root:
        report = run(Path(root), args.seed, minutes=args.minutes, equivocate=not args.no_equivocation,
                     namespaces=not args.loopback)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "faults"}, indent=2))
    print(f"wrote {args.out}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
