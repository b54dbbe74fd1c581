"""Differential soundness fuzz: random multi-market scenarios through the reference model and the app.

    python -m tests.state.model.fuzz --scenarios 200            # 100-300 blocks each
    python -m tests.state.model.fuzz --scenarios 1 --seed 17 --blocks 47   # replay one failure

Compares every account, market and fund value after every block and every tx's result code,
and checks the model-independent invariants on the app's state (see ``driver.py``). Stops at the
first mismatch (printing the seed, block and a readable diff) unless ``--keep-going``, and writes
``bench/results/soundness.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.state.model.driver import COUNTERS, Mismatch, Stats, run_scenario

ROOT = Path(__file__).resolve().parents[3]


def blocks_for(seed: int, fixed: int | None) -> int:
    """The scenario's length: ``--blocks``, or 100-300 drawn from the seed."""
    return fixed if fixed else 100 + (seed * 7919 + 13) % 201


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "state"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty(state/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.state.model.fuzz",
        description="Drive seeded random clearing scenarios through the independent reference model "
                    "(tests/state/model/model.py, written from state/README.md) and the real ClearingApp "
                    "block by block; compare every value after every block and check invariants.")
    parser.add_argument("--scenarios", type=int, default=100,
                        help="number of scenarios to run, seeds SEED, SEED+1, ... (default 100)")
    parser.add_argument("--blocks", type=int, default=None,
                        help="blocks per scenario (default: 100-300, drawn from each scenario's seed)")
    parser.add_argument("--seed", type=int, default=0, help="first scenario seed (default 0)")
    parser.add_argument("--keep-going", action="store_true",
                        help="record a mismatch or broken invariant and go on with the next scenario "
                             "instead of stopping at the first one")
    parser.add_argument("--no-invariants", action="store_true",
                        help="compare with the model only, skip the model-independent invariants")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "soundness.json"),
                        help="where to write the JSON summary (default bench/results/soundness.json; '-' for none)")
    args = parser.parse_args(argv)

    stats = Stats()
    failures: list[dict] = []
    mismatches = invariant_failures = 0
    start = time.monotonic()
    commit = git_commit()  # the code under test is the code at the start
    total_blocks = sum(blocks_for(args.seed + i, args.blocks) for i in range(args.scenarios))
    done_blocks = 0
    for i in range(args.scenarios):
        seed = args.seed + i
        blocks = blocks_for(seed, args.blocks)
        try:
            run_scenario(seed, blocks, stats, check_invariants=not args.no_invariants)
        except Mismatch as exc:
            if exc.kind.startswith("invariant"):
                invariant_failures += 1
            else:
                mismatches += 1
            failures.append({"seed": seed, "block": exc.height, "kind": exc.kind, "diff": exc.lines[:60]})
            sys.stderr.write("\n" + str(exc) + "\n")
            if not args.keep_going:
                done_blocks += blocks
                break
        done_blocks += blocks
        elapsed = time.monotonic() - start
        rate = stats.blocks / elapsed if elapsed else 0.0
        eta = (total_blocks - done_blocks) / rate if rate else 0.0
        sys.stderr.write(f"\rscenarios {i + 1}/{args.scenarios}  blocks {stats.blocks}  {rate:,.0f} blocks/s  "
                         f"ETA {eta:,.0f}s  liquidations {stats.counts['liquidations']}  "
                         f"adl {stats.counts['adl_fills']}  failures {mismatches + invariant_failures}   ")
        sys.stderr.flush()
    sys.stderr.write("\n")
    seconds = round(time.monotonic() - start, 1)
    result = {
        "scenarios": stats.scenarios + len(failures), "blocks": stats.blocks,
        **{c: stats.counts[c] for c in COUNTERS},
        "mismatches": mismatches, "invariant_failures": invariant_failures, "seconds": seconds,
        "commit": commit, "first_seed": args.seed, "blocks_per_scenario": args.blocks or "100-300",
        "txs": stats.txs, "fills": stats.fills, "result_codes": {str(k): v for k, v in sorted(stats.codes.items())},
        "coverage": stats.coverage,
        "failures": failures[:20],
    }
    if args.out != "-":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("failures", "result_codes")}
    print(json.dumps(summary, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
