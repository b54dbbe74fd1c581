"""The fast tx decoding path accepts exactly what the checked path accepts, with equal results.

``decode_tx`` first tries msgpack's C decoder plus a re-pack and per-schema key-order checks,
and falls back to the hook-checked codec for anything it refuses. A tx the two paths judged
differently would be a consensus split between nodes that happened to take different paths.
"""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.codec import decode, encode
from primitives.crypto import sign_bytes
from state.codes import Code, TxRejected
from state.txs import ORDER_TAG, TX_TAG, _decode_tx, _NotCanonical, _sign_bytes, decode_tx
from tests.state.test_fuzz import CID, SAMPLES


def _verdict(data: bytes, fast: bool):
    try:
        return _decode_tx(data, CID, fast=fast)
    except (TxRejected, _NotCanonical) as exc:
        return type(exc)


def _agree(data: bytes) -> None:
    checked = _verdict(data, fast=False)
    fast = _verdict(data, fast=True)
    if isinstance(fast, type):  # refused by the fast path: the checked path decides alone
        assert isinstance(checked, type) or checked.kind == "vote", "a valid tx missed the fast path"
        return
    assert fast == checked, "the fast path accepted what the checked path decodes differently"


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                          min_size=1, max_size=3))
def test_mutated_bytes_get_the_same_verdict(sample: bytes, flips: list) -> None:
    data = bytearray(sample)
    for position, value in flips:
        data[position % len(data)] = value
    _agree(bytes(data))


@pytest.mark.parametrize("sample", SAMPLES[:2] + SAMPLES[3:])  # votes always take the checked path
def test_valid_txs_take_the_fast_path(sample: bytes) -> None:
    assert _verdict(sample, fast=True) == _verdict(sample, fast=False) == decode_tx(sample, CID)


def _reorder_body(sample: bytes, **changes) -> bytes:
    """The sample with its body's keys written in reverse order (non-canonical), re-signed bytes aside."""
    envelope = decode(sample)
    body = {**decode(envelope["body"]), **changes}
    reordered = msgpack.packb(dict(reversed(list(body.items()))), use_bin_type=True)
    return msgpack.packb({"sig": envelope["sig"], "body": reordered}, use_bin_type=True)


def test_unsorted_keys_are_refused_by_both_paths() -> None:
    data = _reorder_body(SAMPLES[1])
    assert _verdict(data, fast=True) is _NotCanonical
    with pytest.raises(TxRejected) as rejected:
        decode_tx(data, CID)
    assert rejected.value.code == Code.DECODE_ERROR


def test_a_float_or_a_long_int_form_is_refused_with_the_checked_paths_code() -> None:
    envelope = decode(SAMPLES[1])
    body = decode(envelope["body"])
    as_float = {**body, "fee": float(body["fee"])}
    data = encode({"body": msgpack.packb(dict(sorted(as_float.items(), key=lambda kv: (len(kv[0]), kv[0]))),
                                         use_bin_type=True), "sig": envelope["sig"]})
    with pytest.raises(TxRejected) as rejected:
        decode_tx(data, CID)
    assert rejected.value.code == Code.DECODE_ERROR
    # nonce 1 written as a uint64 instead of a positive fixint: same value, longer bytes
    short = envelope["body"]
    long_form = short.replace(b"\xa5nonce\x02", b"\xa5nonce\xcf" + (2).to_bytes(8, "big"))
    assert long_form != short
    data = encode({"body": long_form, "sig": envelope["sig"]})
    assert _verdict(data, fast=True) is _NotCanonical
    with pytest.raises(TxRejected) as rejected:
        decode_tx(data, CID)
    assert rejected.value.code == Code.DECODE_ERROR


@given(st.binary(max_size=300), st.text(max_size=30))
def test_cached_sign_prefix_equals_sign_bytes(body: bytes, chain_id: str) -> None:
    for tag in (TX_TAG, ORDER_TAG):
        assert _sign_bytes(tag, chain_id, body) == sign_bytes(tag, chain_id, body)


@pytest.mark.parametrize(("side", "expected"), [
    ([1.5], Code.DECODE_ERROR),  # a float: the checked codec refuses it
    ({"b": 1, "a": 2}, Code.DECODE_ERROR),  # unsorted keys
    ({"a": 1, "b": 2}, Code.INVALID_FIELD),  # canonical, but a map is no side (and unhashable)
    ([], Code.INVALID_FIELD),
    (7, Code.INVALID_FIELD),
])
def test_an_unhashable_or_odd_side_is_a_decode_or_field_error_not_a_crash(side, expected) -> None:
    envelope = decode(SAMPLES[0])
    body = decode(envelope["body"])
    maker = body["msg"]["maker"]
    order_body = {**decode(maker["body"]), "side": side}
    ordered = dict(sorted(order_body.items(), key=lambda kv: (len(kv[0]), kv[0])))
    maker = {"sig": maker["sig"], "body": msgpack.packb(ordered, use_bin_type=True)}
    msg = {**body["msg"], "maker": maker}
    body = {**body, "msg": dict(sorted(msg.items(), key=lambda kv: (len(kv[0]), kv[0])))}
    data = msgpack.packb({"sig": envelope["sig"], "body": msgpack.packb(body, use_bin_type=True)},
                         use_bin_type=True)
    with pytest.raises(TxRejected) as rejected:
        decode_tx(data, CID)
    assert rejected.value.code == expected
