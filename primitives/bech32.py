"""Bech32 (BIP 173) for human-readable addresses: a prefix, data and a 6-character checksum.

Reference algorithm from BIP 173; kept here because it is 60 lines and consensus-adjacent
(addresses appear in genesis files and CLI output, so one implementation must be used).
"""

from __future__ import annotations

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """A string that is not valid bech32, or not of the expected prefix."""


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= _GENERATOR[i] if ((top >> i) & 1) else 0
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise Bech32Error("invalid data value")
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & max_value):
        raise Bech32Error("invalid padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    five_bit = _convert_bits(data, 8, 5, pad=True)
    values = _hrp_expand(hrp) + five_bit
    polymod = _polymod(values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in five_bit + checksum)


def bech32_decode(text: str, expected_hrp: str) -> bytes:
    """Decode ``text``; raise :class:`Bech32Error` naming what is wrong."""
    if not isinstance(text, str) or len(text) > 90:
        raise Bech32Error("not a bech32 string")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise Bech32Error("missing separator or checksum")
    hrp, rest = text[:separator], text[separator + 1 :]
    if hrp != expected_hrp:
        raise Bech32Error(f"prefix {hrp!r} is not {expected_hrp!r}")
    if any(c not in CHARSET for c in rest):
        raise Bech32Error("invalid character")
    values = [CHARSET.find(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise Bech32Error("checksum mismatch")
    return bytes(_convert_bits(values[:-6], 5, 8, pad=False))
