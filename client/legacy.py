"""Today's answers of the CometBFT-standard methods, rewritten into CometBFT v0.38's shape.

Delete when the CometBFT-shape layer lands (issue 18's compatibility part): the node will then
answer in v0.38's shape itself and :mod:`client.results` parses it as it comes. Until then
``client.api`` passes every answer of the methods in :data:`METHODS` through :func:`to_v038`.
Each rewrite looks at the field it changes and leaves a field already in v0.38's shape alone,
so answers of a node that already speaks v0.38 pass through unchanged.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from primitives.crypto import AddressError, parse_address

ED25519 = "tendermint/PubKeyEd25519"


def _rfc3339(nanoseconds: int) -> str:
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def _time(value: Any) -> Any:
    """An integer-nanoseconds string (today) as RFC3339; an RFC3339 string as it is."""
    return _rfc3339(int(value)) if isinstance(value, (int, str)) and str(value).isdigit() else value


def _b64_of_hex(value: Any) -> str:
    return base64.b64encode(bytes.fromhex(value or "")).decode()


def _block_id(value: Any) -> Any:
    if value is None or isinstance(value, str):  # a bare hash (or none, at height 1)
        return {"hash": value or "", "parts": {"total": 0, "hash": ""}}
    return value


def _pub_key(value: Any) -> Any:
    if isinstance(value, str):
        return {"type": ED25519, "value": value}
    if isinstance(value, dict) and value.get("type") == "ed25519":
        return {**value, "type": ED25519}
    return value


def header(value: dict[str, Any]) -> dict[str, Any]:
    out = dict(value)
    if "time" not in out and "time_ms" in out:
        out["time"] = int(out["time_ms"]) * 1_000_000
    out.pop("time_ms", None)
    out["time"] = _time(out["time"])
    if "last_block_hash" in out:
        out.setdefault("last_block_id", out.pop("last_block_hash"))
    out["last_block_id"] = _block_id(out.get("last_block_id"))
    if "proposer" in out:
        out.setdefault("proposer_address", out.pop("proposer"))
    return out


def _signature(value: Any) -> Any:
    if isinstance(value, list):  # today: [flag, address, timestamp_ms, signature], hex bytes
        flag, address, stamp_ms, signature = value
        return {"block_id_flag": int(flag), "validator_address": address,
                "timestamp": _rfc3339(int(stamp_ms) * 1_000_000), "signature": _b64_of_hex(signature)}
    return value


def commit(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    out = dict(value)
    out["block_id"] = _block_id(out.get("block_id"))
    out["signatures"] = [_signature(s) for s in out.get("signatures") or ()]
    return out


def _attribute_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def events(items: Any) -> list[Any]:
    out = []
    for event in items or ():
        if "attrs" in event:  # today: {"type", "attrs": {key: value}}
            event = {"type": event["type"], "attributes": [
                {"key": k, "value": _attribute_value(v), "index": True} for k, v in (event["attrs"] or {}).items()]}
        out.append(event)
    return out


def tx_result(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else {**value, "events": events(value.get("events"))}


def _block(answer: dict[str, Any]) -> dict[str, Any]:
    block = answer["block"]
    return {"block_id": _block_id(answer["block_id"].get("hash")) if "parts" not in answer["block_id"]
            else answer["block_id"],
            "block": {**block, "header": header(block["header"]), "last_commit": commit(block.get("last_commit"))}}


def _status(answer: dict[str, Any]) -> dict[str, Any]:
    sync = dict(answer["sync_info"])
    sync["latest_block_time"] = _time(sync.get("latest_block_time"))
    validator = dict(answer.get("validator_info") or {})
    if "pub_key" in validator:
        validator["pub_key"] = _pub_key(validator["pub_key"])
    return {**answer, "sync_info": sync, "validator_info": validator}


def _validators(answer: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "validators": [{**v, "pub_key": _pub_key(v["pub_key"])} for v in answer["validators"]]}


def _genesis_validator(value: dict[str, Any]) -> dict[str, Any]:
    out = {**value, "pub_key": _pub_key(value["pub_key"])}
    address = out.get("address", "")
    if isinstance(address, str) and address.startswith("clr1"):
        try:
            out["address"] = parse_address(address).hex().upper()
        except AddressError:
            pass
    return out


def _genesis(answer: dict[str, Any]) -> dict[str, Any]:
    doc = dict(answer["genesis"])
    if "genesis_time" not in doc and "genesis_time_ms" in doc:
        doc["genesis_time"] = _rfc3339(int(doc.pop("genesis_time_ms")) * 1_000_000)
    doc["validators"] = [_genesis_validator(v) for v in doc.get("validators") or ()]
    return {**answer, "genesis": doc}


def _block_results(answer: dict[str, Any]) -> dict[str, Any]:
    out = dict(answer)
    if "finalize_block_events" not in out:
        out["finalize_block_events"] = list(out.pop("begin_block_events", ())) + list(out.pop("end_block_events", ()))
    out["finalize_block_events"] = events(out["finalize_block_events"])
    out["txs_results"] = [tx_result(r) for r in out.get("txs_results") or ()]
    return out


def _blockchain(answer: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "block_metas": [
        {**m, "block_id": _block_id(m["block_id"].get("hash")) if "parts" not in m["block_id"] else m["block_id"],
         "header": header(m["header"])} for m in answer.get("block_metas") or ()]}


METHODS = {
    "status": _status,
    "block": _block,
    "block_by_hash": _block,
    "blockchain": _blockchain,
    "commit": lambda a: {**a, "signed_header": {"header": header(a["signed_header"]["header"]),
                                                "commit": commit(a["signed_header"]["commit"])}},
    "validators": _validators,
    "block_results": _block_results,
    "tx": lambda a: {**a, "tx_result": tx_result(a["tx_result"])},
    "genesis": _genesis,
    "check_tx": tx_result,
    "broadcast_tx_commit": lambda a: {**a, "check_tx": tx_result(a["check_tx"]),
                                      "tx_result": tx_result(a.get("tx_result"))},
}


def to_v038(method: str, answer: Any) -> Any:
    """``answer`` of ``method`` in CometBFT v0.38's shape (unchanged for other methods)."""
    rewrite = METHODS.get(method)
    return answer if rewrite is None or not isinstance(answer, dict) else rewrite(answer)
