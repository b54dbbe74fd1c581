"""Human units: parsing what a person types and writing what a person reads, as tables.

Expectations are written out by hand from the rule (``amount * 10**decimals``), not computed
with the module's helpers.
"""

from __future__ import annotations

import pytest

from client.units import MAX_UNITS, UnitError, format_ppm_percent, format_units, parse_raw, parse_units


@pytest.mark.parametrize("text, decimals, symbol, units", [
    ("100.5", 6, "USDC", 100_500_000),
    ("100.5USDC", 6, "USDC", 100_500_000),
    ("100.5 USDC", 6, "USDC", 100_500_000),
    ("  7 ", 6, "USDC", 7_000_000),
    ("0.000001", 6, "USDC", 1),
    ("100.500000000", 6, "USDC", 100_500_000),   # trailing zeros past the places are exact
    ("64250.5", 1, None, 642_505),                # a BTC-PERP price (price_exponent -1)
    ("0.01", 5, "BTC", 1_000),                    # a BTC-PERP size (size_exponent -5)
    ("007.50", 2, None, 750),
    ("300", -2, None, 3),                         # positive exponent: multiples of 100
    ("9223372036854.775807", 6, "USDC", MAX_UNITS),
])
def test_valid_human_amounts_parse_to_exact_units(text: str, decimals: int, symbol: str | None, units: int) -> None:
    assert parse_units(text, decimals, symbol) == units


@pytest.mark.parametrize("text, decimals, symbol, message", [
    ("100.1234567", 6, "USDC", "more precision than USDC has (6 decimal places); nothing is rounded"),
    ("64250.55", 1, None, "more precision than this value has (1 decimal place)"),
    ("0.5", 0, "X", "more precision than X has (no decimal places)"),
    ("150", -2, None, "multiples of 100"),
    ("100BTC", 6, "USDC", "unit BTC is not this value's unit (expected USDC or none)"),
    ("100usdc", 6, "USDC", "unit usdc is not this value's unit"),
    ("5USDC", 5, None, "unit USDC is not this value's unit (expected none)"),
    ("-5", 6, "USDC", "must be a positive number, without a sign"),
    ("+5", 6, "USDC", "without a sign"),
    ("0", 6, "USDC", "must be greater than zero"),
    ("0.0000000", 6, "USDC", "must be greater than zero"),
    ("9223372036854.775808", 6, "USDC", "too large"),
    ("1" * 40, 6, "USDC", "too large"),
    ("64,250.5", 1, None, "no thousands separators"),
    ("64 250.5", 1, None, "expected a decimal number"),
    ("64_250", 1, None, "expected a decimal number"),
    ("64250,5", 1, None, "expected a decimal number"),
    ("1e3", 6, "USDC", "unit e3 is not this value's unit"),
    ("1.", 6, "USDC", "expected a decimal number"),
    (".5", 6, "USDC", "expected a decimal number"),
    ("1.2.3", 6, "USDC", "expected a decimal number"),
    ("", 6, "USDC", "expected a decimal number"),
    ("USDC", 6, "USDC", "expected a decimal number"),
    ("nan", 6, "USDC", "expected a decimal number"),
    ("\u0661\u0660", 6, "USDC", "expected a decimal number"),      # Arabic-Indic digits
    ("\uff11\uff10", 6, "USDC", "expected a decimal number"),      # full-width digits
    ("1\u00a0000", 6, "USDC", "expected a decimal number"),        # no-break space separator
])
def test_bad_human_amounts_are_refused_with_the_reason(text: str, decimals: int, symbol: str | None,
                                                      message: str) -> None:
    with pytest.raises(UnitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_units(text, decimals, symbol)


def test_zero_is_allowed_only_when_asked() -> None:
    assert parse_units("0", 6, "USDC", allow_zero=True) == 0
    assert parse_raw("0", allow_zero=True) == 0
    with pytest.raises(UnitError):
        parse_raw("0")


@pytest.mark.parametrize("text, units", [("100500000", 100_500_000), (" 1 ", 1), (str(MAX_UNITS), MAX_UNITS)])
def test_raw_units_are_integers(text: str, units: int) -> None:
    assert parse_raw(text) == units


@pytest.mark.parametrize("text", ["100.5", "-1", "1e6", "1,000", "\u0661", str(MAX_UNITS + 1), "5USDC"])
def test_raw_refuses_anything_but_integer_units(text: str) -> None:
    with pytest.raises(UnitError):
        parse_raw(text)


@pytest.mark.parametrize("units, decimals, symbol, shown", [
    (100_500_000, 6, None, "100.50"),
    (1_234_567_123_456, 6, "USDC", "1,234,567.123456 USDC"),
    (642_505, 1, None, "64,250.5"),
    (500_000, 1, None, "50,000.0"),
    (1_000, 5, "BTC", "0.01 BTC"),
    (1, 5, None, "0.00001"),
    (-2_500_000, 6, None, "-2.50"),
    (0, 6, None, "0.00"),
    (3, -2, None, "300"),
    (1_000_000, 0, None, "1,000,000"),
])
def test_format_units_is_exact_with_separators(units: int, decimals: int, symbol: str | None, shown: str) -> None:
    assert format_units(units, decimals, symbol) == shown


def test_format_then_parse_round_trips_without_separators() -> None:
    for units in (1, 999_999, 100_500_000, MAX_UNITS):
        assert parse_units(format_units(units, 6, separators=False), 6) == units


@pytest.mark.parametrize("ppm, shown", [(1_500_000, "150.00%"), (50_000, "5.00%"), (123, "0.0123%"), (0, "0.00%")])
def test_ppm_ratios_show_as_exact_percentages(ppm: int, shown: str) -> None:
    assert format_ppm_percent(ppm) == shown
