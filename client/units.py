"""Human units: what a person types (``100.5``, ``100.5USDC``) to the chain's integers and back.

The chain counts in integers: an asset with ``decimals`` d holds ``amount * 10**d`` units; a
market's sizes and prices have ``size_decimals``/``price_decimals`` places (``state.genesis``
derives them from the exponents). Every conversion here is exact:

- :func:`parse_units` accepts ASCII digits with at most one ``.`` and digits on both sides,
  optionally followed by the unit's symbol (exact case; a space between is fine). It refuses
  rather than rounds: more places than the unit has (trailing zeros beyond them are exact and
  fine), signs, exponents, thousands separators (``64,250.5`` reads as 64.25 in half the world's
  locales, so none is accepted), other symbols, zero when a positive value is needed, and values
  past ``2**63 - 1`` units.
- :func:`format_units` writes integer units as a decimal with thousands separators, trimming
  trailing zeros down to two places (or the unit's places if fewer); it never rounds.
- :func:`format_ppm_percent` writes a ppm ratio as an exact percentage.
"""

from __future__ import annotations

import re

MAX_UNITS = 2**63 - 1
"""The largest integer the chain's encoding of an amount, size or price takes (a signed 64-bit)."""
MIN_SHOWN_PLACES = 2

_NUMBER = re.compile(r"([0-9]+)(?:\.([0-9]+))?\s*([A-Za-z][A-Za-z0-9]*)?\Z", re.ASCII)


class UnitError(ValueError):
    """A value that is not an exact, positive amount of the unit; the message says why."""


def parse_units(text: str, decimals: int, symbol: str | None = None, *, allow_zero: bool = False) -> int:
    """The integer units of ``text``, a decimal amount of a unit with ``decimals`` places.

    Raises:
        UnitError: malformed, a different symbol, more places than ``decimals``, zero (unless
            ``allow_zero``), or more than :data:`MAX_UNITS` units.
    """
    shown = text.strip()
    if shown.startswith(("-", "+")):
        raise UnitError(f"{text!r}: must be a positive number, without a sign")
    match = _NUMBER.match(shown)
    if match is None:
        raise UnitError(f"{text!r}: expected a decimal number such as 100.5{_suffix_hint(symbol)} "
                        "(digits and one '.', no thousands separators or exponent)")
    whole, fraction, suffix = match.group(1), match.group(2) or "", match.group(3)
    if suffix is not None and suffix != symbol:
        wanted = f"{symbol} or none" if symbol else "none"
        raise UnitError(f"{text!r}: unit {suffix} is not this value's unit (expected {wanted})")
    significant = fraction.rstrip("0")
    if len(significant) > max(decimals, 0):
        raise UnitError(f"{text!r}: more precision than {_unit_name(symbol)} has "
                        f"({_places(decimals)}); nothing is rounded")
    numerator = int(whole + significant)
    scale = decimals - len(significant)
    if scale >= 0:
        units = numerator * 10**scale
    else:
        step = 10**-scale
        if numerator % step:
            raise UnitError(f"{text!r}: {_unit_name(symbol)} counts in multiples of {10**-decimals}")
        units = numerator // step
    if units == 0 and not allow_zero:
        raise UnitError(f"{text!r}: must be greater than zero")
    if units > MAX_UNITS:
        raise UnitError(f"{text!r}: too large (at most {format_units(MAX_UNITS, decimals)})")
    return units


def parse_raw(text: str, *, allow_zero: bool = False) -> int:
    """Integer units as scripts give them (``--raw``): ASCII digits only."""
    shown = text.strip()
    if not shown.isascii() or not shown.isdigit():
        raise UnitError(f"{text!r}: with --raw, expected integer units (ASCII digits only)")
    units = int(shown)
    if units == 0 and not allow_zero:
        raise UnitError(f"{text!r}: must be greater than zero")
    if units > MAX_UNITS:
        raise UnitError(f"{text!r}: too large (at most {MAX_UNITS})")
    return units


def format_units(units: int, decimals: int, symbol: str | None = None, *, separators: bool = True) -> str:
    """``units`` as a decimal of a unit with ``decimals`` places (``1,234.50``), never rounded."""
    sign = "-" if units < 0 else ""
    magnitude = abs(units)
    if decimals <= 0:
        whole, fraction = magnitude * 10**-decimals, ""
    else:
        whole, rest = divmod(magnitude, 10**decimals)
        fraction = str(rest).rjust(decimals, "0").rstrip("0").ljust(min(decimals, MIN_SHOWN_PLACES), "0")
    text = f"{whole:,}" if separators else str(whole)
    text = f"{sign}{text}.{fraction}" if fraction else f"{sign}{text}"
    return f"{text} {symbol}" if symbol else text


def format_ppm_percent(ppm: int) -> str:
    """A ppm ratio as a percentage (``1_500_000`` ppm is ``150.00%``), exact."""
    return format_units(ppm, 4) + "%"


def _places(decimals: int) -> str:
    if decimals <= 0:
        return "no decimal places"
    return "1 decimal place" if decimals == 1 else f"{decimals} decimal places"


def _unit_name(symbol: str | None) -> str:
    return symbol or "this value"


def _suffix_hint(symbol: str | None) -> str:
    return f" or 100.5{symbol}" if symbol else ""
