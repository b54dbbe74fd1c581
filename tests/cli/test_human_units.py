"""End to end against the dev node, typing only human units: the chain must hold exactly the
integers the genesis's places say (computed here by hand, not with the CLI's helpers), and a value
the chain cannot hold exactly is refused before anything is signed."""

from __future__ import annotations

from pathlib import Path

import pytest

from localnet.demo import demo_signer
from primitives.crypto import format_address
from primitives.keyfile import save_key
from tests.cli.test_tx_and_query import run_cli

BOB = b"\x25" * 20


def _keyring(tmp_path: Path) -> None:
    for name in ("venue", "long-0", "short-0"):
        save_key(demo_signer(name).key, tmp_path / f"{name}.json", name=name)


async def test_transfer_order_and_trade_in_human_units(chain, tmp_path: Path):
    node = chain.node
    _keyring(tmp_path)
    tx = ("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync")

    # 100.5 USDC, USDC with 6 places: 100_500_000 units.
    code, out = await run_cli(*tx, "transfer", "--from", "venue", "--to", format_address(BOB), "--amount", "100.5USDC")
    assert code == 0, out
    node.make_block()
    assert node.app.ledger.accounts[BOB].quote == 100_500_000

    # ETH-PERP (genesis.json): size_exponent -4, lot 10; price_exponent -2, tick 10.
    # 0.5 ETH = 5_000 size units; 3000.3 USDC = 300_030 price units.
    orders = {}
    for name, side, order_id in (("long-0", "buy", 7), ("short-0", "sell", 8)):
        code, out = await run_cli(*tx, "order", "--from", name, "--market", "ETH-PERP", "--side", side,
                                  "--size", "0.5", "--price", "3000.3", "--order-id", str(order_id))
        assert code == 0, out
        orders[name] = out.strip()
    code, out = await run_cli(*tx, "trade", "--from", "venue", "--maker", orders["long-0"],
                              "--taker", orders["short-0"], "--size", "0.5", "--price", "3000.3")
    assert code == 0, out
    node.make_block()
    long_position = node.app.ledger.accounts[demo_signer("long-0").address].positions["ETH-PERP"]
    short_position = node.app.ledger.accounts[demo_signer("short-0").address].positions["ETH-PERP"]
    assert long_position[0] == 5_000 and short_position[0] == -5_000
    # cost: 0.5 ETH x 3000.3 USDC = 1500.15 USDC = 1_500_150_000 units
    assert long_position[2] == 1_500_150_000

    code, out = await run_cli("query", "positions", format_address(demo_signer("long-0").address),
                              "--node", chain.url)
    assert code == 0 and "0.50 ETH" in out and "long" in out, out


async def test_values_the_chain_cannot_hold_exactly_are_refused_unsigned(chain, tmp_path: Path):
    node = chain.node
    _keyring(tmp_path)
    tx = ("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync")
    bob = format_address(BOB)
    pending = dict(node.pending)
    cases = [
        (("transfer", "--from", "venue", "--to", bob, "--amount", "0.0000001"),
         "more precision than USDC has (6 decimal places)"),
        (("transfer", "--from", "venue", "--to", bob, "--amount", "1,000"), "no thousands separators"),
        (("transfer", "--from", "venue", "--to", bob, "--amount", "5BTC"), "unit BTC is not this value's unit"),
        (("transfer", "--from", "venue", "--to", bob, "--amount", "-5"), "without a sign"),
        (("transfer", "--from", "venue", "--to", bob, "--amount", "5", "--asset", "DOGE"), "unknown asset 'DOGE'"),
        (("order", "--from", "long-0", "--market", "ETH-PERP", "--side", "buy", "--size", "0.5",
          "--price", "3000.355", "--order-id", "1"), "more precision than USDC has (2 decimal places)"),
        (("order", "--from", "long-0", "--market", "ETH-PERP", "--side", "buy", "--size", "0.5",
          "--price", "3000.35", "--order-id", "1"), "ticks of 0.10 USDC"),
        (("order", "--from", "long-0", "--market", "ETH-PERP", "--side", "buy", "--size", "0.0005",
          "--price", "3000.3", "--order-id", "1"), "whole lots of 0.001 ETH"),
        (("--raw", "transfer", "--from", "venue", "--to", bob, "--amount", "100.5"), "with --raw, expected integer"),
    ]
    for args, message in cases:
        code, out = await run_cli(*tx, *args)
        assert code == 2 and message in out, (args, out)
        assert "Traceback" not in out
    assert node.pending == pending  # nothing was signed and sent


@pytest.mark.parametrize("args, received, paid", [
    # --raw: amount and fee are integer chain units
    (("--fee", "2000", "transfer", "--raw", "--amount", "5"), 5, 5 + 2_000),
    # the fee is in the quote asset: 0.01 USDC = 10,000 units; 1 USDC = 1,000,000
    (("--fee", "0.01", "transfer", "--amount", "1"), 1_000_000, 1_000_000 + 10_000),
])
async def test_amount_and_fee_units(chain, tmp_path: Path, args: tuple[str, ...], received: int, paid: int):
    node = chain.node
    _keyring(tmp_path)
    venue = demo_signer("venue").address
    before = node.app.ledger.accounts[venue].quote
    code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync", *args,
                              "--from", "venue", "--to", format_address(BOB))
    assert code == 0, out
    node.make_block()
    assert node.app.ledger.accounts[BOB].quote == received
    assert before - node.app.ledger.accounts[venue].quote == paid
