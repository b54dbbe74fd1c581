"""``clearchain status``: how far a node has synced, as % and ETA.

The target is the highest height of the nodes given with ``--against`` (nodes known to be in
sync). Without one, a node that is catching up is measured by block time instead: the share of
the time from its earliest stored block to now that its latest block covers. The rate comes from
watching the node for ``--sample`` seconds.
"""

from __future__ import annotations

import time
from typing import Any

import click

from cli import views
from cli.output import client_for, emit_json, json_option, node_option, reports_rpc_errors, show
from client.results import Status
from node.progress import Progress, format_eta


@click.command("status")
@node_option
@click.option("--against", "references", multiple=True, metavar="URL",
              help="RPC URL of a node in sync: its height is the target (repeatable)")
@click.option("--sample", type=click.FloatRange(0, 60), default=2.0, show_default=True,
              help="seconds to watch the node for its sync rate (0: no ETA)")
@json_option
@reports_rpc_errors
def command(node_url: str, references: tuple[str, ...], sample: float, as_json: bool) -> None:
    """Sync progress of a node: height, target, % and ETA.

    \b
      clearchain status --node http://127.0.0.1:26611 --against http://127.0.0.1:26601
    """
    client = client_for(node_url)
    first, first_at = client.status(), time.monotonic()
    target = max([first.height, *(client_for(url).status().height for url in references)])
    behind = first.catching_up or first.height < target
    latest, elapsed = first, 0.0
    if sample > 0 and behind:
        time.sleep(sample)
        latest, elapsed = client.status(), time.monotonic() - first_at
        target = max(target, latest.height)
    if references or not latest.catching_up:
        report = _by_height(latest, first, target, elapsed)
    else:
        origin_ns = client.block(latest.earliest_block_height).header.time_ns
        report = by_block_time(latest, first, elapsed, origin_ns, time.time_ns())
    if as_json:
        emit_json(report)
        return
    show(views.fields([
        ("node", f"{latest.moniker} ({latest.chain_id})"), ("height", f"{latest.height:,}"),
        ("target", "unknown (measured by block time; see --against)" if report["target"] is None
         else f"{report['target']:,}"), ("catching up", latest.catching_up),
        ("progress", f"{report['percent']:.1f}%"),
        ("rate", "-" if report["rate"] is None else f"{report['rate']:,.1f} {report['rate_unit']}"),
        ("ETA", format_eta(report["eta_s"])),
    ], title="sync"))


def _by_height(latest: Status, first: Status, target: int, elapsed: float) -> dict[str, Any]:
    progress = Progress(latest.height, target, first.height, elapsed)
    rate = progress.rate
    return {"height": latest.height, "target": target, "catching_up": latest.catching_up,
            "percent": progress.percent, "eta_s": progress.eta_s, "measured_by": "height",
            "rate": rate, "rate_unit": "blocks/s"}


def by_block_time(latest: Status, first: Status, elapsed: float, origin_ns: int, now_ns: int) -> dict[str, Any]:
    """Progress of a node catching up with no known target: block time from ``origin_ns`` (its
    earliest block) to ``now_ns``; the rate is chain seconds synced per second."""
    now_ms, origin_ms = now_ns // 1_000_000, origin_ns // 1_000_000
    progress = Progress(latest.latest_block_time_ns // 1_000_000 - origin_ms, now_ms - origin_ms,
                        first.latest_block_time_ns // 1_000_000 - origin_ms, elapsed)
    rate = progress.rate
    return {"height": latest.height, "target": None, "catching_up": latest.catching_up,
            "percent": progress.percent, "eta_s": progress.eta_s, "measured_by": "block time",
            "rate": None if rate is None else rate / 1000, "rate_unit": "s of chain per s"}
