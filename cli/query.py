"""``clearchain query ...``: read the chain through a node's RPC (the typed client), as tables or
``--json`` (the node's answer as parsed, ``raw``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli.output import client_for, emit, json_option, node_option, reports_rpc_errors, table
from client import Client


@click.group("query")
def command() -> None:
    """Read the chain: status, accounts, positions, markets, prices, blocks, txs, liquidations."""


def _height_option(function: Any) -> Any:
    return click.option("--height", type=click.IntRange(min=0), default=None, help="height (default: latest)")(function)


def _hex(value: bytes) -> str:
    return value.hex().upper()


@command.command()
@node_option
@json_option
@reports_rpc_errors
def status(node_url: str, as_json: bool) -> None:
    """Chain id, latest height, hashes and sync state of the node."""
    answer = client_for(node_url).status()
    if as_json:
        emit(answer.raw, True)
        return
    emit({
        "chain": answer.chain_id, "moniker": answer.moniker, "node id": answer.node_id,
        "height": answer.height, "block hash": _hex(answer.latest_block_hash),
        "app hash": _hex(answer.latest_app_hash), "catching up": answer.catching_up,
        "validator": _hex(answer.validator_address), "voting power": answer.validator_voting_power,
    }, False)


def _simple(name: str, read: Callable[[Client, dict[str, Any]], Any], doc: str, takes_address: bool = False) -> None:
    """Register a query command that prints one typed answer (its JSON: ``raw``)."""

    @node_option
    @json_option
    @_height_option
    @reports_rpc_errors
    def run(node_url: str, as_json: bool, height: int | None, address: str | None = None) -> None:
        params = {"height": height, **({"address": address} if takes_address else {})}
        answer = read(client_for(node_url), params)
        emit(_raw(answer), as_json)

    run.__doc__ = doc
    if takes_address:
        run = click.argument("address")(run)
    command.command(name)(run)


def _raw(answer: Any) -> Any:
    """The JSON a typed answer was parsed from (lists and maps of them too)."""
    if isinstance(answer, tuple):
        return [_raw(item) for item in answer]
    if isinstance(answer, dict) and all(hasattr(v, "raw") for v in answer.values()):
        return {k: v.raw for k, v in answer.items()}
    return answer.raw


_simple("account", lambda c, p: c.account(**p), "Balances of an account.", takes_address=True)
_simple("positions", lambda c, p: c.positions(**p), "Open positions of an account.", takes_address=True)
_simple("health", lambda c, p: c.account_health(**p), "Equity, IMR, MMR and distance to liquidation.",
        takes_address=True)
_simple("markets", lambda c, p: c.markets(**p), "All markets.")
_simple("prices", lambda c, p: c.prices(**p), "Latest oracle prices.")
_simple("insurance-fund", lambda c, p: c.insurance_fund(**p), "Insurance fund balance.")


@command.command()
@click.argument("market_id")
@node_option
@json_option
@_height_option
@reports_rpc_errors
def market(market_id: str, node_url: str, as_json: bool, height: int | None) -> None:
    """One market's parameters and state."""
    emit(client_for(node_url).market(market_id, height).raw, as_json)


@command.command()
@click.argument("height", type=click.IntRange(min=0), required=False)
@node_option
@json_option
@reports_rpc_errors
def block(height: int | None, node_url: str, as_json: bool) -> None:
    """A block (default: the latest): header and txs."""
    answer = client_for(node_url).block(height)
    if as_json:
        emit(answer.raw, True)
        return
    header = dict(answer.raw["block"]["header"])
    header["hash"] = _hex(answer.block_id.hash)
    header["num_txs"] = len(answer.txs)
    emit(header, False, title=f"block {answer.height}")


@command.command()
@click.argument("tx_hash")
@node_option
@json_option
@reports_rpc_errors
def tx(tx_hash: str, node_url: str, as_json: bool) -> None:
    """A committed tx by hash: where it is and what it did."""
    answer = client_for(node_url).tx(tx_hash)
    if as_json:
        emit(answer.raw, True)
        return
    result = answer.result
    emit({"hash": _hex(answer.hash), "height": answer.height, "index": answer.index,
          "code": result.code, "log": result.log}, False)
    if result.events:
        click.echo("events:")
        for event in result.events:
            click.echo(f"  {event.type}: {event.as_dict()}")


@command.command()
@click.option("--min-height", type=click.IntRange(min=1), default=None)
@click.option("--max-height", type=click.IntRange(min=1), default=None)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(min=1, max=100), default=30, show_default=True)
@node_option
@json_option
@reports_rpc_errors
def liquidations(min_height: int | None, max_height: int | None, page: int, per_page: int, node_url: str,
                 as_json: bool) -> None:
    """Liquidations in a height range, oldest first."""
    answer = client_for(node_url).liquidations(min_height, max_height, page, per_page)
    if as_json:
        emit(answer.raw, True)
        return
    click.echo(f"{answer.total} waterfall event(s); page {answer.page}")
    rows = [{"height": i.get("height"), "event": i.get("type"), **(i.get("attrs") or {})}
            for i in answer.liquidations if isinstance(i, dict)]
    if rows:
        click.echo(table(rows))


@command.command()
@click.option("--limit", type=click.IntRange(min=1, max=100), default=30, show_default=True)
@node_option
@json_option
@reports_rpc_errors
def mempool(limit: int, node_url: str, as_json: bool) -> None:
    """Size of the node's mempool."""
    emit(client_for(node_url).num_unconfirmed_txs().raw, as_json)


@command.command()
@node_option
@json_option
@reports_rpc_errors
def validators(node_url: str, as_json: bool) -> None:
    """The current validator set."""
    answer = client_for(node_url).validators()
    if as_json:
        emit(answer.raw, True)
        return
    click.echo(table([{"address": _hex(v.address), "power": v.voting_power, "priority": v.proposer_priority}
                      for v in answer.validators]))
