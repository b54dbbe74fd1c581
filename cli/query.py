"""``clearchain query ...``: read the chain through a node's RPC, as tables or ``--json``."""

from __future__ import annotations

from typing import Any

import click

from cli.output import client_for, emit, json_option, node_option, reports_rpc_errors, table


@click.group("query")
def command() -> None:
    """Read the chain: status, accounts, positions, markets, prices, blocks, txs, liquidations."""


def _height_option(function: Any) -> Any:
    return click.option("--height", type=click.IntRange(min=0), default=None, help="height (default: latest)")(function)


def _params(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


@command.command()
@node_option
@json_option
@reports_rpc_errors
def status(node_url: str, as_json: bool) -> None:
    """Chain id, latest height, hashes and sync state of the node."""
    answer = client_for(node_url).call("status")
    if as_json:
        emit(answer, True)
        return
    sync, info = answer["sync_info"], answer["node_info"]
    emit({
        "chain": info["network"], "moniker": info["moniker"], "node id": info["id"],
        "height": sync["latest_block_height"], "block hash": sync["latest_block_hash"],
        "app hash": sync["latest_app_hash"], "catching up": sync["catching_up"],
        "validator": answer["validator_info"]["address"], "voting power": answer["validator_info"]["voting_power"],
    }, False)


def _simple(name: str, method: str, doc: str, takes_address: bool = False) -> None:
    """Register a query command that forwards to one RPC method."""

    @node_option
    @json_option
    @_height_option
    @reports_rpc_errors
    def run(node_url: str, as_json: bool, height: int | None, address: str | None = None) -> None:
        params = _params(height=height, address=address)
        emit(client_for(node_url).call(method, **params), as_json)

    run.__doc__ = doc
    if takes_address:
        run = click.argument("address")(run)
    command.command(name)(run)


_simple("account", "account", "Balances of an account.", takes_address=True)
_simple("positions", "positions", "Open positions of an account.", takes_address=True)
_simple("health", "account_health", "Equity, IMR, MMR and distance to liquidation.", takes_address=True)
_simple("markets", "markets", "All markets.")
_simple("prices", "prices", "Latest oracle prices.")
_simple("insurance-fund", "insurance_fund", "Insurance fund balance.")


@command.command()
@click.argument("market_id")
@node_option
@json_option
@_height_option
@reports_rpc_errors
def market(market_id: str, node_url: str, as_json: bool, height: int | None) -> None:
    """One market's parameters and state."""
    emit(client_for(node_url).call("market", **_params(market=market_id, height=height)), as_json)


@command.command()
@click.argument("height", type=click.IntRange(min=0), required=False)
@node_option
@json_option
@reports_rpc_errors
def block(height: int | None, node_url: str, as_json: bool) -> None:
    """A block (default: the latest): header and txs."""
    answer = client_for(node_url).call("block", **_params(height=height))
    if as_json:
        emit(answer, True)
        return
    header = dict(answer["block"]["header"])
    header["hash"] = answer["block_id"]["hash"]
    header["num_txs"] = str(len(answer["block"]["data"]["txs"]))
    emit(header, False, title=f"block {header.get('height', '?')}")


@command.command()
@click.argument("tx_hash")
@node_option
@json_option
@reports_rpc_errors
def tx(tx_hash: str, node_url: str, as_json: bool) -> None:
    """A committed tx by hash: where it is and what it did."""
    answer = client_for(node_url).call("tx", hash=tx_hash)
    if as_json:
        emit(answer, True)
        return
    result = answer["tx_result"]
    emit({"hash": answer["hash"], "height": answer["height"], "index": answer["index"],
          "code": result["code"], "log": result["log"]}, False)
    if result.get("events"):
        click.echo("events:")
        for event in result["events"]:
            click.echo(f"  {event.get('type')}: {event.get('attributes')}")


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
    answer = client_for(node_url).call("liquidations", **_params(
        min_height=min_height, max_height=max_height, page=page, per_page=per_page))
    if as_json:
        emit(answer, True)
        return
    items = answer["liquidations"]
    click.echo(f"{answer['total']} waterfall event(s); page {answer['page']}")
    rows = [{"height": i.get("height"), "event": i.get("type"), **(i.get("attrs") or {})}
            for i in items if isinstance(i, dict)]
    if rows:
        click.echo(table(rows))


@command.command()
@click.option("--limit", type=click.IntRange(min=1, max=100), default=30, show_default=True)
@node_option
@json_option
@reports_rpc_errors
def mempool(limit: int, node_url: str, as_json: bool) -> None:
    """Size of the node's mempool."""
    emit(client_for(node_url).call("num_unconfirmed_txs"), as_json)


@command.command()
@node_option
@json_option
@reports_rpc_errors
def validators(node_url: str, as_json: bool) -> None:
    """The current validator set."""
    answer = client_for(node_url).call("validators")
    if as_json:
        emit(answer, True)
        return
    click.echo(table([{"address": v["address"], "power": v["voting_power"], "priority": v["proposer_priority"]}
                      for v in answer["validators"]]))
