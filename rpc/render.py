"""Plain data <-> JSON values, and the parameter parsers every method shares.

Output rule, one for all methods: integers become decimal strings (JSON numbers lose precision
past 2^53), ``bytes`` become upper-case hex (CometBFT's hash style), raw txs are base64 (the
method table encodes those itself with :func:`b64`), dataclasses become objects, enums their
name. Input is lenient where that is harmless: integers may come as JSON numbers or decimal
strings, hashes in either hex case.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import functools
import re
from collections.abc import Mapping
from typing import Any

from primitives.crypto import AddressError
from primitives.crypto import format_address as _format_address
from primitives.crypto import parse_address as _parse_bech32
from rpc.errors import invalid_params

MAX_RENDER_DEPTH = 64
# Map keys whose 20-byte values are account addresses: rendered as bech32 ``clr1...``.
ADDRESS_KEYS = frozenset(
    {"address", "account", "buyer", "seller", "counterparty", "sender", "to", "operator", "feeder",
     "provider", "voter", "maker", "taker"}
)
_DECIMAL = re.compile(r"-?[0-9]{1,40}\Z")


@functools.lru_cache(maxsize=1 << 16)
def format_address(address: bytes) -> str:
    """bech32 is pure Python and slow; the same few thousand accounts recur in every block."""
    return _format_address(address)


def render(value: Any, depth: int = 0) -> Any:
    """Turn plain node data into JSON-ready values (see the module docstring)."""
    if depth > MAX_RENDER_DEPTH:
        raise ValueError("value nested too deeply to render")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex().upper()
    if isinstance(value, Mapping):
        return {_render_key(k): _render_field(k, v, depth + 1) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _render_field(f.name, getattr(value, f.name), depth + 1)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [render(item, depth + 1) for item in items]
    if isinstance(value, float):  # never produced by the chain; rendered rather than crashing
        return repr(value)
    raise ValueError(f"cannot render a {type(value).__name__}")


def _render_field(key: Any, value: Any, depth: int) -> Any:
    if key in ADDRESS_KEYS and isinstance(value, (bytes, bytearray)) and len(value) == 20:
        return format_address(bytes(value))
    return render(value, depth)


def _render_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).hex().upper()
    if isinstance(key, enum.Enum):
        return key.name
    return str(key)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def address_text(address: bytes) -> str:
    return format_address(address)


# --- parameter parsers: each raises INVALID_PARAMS saying which parameter and why -------------


def parse_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise invalid_params(f"{name}: expected an integer, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise invalid_params(f"{name}: expected an integer (number or decimal string), got {_show(value)}")
    if minimum is not None and number < minimum:
        raise invalid_params(f"{name}: must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise invalid_params(f"{name}: must be <= {maximum}, got {number}")
    return number


def parse_height(name: str, value: Any) -> int | None:
    """A height >= 1, or None/0 for the latest."""
    if value is None:
        return None
    height = parse_int(name, value, minimum=0, maximum=2**63 - 1)
    return height or None


def parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "True", "1", 1):
        return True
    if value in ("false", "False", "0", 0):
        return False
    raise invalid_params(f"{name}: expected a boolean, got {_show(value)}")


def parse_str(name: str, value: Any, max_length: int = 256) -> str:
    if not isinstance(value, str):
        raise invalid_params(f"{name}: expected a string, got {_show(value)}")
    if len(value) > max_length:
        raise invalid_params(f"{name}: longer than {max_length} characters")
    return value


def parse_hex(name: str, value: Any, size: int | None = None) -> bytes:
    text = parse_str(name, value, max_length=1 << 16)
    if text.startswith(("0x", "0X")):
        text = text[2:]
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise invalid_params(f"{name}: not valid hex: {_show(value)}") from None
    if size is not None and len(data) != size:
        raise invalid_params(f"{name}: expected {size} bytes ({2 * size} hex digits), got {len(data)}")
    return data


def parse_bytes(name: str, value: Any, size: int | None = None) -> bytes:
    """A byte param as CometBFT clients send it: hex (``0x`` optional; what a person types) or
    base64 (what Go's JSON encoding of ``[]byte`` and cosmjs send). With ``size``, the length
    decides; without, text that is valid hex is read as hex."""
    text = parse_str(name, value, max_length=1 << 17)
    prefixed = text.startswith(("0x", "0X"))
    digits = text[2:] if prefixed else text
    is_hex = len(digits) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in digits)
    if is_hex and (size is None or len(digits) == 2 * size):
        return bytes.fromhex(digits)
    if prefixed and not is_hex:
        raise invalid_params(f"{name}: not valid hex after 0x: {_show(value)}")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        if not is_hex:
            raise invalid_params(f"{name}: neither hex nor base64: {_show(value)}") from None
        data = bytes.fromhex(digits)
    if size is not None and len(data) != size:
        raise invalid_params(f"{name}: expected {size} bytes ({2 * size} hex digits or base64), "
                             f"got {len(data)}")
    return data


def parse_base64(name: str, value: Any, max_bytes: int) -> bytes:
    if not isinstance(value, str):
        raise invalid_params(f"{name}: expected a base64 string, got {_show(value)}")
    if len(value) > (max_bytes * 4) // 3 + 4:
        raise invalid_params(f"{name}: larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_params(f"{name}: not valid base64") from None
    if not data:
        raise invalid_params(f"{name}: empty")
    return data


def parse_address(name: str, value: Any) -> bytes:
    """A bech32 ``clr1...`` address (40 hex digits are accepted too)."""
    text = parse_str(name, value, max_length=128)
    if len(text) == 40 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    try:
        return _parse_bech32(text)
    except AddressError as exc:
        raise invalid_params(f"{name}: {exc}") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
