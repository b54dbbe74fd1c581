"""Our answers against CometBFT v0.38's, shape by shape (tests/rpc/fixtures/comet38/, their
source in each file and in the folder's README), and the compatibility layer's rules checked
against expectations written from CometBFT's definitions, not from rpc/comet's own helpers."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
import trio

from consensus.types import BlockID, DuplicateVoteEvidence, Vote, VoteType
from localnet.demo import demo_signer
from node.evidence import EVIDENCE_MAX_AGE
from node.home import Home
from node.init import init_home
from primitives.crypto import format_address
from primitives.keyfile import load_key
from rpc import errors
from rpc.client import RPCClientError
from rpc.comet import shapes
from rpc.comet.query import QueryError, parse_query
from rpc.comet.search import Scope
from rpc.render import parse_bytes
from rpc.views import BlockView, NetInfo, PeerView
from state.builders import build_transfer_tx
from rpc.limits import Limits
from tests.rpc.conftest import start_served
from tests.rpc.test_api import real_node

FIXTURES = Path(__file__).with_name("fixtures") / "comet38"
EXTRA_KEYS = {
    ("status", "node_info", "other", "libp2p_id"): "ours: the libp2p peer id the node id comes from",
    ("status", "node_info", "other", "clearchain_version"): "ours: the node's own version",
    ("other", "libp2p_id"): "ours, in net_info's peers: the peer's libp2p id",
    ("commit", "raw"): "ours: the canonical signed bytes, for our light client",
    ("net_info", "persistent_peers"): "ours: the configured peers and their dialling",
    ("check_tx", "hash"): "ours: the tx's hash, as the broadcast methods give it",
}
"""Keys we add to CometBFT's answers, by path from the method name (a suffix for the deeper
ones); nothing else may differ."""
MISSING_KEYS = {
    ("net_info", "peers", "0", "connection_status"): "libp2p keeps no per-channel monitors",
}
"""Keys of CometBFT's answers we leave out, by path from the method name, with the reason."""


