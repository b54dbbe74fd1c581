"""``clearchain tx ...``: build, sign and submit transactions through a node's RPC.

Keys come from the keyring directory (``~/.clearchain/keys``, ``$CLEARCHAIN_KEYRING`` or
``--keyring-dir``): one ``<name>.json`` per key as written by ``primitives.keyfile.save_key`` (the
layout ``clearchain keys`` manages). The chain id, current height and minimum fee are read from
the node, so a plain ``clearchain tx transfer --from alice --to clr1... --amount 5`` just works.

Amounts, sizes, prices and the fee are human units (``--amount 100.5`` or ``100.5USDC``, ``--price
64250``), read exactly with the places the node states (:mod:`cli.amounts`); ``--raw`` takes
integer chain units instead, for scripts. The ``fills`` file is a venue's machine format: integers.

Orders are not txs: ``tx order`` signs an order and prints it (base64) for a venue, and
``tx trade`` submits a venue's fill of two such orders.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from cli.amounts import ChainUnits
from cli.keyring import default_keyring_dir, valid_key_name
from cli.output import client_for, emit_json, json_option, node_option, reports_rpc_errors
from client import (
    Cancel,
    Client,
    Deposit,
    Fills,
    OracleReport,
    Trade,
    Transfer,
    TxFailed,
    Withdraw,
    sign_order,
)
from client.api import DEFAULT_EXPIRY_BLOCKS, Mode
from client.txs import TxMessage
from primitives import codec
from primitives.crypto import AddressError, KeyFileError, Signer, format_address, parse_address
from primitives.keyfile import load_key
from state.txs import MAX_FILLS


def keyring_dir(explicit: str | None) -> Path:
    return Path(explicit) if explicit else default_keyring_dir()


def load_signer(name: str, directory: str | None) -> Signer:
    """The key ``name`` from the keyring, or a key file given by path."""
    path = Path(name)
    if not (path.suffix == ".json" and path.exists()):
        if not valid_key_name(name):
            raise click.BadParameter(f"invalid key name {name!r}", param_hint="--from")
        path = keyring_dir(directory) / f"{name}.json"
        if not path.exists():
            raise click.BadParameter(f"no key named {name!r} in {path.parent} (see: clearchain keys list)",
                                     param_hint="--from")
    try:
        return Signer(load_key(path))
    except KeyFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None


def address_arg(text: str, what: str) -> bytes:
    try:
        return parse_address(text)
    except AddressError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


@dataclass
class Session:
    """What every tx command needs: a client, a signer, and the chain's current parameters."""

    client: Client
    signer: Signer
    chain_id: str
    height: int
    fee: int | None
    """None: the genesis minimum (per fill for a batch)."""
    expiry: int
    mode: Mode
    as_json: bool
    units: ChainUnits

    def send(self, message: TxMessage, what: str) -> None:
        tx = self.client.build(self.signer, message, fee=self.fee, expiry=self.expiry)
        try:
            answer = self.client.submit(tx, self.mode)
        except TxFailed as failed:
            if self.as_json:
                emit_json(failed.details)
                raise SystemExit(1) from None
            if failed.stage == "check_tx":
                raise click.ClickException(f"{what} rejected by check_tx: code {failed.code} "
                                           f"({failed.code_name}): {failed.log}") from None
            raise click.ClickException(f"{what} failed in block {failed.height}: code {failed.code} "
                                       f"({failed.code_name}): {failed.log}") from None
        if self.as_json:
            emit_json(answer.raw)
            return
        height = getattr(answer, "height", 0)
        where = f" in block {height}" if height else ""
        click.echo(f"{what} accepted{where}: {answer.hash.hex().upper()}")


def _session(ctx: click.Context, key_name: str) -> Session:
    opts = ctx.obj
    client = client_for(opts["node_url"])
    signer = load_signer(key_name, opts["keyring_dir"])
    status = client.status()
    units = ChainUnits(client, opts["raw"])
    fee = None if opts["fee"] is None else units.amount(opts["fee"], units.quote_asset(), "--fee", allow_zero=True)
    return Session(client, signer, status.chain_id, status.height, fee,
                   status.height + opts["expiry_blocks"], opts["mode"], opts["as_json"], units)


@click.group("tx")
@node_option
@click.option("--keyring-dir", type=click.Path(file_okay=False), help="keyring directory (default ~/.clearchain/keys)")
@click.option("--fee", help="fee in the quote asset, e.g. 0.01 (default: the genesis minimum)")
@click.option("--expiry-blocks", type=click.IntRange(min=1), default=DEFAULT_EXPIRY_BLOCKS, show_default=True,
              help="the tx is valid for this many blocks")
@click.option("--mode", type=click.Choice(["sync", "async", "commit"]), default="commit", show_default=True,
              help="broadcast_tx_sync, _async, or wait for the block")
