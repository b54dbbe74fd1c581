"""The one canonical encoding of everything that is hashed or signed.

msgpack with map keys sorted by their encoded bytes, bytes as ``bin``, strings as ``str``,
integers in their shortest form, and no floats. Decoding re-encodes and compares, so every
value has exactly one accepted byte string: a signed message cannot be re-encoded by a
relayer into a second, different-hash form.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import msgpack

# Large enough for a full block; callers decoding small messages pass a tighter bound.
DEFAULT_MAX_DECODE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32


class CodecError(ValueError):
    """Raised for values that have no canonical encoding or bytes that are not canonical."""


_SCALARS = frozenset((int, str, bytes, bool, type(None)))


def _normalize(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with maps rebuilt in canonical key order; reject what cannot be encoded."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth >= MAX_DEPTH:  # ``value`` would be container number MAX_DEPTH + 1 on this path
        raise CodecError(f"nesting deeper than {MAX_DEPTH} levels")
    if kind is dict:
        return _normalize_map(value, depth + 1)
    if kind is list or kind is tuple:
        return [item if type(item) in _SCALARS else _normalize(item, depth + 1) for item in value]
    if kind is float:
        raise CodecError("floats are not allowed in canonical encoding (use integers)")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):  # IntEnum and other int subclasses encode as plain ints
        return int(value)
    if isinstance(value, str):
        return str(value)
    raise CodecError(f"type {kind.__name__} has no canonical encoding")


_KEY_ORDER_CACHE: dict[str, tuple[int, bytes]] = {}
_KEY_ORDER_CACHE_LIMIT = 4096  # field names are a small vocabulary; hostile keys stop caching


def _str_key_order(key: str) -> tuple[int, bytes]:
    # msgpack str headers grow monotonically with length (fixstr < str8 < str16 < str32, with
    # big-endian lengths), so ordering by (UTF-8 length, UTF-8 bytes) IS ordering by encoded bytes.
    order = _KEY_ORDER_CACHE.get(key)
    if order is None:
        encoded = key.encode("utf-8", "surrogatepass")
        order = (len(encoded), encoded)
        if len(_KEY_ORDER_CACHE) < _KEY_ORDER_CACHE_LIMIT:
            _KEY_ORDER_CACHE[key] = order
    return order


_KEY_ORDER_CACHE: dict[tuple[str, ...], tuple[str, ...]] = {}
_KEY_ORDER_CACHE_LIMIT = 1024  # records, events and tx schemas reuse a few key sets; others are sorted each time


def canonical_key_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    """Exact-``str`` map keys in the order the canonical encoding writes them (cached).

    Callers check the key types first: a str subclass key equals its str and would hit the
    cache, so whether it encodes must not depend on what was encoded before.
    """
    ordered = _KEY_ORDER_CACHE.get(keys)
    if ordered is None:
        ordered = tuple(sorted(keys, key=_str_key_order))
        if len(_KEY_ORDER_CACHE) < _KEY_ORDER_CACHE_LIMIT:
            _KEY_ORDER_CACHE[keys] = ordered
    return ordered


def _normalize_map(mapping: dict, depth: int) -> dict:
    keys = tuple(mapping)
    if all(type(key) is str for key in keys):
        ordered = canonical_key_order(keys)
        return {
            key: item if type(item) in _SCALARS else _normalize(item, depth)
            for key, item in ((key, mapping[key]) for key in ordered)
        }
    items = []
    for key, item in mapping.items():
        if type(key) not in (str, int, bytes):
            raise CodecError(f"map key of type {type(key).__name__} is not allowed")
        items.append((_packb(key), key, _normalize(item, depth)))
    items.sort(key=lambda entry: entry[0])
    for previous, current in pairwise(items):
        if previous[0] == current[0]:
            raise CodecError(f"duplicate map key {current[1]!r}")
    return {key: item for _, key, item in items}


def _packb(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True, strict_types=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode: {exc}") from exc


def encode(value: Any) -> bytes:
    """Canonical bytes of ``value`` (dicts, lists/tuples, str, bytes, int, bool, None)."""
    return _packb(_normalize(value))


def decode(data: bytes, max_bytes: int = DEFAULT_MAX_DECODE_BYTES) -> Any:
    """Decode canonical bytes; raise :class:`CodecError` for anything else.

    Rejects inputs over ``max_bytes``, trailing bytes, extension types, floats, maps whose
    keys are not in canonical order (which also rules out duplicate keys), and any other
    encoding that differs from what :func:`encode` would produce for the decoded value.
    The parse hooks check key order and floats as containers are built; re-packing the
    decoded value (its maps already in wire order) then settles integer and string forms.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise CodecError(f"input of {len(data)} bytes exceeds the limit of {max_bytes}")
    # Containers complete bottom-up, so each one's nesting depth is 1 + its deepest child's:
    # decode refuses exactly the values encode refuses (a block must never hold a tx that one
    # path accepts and the other raises on). The same pass refuses floats.
    depth_of: dict[int, int] = {}

    def checked(container: Any, items: Any) -> Any:
        depth = 1
        for item in items:
            kind = type(item)
            if kind is dict or kind is list:
                if depth_of[id(item)] >= depth:
                    depth = depth_of[id(item)] + 1
            elif kind is float:
                raise CodecError("floats are not allowed in canonical encoding")
        if depth > MAX_DEPTH:
            raise CodecError(f"nesting deeper than {MAX_DEPTH} levels")
        depth_of[id(container)] = depth
        return container

    def on_map(pairs: list[tuple[Any, Any]]) -> dict:
        return checked(_canonical_map(pairs), [item for _, item in pairs])

    def on_list(items: list[Any]) -> list[Any]:
        return checked(items, items)

    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            ext_hook=_refuse_ext,
            object_pairs_hook=on_map,
            list_hook=on_list,
        )
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise CodecError(f"malformed msgpack: {exc}") from exc
    except Exception as exc:  # msgpack raises a few undocumented types on hostile input
        raise CodecError(f"malformed msgpack: {type(exc).__name__}: {exc}") from exc
    if type(value) is float:
        raise CodecError("floats are not allowed in canonical encoding")
    if msgpack.packb(value, use_bin_type=True) != data:
        raise CodecError("non-canonical encoding (re-encoding gives different bytes)")
    return value


def _canonical_map(pairs: list[tuple[Any, Any]]) -> dict:
    keys = [key for key, _ in pairs]
    if all(type(key) is str for key in keys):
        order = [_str_key_order(key) for key in keys]
    else:
        for key in keys:
            if type(key) not in (str, int, bytes):
                raise CodecError(f"map key of type {type(key).__name__} is not allowed")
        order = [_packb(key) for key in keys]
    for previous, current in pairwise(order):
        if not previous < current:
            raise CodecError("non-canonical encoding: map keys unsorted or duplicated")
    return dict(pairs)


def _refuse_ext(code: int, payload: bytes) -> Any:
    raise CodecError(f"msgpack extension type {code} is not allowed")