def _listed(path: tuple[str, ...], key: str, table: dict[tuple[str, ...], str]) -> bool:
    return any((path + (key,))[-len(entry):] == entry for entry in table)


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def shape_differences(ours: Any, theirs: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Where ``ours`` does not have CometBFT's keys and JSON types (lists: first items)."""
    where = "/".join(path[1:]) or "(result)"
    if path and path[-1] == "app_state":
        return []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{where}: {kind(ours)}, CometBFT has an object"]
        found = [f"{where}/{k}: missing" for k in sorted(set(theirs) - set(ours))
                 if not _listed(path, k, MISSING_KEYS)]
        found += [f"{where}/{k}: not in CometBFT" for k in sorted(set(ours) - set(theirs))
                  if not _listed(path, k, EXTRA_KEYS)]
        for key in sorted(set(theirs) & set(ours)):
            found += shape_differences(ours[key], theirs[key], path + (key,))
        return found
    if isinstance(theirs, list):
        if ours is None:  # Go renders an empty slice as null
            return []
        if not isinstance(ours, list):
            return [f"{where}: {kind(ours)}, CometBFT has a list"]
        return shape_differences(ours[0], theirs[0], path + ("0",)) if ours and theirs else []
    if theirs is None or ours is None:
        return []  # nullable in CometBFT (an absent value, signature, proof)
    return [] if kind(ours) == kind(theirs) else [f"{where}: {kind(ours)}, CometBFT has {kind(theirs)}"]


async def test_answers_have_cometbft_v038_shapes(tmp_path: Path) -> None:
    async with real_node(tmp_path, funded=True) as client:
        status = await client.call("status")
        sender, recipient = demo_signer("long-0"), demo_signer("long-1")
        tx = build_transfer_tx(sender, status["node_info"]["network"], recipient.address, "USDC", 5,
                               fee=1_000, expiry=int(status["sync_info"]["latest_block_height"]) + 100)
        committed = await client.call("broadcast_tx_commit", tx=base64.b64encode(tx).decode())
        height = committed["height"]
        tx_hash = committed["hash"]
        with trio.fail_after(10):
            while int((await client.call("status"))["sync_info"]["latest_block_height"]) <= int(height):
                await trio.sleep(0.05)
        block_hash = (await client.call("block", height=height))["block_id"]["hash"]

        def transfer(amount: int) -> str:
            return base64.b64encode(build_transfer_tx(
                sender, status["node_info"]["network"], recipient.address, "USDC", amount, fee=1_000,
                expiry=int(height) + 100)).decode()

        params = {
            "block": {"height": height}, "header": {"height": height}, "commit": {"height": height},
            "block_by_hash": {"hash": block_hash}, "header_by_hash": {"hash": block_hash},
            "blockchain": {"minHeight": "1", "maxHeight": height},
            "broadcast_tx_async": {"tx": transfer(7)}, "broadcast_tx_commit": {"tx": transfer(8)},
            "block_results": {"height": height}, "tx": {"hash": tx_hash},
            "tx_search": {"query": f"tx.height={height}"},
            "block_search": {"query": f"block.height={height}"},
            "abci_query": {"path": "/store", "data": "", "prove": True},
            "broadcast_tx_sync": {"tx": transfer(6)},
            "check_tx": {"tx": base64.b64encode(tx).decode()},
        }
        proved = await client.call("tx", hash=tx_hash, prove=True)
        header = (await client.call("header", height=height))["header"]
        proof = proved["proof"]
        assert proof["root_hash"] == header["data_hash"] and base64.b64decode(proof["data"]) == tx
        assert comet_root_from_aunts(int(proof["proof"]["index"]), int(proof["proof"]["total"]),
                                     base64.b64decode(proof["proof"]["leaf_hash"]),
                                     [base64.b64decode(a) for a in proof["proof"]["aunts"]]
                                     ).hex().upper() == header["data_hash"]
        differences = {}
        fixtures = sorted(FIXTURES.glob("*.json"))
        assert len(fixtures) >= 25
        for fixture in fixtures:
            recorded = json.loads(fixture.read_text())
            ours = await client.call(recorded["method"], **params.get(recorded["method"], {}))
            found = shape_differences(ours, recorded["result"], (recorded["method"],))
            if found:
                differences[recorded["method"]] = found
        assert differences == {}


def comet_root_from_aunts(index: int, total: int, leaf: bytes, aunts: list[bytes]) -> bytes:
    """CometBFT crypto/merkle computeHashFromAunts, written from its Go source."""
    def inner(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()
    if total == 1:
        assert not aunts
        return leaf
    left_count = 1 << ((total - 1).bit_length() - 1)
    if index < left_count:
        return inner(comet_root_from_aunts(index, left_count, leaf, aunts[:-1]), aunts[-1])
    return inner(aunts[-1], comet_root_from_aunts(index - left_count, total - left_count, leaf, aunts[:-1]))


def test_tx_proofs_verify_as_cometbft_verifies_them() -> None:
    txs = [bytes([i]) * (i + 1) for i in range(7)]
    root = bytes.fromhex(shapes.tx_proof(txs, 0)["root_hash"])
    for index in range(len(txs)):
        proof = shapes.tx_proof(txs, index)
        leaf = base64.b64decode(proof["proof"]["leaf_hash"])
        assert leaf == hashlib.sha256(b"\x00" + txs[index]).digest()
        aunts = [base64.b64decode(a) for a in proof["proof"]["aunts"]]
        assert comet_root_from_aunts(index, len(txs), leaf, aunts) == root
        if aunts:
            aunts[0] = bytes(32)
            assert comet_root_from_aunts(index, len(txs), leaf, aunts) != root


def test_net_info_peers_have_cometbfts_shape() -> None:
    recorded = json.loads((FIXTURES / "net_info.json").read_text())["result"]
    peer_id = "12D3KooWNhZPXAkonBtoXLZNiYr8JsU5gzKkusDwLaFN4WZoGXz4"
    ours = shapes.net_info(NetInfo(True, ["/ip4/127.0.0.1/tcp/26656"],
                                   [PeerView(peer_id, "/ip4/10.0.0.2/tcp/26656", "val1", True)]), "c")
    assert shape_differences(ours, recorded, ("net_info",)) == []
    assert ours["peers"][0]["remote_ip"] == "10.0.0.2"
    assert ours["peers"][0]["node_info"]["id"] == shapes.comet_node_id(peer_id)


def test_index_search_equals_a_scan_of_every_entry() -> None:
    """The compact index (postings, height ranges, hash lookup) against a plain filter over
    each entry's own keys, for random entries and queries of every operator."""
    rng = random.Random(7)
    scope, entries = Scope(), []
    for position in range(400):
        height, tx_hash = position // 5 + 1, hashlib.sha256(bytes([position % 256, position // 256])).digest()
        keys = {"transfer.amount": [str(rng.randrange(50))], "message.sender": [rng.choice("abc")]}
        if rng.random() < 0.3:
            keys["trade.market"] = [rng.choice(["BTC-PERP", "ETH-PERP"])]
        scope.add(keys, height, position % 5, tx_hash)
        entries.append({**keys, "tx.height": [str(height)], "tx.hash": [tx_hash.hex().upper()]})
    keys_and_operands = [("tx.height", lambda: rng.randrange(90)), ("transfer.amount", lambda: rng.randrange(50)),
                         ("message.sender", lambda: f"'{rng.choice('abcd')}'"),
                         ("trade.market", lambda: "'BTC-PERP'"),
                         ("tx.hash", lambda: f"'{entries[rng.randrange(400)]['tx.hash'][0].lower()}'")]
    for _ in range(300):
        parts = []
        for _ in range(rng.randrange(1, 4)):
            key, operand = rng.choice(keys_and_operands)
            op = rng.choice(["=", "<", "<=", ">", ">=", "EXISTS", "CONTAINS"])
            if op == "EXISTS":
                parts.append(f"{key} EXISTS")
            elif op == "CONTAINS":
                parts.append(f"{key} CONTAINS '{rng.choice('0123abB')}'")
            else:
                parts.append(f"{key} {op} {operand()}")
        conditions = parse_query(" AND ".join(parts)).conditions
        expected = [i for i, keys in enumerate(entries)
                    if all(c.holds(keys.get(c.key, [])) for c in conditions)]
        assert scope.search(conditions) == expected, " AND ".join(parts)
        from_height = rng.randrange(90)
        assert scope.search(conditions, from_height) == [
            i for i in expected if int(entries[i]["tx.height"][0]) >= from_height]


def test_evidence_is_cometbfts_duplicate_vote_evidence() -> None:
    one = Vote(VoteType.PRECOMMIT, 7, 1, BlockID(b"\xaa" * 32), 1_564_660_342_818, b"\x05" * 20, 2, b"\x01" * 64)
    other = Vote(VoteType.PRECOMMIT, 7, 1, None, 1_564_660_342_819, b"\x05" * 20, 2, b"\x02" * 64)
    evidence = DuplicateVoteEvidence.of(one, other).to_obj()
    view = BlockView(7, b"\x01" * 32, {"height": 7, "chain_id": "c"}, (), None, (evidence,))
    rendered = shapes.block(view)["evidence"]["evidence"]
    assert rendered == [{"type": "tendermint/DuplicateVoteEvidence", "value": {
        "vote_a": {"type": 2, "height": "7", "round": 1,
                   "block_id": {"hash": "", "parts": {"total": 0, "hash": ""}},
                   "timestamp": "2019-08-01T11:52:22.819Z", "validator_address": "05" * 20,
                   "validator_index": 2, "signature": base64.b64encode(b"\x02" * 64).decode()},
        "vote_b": {"type": 2, "height": "7", "round": 1,
                   "block_id": {"hash": "AA" * 32, "parts": {"total": 1, "hash": "AA" * 32}},
                   "timestamp": "2019-08-01T11:52:22.818Z", "validator_address": "05" * 20,
                   "validator_index": 2, "signature": base64.b64encode(b"\x01" * 64).decode()}}}]


def test_shape_diff_catches_a_number_as_string_and_a_missing_key() -> None:
    theirs = {"block_id": {"hash": "AB", "parts": {"total": 1, "hash": "AB"}}, "index": 0}
    assert shape_differences({"block_id": {"hash": "AB"}, "index": "0"}, theirs, ("tx",)) == [
        "block_id/parts: missing", "index: str, CometBFT has number"]


def test_times_are_go_rfc3339nano() -> None:
    # Go: time.Unix(0, n).UTC().Format(time.RFC3339Nano), trailing zeros dropped
    assert shapes.rfc3339(1_564_660_342_818_762_194) == "2019-08-01T11:52:22.818762194Z"
    assert shapes.rfc3339(1_564_660_342_500_000_000) == "2019-08-01T11:52:22.5Z"
    assert shapes.rfc3339(1_564_660_342_000_000_000) == "2019-08-01T11:52:22Z"
    assert shapes.rfc3339(0) == "0001-01-01T00:00:00Z"
    for nanos in (1, 1_564_660_342_818_762_194, 1_564_660_342_000_000_000):
        assert shapes.parse_rfc3339(shapes.rfc3339(nanos)) == nanos


def test_node_id_is_cometbfts_from_the_node_key(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "n")
    init_home(home, moniker="n")
    key = load_key(home.node_key_file)
    # the libp2p peer id of an Ed25519 key: base58btc(identity multihash of the protobuf key)
    raw = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) + key.public_key
    number, peer_id = int.from_bytes(raw, "big"), ""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    while number:
        number, digit = divmod(number, 58)
        peer_id = alphabet[digit] + peer_id
    peer_id = "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + peer_id
    expected = hashlib.sha256(key.public_key).hexdigest()[:40]  # CometBFT: PubKey().Address()
    assert shapes.comet_node_id(peer_id) == expected
    assert shapes.comet_node_id("QmNotAnEd25519Key") != expected
    assert len(shapes.comet_node_id("QmNotAnEd25519Key")) == 40


def test_evidence_age_is_the_nodes() -> None:
    assert shapes.EVIDENCE_MAX_AGE_BLOCKS == EVIDENCE_MAX_AGE


def test_byte_params_are_hex_or_base64() -> None:
    digest = hashlib.sha256(b"x").digest()
    assert parse_bytes("hash", digest.hex(), size=32) == digest
    assert parse_bytes("hash", "0x" + digest.hex().upper(), size=32) == digest
    assert parse_bytes("hash", base64.b64encode(digest).decode(), size=32) == digest
    assert parse_bytes("data", "616263") == b"abc"
    assert parse_bytes("data", "YWJj") == b"abc"
    for bad in ("zz", base64.b64encode(b"short").decode(), digest.hex()[:-2], "!!!", "0x" + "zz" * 32):
        with pytest.raises(errors.RPCError) as info:
            parse_bytes("hash", bad, size=32)
        assert info.value.code == errors.INVALID_PARAMS


async def test_txs_go_as_base64_or_0x_hex(nursery) -> None:
    """``0x`` and hex is CometBFT's URI form (``GET /check_tx?tx=0x...``); a bad, empty or
    oversized hex tx is refused."""
    served = await start_served(nursery, Limits(max_tx_bytes=8))
    tx = b"\x81\xa1x\x01"
    by_b64 = await served.client.call("check_tx", tx=base64.b64encode(tx).decode())
    by_hex = await served.client.call("check_tx", tx="0x" + tx.hex())
    assert by_hex == by_b64
    for bad in ("0xzz", "0x", "0x" + "00" * 9):
        with pytest.raises(RPCClientError) as info:
            await served.client.call("check_tx", tx=bad)
        assert info.value.code == errors.INVALID_PARAMS, bad
    await served.client.aclose()


def test_search_queries_parse_like_cometbfts() -> None:
    parsed = parse_query("tx.height >= 5 AND message.sender = 'clr1x' AND transfer.amount EXISTS").conditions
    assert [(c.key, c.op, c.operand) for c in parsed] == [
        ("tx.height", ">=", 5), ("message.sender", "=", "clr1x"), ("transfer.amount", "EXISTS", None)]
    assert parse_query("tx.hash='ab'").conditions[0].operand == "AB"
    assert parse_query("a.b CONTAINS 'x'").conditions[0].holds(["yxz"])
    assert not parse_query("tx.height>5").conditions[0].holds(["5"])
    assert not parse_query("tx.height=5").conditions[0].holds(["50"])
    for bad in ("", "tx.height", "tx.height == 5", "a.b CONTAINS 5", "tx.height = 1.5",
                " AND ".join(["a.b=1"] * 9)):
        with pytest.raises(QueryError):
            parse_query(bad)


async def test_search_filters_and_pages_over_a_real_chain(tmp_path: Path) -> None:
    async with real_node(tmp_path, funded=True) as client:
        status = await client.call("status")
        chain_id, tip = status["node_info"]["network"], int(status["sync_info"]["latest_block_height"])
        sender, other = demo_signer("long-0"), demo_signer("short-0")
        heights = []
        for amount, (signer, to) in enumerate([(sender, other), (other, sender), (sender, other)], 1):
            tx = build_transfer_tx(signer, chain_id, to.address, "USDC", amount, fee=1_000, expiry=tip + 100)
            heights.append((await client.call("broadcast_tx_commit", tx=base64.b64encode(tx).decode()))["height"])
        mine = await client.call("tx_search", query=f"message.sender='{format_address(sender.address)}'")
        assert mine["total_count"] == "2"
        assert [t["tx_result"]["code"] for t in mine["txs"]] == [0, 0]
        assert {a["value"] for t in mine["txs"] for e in t["tx_result"]["events"] if e["type"] == "transfer"
                for a in e["attributes"] if a["key"] == "amount"} == {"1", "3"}
        page = await client.call("tx_search", query="tx.height>=1", per_page=1, page=2, order_by="desc")
        transfer = page["txs"][0]["tx_result"]["events"][-1]
        assert page["total_count"] == "3" and {"key": "amount", "value": "2", "index": True} in transfer["attributes"]
        none = await client.call("tx_search", query=f"tx.height={heights[0]} AND transfer.amount='2'")
        assert none["total_count"] == "0" or heights[0] == heights[1]
        blocks = await client.call("block_search", query=f"block.height>={heights[-1]}")
        assert blocks["blocks"][0]["block"]["header"]["height"] == heights[-1]
        with pytest.raises(RPCClientError) as info:
            await client.call("tx_search", query="tx.height == 1")
        assert info.value.code == errors.INVALID_PARAMS
        with pytest.raises(RPCClientError) as info:
            await client.call("tx_search", query="tx.height>=1", page=9)
        assert info.value.code == errors.INVALID_PARAMS


async def test_clearing_queries_answer_under_abci_query(tmp_path: Path) -> None:
    async with real_node(tmp_path, funded=True) as client:
        address = format_address(demo_signer("long-0").address)
        direct = await client.call("account", address=address)
        answer = (await client.call("abci_query", path=f"/clearing/account/{address}"))["response"]
        assert answer["code"] == 0 and json.loads(base64.b64decode(answer["value"])) == direct
        market = (await client.call("abci_query", path="/clearing/market",
                                    data=json.dumps({"market": "BTC-PERP"}).encode().hex()))["response"]
        assert market["code"] == 0 and json.loads(base64.b64decode(market["value"]))["id"] == "BTC-PERP"
        for path, data in [("/clearing/nope", ""), ("/clearing/account/clr1bad", ""),
                           ("/clearing/market", b"[1]".hex()), ("/clearing/status", "")]:
            failed = (await client.call("abci_query", path=path, data=data))["response"]
            assert failed["code"] != 0 and failed["log"] and failed["value"] is None, path
