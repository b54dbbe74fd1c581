"""``clearchain tx ...``: build, sign and submit transactions through a node's RPC.

Keys come from the keyring directory (``~/.clearchain/keys``, ``$CLEARCHAIN_KEYRING`` or
``--keyring-dir``): one ``<name>.json`` per key as written by ``primitives.keyfile.save_key`` (the
layout ``clearchain keys`` manages). The chain id, current height and minimum fee are read from
the node, so a plain ``clearchain tx transfer --from alice --to clr1... --amount 5`` just works.

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

from cli.keyring import default_keyring_dir, valid_key_name
from cli.output import client_for, emit, json_option, node_option, reports_rpc_errors
from primitives import codec
from primitives.crypto import AddressError, KeyFileError, Signer, format_address, parse_address
from primitives.keyfile import load_key
from rpc.client import Client
from state import builders
from state.txs import MAX_FILLS

DEFAULT_EXPIRY_BLOCKS = 20


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
    fee: int
    expiry: int
    mode: str
    as_json: bool

    def submit(self, tx: bytes, what: str) -> None:
        method = {"sync": "broadcast_tx_sync", "async": "broadcast_tx_async", "commit": "broadcast_tx_commit"}[self.mode]
        answer = self.client.call(method, tx=base64.b64encode(tx).decode())
        if self.as_json:
            emit(answer, True)
            return
        check = answer.get("check_tx", answer)
        code = int(check.get("code", "0"))
        deliver = answer.get("tx_result")
        if code != 0:
            raise click.ClickException(f"{what} rejected by check_tx: code {code}: {check.get('log', '')}")
        if deliver is not None and int(deliver.get("code", "0")) != 0:
            raise click.ClickException(
                f"{what} failed in block {answer.get('height')}: code {deliver['code']}: {deliver.get('log', '')}")
        where = f" in block {answer['height']}" if deliver is not None else ""
        click.echo(f"{what} accepted{where}: {answer['hash']}")


def _session(ctx: click.Context, key_name: str) -> Session:
    opts = ctx.obj
    client = client_for(opts["node_url"])
    signer = load_signer(key_name, opts["keyring_dir"])
    status = client.call("status")
    chain_id = status["node_info"]["network"]
    height = int(status["sync_info"]["latest_block_height"])
    fee = opts["fee"]
    if fee is None:
        app_state = client.call("genesis")["genesis"].get("app_state") or {}
        fee = int(app_state.get("min_tx_fee", 0))
    return Session(client, signer, chain_id, height, fee, height + opts["expiry_blocks"], opts["mode"], opts["as_json"])


@click.group("tx")
@node_option
@click.option("--keyring-dir", type=click.Path(file_okay=False), help="keyring directory (default ~/.clearchain/keys)")
@click.option("--fee", type=click.IntRange(min=0), help="fee in quote micro-units (default: the genesis minimum)")
@click.option("--expiry-blocks", type=click.IntRange(min=1), default=DEFAULT_EXPIRY_BLOCKS, show_default=True,
              help="the tx is valid for this many blocks")
@click.option("--mode", type=click.Choice(["sync", "async", "commit"]), default="commit", show_default=True,
              help="broadcast_tx_sync, _async, or wait for the block")
@json_option
@click.pass_context
def command(ctx: click.Context, node_url: str, keyring_dir: str | None, fee: int | None, expiry_blocks: int,
            mode: str, as_json: bool) -> None:
    """Sign and submit transactions."""
    ctx.obj = {"node_url": node_url, "keyring_dir": keyring_dir, "fee": fee, "expiry_blocks": expiry_blocks,
               "mode": mode, "as_json": as_json}


FROM = click.option("--from", "key_name", required=True, help="signing key: a keyring name or a key file")


def _override_node(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.obj["node_url"] = value


# `clearchain tx transfer --node URL ...` works as well as `clearchain tx --node URL transfer ...`
# (the query commands take --node after the subcommand; people type it there).
NODE_HERE = click.option("--node", "node_override", default=None, expose_value=False, is_eager=True,
                         callback=_override_node, help="RPC URL of a node (same as `tx --node`)")


@command.command()
@NODE_HERE
@FROM
@click.option("--to", required=True, help="recipient address (clr1...)")
@click.option("--amount", type=click.IntRange(min=1), required=True, help="integer units of the asset")
@click.option("--asset", default="USDC", show_default=True)
@click.pass_context
@reports_rpc_errors
def transfer(ctx: click.Context, key_name: str, to: str, amount: int, asset: str) -> None:
    """Move collateral to another account."""
    s = _session(ctx, key_name)
    tx = builders.build_transfer_tx(s.signer, s.chain_id, address_arg(to, "--to"), asset, amount, fee=s.fee, expiry=s.expiry)
    s.submit(tx, "transfer")


@command.command()
@NODE_HERE
@FROM
@click.option("--account", required=True, help="account credited (clr1...)")
@click.option("--amount", type=click.IntRange(min=1), required=True)
@click.option("--asset", default="USDC", show_default=True)
@click.option("--external-id", required=True, help="the bridge's id of the deposit (deduplicates it)")
@click.pass_context
@reports_rpc_errors
def deposit(ctx: click.Context, key_name: str, account: str, amount: int, asset: str, external_id: str) -> None:
    """Attest an external deposit (bridge operators only)."""
    s = _session(ctx, key_name)
    tx = builders.build_deposit_tx(s.signer, s.chain_id, external_id, address_arg(account, "--account"), asset,
                                   amount, fee=s.fee, expiry=s.expiry)
    s.submit(tx, "deposit attestation")


@command.command()
@NODE_HERE
@FROM
@click.option("--amount", type=click.IntRange(min=1), required=True)
@click.option("--asset", default="USDC", show_default=True)
@click.option("--destination", required=True, help="external address to pay out to")
@click.pass_context
@reports_rpc_errors
def withdraw(ctx: click.Context, key_name: str, amount: int, asset: str, destination: str) -> None:
    """Withdraw collateral (allowed only if initial margin still holds)."""
    s = _session(ctx, key_name)
    s.submit(builders.build_withdraw_tx(s.signer, s.chain_id, asset, amount, destination, fee=s.fee, expiry=s.expiry),
             "withdrawal")


@command.command()
@NODE_HERE
@FROM
@click.option("--market", required=True)
@click.option("--side", type=click.Choice(["buy", "sell"]), required=True)
@click.option("--size", type=click.IntRange(min=1), required=True, help="in the market's size units")
@click.option("--price", type=click.IntRange(min=1), required=True, help="limit price in the market's units")
@click.option("--order-id", type=click.IntRange(min=0), required=True)
@click.option("--lifetime", type=click.IntRange(min=1), default=DEFAULT_EXPIRY_BLOCKS, show_default=True,
              help="blocks the order stays valid")
@click.pass_context
@reports_rpc_errors
def order(ctx: click.Context, key_name: str, market: str, side: str, size: int, price: int, order_id: int,
          lifetime: int) -> None:
    """Sign an order and print it (base64) for a venue; nothing is submitted."""
    s = _session(ctx, key_name)
    envelope = builders.build_order(s.signer, s.chain_id, market=market, side=side, size=size, price=price,
                                    order_id=order_id, expiry=s.height + lifetime)
    encoded = base64.b64encode(codec.encode(envelope)).decode()
    if s.as_json:
        emit({"order": encoded, "expiry": str(s.height + lifetime), "account": format_address(s.signer.address)}, True)
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


@command.command()
@NODE_HERE
@FROM
@click.option("--maker", required=True, help="the maker's signed order (base64)")
@click.option("--taker", required=True, help="the taker's signed order (base64)")
@click.option("--size", type=click.IntRange(min=1), required=True, help="fill size")
@click.option("--price", type=click.IntRange(min=1), required=True, help="fill price")
@click.pass_context
@reports_rpc_errors
def trade(ctx: click.Context, key_name: str, maker: str, taker: str, size: int, price: int) -> None:
    """Submit a venue's fill of two signed orders for clearing."""
    s = _session(ctx, key_name)
    tx = builders.build_trade_tx(s.signer, s.chain_id, _order_arg(maker, "--maker"), _order_arg(taker, "--taker"),
                                 size, price, fee=s.fee, expiry=s.expiry)
    s.submit(tx, "trade")


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
    fee = ctx.obj["fee"] if ctx.obj["fee"] is not None else s.fee * len(batch)
    tx = builders.build_fills_tx(s.signer, s.chain_id, batch, fee=fee, expiry=s.expiry)
    s.submit(tx, f"{len(batch)} fills")


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
    s.submit(builders.build_cancel_tx(s.signer, s.chain_id, order_id, order_expiry, fee=s.fee, expiry=s.expiry),
             "cancel")


@command.command()
@NODE_HERE
@FROM
@click.option("--price", "prices", multiple=True, required=True, metavar="MARKET=PRICE",
              help="a price report; repeat for several markets")
@click.pass_context
@reports_rpc_errors
def oracle(ctx: click.Context, key_name: str, prices: tuple[str, ...]) -> None:
    """Report oracle prices (registered feeders only)."""
    report: dict[str, int] = {}
    for item in prices:
        market, _, value = item.partition("=")
        if not market or not value.isdigit():
            raise click.BadParameter(f"{item!r}: expected MARKET=PRICE with an integer price", param_hint="--price")
        report[market] = int(value)
    s = _session(ctx, key_name)
    s.submit(builders.build_oracle_tx(s.signer, s.chain_id, report, fee=s.fee, expiry=s.expiry), "oracle report")
