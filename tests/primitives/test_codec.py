"""The canonical encoding: one byte string per value, and nothing else accepted."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from primitives.codec import CodecError, decode, encode
from primitives.hashing import EMPTY_HASH, hash_value, merkle_root, sha256

keys = st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**64 - 1), st.binary(max_size=8))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=20), st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=30,
)


@given(st.dictionaries(keys, values, max_size=8), st.randoms())
def test_insertion_order_does_not_change_bytes(mapping, rnd) -> None:
    items = list(mapping.items())
    rnd.shuffle(items)
    assert encode(dict(items)) == encode(mapping)


@given(values)
def test_round_trip(value) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


def test_tuples_encode_as_lists() -> None:
    assert encode((1, 2)) == encode([1, 2])


@pytest.mark.parametrize("value", [1.5, {"a": 0.0}, [1, [2, float("nan")]]])
def test_floats_are_rejected(value) -> None:
    with pytest.raises(CodecError, match="floats are not allowed"):
        encode(value)


def test_float_bytes_are_rejected_on_decode() -> None:
    with pytest.raises(CodecError, match="floats"):
        decode(msgpack.packb({"price": 1.25}))


def test_unsorted_map_bytes_are_rejected() -> None:
    unsorted = msgpack.packb({"b": 1, "a": 2}, use_bin_type=True)
    with pytest.raises(CodecError, match="non-canonical"):
        decode(unsorted)


def test_non_minimal_integer_is_rejected() -> None:
    non_minimal = b"\xcd\x00\x05"  # uint16 holding 5, which has a one-byte form
    with pytest.raises(CodecError, match="non-canonical"):
        decode(non_minimal)


def test_bytes_as_str_is_rejected() -> None:
    # A str-typed payload and a bin-typed payload are different values; raw str of invalid
    # UTF-8 is malformed.
    with pytest.raises(CodecError, match="malformed"):
        decode(b"\xa2\xff\xfe")


def test_trailing_bytes_and_truncation_are_rejected() -> None:
    data = encode({"a": 1})
    with pytest.raises(CodecError):
        decode(data + b"\x00")
    with pytest.raises(CodecError):
        decode(data[:-1])


def test_oversized_input_is_rejected_before_parsing() -> None:
    data = encode(b"x" * 1000)
    with pytest.raises(CodecError, match="exceeds the limit"):
        decode(data, max_bytes=100)
    assert decode(data, max_bytes=len(data)) == b"x" * 1000


def test_extension_types_and_odd_keys_are_rejected() -> None:
    with pytest.raises(CodecError, match="extension"):
        decode(msgpack.packb(msgpack.ExtType(1, b"x")))
    with pytest.raises(CodecError):
        encode({(1, 2): 3})
    with pytest.raises(CodecError, match="no canonical encoding"):
        encode({1, 2})


def test_duplicate_keys_are_rejected() -> None:
    # A map with the key "a" twice: decoders disagree on which value wins, so it must fail.
    duplicated = b"\x82\xa1a\x01\xa1a\x02"
    with pytest.raises(CodecError):
        decode(duplicated)


def test_deep_nesting_is_rejected() -> None:
    value: list = []
    for _ in range(40):
        value = [value]
    with pytest.raises(CodecError, match="nesting"):
        encode(value)


def test_merkle_root_rfc6962_shape() -> None:
    assert merkle_root([]) == EMPTY_HASH
    a, b, c = b"a", b"b", b"c"
    leaf = lambda x: sha256(b"\x00" + x)
    node = lambda l, r: sha256(b"\x01" + l + r)
    assert merkle_root([a]) == leaf(a)
    assert merkle_root([a, b]) == node(leaf(a), leaf(b))
    assert merkle_root([a, b, c]) == node(node(leaf(a), leaf(b)), leaf(c))
    assert merkle_root([a, b]) != merkle_root([b, a])
    assert hash_value({"x": 1}) == sha256(encode({"x": 1}))


def test_floats_inside_lists_and_at_top_level_are_rejected_on_decode() -> None:
    with pytest.raises(CodecError, match="floats"):
        decode(msgpack.packb([1, [2, 0.5]]))
    with pytest.raises(CodecError, match="floats"):
        decode(msgpack.packb(0.5))


def test_mixed_key_maps_must_be_in_encoded_byte_order() -> None:
    canonical = encode({1: "a", "b": 2, b"c": 3})
    assert decode(canonical) == {1: "a", "b": 2, b"c": 3}
    reordered = msgpack.packb({"b": 2, 1: "a", b"c": 3}, use_bin_type=True)
    with pytest.raises(CodecError, match="non-canonical"):
        decode(reordered)


def test_long_string_keys_sort_after_short_ones() -> None:
    # fixstr (< 32 bytes) sorts before str8: key order is by encoded bytes, not alphabet.
    long_key, short_key = "a" * 40, "b"
    data = encode({long_key: 1, short_key: 2})
    assert data.index(b"b") < data.index(b"a" * 40)
    assert decode(data) == {long_key: 1, short_key: 2}


def test_lone_surrogate_key_is_rejected() -> None:
    with pytest.raises(CodecError):
        encode({"\ud800": 1})


def _nested(levels: int):
    value: object = 1
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def test_decode_accepts_exactly_the_depth_encode_accepts() -> None:
    deepest = _nested(32)
    assert decode(encode(deepest)) == deepest
    too_deep = msgpack.packb(_nested(33), use_bin_type=True)
    with pytest.raises(CodecError, match="nesting"):
        encode(_nested(33))
    with pytest.raises(CodecError, match="nesting"):
        decode(too_deep)


def test_a_str_subclass_key_is_refused_whatever_was_encoded_before() -> None:
    class Name(str):
        pass

    encode({"only": 1, "key": 2})  # fills the key-order cache with an equal str key set
    with pytest.raises(CodecError):
        encode({Name("only"): 1, Name("key"): 2})
