"""The node's views rendered in CometBFT v0.38's JSON shapes (the shape table: rpc/comet/README.md).

Pure functions from :mod:`rpc.views` (and the plain headers, commits and genesis a node hands
over) to JSON-ready values, so that a client written for CometBFT v0.38 (cosmjs
``Comet38Client``, block explorers, wallet backends) reads the answers unchanged. Number
encoding follows CometBFT's amino JSON: 64-bit values are decimal strings, ``code``, ``index``,
``round``, ``block_id_flag`` and ``parts.total`` are JSON numbers; hashes and addresses are
upper-case hex, signatures, keys and raw txs base64, times RFC 3339 with up to nine fractional
digits (Go's ``RFC3339Nano``: trailing zeros dropped).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from primitives.hashing import leaf_hash, merkle_aunts, merkle_root, sha256
from rpc.render import ADDRESS_KEYS, format_address, render
from rpc.views import (
    BlockResults,
    BlockView,
    CommitView,
    NetInfo,
    NodeStatus,
    PeerView,
    QueryResult,
    RoundStateView,
    TxRecord,
    TxResultView,
    ValidatorView,
)

COMET_DIALECT = "0.38.17"
"""The CometBFT release whose RPC this node speaks; ``node_info.version`` starts with it, so
clients that choose a dialect by version (cosmjs ``connectComet``) pick the 0.38 one."""
BLOCK_PROTOCOL = 11
"""CometBFT v0.38's block protocol version (``version.block``)."""
P2P_PROTOCOL = 8
APP_VERSION = 0
ED25519_PUBKEY = "tendermint/PubKeyEd25519"
CHANNELS = "40202122233038606100"
"""CometBFT's channel ids for the reactors this node runs (blocksync 0x40, consensus
0x20-0x23, mempool 0x30, evidence 0x38, state sync 0x60-0x61, PEX 0x00), hex as CometBFT lists
them; this node carries them as libp2p protocols, not channels."""
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time: what CometBFT shows for an absent signature's timestamp."""

BLOCK_ID_FLAG_ABSENT = 1
BLOCK_ID_FLAG_COMMIT = 2
BLOCK_ID_FLAG_NIL = 3


# --- scalars ------------------------------------------------------------------------------------


def hex_upper(data: bytes | None) -> str:
    return bytes(data).hex().upper() if data else ""


def b64(data: bytes | None) -> str:
    return base64.b64encode(bytes(data)).decode() if data else ""


def rfc3339(nanos: int) -> str:
    """Unix nanoseconds as Go's ``time.RFC3339Nano`` in UTC (0 is Go's zero time)."""
    if nanos <= 0:
        return ZERO_TIME
    seconds, fraction = divmod(nanos, 1_000_000_000)
    text = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def parse_rfc3339(text: str) -> int:
    """Unix nanoseconds of an RFC 3339 time as :func:`rfc3339` writes it (clients reading
    ``latest_block_time`` and header times use this)."""
    if not text or text == ZERO_TIME:
        return 0
    main, _, rest = text.rstrip("Z").partition(".")
    seconds = int(datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
                  .replace(tzinfo=datetime.timezone.utc).timestamp())
    return seconds * 1_000_000_000 + int((rest or "0").ljust(9, "0")[:9])


def pub_key(key: bytes) -> dict[str, str]:
    return {"type": ED25519_PUBKEY, "value": b64(key)}


def node_id(ed25519_public_key: bytes) -> str:
    """CometBFT's node id: hex of the first 20 bytes of SHA-256 of the node's Ed25519 key."""
    return sha256(ed25519_public_key)[:20].hex()


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_LIBP2P_ED25519_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
"""An identity multihash (0x00, length 36) of libp2p's protobuf PublicKey {Type: Ed25519, Data: 32 bytes}."""


