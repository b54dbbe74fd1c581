"""What ``clearchain tx`` options mean in chain integers: human amounts, sizes and prices read with
the places the node states (``client.units`` does the exact arithmetic), or integer units as
typed under ``--raw``.

Assets: ``--amount 100.5`` or ``100.5USDC`` of the asset, at most its ``decimals`` places.
Markets: sizes in the base asset (``0.01`` BTC) and prices in quote per base (``64250``), at
most the market's ``size_decimals``/``price_decimals`` places, and whole lots and ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import click

from client import Client
from client.results import Market
from client.units import UnitError, format_units, parse_raw, parse_units


@dataclass
class ChainUnits:
    """Reads option values into chain integers; asks the node for places once, when first needed."""

    client: Client
    raw: bool
    _assets: dict[str, int] | None = None
    _quote: str = ""
    _markets: dict[str, Market] = field(default_factory=dict)

    def _asset_places(self) -> dict[str, int]:
        if self._assets is None:
            fund = self.client.insurance_fund()  # always there, and it lists every asset's places
            self._assets, self._quote = fund.decimals, fund.quote_asset
        return self._assets

    def asset_decimals(self, asset: str, option: str) -> int:
        places = self._asset_places()
        if asset not in places:
            raise click.BadParameter(f"unknown asset {asset!r} (this chain has {', '.join(sorted(places))})",
                                     param_hint=option)
        return places[asset]

    def quote_asset(self) -> str:
        self._asset_places()
        return self._quote

    def market(self, market_id: str) -> Market:
        if market_id not in self._markets:
            self._markets[market_id] = self.client.market(market_id)
        return self._markets[market_id]

    def amount(self, text: str, asset: str, option: str, *, allow_zero: bool = False) -> int:
        """Units of ``asset`` in ``text`` (``100.5``, ``100.5USDC``; integer units under ``--raw``)."""
        if self.raw:
            return _read(lambda: parse_raw(text, allow_zero=allow_zero), option)
        decimals = self.asset_decimals(asset, option)
        return _read(lambda: parse_units(text, decimals, asset, allow_zero=allow_zero), option)

    def size(self, text: str, market_id: str, option: str) -> int:
        """A size of ``market_id`` in its base asset, a whole number of lots."""
        market = self.market(market_id)
        if self.raw:
            size = _read(lambda: parse_raw(text), option)
        else:
            size = _read(lambda: parse_units(text, market.size_decimals, market.base_asset), option)
        if size % market.lot_size:
            raise click.BadParameter(
                f"{text!r}: {market.id} trades whole lots of "
                f"{format_units(market.lot_size, market.size_decimals, market.base_asset)}", param_hint=option)
        return size

    def price(self, text: str, market_id: str, option: str, *, whole_ticks: bool = True) -> int:
        """A price of ``market_id`` in quote per base unit (whole ticks unless told otherwise)."""
        market = self.market(market_id)
        if self.raw:
            price = _read(lambda: parse_raw(text), option)
        else:
            price = _read(lambda: parse_units(text, market.price_decimals, market.quote_asset or None), option)
        if whole_ticks and price % market.tick_size:
            raise click.BadParameter(
                f"{text!r}: {market.id} prices move in ticks of "
                f"{format_units(market.tick_size, market.price_decimals, market.quote_asset or None)}",
                param_hint=option)
        return price


def _read(parse: Callable[[], int], option: str) -> int:
    try:
        return parse()
    except UnitError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
