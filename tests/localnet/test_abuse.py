"""Every attack of ``localnet/abuse.py`` against a one-validator node process, with small pools:
newcomers are always served, the chain keeps committing, memory comes back, the node answers
afterwards (issue 20; the full-size figures are ``bench/rpc_abuse.py``'s)."""

from __future__ import annotations

from pathlib import Path

import trio

from localnet.abuse import ATTACKS, NodeProcess, Outcome, height, http_call, run_all
from rpc.limits import Limits

SMALL = {"max_open_connections": 32, "max_websocket_clients": 8, "max_commit_waiters": 8}
SECONDS = 4.0
"""Per attack: 8 attacks, ~6 s each with the settling, under a minute in all."""


def test_newcomers_are_served_through_every_attack(tmp_path: Path) -> None:
    limits = Limits(**SMALL)
    node = NodeProcess.start(tmp_path / "node", **SMALL)
    outcomes: list[Outcome] = []

    async def main() -> None:
        outcomes.extend(await run_all(node, limits, SECONDS))
        assert await http_call(node.port, "health", timeout=10) == {}
        before = await height(node.port)
        with trio.fail_after(20):
            while await height(node.port) <= before:
                await trio.sleep(0.2)

    try:
        trio.run(main)
        assert node.process.poll() is None, "the node died"
    finally:
        node.stop()
    assert [o.attack for o in outcomes] == [a.name for a in ATTACKS]
    first = outcomes[0].rss_before_mb
    for o in outcomes:
        figures = o.summary()
        assert o.probes >= 20 and not o.probe_failures, figures
        assert o.blocks >= 2, figures  # the chain kept committing
        assert o.rss_peak_mb - o.rss_before_mb < 40, figures
        assert o.rss_after_mb - o.rss_before_mb < 15, figures  # no growth that stays
    assert outcomes[-1].rss_after_mb - first < 40, [o.summary() for o in outcomes]