def libp2p_ed25519_key(peer_id: str) -> bytes | None:
    """The Ed25519 key inside a libp2p peer id (``12D3KooW...``), or None for other ids."""
    number = 0
    for char in peer_id:
        digit = _BASE58.find(char)
        if digit < 0:
            return None
        number = number * 58 + digit
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    raw = b"\x00" * (len(peer_id) - len(peer_id.lstrip("1"))) + raw
    if len(raw) != 38 or not raw.startswith(_LIBP2P_ED25519_PREFIX):
        return None
    return raw[len(_LIBP2P_ED25519_PREFIX):]


@functools.lru_cache(maxsize=1024)
def comet_node_id(peer_id: str) -> str:
    """The 40-hex node id for a node known by its libp2p peer id: derived from the same
    Ed25519 key, as CometBFT derives it; a peer id without an Ed25519 key is hashed whole."""
    key = libp2p_ed25519_key(peer_id)
    return node_id(key) if key is not None else sha256(peer_id.encode())[:20].hex()


# --- reading the node's plain headers and commits -----------------------------------------------


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` present in a mapping or dataclass (nodes spell a few differently)."""
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif obj is not None and hasattr(obj, name):
            return getattr(obj, name)
    return default


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if dataclasses.is_dataclass(value) and hasattr(value, "hash"):  # a BlockID
        return bytes(value.hash)
    return b""


def block_id(block_hash: bytes | None) -> dict[str, Any]:
    """``{hash, parts: {total, hash}}``; this node gossips whole blocks, so a block is one
    part whose hash is the block hash. No block: CometBFT's empty id."""
    if not block_hash:
        return {"hash": "", "parts": {"total": 0, "hash": ""}}
    return {"hash": hex_upper(block_hash), "parts": {"total": 1, "hash": hex_upper(block_hash)}}


def _time_ns(header: Any) -> int:
    nanos = _get(header, "time")
    if isinstance(nanos, int):
        return nanos
    return int(_get(header, "time_ms", default=0)) * 1_000_000


def header(value: Any) -> dict[str, Any]:
    """A block header (the node's plain form or ``consensus.types.Header``)."""
    return {
        "version": {"block": str(BLOCK_PROTOCOL), "app": str(APP_VERSION)},
        "chain_id": str(_get(value, "chain_id", default="")),
        "height": str(int(_get(value, "height", default=0))),
        "time": rfc3339(_time_ns(value)),
        "last_block_id": block_id(_bytes(_get(value, "last_block_id", "last_block_hash"))),
        "last_commit_hash": hex_upper(_bytes(_get(value, "last_commit_hash"))),
        "data_hash": hex_upper(_bytes(_get(value, "data_hash"))),
        "validators_hash": hex_upper(_bytes(_get(value, "validators_hash"))),
        "next_validators_hash": hex_upper(_bytes(_get(value, "next_validators_hash"))),
        "consensus_hash": hex_upper(_bytes(_get(value, "consensus_hash"))),
        "app_hash": hex_upper(_bytes(_get(value, "app_hash"))),
        "last_results_hash": hex_upper(_bytes(_get(value, "last_results_hash"))),
        "evidence_hash": hex_upper(_bytes(_get(value, "evidence_hash"))),
        "proposer_address": hex_upper(_bytes(_get(value, "proposer_address", "proposer"))),
    }


def commit_sig(sig: Any) -> dict[str, Any]:
    """One entry of a commit: ``[flag, address, timestamp_ms, signature]`` (the node's plain
    form) or a ``CommitSig``-like object."""
    if isinstance(sig, (list, tuple)):
        flag, address, timestamp_ms, signature = sig
    else:
        flag = _get(sig, "flag", "block_id_flag")
        address = _get(sig, "validator_address", default=b"")
        timestamp_ms = _get(sig, "timestamp_ms", default=0)
        signature = _get(sig, "signature", default=b"")
    return {
        "block_id_flag": int(flag),
        "validator_address": hex_upper(address),
        "timestamp": rfc3339(int(timestamp_ms) * 1_000_000),
        "signature": b64(signature) or None,
    }


def commit(value: Any) -> dict[str, Any]:
    """A commit; None (height 1's last commit) is CometBFT's empty commit."""
    if value is None:
        return {"height": "0", "round": 0, "block_id": block_id(None), "signatures": []}
    return {
        "height": str(int(_get(value, "height", default=0))),
        "round": int(_get(value, "round", default=0)),
        "block_id": block_id(_bytes(_get(value, "block_id"))),
        "signatures": [commit_sig(s) for s in _get(value, "signatures", default=()) or ()],
    }


def vote(value: Any) -> dict[str, Any]:
    """A signed vote (the node's plain form or ``consensus.types.Vote``)."""
    return {
        "type": int(_get(value, "type", default=0)),
        "height": str(int(_get(value, "height", default=0))),
        "round": int(_get(value, "round", default=0)),
        "block_id": block_id(_bytes(_get(value, "block_id"))),
        "timestamp": rfc3339(int(_get(value, "timestamp_ms", default=0)) * 1_000_000),
        "validator_address": hex_upper(_bytes(_get(value, "validator_address"))),
        "validator_index": int(_get(value, "validator_index", default=0)),
        "signature": b64(_bytes(_get(value, "signature"))),
    }


def evidence(value: Any) -> dict[str, Any]:
    """Duplicate-vote evidence as CometBFT's amino JSON names it. Ours carries no voting
    powers or timestamp (they are read from the validator set at its height), so the value
    has the two votes only."""
    return {"type": "tendermint/DuplicateVoteEvidence",
            "value": {"vote_a": vote(_get(value, "vote_a")), "vote_b": vote(_get(value, "vote_b"))}}


def block(view: BlockView) -> dict[str, Any]:
    return {
        "header": header(view.header),
        "data": {"txs": [b64(tx) for tx in view.txs]},
        "evidence": {"evidence": [evidence(e) for e in view.evidence]},
        "last_commit": commit(view.last_commit),
    }


def block_answer(view: BlockView) -> dict[str, Any]:
    """``block``, ``block_by_hash`` and the blocks of ``block_search``."""
    return {"block_id": block_id(view.hash), "block": block(view)}


def block_meta(view: BlockView) -> dict[str, Any]:
    return {"block_id": block_id(view.hash), "block_size": str(view.size),
            "header": header(view.header), "num_txs": str(len(view.txs))}


def signed_header(view: CommitView) -> dict[str, Any]:
    return {"header": header(view.header), "commit": commit(view.commit)}


# --- events and results -------------------------------------------------------------------------


def attribute_value(key: str, value: Any) -> str:
    """An event attribute as the string CometBFT carries: addresses bech32, other bytes hex,
    integers decimal, structures as compact JSON of their rendered form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        if key in ADDRESS_KEYS and len(value) == 20:
            return format_address(bytes(value))
        return hex_upper(bytes(value))
    if isinstance(value, (str, int)):
        return str(value)
    return json.dumps(render(value), separators=(",", ":"), sort_keys=True)


def event(value: Mapping[str, Any]) -> dict[str, Any]:
    """``{"type", "attrs": {...}}`` (state/'s events) as ``{type, attributes: [{key, value, index}]}``."""
    attributes = value.get("attrs", value.get("attributes", {})) or {}
    if isinstance(attributes, Mapping):
        pairs = list(attributes.items())
    else:  # already a list of {key, value}
        pairs = [(a.get("key"), a.get("value")) for a in attributes]
    return {"type": str(value.get("type", "")),
            "attributes": [{"key": str(k), "value": attribute_value(str(k), v), "index": True}
                           for k, v in pairs]}


def message_event(result: TxResultView) -> list[dict[str, Any]]:
    """The ``message`` event a Cosmos SDK chain emits for every tx (``message.action``,
    ``message.sender``): wallets and explorers search by it. None for an undecodable tx."""
    if not result.kind:
        return []
    attributes = [{"key": "action", "value": result.kind, "index": True}]
    if result.sender:
        attributes.append({"key": "sender", "value": format_address(result.sender), "index": True})
    return [{"type": "message", "attributes": attributes}]


def tx_result(result: TxResultView) -> dict[str, Any]:
    """ExecTxResult / ResponseCheckTx; the ``message`` event first, then the app's events."""
    return {
        "code": int(result.code),
        "data": "",
        "log": result.log,
        "info": "",
        "gas_wanted": str(result.gas_wanted),
        "gas_used": str(result.gas_used),
        "events": [*message_event(result), *(event(e) for e in result.events)],
        "codespace": result.codespace,
    }


def tx_record(record: TxRecord, proof: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``tx`` and the entries of ``tx_search``."""
    answer: dict[str, Any] = {
        "hash": hex_upper(record.hash),
        "height": str(record.height),
        "index": int(record.index),
        "tx_result": tx_result(record.result),
        "tx": b64(record.tx),
    }
    if proof is not None:
        answer["proof"] = proof
    return answer


def tx_proof(txs: Sequence[bytes], index: int) -> dict[str, Any]:
    """TxProof of ``txs[index]`` against the header's ``data_hash``. Our data_hash is the
    RFC 6962 root of the raw txs (CometBFT's hashes each tx first), so ``leaf_hash`` is the
    leaf hash of the tx itself; ``aunts`` are in CometBFT's order."""
    return {"root_hash": hex_upper(merkle_root(txs)), "data": b64(txs[index]),
            "proof": {"total": str(len(txs)), "index": str(index),
                      "leaf_hash": b64(leaf_hash(txs[index])),
                      "aunts": [b64(a) for a in merkle_aunts(txs, index)]}}


def tx_event_value(record: TxRecord) -> dict[str, Any]:
    """The ``value`` of a ``tendermint/event/Tx`` event."""
    return {"TxResult": {"height": str(record.height), "index": int(record.index),
                         "tx": b64(record.tx),
                         "result": tx_result(record.result)}}


def validator_update(update: Mapping[str, Any]) -> dict[str, Any]:
    """ABCI ValidatorUpdate as v0.38 renders it (the protobuf ``Sum`` form)."""
    key = update.get("pub_key", b"")
    if isinstance(key, str):
        key = base64.b64decode(key)
    return {"pub_key": {"Sum": {"type": "tendermint.crypto.PublicKey_Ed25519",
                                "value": {"ed25519": b64(key)}}},
            "power": str(int(update.get("power", 0)))}


def finalize_block_events(results: BlockResults) -> list[dict[str, Any]]:
    """v0.38 has one block-level event list: begin-block events, then end-block events."""
    return [event(e) for e in [*results.begin_block_events, *results.end_block_events]]


def finalize_block(results: BlockResults) -> dict[str, Any]:
    """ResponseFinalizeBlock: the ``result_finalize_block`` of a NewBlock event."""
    return {
        "events": finalize_block_events(results),
        "tx_results": [tx_result(r) for r in results.txs_results] or None,
        "validator_updates": [validator_update(u) for u in results.validator_updates] or None,
        "consensus_param_updates": None,
        "app_hash": b64(results.app_hash),
    }


def block_results(results: BlockResults) -> dict[str, Any]:
    return {
        "height": str(results.height),
        "txs_results": [tx_result(r) for r in results.txs_results] or None,
        "finalize_block_events": finalize_block_events(results),
        "validator_updates": [validator_update(u) for u in results.validator_updates] or None,
        "consensus_param_updates": None,
        "app_hash": b64(results.app_hash),  # []byte in v0.38's ResultBlockResults: base64
    }


def event_keys(events: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """``{type.key: [values]}`` of CometBFT-shaped events (:func:`event`)."""
    keys: dict[str, list[str]] = {}
    for event in events:
        for attribute in event["attributes"]:
            keys.setdefault(f"{event['type']}.{attribute['key']}", []).append(attribute["value"])
    return keys


# --- node, validators, genesis, params ----------------------------------------------------------


def validator(view: ValidatorView) -> dict[str, Any]:
    return {"address": hex_upper(view.address), "pub_key": pub_key(view.pub_key),
            "voting_power": str(view.voting_power), "proposer_priority": str(view.proposer_priority)}


def status(s: NodeStatus, *, earliest: BlockView | None = None) -> dict[str, Any]:
    return {
        "node_info": {
            "protocol_version": {"p2p": str(P2P_PROTOCOL), "block": str(BLOCK_PROTOCOL),
                                 "app": str(APP_VERSION)},
            "id": comet_node_id(s.node_id),
            "listen_addr": s.listen_addr,
            "network": s.chain_id,
            "version": f"{COMET_DIALECT}+clearchain.{s.version}",
            "channels": CHANNELS,
            "moniker": s.moniker,
            "other": {"tx_index": "on", "rpc_address": s.rpc_addr, "libp2p_id": s.node_id,
                      "clearchain_version": s.version},
        },
        "sync_info": {
            "latest_block_hash": hex_upper(s.latest_block_hash),
            "latest_app_hash": hex_upper(s.latest_app_hash),
            "latest_block_height": str(s.latest_block_height),
            "latest_block_time": rfc3339(s.latest_block_time_ns),
            "earliest_block_hash": hex_upper(earliest.hash) if earliest else "",
            "earliest_app_hash": hex_upper(_bytes(_get(earliest.header, "app_hash"))) if earliest else "",
            "earliest_block_height": str(s.earliest_block_height),
            "earliest_block_time": rfc3339(_time_ns(earliest.header)) if earliest else ZERO_TIME,
            "catching_up": s.catching_up,
        },
        "validator_info": {
            "address": hex_upper(s.validator_address),
            "pub_key": pub_key(s.validator_pub_key),
            "voting_power": str(s.validator_voting_power),
        },
    }


EVIDENCE_MAX_AGE_BLOCKS = 1000
"""node/evidence.py's EVIDENCE_MAX_AGE (rpc may not import node; tests/rpc/test_comet.py holds
the two equal)."""


def _ip_of(multiaddr: str) -> str:
    """The IP in ``/ip4/1.2.3.4/tcp/26656/...`` (or ``/ip6/...``); "" if there is none."""
    parts = multiaddr.split("/")
    for kind_index, part in enumerate(parts[:-1]):
        if part in ("ip4", "ip6"):
            return parts[kind_index + 1]
    return ""


def peer(view: PeerView, chain_id: str) -> dict[str, Any]:
    """A connected peer as CometBFT lists it; what a libp2p connection does not tell (its
    version, moniker, monitors) stays empty, ``connection_status`` is left out."""
    return {
        "node_info": {
            "protocol_version": {"p2p": str(P2P_PROTOCOL), "block": str(BLOCK_PROTOCOL),
                                 "app": str(APP_VERSION)},
            "id": comet_node_id(view.node_id), "listen_addr": view.address, "network": chain_id,
            "version": "", "channels": CHANNELS, "moniker": view.moniker,
            "other": {"tx_index": "", "rpc_address": "", "libp2p_id": view.node_id},
        },
        "is_outbound": view.is_outbound,
        "remote_ip": _ip_of(view.address),
    }


def net_info(info: NetInfo, chain_id: str) -> dict[str, Any]:
    """CometBFT's net_info, plus ours: ``persistent_peers`` (each configured peer and the
    node's dialling of it)."""
    return {
        "listening": info.listening,
        "listeners": list(info.listeners),
        "n_peers": str(len(info.peers)),
        "peers": [peer(p, chain_id) for p in info.peers],
        "persistent_peers": [
            {"id": p.node_id, "address": p.address,
             "connected": p.connected, "since_ms": str(p.since_ms), "dials": str(p.dials),
             "next_dial_ms": None if p.next_dial_ms is None else str(p.next_dial_ms),
             "last_error": p.last_error}
            for p in info.persistent_peers
        ],
    }


def consensus_params(genesis: Mapping[str, Any]) -> dict[str, Any]:
    """CometBFT's ConsensusParams from the genesis' ``consensus_params``. Where this chain has
    no such limit the value says so as CometBFT does: no gas (``max_gas`` -1), evidence bounded
    by age in blocks only (``max_age_duration`` 0) and by the block size."""
    block_params = (genesis.get("consensus_params") or {}).get("block") or {}
    max_bytes = str(int(block_params.get("max_bytes", 0)))
    return {
        "block": {"max_bytes": max_bytes, "max_gas": "-1"},
        "evidence": {"max_age_num_blocks": str(EVIDENCE_MAX_AGE_BLOCKS), "max_age_duration": "0",
                     "max_bytes": max_bytes},
        "validator": {"pub_key_types": ["ed25519"]},
        "version": {"app": str(APP_VERSION)},
        "abci": {"vote_extensions_enable_height": "0"},
    }


def genesis_validator(entry: Mapping[str, Any]) -> dict[str, Any]:
    key = entry.get("pub_key", "")
    key_bytes = base64.b64decode(key) if isinstance(key, str) else bytes(key)
    return {"address": hex_upper(sha256(key_bytes)[:20]), "pub_key": pub_key(key_bytes),
            "power": str(int(entry.get("power", 0))), "name": str(entry.get("name", ""))}


def genesis(document: Mapping[str, Any]) -> dict[str, Any]:
    """The genesis in CometBFT's shape: chain id, time, validators and consensus params as
    CometBFT lists them, the clearing genesis (the document's ``app_state``, JSON as written)
    under ``app_state``."""
    return {
        "genesis_time": rfc3339(int(document.get("genesis_time_ms", 0)) * 1_000_000),
        "chain_id": str(document.get("chain_id", "")),
        "initial_height": str(int(document.get("initial_height", 1))),
        "consensus_params": consensus_params(document),
        "validators": [genesis_validator(v) for v in document.get("validators", ())],
        "app_hash": "",
        "app_state": document.get("app_state"),
    }


# --- abci_query, consensus_state ----------------------------------------------------------------


def query_response(result: QueryResult) -> dict[str, Any]:
    """ResponseQuery; the node's proof ``{"ops": [{"type", "data"}], ...}`` becomes CometBFT's
    ``proofOps`` with base64 ``key`` (the queried key) and ``data``."""
    proof = None
    if isinstance(result.proof, Mapping) and result.proof.get("ops"):
        proof = {"ops": [{"type": str(op.get("type", "")), "key": b64(op.get("key", result.key)),
                          "data": b64(op.get("data", b""))} for op in result.proof["ops"]]}
    return {"code": int(result.code), "log": result.log, "info": "", "index": "0",
            "key": b64(result.key), "value": None if result.value is None else b64(result.value),
            "proofOps": proof,
            "height": str(result.height), "codespace": "clearing" if result.code else ""}


def query_success(key: bytes, value: bytes, height: int) -> dict[str, Any]:
    return query_response(QueryResult(key=key, value=value, height=height))


def query_failure(code: int, log: str, height: int) -> dict[str, Any]:
    return query_response(QueryResult(code=code, log=log, height=height))


STEP_NUMBERS = {"NewHeight": 1, "Propose": 3, "Prevote": 4, "Precommit": 6, "Commit": 8}
"""CometBFT's RoundStepType numbers for the steps this core has (it has no *Wait steps)."""


def round_state(view: RoundStateView) -> dict[str, Any]:
    """``consensus_state``'s ``round_state`` (the summary CometBFT gives, not dump_consensus_state)."""
    return {
        "height/round/step": f"{view.height}/{view.round}/{STEP_NUMBERS.get(view.step, 0)}",
        "start_time": rfc3339(view.start_time_ns),
        "proposal_block_hash": hex_upper(view.proposal_block_hash),
        "locked_block_hash": hex_upper(view.locked_block_hash),
        "valid_block_hash": hex_upper(view.valid_block_hash),
        "height_vote_set": [],
        "proposer": {"address": "", "index": -1},
    }
