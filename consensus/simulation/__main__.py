"""Command line: run seeded simulations and print their results."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from consensus.simulation.scenario import SimConfig
from consensus.simulation.world import run_simulation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consensus.simulation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=1, help="run seeds seed..seed+count-1")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--heights", type=int, default=3)
    parser.add_argument(
        "--byzantine",
        choices=["none", "mixed", "split", "lock", "halves", "withhold"],
        default="mixed",
    )
    parser.add_argument(
        "--byzantine-power", choices=["below_third", "above_third"], default="below_third"
    )
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument(
        "--broken-lock", action="store_true", help="correct nodes ignore their lock"
    )
    parser.add_argument("--no-relay", action="store_true")
    parser.add_argument("--gossip-ms", type=int, default=60)
    parser.add_argument("--delays", choices=["random", "lock_rotation"], default="random")
    parser.add_argument("--quiet", action="store_true", help="print failures and the total only")
    args = parser.parse_args(argv)
    logging.getLogger("consensus.wal").setLevel(logging.ERROR)  # torn tails are simulated
    failures = 0
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.count):
        config = SimConfig(
            seed=seed,
            validators=args.validators,
            heights=args.heights,
            faults=not args.no_faults,
            byzantine=args.byzantine,
            byzantine_power=args.byzantine_power,
            broken_lock=args.broken_lock,
            relay=not args.no_relay,
            gossip_ms=args.gossip_ms,
            delays=args.delays,
        )
        result = run_simulation(config)
        if not result.ok:
            failures += 1
        if not result.ok or not args.quiet:
            print(result.summary())
    elapsed = time.perf_counter() - started
    print(f"{args.count - failures}/{args.count} runs passed in {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
