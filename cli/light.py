"""``clearchain light``: follow a chain over RPC, verifying every header it reports.

From an operator's trusted (height, hash), the light client (``node.light_client``) verifies
each new header the node reports (bisection by default, every header with ``--sequential``),
cross-checks it with ``--witness`` nodes, and with ``--account`` proves that account's state by
a Merkle proof against the verified app hash. One JSON line per verified height; a lie or an
attack ends the command with status 1 and says what was wrong.
"""

from __future__ import annotations

import json
import time

import click

from cli.output import client_for, node_option, reports_rpc_errors
from consensus.light import LightClientError, Options
from node.light_client import (
    DEFAULT_TRUSTING_PERIOD_MS,
    AnswerProver,
    AttackDetected,
    LightClient,
    RPCProvider,
)
from rpc.client import UnverifiableAnswer


def _hash(ctx: click.Context, param: click.Parameter, value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter("must be hex") from None
    if len(raw) != 32:
        raise click.BadParameter("must be 32 bytes (64 hex digits)")
    return raw


@click.command("light")
@node_option
@click.option("--trusted-height", type=click.IntRange(min=1), required=True,
              help="height of a header you trust (from a source you trust)")
@click.option("--trusted-hash", callback=_hash, required=True, help="that header's hash, hex")
@click.option("--witness", "witnesses", multiple=True,
              help="RPC URL of another node to cross-check headers with (repeatable)")
@click.option("--trusting-period-hours", type=click.IntRange(min=1),
              default=DEFAULT_TRUSTING_PERIOD_MS // 3_600_000, show_default=True,
              help="how long a verified header may serve as the root of trust")
@click.option("--sequential", is_flag=True, help="verify every header instead of bisecting")
@click.option("--account", help="prove this account's state (clr1...) at every verified height")
@click.option("--blocks", type=click.IntRange(min=1), default=None,
              help="stop after this many verified heights (default: follow forever)")
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="seconds between polls for a new height")
@reports_rpc_errors
def command(node_url: str, trusted_height: int, trusted_hash: bytes, witnesses: tuple[str, ...],
            trusting_period_hours: int, sequential: bool, account: str | None,
            blocks: int | None, interval: float) -> None:
    """Follow a node as a light client: verify its headers and prove account state."""
    # The light client reads headers and commits as plain JSON through the transport; what it
    # proves for the user (--account) is read through the typed client.
    primary = RPCProvider(client_for(node_url).transport.call_unverified, node_url)
    try:
        light = LightClient(
            primary, chain_id=primary.chain_id(), trusted_height=trusted_height,
            trusted_hash=trusted_hash,
            options=Options(trusting_period_ms=trusting_period_hours * 3_600_000),
            witnesses=[RPCProvider(client_for(url).transport.call_unverified, url) for url in witnesses],
            sequential=sequential)
        verifying = client_for(node_url)
        verifying.transport.verify = AnswerProver(light)
        shown = 0
        last = trusted_height
        while blocks is None or shown < blocks:
            block = light.update()
            if block.height == last and shown:
                time.sleep(interval)
                continue
            last = block.height
            line: dict[str, object] = {
                "height": block.height, "hash": block.hash().hex().upper(),
                "app_hash": block.header.app_hash.hex().upper(), "time_ms": block.time_ms,
                "validators": len(block.validators), "verified_headers": len(light.verified)}
            click.echo(json.dumps(line))
            if account:
                click.echo(json.dumps({"height": block.height,
                                       "account": verifying.account(account).raw}))
            shown += 1
    except AttackDetected as exc:
        click.echo(json.dumps({"attack": exc.evidence.kind,
                               "common_height": exc.evidence.common_height,
                               "byzantine": [v.address.hex() for v in
                                             exc.evidence.byzantine_validators]}))
        raise click.ClickException(f"light client attack detected: {exc}") from None
    except (LightClientError, UnverifiableAnswer) as exc:
        raise click.ClickException(f"verification failed: {exc}") from None
