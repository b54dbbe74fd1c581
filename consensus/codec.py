"""The one canonical encoding of everything that is hashed or signed.

msgpack with map keys sorted by their encoded bytes, bytes as ``bin``, strings as ``str``,
integers in their shortest form, and no floats. Decoding re-encodes and compares, so every
value has exactly one accepted byte string: a signed message cannot be re-encoded by a
relayer into a second, different-hash form.
"""

from __future__ import annotations

from typing import Any

import msgpack

# Large enough for a full block; callers decoding small messages pass a tighter bound.
DEFAULT_MAX_DECODE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32


class CodecError(ValueError):
    """Raised for values that have no canonical encoding or bytes that are not canonical."""


def _normalize(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with maps rebuilt in canonical key order; reject what cannot be encoded."""
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is int or kind is str or kind is bytes or value is None or kind is bool:
        return value
    if kind is float:
        raise CodecError("floats are not allowed in canonical encoding (use integers)")
    if kind is dict:
        items = []
        for key, item in value.items():
            if type(key) not in (str, int, bytes):
                raise CodecError(f"map key of type {type(key).__name__} is not allowed")
            items.append((_packb(key), key, _normalize(item, depth + 1)))
        items.sort(key=lambda entry: entry[0])
        for previous, current in zip(items, items[1:]):
            if previous[0] == current[0]:
                raise CodecError(f"duplicate map key {current[1]!r}")
        return {key: item for _, key, item in items}
    if kind is list or kind is tuple:
        return [_normalize(item, depth + 1) for item in value]
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):  # IntEnum and other int subclasses encode as plain ints
        return int(value)
    if isinstance(value, str):
        return str(value)
    raise CodecError(f"type {kind.__name__} has no canonical encoding")


def _packb(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True, strict_types=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode: {exc}") from exc


def encode(value: Any) -> bytes:
    """Canonical bytes of ``value`` (dicts, lists/tuples, str, bytes, int, bool, None)."""
    return _packb(_normalize(value))


def _reject_floats(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH} levels")
    if type(value) is float:
        raise CodecError("floats are not allowed in canonical encoding")
    if type(value) is dict:
        for item in value.values():
            _reject_floats(item, depth + 1)
    elif type(value) is list:
        for item in value:
            _reject_floats(item, depth + 1)


def decode(data: bytes, max_bytes: int = DEFAULT_MAX_DECODE_BYTES) -> Any:
    """Decode canonical bytes; raise :class:`CodecError` for anything else.

    Rejects inputs over ``max_bytes``, trailing bytes, extension types, floats and any
    encoding that differs from what :func:`encode` would produce for the decoded value.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise CodecError(f"input of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            ext_hook=_refuse_ext,
        )
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise CodecError(f"malformed msgpack: {exc}") from exc
    except Exception as exc:  # msgpack raises a few undocumented types on hostile input
        raise CodecError(f"malformed msgpack: {type(exc).__name__}: {exc}") from exc
    _reject_floats(value)
    if encode(value) != data:
        raise CodecError("non-canonical encoding (re-encoding gives different bytes)")
    return value


def _refuse_ext(code: int, payload: bytes) -> Any:
    raise CodecError(f"msgpack extension type {code} is not allowed")
