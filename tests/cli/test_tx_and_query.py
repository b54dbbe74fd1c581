"""``clearchain tx`` and ``clearchain query`` against the real application (dev node, real keys)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import trio
from click.testing import CliRunner

from cli.main import main
from localnet.demo import demo_signer
from primitives.codec import encode
from primitives.crypto import PrivateKey, format_address
from primitives.keyfile import save_key
from state import builders
from state.txs import decode_tx
from tests.cli.conftest import VALIDATOR


async def run_cli(*args: str) -> tuple[int, str]:
    result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, list(args), catch_exceptions=False))
    return result.exit_code, result.output


async def test_tx_transfer_and_queries(chain, tmp_path: Path):
    save_key(demo_signer("venue").key, tmp_path / "venue.json", name="venue")
    bob = format_address(b"\x22" * 20)

    async def make_blocks():
        for _ in range(100):
            await trio.sleep(0.05)
            chain.node.make_block()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(make_blocks)
        code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path),
                                  "transfer", "--from", "venue", "--to", bob, "--amount", "1250")
        assert code == 0, out
        assert "transfer accepted in block" in out
        nursery.cancel_scope.cancel()
    assert chain.node.app.ledger.accounts[b"\x22" * 20].quote == 1_250_000_000  # USDC has 6 places

    code, out = await run_cli("query", "account", bob, "--node", chain.url)
    assert code == 0 and "1,250.00 USDC" in out, out
    code, out = await run_cli("query", "account", bob, "--node", chain.url, "--json")
    assert json.loads(out)["quote"] == "1250000000"
    code, out = await run_cli("query", "account", bob, "--node", chain.url, "--output", "json")
    assert json.loads(out)["decimals"]["USDC"] == "6"
    code, out = await run_cli("query", "status", "--node", chain.url)
    assert code == 0 and chain.node.genesis_doc.chain_id in out
    code, out = await run_cli("query", "markets", "--node", chain.url)
    assert code == 0 and "BTC-PERP" in out and "50,000.0 USDC" in out, out  # 500000 at price_exponent -1
    assert max(len(line) for line in out.splitlines()) <= 100
    code, out = await run_cli("query", "prices", "--node", chain.url, "--json")
    assert json.loads(out)["BTC-PERP"]["price"] == str(chain.node.app.ledger.markets["BTC-PERP"].price)
    code, out = await run_cli("query", "block", "1", "--node", chain.url)
    assert code == 0 and "block 1" in out
    code, out = await run_cli("query", "validators", "--node", chain.url)
    assert code == 0 and VALIDATOR.address.hex().upper() in out


async def test_cli_errors_are_one_line(chain, tmp_path: Path):
    code, out = await run_cli("query", "account", "clr1nope", "--node", chain.url)
    assert code == 1 and "Invalid params" in out and "Traceback" not in out
    code, out = await run_cli("query", "block", "99", "--node", chain.url)
    assert code == 1 and "no block at height 99" in out
    code, out = await run_cli("query", "status", "--node", "http://127.0.0.1:1")
    assert code == 1 and "cannot reach the node" in out
    code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "transfer",
                              "--from", "ghost", "--to", "clr1x", "--amount", "1")
    assert code == 2 and "no key named 'ghost'" in out


async def test_tx_rejection_shows_app_code(chain, tmp_path: Path):
    save_key(PrivateKey(b"\x23" * 32), tmp_path / "carol.json", name="carol")
    save_key(VALIDATOR, tmp_path / "feeder.json", name="feeder")
    code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "oracle", "--from", "feeder", "--price", "BTC-PERP=50001")
    assert code == 0 and "oracle report accepted" in out, out
    # carol has no funds to pay the fee: refused at admission, with the application's code and name
    code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "oracle", "--from", "carol", "--price", "BTC-PERP=10")
    assert code == 1 and "rejected by check_tx: code" in out and "Traceback" not in out, out
    code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "oracle", "--from", "carol", "--price", "BTC-PERP=abc")
    assert code == 2 and "expected a decimal number" in out
    code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "oracle", "--from", "carol", "--price", "BTC-PERP")
    assert code == 2 and "MARKET=PRICE" in out


async def test_tx_takes_node_after_the_subcommand_too(chain, tmp_path: Path):
    save_key(demo_signer("venue").key, tmp_path / "venue.json", name="venue")
    bob = format_address(b"\x24" * 20)
    # The group's --node points nowhere; the subcommand's --node must win.
    code, out = await run_cli("tx", "--node", "http://127.0.0.1:1", "--keyring-dir", str(tmp_path),
                              "--mode", "sync", "transfer", "--from", "venue", "--to", bob,
                              "--amount", "1", "--node", chain.url)
    assert code == 0 and "transfer accepted" in out, out


async def test_tx_fills_sends_a_batch_paying_the_minimum_per_fill(chain, tmp_path: Path):
    node = chain.node
    save_key(demo_signer("venue").key, tmp_path / "venue.json", name="venue")
    buyer, seller = demo_signer("long-0"), demo_signer("short-0")

    def order(signer, side: str, order_id: int) -> str:
        envelope = builders.build_order(signer, node.genesis_doc.chain_id, market="BTC-PERP", side=side, size=10,
                                        price=500_000, order_id=order_id, expiry=100)
        return base64.b64encode(encode(envelope)).decode()

    fills = [{"maker": order(buyer, "buy", n), "taker": order(seller, "sell", n), "size": 10, "price": 500_000}
             for n in (1, 2, 3)]
    path = tmp_path / "fills.json"
    path.write_text(json.dumps(fills))
    code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "fills", "--from", "venue", "--file", str(path))
    assert code == 0, out
    sent = decode_tx(list(node.pending.values())[-1], node.genesis_doc.chain_id)
    min_fee = node.app.ledger.globals.min_tx_fee
    assert sent.kind == "fills" and len(sent.msg.fills) == 3 and sent.fee == 3 * min_fee

    for bad, message in (([], "1..128 fills"), ([{"maker": "x"}], "{maker, taker, size, price}"),
                         ([{**fills[0], "size": 0}], "positive integers"), ([{**fills[0], "maker": "!!"}], "signed order")):
        path.write_text(json.dumps(bad))
        code, out = await run_cli("tx", "--node", chain.url, "--keyring-dir", str(tmp_path), "fills", "--from",
                                  "venue", "--file", str(path))
        assert code == 2 and message in out, out


async def test_every_query_prints_a_table_within_100_columns_and_json(chain):
    long0 = format_address(demo_signer("long-0").address)
    for args in (("account", long0), ("positions", long0), ("health", long0), ("markets",), ("market", "ETH-PERP"),
                 ("prices",), ("insurance-fund",), ("liquidations",), ("mempool",), ("validators",), ("block",),
                 ("status",)):
        code, out = await run_cli("query", *args, "--node", chain.url)
        assert code == 0 and out.strip(), (args, out)
        assert max(len(line) for line in out.splitlines()) <= 100, (args, out)
        code, raw = await run_cli("query", *args, "--node", chain.url, "-o", "json")
        assert code == 0 and isinstance(json.loads(raw), (dict, list)), (args, raw)
    code, out = await run_cli("query", "health", long0, "--node", chain.url)
    assert "20,000.00 USDC" in out  # the demo's LONG_QUOTE, 20,000 USDC, and no position yet
    code, out = await run_cli("query", "insurance-fund", "--node", chain.url)
    assert "3,000.00 USDC" in out
