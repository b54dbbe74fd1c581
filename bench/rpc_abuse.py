"""RPC abuse: does a newcomer still get an answer while abusive clients hammer the node? (issue 20)

Starts a one-validator node as its own process on 127.0.0.1 with the limits it runs by default
(``rpc/limits.py``, or ``--limit name=value``), then runs each attack of ``localnet/abuse.py`` in
turn, each with twice as many connections as the pool it targets (reconnecting when evicted):
request-head and body dribblers, keep-alives that dribble their next request, idle keep-alives,
silent connections, WebSockets that subscribe and never read, ``broadcast_tx_commit`` waiters,
and a flood of invalid ``broadcast_tx_commit``. Meanwhile a probe opens a new connection every
100 ms for ``health``/``status`` (over a WebSocket every other time in the WebSocket attack).

    .venv/bin/python bench/rpc_abuse.py [--seconds 10] [--only header_dribble,...] [--limit max_open_connections=64]

Prints, per attack, the probe's success rate and p50/p99 latency, the node's RSS before, at its
peak and after (1.5 s after the attack stops) and the blocks made; writes
``bench/results/rpc_abuse.json``. The attackers and the probe share one process (and the node's
two cores): latencies include their own scheduling.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localnet.abuse import ATTACKS, NodeProcess, Outcome, run_all  # noqa: E402
from rpc.limits import CONFIGURED, Limits  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "rpc_abuse.json"


def _limit(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    if name not in CONFIGURED or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected name=integer with name one of {', '.join(CONFIGURED)}")
    return name, int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each attack (default 10)")
    parser.add_argument("--only", default="", help="comma-separated attack names: "
                        + ", ".join(a.name for a in ATTACKS))
    parser.add_argument("--limit", type=_limit, action="append", default=[],
                        help="an [rpc] limit for the node, name=value (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args()
    chosen = tuple(a for a in ATTACKS if not args.only or a.name in args.only.split(","))
    overrides = dict(args.limit)
    limits = dataclasses.replace(Limits(), **overrides)

    print(f"{'attack':24} {'conns':>5} {'probes':>6} {'ok':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'rss before/peak/after MB':>25} {'blocks':>6}")

    def report(o: Outcome) -> None:
        print(f"{o.attack:24} {o.connections:5} {o.probes:6} {o.success_rate:7.1%} "
              f"{o.percentile_ms(0.5):7.1f} {o.percentile_ms(0.99):7.1f} "
              f"{o.rss_before_mb:8.1f} /{o.rss_peak_mb:6.1f} /{o.rss_after_mb:6.1f} {o.blocks:6}",
              flush=True)
        for failure in o.probe_failures[:3]:
            print(f"    probe failed: {failure}")

    with tempfile.TemporaryDirectory(prefix="rpc-abuse-") as root:
        node = NodeProcess.start(Path(root), **overrides)
        try:
            outcomes = trio.run(run_all, node, limits, args.seconds, chosen, report)
            alive = node.process.poll() is None
        finally:
            node.stop()
    document = {
        "command": "bench/rpc_abuse.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "limits": dataclasses.asdict(limits),
        "probe_every_ms": 100,
        "node_alive_after": alive,
        "attacks": [o.summary() for o in outcomes],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
