"""node/light_client.py against a live in-process node: verified headers, proved account
state, and a lying node (headers, balances, proofs) caught. The node runs on the trio loop; the
blocking light client runs in a worker thread."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner

from cli.main import main
from consensus.light import LightClientError
from node.config import Config, replace
from node.home import Home
from node.init import init_home
from node.light_client import AnswerProver, LightClient, ProofFailed, RPCProvider
from node.node import Node
from primitives.codec import decode, encode
from primitives.crypto import PrivateKey, Signer, format_address
from primitives.hashing import sha256
from rpc.client import Client, UnverifiableAnswer
from state.builders import build_transfer_tx

RECIPIENT = PrivateKey(b"\x0b" * 32).address


def make_node(tmp_path: Path) -> Node:
    home = Home.at(tmp_path / "solo")
    config = replace(Config(), p2p={"listen_address": "/ip4/127.0.0.1/tcp/0"},
                     rpc={"listen_address": "127.0.0.1:0"})
    init_home(home, moniker="solo", config=config)
    return Node(home)


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


class Lying:
    """A node that answers through ``tamper(method, params, answer)``: a fake RPC endpoint."""

    def __init__(self, client: Client, tamper: Callable[[str, dict, Any], Any]) -> None:
        self.client = client
        self.tamper = tamper

    def __call__(self, method: str, **params: Any) -> Any:
        return self.tamper(method, params, self.client.call_unverified(method, **params))


def _forge_app_hash(method: str, params: dict, answer: Any) -> Any:
    """A header whose app hash is changed (the commit no longer signs it)."""
    if method == "commit":
        obj = decode(base64.b64decode(answer["raw"]))
        obj["header"]["app_hash"] = sha256(b"lie")
        answer = {**answer, "raw": base64.b64encode(encode(obj)).decode()}
    return answer


def _forge_commit_block_id(method: str, params: dict, answer: Any) -> Any:
    """A commit answer naming another block than the (honest) signed header."""
    if method == "commit":
        commit = answer["signed_header"]["commit"]
        forged = {**commit, "block_id": {**commit["block_id"], "hash": "AB" * 32}}
        answer = {**answer, "signed_header": {**answer["signed_header"], "commit": forged}}
    return answer


def _inflate_balance(method: str, params: dict, answer: Any) -> Any:
    if method == "account":
        answer = {**answer, "quote": str(int(answer["quote"]) + 1_000_000)}
    return answer


def _forge_query_value(method: str, params: dict, answer: Any) -> Any:
    if method == "query" and answer["response"]["value"] is not None:
        value = base64.b64decode(answer["response"]["value"])
        forged = base64.b64encode(value[:-1] + bytes([value[-1] ^ 1])).decode()
        answer = {"response": {**answer["response"], "value": forged}}
    return answer


def scenario(url: str, node: Node) -> dict[str, Any]:
    """Everything the light client does, in a worker thread; returns what the test checks."""
    out: dict[str, Any] = {}
    plain, other = Client(url), Client(url)
    trusted = node.chain.block(2)
    assert trusted is not None
    light = LightClient(RPCProvider(plain.call_unverified), chain_id=node.chain.chain_id,
                        trusted_height=2, trusted_hash=trusted.hash(),
                        witnesses=[RPCProvider(other.call_unverified, "witness")])
    latest = light.update()
    out["latest"] = latest.height
    out["backward"] = light.verify_height(1).height
    verifying = Client(url, verify=AnswerProver(light))
    out["account"] = verifying.call("account", address=format_address(RECIPIENT))
    out["query"] = verifying.call("query", path="/store", data=(b"a/" + RECIPIENT).hex(),
                                  prove=True)
    out["block"] = verifying.call("block", height=3)
    out["validators"] = verifying.call("validators", height=3)
    out["commit"] = verifying.call("commit", height=3)["signed_header"]["header"]["height"]
    with pytest.raises(UnverifiableAnswer):
        verifying.call("status")

    # a lying primary
    with pytest.raises(LightClientError):
        LightClient(RPCProvider(Lying(plain, _forge_app_hash)), chain_id=node.chain.chain_id,
                    trusted_height=2, trusted_hash=trusted.hash()).update()
    for tamper in (_inflate_balance, _forge_query_value, _forge_commit_block_id):
        liar = Lying(plain, tamper)
        prover = AnswerProver(light)
        with pytest.raises(ProofFailed):
            method = {_inflate_balance: "account", _forge_query_value: "query"}.get(tamper, "commit")
            params = {"account": {"address": format_address(RECIPIENT)}, "commit": {"height": 3},
                      "query": {"path": "/store", "data": (b"a/" + RECIPIENT).hex(), "prove": True}}[method]
            prover.check(liar, method, params, liar(method, **params))
    # a lying witness is dropped, the honest primary keeps working
    light2 = LightClient(RPCProvider(plain.call_unverified), chain_id=node.chain.chain_id,
                         trusted_height=2, trusted_hash=trusted.hash(),
                         witnesses=[RPCProvider(Lying(plain, _forge_app_hash), "liar")])
    light2.update()
    out["witnesses_left"] = len(light2.witnesses)
    for client in (plain, other, verifying):
        client.close()
    return out


async def test_light_client_follows_a_node_and_catches_lies(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        signer = Signer(node.validator_key)
        tx = build_transfer_tx(signer, node.chain.chain_id, RECIPIENT, "USDC", 5, fee=1000,
                               expiry=node.chain.height + 50)
        assert (await node.view.broadcast_tx(tx)).code == 0
        await wait_for(lambda: node.chain.blocks.tx(sha256(tx)) is not None)
        await wait_for(lambda: node.chain.height >= 4)
        url = f"http://127.0.0.1:{node.rpc_port}"
        out = await trio.to_thread.run_sync(scenario, url, node)

        runner = CliRunner()
        trusted = node.chain.block(2)
        assert trusted is not None
        result = await trio.to_thread.run_sync(lambda: runner.invoke(main, [
            "light", "--node", url, "--trusted-height", "2",
            "--trusted-hash", trusted.hash().hex(), "--blocks", "3",
            "--account", format_address(RECIPIENT)]))
        nursery.cancel_scope.cancel()
    assert out["latest"] >= 4 and out["backward"] == 1
    assert out["account"]["quote"] == "5"
    assert out["query"]["response"]["value"] is not None
    assert out["block"]["block"]["header"]["height"] == "3"
    assert out["commit"] == "3"
    assert out["witnesses_left"] == 0
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len([x for x in lines if "app_hash" in x]) >= 3
    assert any(x.get("account", {}).get("quote") == "5" for x in lines)
