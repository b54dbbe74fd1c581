"""``clearchain query ...``: read the chain through a node's RPC (the typed client), as readable
tables (:mod:`cli.views`) or, with ``--output json`` (alias ``--json``), the node's answer as
parsed (``raw``: every field, integers as decimal strings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli import views
from cli.output import client_for, emit_json, json_option, node_option, reports_rpc_errors, show
from client import Client


@click.group("query")
def command() -> None:
    """Read the chain: status, accounts, positions, markets, prices, blocks, txs, liquidations.

    Tables show amounts in their asset, sizes in the base asset, prices in the quote asset and
    ratios in %; --output json prints every raw field (integers in chain units).
    """


def _height_option(function: Any) -> Any:
    return click.option("--height", type=click.IntRange(min=0), default=None, help="height (default: latest)")(function)


def _hex(value: bytes) -> str:
    return value.hex().upper()


def _raw(answer: Any) -> Any:
    """The JSON a typed answer was parsed from (lists and maps of them too)."""
    if isinstance(answer, tuple):
        return [_raw(item) for item in answer]
    if isinstance(answer, dict) and all(hasattr(v, "raw") for v in answer.values()):
        return {k: v.raw for k, v in answer.items()}
    return answer.raw


@command.command()
@node_option
@json_option
@reports_rpc_errors
def status(node_url: str, as_json: bool) -> None:
    """Chain id, latest height, hashes and sync state of the node."""
    answer = client_for(node_url).status()
    if as_json:
        emit_json(answer.raw)
        return
    show(views.fields([
        ("chain", answer.chain_id), ("moniker", answer.moniker), ("node id", answer.node_id),
        ("height", f"{answer.height:,}"), ("block hash", _hex(answer.latest_block_hash)),
        ("app hash", _hex(answer.latest_app_hash)), ("catching up", answer.catching_up),
        ("validator", _hex(answer.validator_address)), ("voting power", f"{answer.validator_voting_power:,}"),
    ]))


def _clearing(name: str, doc: str, read: Callable[..., Any], view: Callable[[Client, Any], Any],
              argument: str | None = None) -> None:
    """Register a clearing query: ``read(client, [argument,] height)`` answers, ``view(client,
    answer)`` is its table; ``--output json`` prints the answer's JSON (``raw``)."""

    @node_option
    @json_option
    @_height_option
    @reports_rpc_errors
    def run(node_url: str, as_json: bool, height: int | None, **arguments: str) -> None:
        client = client_for(node_url)
        answer = read(client, *arguments.values(), height)
        if as_json:
            emit_json(_raw(answer))
            return
        show(view(client, answer))

    run.__doc__ = doc
    if argument is not None:
        run = click.argument(argument)(run)
    command.command(name)(run)


_clearing("account", "Balances, margin and positions of an account.", Client.account,
          lambda _c, a: views.account(a), "address")
_clearing("positions", "Open positions of an account.", Client.positions, lambda _c, a: views.positions(a),
          "address")
_clearing("health", "Equity, margins, margin ratio and distance to liquidation.", Client.account_health,
          lambda _c, a: views.health(a), "address")
_clearing("markets", "All markets: price, open interest, funding, margins.", Client.markets,
          lambda _c, a: views.markets(a))
_clearing("market", "One market's parameters and state.", Client.market, lambda _c, a: views.market(a), "market_id")
_clearing("prices", "Latest oracle prices.", Client.prices,
          lambda c, a: views.prices(a, c.insurance_fund().quote_asset))
_clearing("insurance-fund", "Insurance fund, fee pool and socialized loss.", Client.insurance_fund,
          lambda _c, a: views.insurance_fund(a))


@command.command()
@click.argument("height", type=click.IntRange(min=0), required=False)
@node_option
@json_option
@reports_rpc_errors
def block(height: int | None, node_url: str, as_json: bool) -> None:
    """A block (default: the latest): header and txs."""
    answer = client_for(node_url).block(height)
    if as_json:
        emit_json(answer.raw)
        return
    header = answer.header
    show(views.fields([
        ("height", f"{header.height:,}"), ("hash", _hex(answer.block_id.hash)), ("chain", header.chain_id),
        ("time", answer.raw["block"]["header"].get("time")), ("txs", len(answer.txs)),
        ("proposer", _hex(header.proposer_address)), ("app hash", _hex(header.app_hash)),
    ], title=f"block {answer.height}"))


@command.command()
@click.argument("tx_hash")
@node_option
@json_option
@reports_rpc_errors
def tx(tx_hash: str, node_url: str, as_json: bool) -> None:
    """A committed tx by hash: where it is and what it did."""
    answer = client_for(node_url).tx(tx_hash)
    if as_json:
        emit_json(answer.raw)
        return
    result = answer.result
    show(views.fields([("hash", _hex(answer.hash)), ("height", answer.height), ("index", answer.index),
                       ("code", result.code), ("log", result.log)]))
    if result.events:
        show(views.table(("event", "attributes"), [(e.type, " ".join(f"{k}={v}" for k, v in e.attributes))
                                                    for e in result.events]))


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
    """Liquidations in a height range, oldest first (amounts in chain units)."""
    answer = client_for(node_url).liquidations(min_height, max_height, page, per_page)
    if as_json:
        emit_json(answer.raw)
        return
    click.echo(f"{answer.total} waterfall event(s); page {answer.page}")
    rows = [(i.get("height"), i.get("type"), " ".join(f"{k}={v}" for k, v in (i.get("attrs") or {}).items()))
            for i in answer.liquidations if isinstance(i, dict)]
    if rows:
        show(views.table(("height", "event", "attributes (chain units)"), rows, numeric=("height",)))


@command.command()
@click.option("--limit", type=click.IntRange(min=1, max=100), default=30, show_default=True)
@node_option
@json_option
@reports_rpc_errors
def mempool(limit: int, node_url: str, as_json: bool) -> None:
    """Size of the node's mempool."""
    answer = client_for(node_url).num_unconfirmed_txs()
    if as_json:
        emit_json(answer.raw)
        return
    show(views.fields([("txs", f"{answer.n_txs:,}"), ("bytes", f"{answer.total_bytes:,}")], title="mempool"))


@command.command()
@node_option
@json_option
@reports_rpc_errors
def validators(node_url: str, as_json: bool) -> None:
    """The current validator set."""
    answer = client_for(node_url).validators()
    if as_json:
        emit_json(answer.raw)
        return
    show(views.table(("address", "power", "priority"),
                     [(_hex(v.address), f"{v.voting_power:,}", f"{v.proposer_priority:,}") for v in answer.validators],
                     numeric=("power", "priority")))
