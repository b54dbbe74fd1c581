"""The result types parse CometBFT v0.38's JSON (fixtures written from CometBFT's OpenAPI,
``rpc/openapi/openapi.yaml`` of v0.38, with its example values)."""

from __future__ import annotations

import base64

import pytest

from client import results as r

HASH = "F6E5E4CD9DC2BE5A3DE5B4E5E2C4B1B2B4A7E6F2C9D1A3B5C7D9E1F3A5B7C9D1"
PARTS = "9A8B7C6D5E4F3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B3C2D1E0F9A8B"
VALIDATOR = "000001E443FD237E4B616E2FA69DF4EE3D49A94F"
SIGNATURE = base64.b64encode(bytes(range(64))).decode()
PUB_KEY = base64.b64encode(bytes(range(32))).decode()
TIME = "2019-04-22T17:01:51.701356223Z"
TIME_NS = 1555952511_701356223  # date -d 2019-04-22T17:01:51Z +%s = 1555952511

V038_BLOCK = {
    "block_id": {"hash": HASH, "parts": {"total": 1, "hash": PARTS}},
    "block": {
        "header": {
            "version": {"block": "11", "app": "1"},
            "chain_id": "cosmoshub-2", "height": "12", "time": TIME,
            "last_block_id": {"hash": PARTS, "parts": {"total": 1, "hash": HASH}},
            "last_commit_hash": HASH, "data_hash": HASH, "validators_hash": HASH,
            "next_validators_hash": HASH, "consensus_hash": HASH, "app_hash": HASH,
            "last_results_hash": "", "evidence_hash": "", "proposer_address": VALIDATOR,
        },
        "data": {"txs": [base64.b64encode(b"tx-bytes").decode()]},
        "evidence": {"evidence": []},
        "last_commit": {
            "height": "11", "round": 0,
            "block_id": {"hash": PARTS, "parts": {"total": 1, "hash": HASH}},
            "signatures": [
                {"block_id_flag": 2, "validator_address": VALIDATOR, "timestamp": TIME, "signature": SIGNATURE},
                {"block_id_flag": 1, "validator_address": "", "timestamp": "0001-01-01T00:00:00Z",
                 "signature": None},
            ],
        },
    },
}

V038_TX_RESULT = {
    "code": 0, "data": "", "log": "", "info": "", "gas_wanted": "0", "gas_used": "0", "codespace": "",
    "events": [{"type": "transfer", "attributes": [
        {"key": "sender", "value": "clr1sender", "index": True},
        {"key": "amount", "value": "5", "index": True}]}],
}


def test_time_ns_reads_rfc3339_with_nanoseconds_and_offsets():
    assert r.time_ns(TIME) == TIME_NS
    assert r.time_ns("1970-01-01T00:00:00Z") == 0
    assert r.time_ns("1970-01-01T01:00:00.5+01:00") == 500_000_000
    with pytest.raises(ValueError):
        r.time_ns("1555952511701356223")  # CometBFT's times are RFC3339, never integer strings


def test_a_v038_block_parses():
    block = r.Block.from_json(V038_BLOCK)
    assert block.block_id == r.BlockId(bytes.fromhex(HASH), 1, bytes.fromhex(PARTS))
    assert block.height == 12 and block.header.time_ns == TIME_NS
    assert block.header.version_block == 11 and block.header.proposer_address == bytes.fromhex(VALIDATOR)
    assert block.header.last_block_id.hash == bytes.fromhex(PARTS)
    assert block.txs == (b"tx-bytes",)
    first, absent = block.last_commit.signatures
    assert (first.block_id_flag, first.validator_address, first.signature) == (
        r.BLOCK_ID_FLAG_COMMIT, bytes.fromhex(VALIDATOR), bytes(range(64)))
    assert first.timestamp_ns == TIME_NS
    assert (absent.block_id_flag, absent.signature) == (r.BLOCK_ID_FLAG_ABSENT, b"")


def test_v038_events_keep_attribute_order_and_values():
    result = r.TxResult.from_json(V038_TX_RESULT)
    assert result.ok and result.events[0].type == "transfer"
    assert result.events[0].attributes == (("sender", "clr1sender"), ("amount", "5"))
    assert result.events[0].get("amount") == "5" and result.events[0].get("missing") is None


def test_v038_status_validators_and_genesis_parse():
    status = r.Status.from_json({
        "node_info": {"protocol_version": {"p2p": "8", "block": "11", "app": "0"},
                      "id": "5576458aef205977e18fd50b274e9b5d9014525a", "listen_addr": "tcp://0.0.0.0:26656",
                      "network": "cosmoshub-2", "version": "0.38.0", "channels": "4020212223303800",
                      "moniker": "moniker-node", "other": {"tx_index": "on", "rpc_address": "tcp:0.0.0.0:26657"}},
        "sync_info": {"latest_block_hash": HASH, "latest_app_hash": HASH, "latest_block_height": "1262196",
                      "latest_block_time": TIME, "earliest_block_height": "1", "catching_up": False},
        "validator_info": {"address": VALIDATOR, "pub_key": {"type": "tendermint/PubKeyEd25519",
                                                             "value": PUB_KEY}, "voting_power": "0"}})
    assert (status.chain_id, status.height, status.latest_block_time_ns) == ("cosmoshub-2", 1262196, TIME_NS)
    assert status.validator_pub_key == r.PubKey("tendermint/PubKeyEd25519", bytes(range(32)))
    validators = r.Validators.from_json({"block_height": "55", "validators": [
        {"address": VALIDATOR, "pub_key": {"type": "tendermint/PubKeyEd25519", "value": PUB_KEY},
         "voting_power": "239727", "proposer_priority": "-11896414"}], "count": "1", "total": "25"})
    assert validators.validators[0].proposer_priority == -11896414 and validators.total == 25
    genesis = r.Genesis.from_json({"genesis": {
        "genesis_time": TIME, "chain_id": "cosmoshub-2", "initial_height": "2",
        "consensus_params": {"block": {"max_bytes": "22020096"}},
        "validators": [{"address": VALIDATOR, "pub_key": {"type": "tendermint/PubKeyEd25519", "value": PUB_KEY},
                        "power": "10", "name": ""}],
        "app_hash": "", "app_state": {"min_tx_fee": "1000"}}})
    assert (genesis.genesis_time_ns, genesis.initial_height, genesis.min_tx_fee) == (TIME_NS, 2, 1000)


async def test_net_info_parses_the_nodes_answer_into_its_peer_views():
    from rpc.limits import Limits
    from rpc.methods import Context, net_info
    from rpc.views import PeerView, PersistentPeerView
    from tests.rpc.fake_node import FakeNode

    node = FakeNode()
    info = r.NetInfo.from_json(await net_info(Context(node, Limits())))
    expected = await node.net_info()
    assert info.listening == expected.listening and info.listeners == tuple(expected.listeners)
    assert info.peers == tuple(expected.peers) and all(isinstance(p, PeerView) for p in info.peers)
    assert info.persistent_peers == tuple(expected.persistent_peers)
    assert all(isinstance(p, PersistentPeerView) for p in info.persistent_peers)
