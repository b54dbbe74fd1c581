"""``clearchain tx`` and ``clearchain query`` against the fake node (real tx format, real keys)."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from click.testing import CliRunner

from primitives.crypto import PrivateKey, format_address
from primitives.keyfile import save_key
from cli.main import main


async def run_cli(*args: str) -> tuple[int, str]:
    result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(main, list(args), catch_exceptions=False))
    return result.exit_code, result.output


async def test_tx_transfer_and_queries(served, tmp_path: Path):
    served.node.chain_id = "clearchain-local-1"
    alice = PrivateKey(b"\x21" * 32)
    save_key(alice, tmp_path / "alice.json", name="alice")
    bob = format_address(b"\x22" * 20)
    served.node.balances[alice.address] = 1_000

    async def make_blocks():
        for _ in range(50):
            await trio.sleep(0.05)
            served.node.make_block()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(make_blocks)
        code, out = await run_cli("tx", "--node", served.url, "--keyring-dir", str(tmp_path), "--fee", "0",
                                  "transfer", "--from", "alice", "--to", bob, "--amount", "250")
        assert code == 0, out
        assert "transfer accepted in block" in out
        nursery.cancel_scope.cancel()
    assert served.node.balances[b"\x22" * 20] == 250

    code, out = await run_cli("query", "account", format_address(alice.address), "--node", served.url)
    assert code == 0 and "quote_balance" in out and "750" in out
    code, out = await run_cli("query", "account", format_address(alice.address), "--node", served.url, "--json")
    assert json.loads(out)["quote_balance"] == "750"
    code, out = await run_cli("query", "status", "--node", served.url)
    assert code == 0 and "clearchain-local-1" in out
    code, out = await run_cli("query", "markets", "--node", served.url)
    assert code == 0 and "BTC-USD" in out and "imf_ppm" in out.splitlines()[0]
    code, out = await run_cli("query", "block", "1", "--node", served.url)
    assert code == 0 and "block 1" in out


async def test_cli_errors_are_one_line(served, tmp_path: Path):
    code, out = await run_cli("query", "account", "clr1nope", "--node", served.url)
    assert code == 1 and "Invalid params" in out and "Traceback" not in out
    code, out = await run_cli("query", "block", "99", "--node", served.url)
    assert code == 1 and "no block at height 99" in out
    code, out = await run_cli("query", "status", "--node", "http://127.0.0.1:1")
    assert code == 1 and "cannot reach the node" in out
    code, out = await run_cli("tx", "--node", served.url, "--keyring-dir", str(tmp_path), "transfer",
                              "--from", "ghost", "--to", "clr1x", "--amount", "1")
    assert code == 2 and "no key named 'ghost'" in out


async def test_tx_rejection_shows_app_code(served, tmp_path: Path):
    save_key(PrivateKey(b"\x23" * 32), tmp_path / "carol.json", name="carol")
    served.node.chain_id = "other-chain"
    code, out = await run_cli("tx", "--node", served.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "oracle", "--from", "carol", "--price", "BTC-USD=100")
    assert code == 0, out  # signed for the chain the node reports: accepted
    code, out = await run_cli("tx", "--node", served.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "oracle", "--from", "carol", "--price", "BTC-USD=abc")
    assert code == 2 and "MARKET=PRICE" in out


async def test_tx_takes_node_after_the_subcommand_too(served, tmp_path: Path):
    alice = PrivateKey(b"\x23" * 32)
    save_key(alice, tmp_path / "alice.json", name="alice")
    bob = format_address(b"\x24" * 20)
    # The group's --node points nowhere; the subcommand's --node must win.
    code, out = await run_cli("tx", "--node", "http://127.0.0.1:1", "--keyring-dir", str(tmp_path),
                              "--mode", "sync", "transfer", "--from", "alice", "--to", bob,
                              "--amount", "1", "--node", served.url)
    assert "cannot reach the node" not in out and "No such option" not in out, out
    assert "transfer accepted" in out or "rejected by check_tx" in out, out


async def test_tx_fills_sends_a_batch_paying_the_minimum_per_fill(served, tmp_path: Path):
    import base64

    from primitives.codec import encode
    from state import builders
    from state.txs import decode_tx

    served.node.chain_id = "clearchain-local-1"
    plain_genesis = served.node.genesis

    async def genesis_with_fee():
        return {**await plain_genesis(), "app_state": {"min_tx_fee": 7}}

    served.node.genesis = genesis_with_fee
    venue, buyer, seller = PrivateKey(b"\x31" * 32), PrivateKey(b"\x32" * 32), PrivateKey(b"\x33" * 32)
    save_key(venue, tmp_path / "venue.json", name="venue")

    def order(key: PrivateKey, side: str, order_id: int) -> str:
        from primitives.crypto import Signer

        envelope = builders.build_order(Signer(key), served.node.chain_id, market="BTC-USD", side=side, size=10,
                                        price=500, order_id=order_id, expiry=100)
        return base64.b64encode(encode(envelope)).decode()

    fills = [{"maker": order(buyer, "buy", n), "taker": order(seller, "sell", n), "size": 10, "price": 500}
             for n in (1, 2, 3)]
    path = tmp_path / "fills.json"
    path.write_text(json.dumps(fills))
    code, out = await run_cli("tx", "--node", served.url, "--keyring-dir", str(tmp_path), "--mode", "sync",
                              "fills", "--from", "venue", "--file", str(path))
    assert code == 0, out
    sent = decode_tx(served.node.pending[-1], served.node.chain_id)
    assert sent.kind == "fills" and len(sent.msg.fills) == 3 and sent.fee == 3 * 7

    for bad, message in (([], "1..128 fills"), ([{"maker": "x"}], "{maker, taker, size, price}"),
                         ([{**fills[0], "size": 0}], "positive integers"), ([{**fills[0], "maker": "!!"}], "signed order")):
        path.write_text(json.dumps(bad))
        code, out = await run_cli("tx", "--node", served.url, "--keyring-dir", str(tmp_path), "fills", "--from",
                                  "venue", "--file", str(path))
        assert code == 2 and message in out, out