@click.option("--raw", is_flag=True, help="amounts, sizes, prices and fee are integer chain units (scripts)")
@json_option
@click.pass_context
def command(ctx: click.Context, node_url: str, keyring_dir: str | None, fee: str | None, expiry_blocks: int,
            mode: str, raw: bool, as_json: bool) -> None:
    """Sign and submit transactions.

    \b
    Amounts are human units of the asset: --amount 100.5 or --amount 100.5USDC.
    Sizes are in the market's base asset (--size 0.01 for 0.01 BTC) and prices in
    the quote asset per base unit (--price 64250), whole lots and ticks. More
    decimal places than the asset or market has are refused, never rounded; no
    thousands separators.
    --raw: every such value is an integer of chain units instead.
    """
    ctx.obj = {"node_url": node_url, "keyring_dir": keyring_dir, "fee": fee, "expiry_blocks": expiry_blocks,
               "mode": mode, "raw": raw, "as_json": as_json}


FROM = click.option("--from", "key_name", required=True, help="signing key: a keyring name or a key file")


def _override_node(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.obj["node_url"] = value


# `clearchain tx transfer --node URL ...` works as well as `clearchain tx --node URL transfer ...`
# (the query commands take --node after the subcommand; people type it there).
NODE_HERE = click.option("--node", "node_override", default=None, expose_value=False, is_eager=True,
                         callback=_override_node, help="RPC URL of a node (same as `tx --node`)")


def _raw_here(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.obj["raw"] = True


RAW_HERE = click.option("--raw", "raw_override", is_flag=True, expose_value=False, is_eager=True,
                        callback=_raw_here, help="integer chain units (same as `tx --raw`)")


@command.command()
@NODE_HERE
@RAW_HERE
@FROM
@click.option("--to", required=True, help="recipient address (clr1...)")
@click.option("--amount", required=True, help="amount of the asset, e.g. 100.5 or 100.5USDC")
@click.option("--asset", default="USDC", show_default=True)
@click.pass_context
@reports_rpc_errors
def transfer(ctx: click.Context, key_name: str, to: str, amount: str, asset: str) -> None:
    """Move collateral to another account."""
    s = _session(ctx, key_name)
    s.send(Transfer(to=address_arg(to, "--to"), asset=asset, amount=s.units.amount(amount, asset, "--amount")),
           "transfer")


@command.command()
@NODE_HERE
@RAW_HERE
@FROM
@click.option("--account", required=True, help="account credited (clr1...)")
@click.option("--amount", required=True, help="amount of the asset, e.g. 100.5 or 100.5USDC")
@click.option("--asset", default="USDC", show_default=True)
@click.option("--external-id", required=True, help="the bridge's id of the deposit (deduplicates it)")
@click.pass_context
@reports_rpc_errors
def deposit(ctx: click.Context, key_name: str, account: str, amount: str, asset: str, external_id: str) -> None:
    """Attest an external deposit (bridge operators only)."""
    s = _session(ctx, key_name)
    s.send(Deposit(external_id=external_id, account=address_arg(account, "--account"), asset=asset,
                   amount=s.units.amount(amount, asset, "--amount")), "deposit attestation")


@command.command()
@NODE_HERE
@RAW_HERE
@FROM
@click.option("--amount", required=True, help="amount of the asset, e.g. 100.5 or 100.5USDC")
@click.option("--asset", default="USDC", show_default=True)
@click.option("--destination", required=True, help="external address to pay out to")
@click.pass_context
@reports_rpc_errors
def withdraw(ctx: click.Context, key_name: str, amount: str, asset: str, destination: str) -> None:
    """Withdraw collateral (allowed only if initial margin still holds)."""
    s = _session(ctx, key_name)
    s.send(Withdraw(asset=asset, amount=s.units.amount(amount, asset, "--amount"), destination=destination),
           "withdrawal")


@command.command()
@NODE_HERE
@RAW_HERE
@FROM
@click.option("--market", required=True)
@click.option("--side", type=click.Choice(["buy", "sell"]), required=True)
@click.option("--size", required=True, help="in the base asset, e.g. 0.01 (BTC)")
@click.option("--price", required=True, help="limit price in the quote asset per base unit, e.g. 64250")
@click.option("--order-id", type=click.IntRange(min=0), required=True)
@click.option("--lifetime", type=click.IntRange(min=1), default=DEFAULT_EXPIRY_BLOCKS, show_default=True,
              help="blocks the order stays valid")
@click.pass_context
@reports_rpc_errors
def order(ctx: click.Context, key_name: str, market: str, side: str, size: str, price: str, order_id: int,
          lifetime: int) -> None:
    """Sign an order and print it (base64) for a venue; nothing is submitted."""
    s = _session(ctx, key_name)
    envelope = sign_order(s.signer, s.chain_id, market=market, side=side, size=s.units.size(size, market, "--size"),
                          price=s.units.price(price, market, "--price"), order_id=order_id,
                          expiry=s.height + lifetime)
    encoded = base64.b64encode(codec.encode(envelope)).decode()
    if s.as_json:
        emit_json({"order": encoded, "expiry": str(s.height + lifetime), "account": format_address(s.signer.address)})
    else:
        click.echo(encoded)


def _order_arg(text: str, what: str) -> dict[str, Any]:
    try:
        envelope = codec.decode(base64.b64decode(text, validate=True), max_bytes=8192)
    except (ValueError, codec.CodecError) as exc:
        raise click.BadParameter(f"not a signed order from `clearchain tx order`: {exc}", param_hint=what) from None
    if not isinstance(envelope, dict) or set(envelope) != {"body", "sig"}:
        raise click.BadParameter("not a signed order envelope", param_hint=what)
    return envelope


def _order_market(envelope: dict[str, Any]) -> str:
    """The market a signed order names (its sizes and prices are in that market's units)."""
    try:
        body = codec.decode(envelope["body"], max_bytes=8192) if isinstance(envelope["body"], bytes) else None
    except codec.CodecError:
        body = None
    market = body.get("market") if isinstance(body, dict) else None
    if not isinstance(market, str):
        raise click.BadParameter("the order names no market", param_hint="--maker")
    return market


@command.command()
@NODE_HERE
@RAW_HERE
@FROM
@click.option("--maker", required=True, help="the maker's signed order (base64)")
@click.option("--taker", required=True, help="the taker's signed order (base64)")
@click.option("--size", required=True, help="fill size in the base asset")
@click.option("--price", required=True, help="fill price in the quote asset per base unit")
@click.pass_context
@reports_rpc_errors
def trade(ctx: click.Context, key_name: str, maker: str, taker: str, size: str, price: str) -> None:
    """Submit a venue's fill of two signed orders for clearing."""
    s = _session(ctx, key_name)
    maker_order, taker_order = _order_arg(maker, "--maker"), _order_arg(taker, "--taker")
    market = _order_market(maker_order)
    s.send(Trade(maker=maker_order, taker=taker_order, size=s.units.size(size, market, "--size"),
                 price=s.units.price(price, market, "--price")), "trade")


MAX_FILLS_FILE_BYTES = 4 << 20


def _fills_file(path: Path) -> list[tuple[dict[str, Any], dict[str, Any], int, int]]:
    """``[{"maker": order, "taker": order, "size": n, "price": p}, ...]``, orders in base64."""
    try:
        if path.stat().st_size > MAX_FILLS_FILE_BYTES:
            raise click.BadParameter(f"larger than {MAX_FILLS_FILE_BYTES} bytes", param_hint="--file")
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--file") from None
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_FILLS:
        raise click.BadParameter(f"must be a JSON list of 1..{MAX_FILLS} fills", param_hint="--file")
    fills = []
    for i, entry in enumerate(entries):
        where = f"--file fill {i}"
        if not isinstance(entry, dict) or set(entry) != {"maker", "taker", "size", "price"}:
            raise click.BadParameter("each fill is {maker, taker, size, price}", param_hint=where)
        if not all(isinstance(entry[k], str) for k in ("maker", "taker")):
            raise click.BadParameter("maker and taker are base64 orders", param_hint=where)
        if not all(type(entry[k]) is int and entry[k] > 0 for k in ("size", "price")):
            raise click.BadParameter("size and price are positive integers", param_hint=where)
        fills.append((_order_arg(entry["maker"], where), _order_arg(entry["taker"], where), entry["size"],
                      entry["price"]))
    return fills


@command.command()
@NODE_HERE
@FROM
@click.option("--file", "fills_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help='JSON list of fills: [{"maker": <order>, "taker": <order>, "size": N, "price": P}, ...]')
@click.pass_context
@reports_rpc_errors
def fills(ctx: click.Context, key_name: str, fills_file: Path) -> None:
    """Submit a venue's batch of fills (up to 128) under one signature.

    Each fill clears or is refused on its own, as `tx trade` would; the default fee is the
    minimum per fill.
    """
    s = _session(ctx, key_name)
    batch = _fills_file(fills_file)
    s.send(Fills(fills=batch), f"{len(batch)} fills")


@command.command()
@NODE_HERE
@FROM
@click.option("--order-id", type=click.IntRange(min=0), required=True)
@click.option("--order-expiry", type=click.IntRange(min=1), required=True, help="the order's expiry height")
@click.pass_context
@reports_rpc_errors
def cancel(ctx: click.Context, key_name: str, order_id: int, order_expiry: int) -> None:
    """Cancel one of your orders."""
    s = _session(ctx, key_name)
    s.send(Cancel(order_id=order_id, order_expiry=order_expiry), "cancel")


@command.command()
@NODE_HERE
@RAW_HERE
@FROM
@click.option("--price", "prices", multiple=True, required=True, metavar="MARKET=PRICE",
              help="a price report in the quote asset per base unit (BTC-PERP=64250); repeat for several markets")
@click.pass_context
@reports_rpc_errors
def oracle(ctx: click.Context, key_name: str, prices: tuple[str, ...]) -> None:
    """Report oracle prices (registered feeders only)."""
    pairs = []
    for item in prices:
        market, _, value = item.partition("=")
        if not market or not value:
            raise click.BadParameter(f"{item!r}: expected MARKET=PRICE", param_hint="--price")
        pairs.append((market, value))
    s = _session(ctx, key_name)
    report = {market: s.units.price(value, market, "--price", whole_ticks=False) for market, value in pairs}
    s.send(OracleReport(prices=report), "oracle report")
