"""Readable tables of the clearing answers, as ``clearchain query`` prints them by default.

A handful of columns a trader or an operator reads; amounts in their asset with thousands
separators, sizes in the base asset, prices in the quote asset, ratios in %. Every figure is
converted exactly with the places the answer carries (``client.units``); ``--output json``
prints every raw field instead. Each function returns a ``rich`` renderable; none does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table

from client.results import Account, Health, InsuranceFund, Market, Position, Price
from client.units import format_ppm_percent, format_units

MAX_WIDTH = 100
"""Columns every table fits in (a narrow terminal, a log, a pasted issue)."""


def fields(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> Table:
    """Two columns: a name and its value."""
    grid = Table(box=None, show_header=False, title=title, title_justify="left", title_style="bold", pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(name, _text(value))
    return grid


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
          numeric: Sequence[str] = ()) -> Table:
    """A table with a header; columns named in ``numeric`` are right-aligned."""
    out = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", title_style="bold", pad_edge=False)
    for column in columns:
        out.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    for row in rows:
        out.add_row(*(_text(v) for v in row))
    return out


def quote(amount: int, decimals: int, symbol: str) -> str:
    return format_units(amount, decimals, symbol or None)


def markets(answer: Sequence[Market]) -> Table:
    """Per market: status, price, open interest, funding, margins, breaker."""
    numeric = ("price", "open interest", "funding", "IMF", "MMF")
    return table(("market", "status", "price", "open interest", "funding", "IMF", "MMF", "breaker"), [
        (m.id, m.status, quote(m.oracle_price, m.price_decimals, m.quote_asset),
         format_units(m.open_interest, m.size_decimals, m.base_asset), format_ppm_percent(m.last_funding_rate_ppm),
         format_ppm_percent(m.initial_margin_ppm), format_ppm_percent(m.maintenance_margin_ppm), m.breaker or "-")
        for m in answer], numeric=numeric)


def market(m: Market) -> Table:
    return fields([
        ("market", m.id), ("status", m.status), ("base asset", m.base_asset),
        ("oracle price", quote(m.oracle_price, m.price_decimals, m.quote_asset)),
        ("reported price", quote(m.reported_price, m.price_decimals, m.quote_asset) if m.reported_price else "-"),
        ("breaker", m.breaker or "-"),
        ("lot", format_units(m.lot_size, m.size_decimals, m.base_asset)),
        ("tick", quote(m.tick_size, m.price_decimals, m.quote_asset)),
        ("open interest", format_units(m.open_interest, m.size_decimals, m.base_asset)),
        ("last funding rate", format_ppm_percent(m.last_funding_rate_ppm)),
        ("initial margin", format_ppm_percent(m.initial_margin_ppm)),
        ("maintenance margin", format_ppm_percent(m.maintenance_margin_ppm)),
        ("maker / taker fee", f"{format_ppm_percent(m.maker_fee_ppm)} / {format_ppm_percent(m.taker_fee_ppm)}"),
    ], title=m.id)


def prices(answer: Mapping[str, Price], quote_asset: str = "") -> Table:
    return table(("market", "price", "status", "breaker", "reported"), [
        (name, quote(p.price, p.price_decimals, quote_asset), p.status, p.breaker or "-",
         quote(p.reported_price, p.price_decimals, quote_asset) if p.reported_price else "-")
        for name, p in answer.items()], numeric=("price", "reported"))


def positions(answer: Sequence[Position]) -> Table:
    """Per position: side, size in the base asset, mark price, value, unrealized PnL and the funding
    not yet settled (positive: owed to the position)."""
    rows = []
    for p in answer:
        rows.append((p.market, "long" if p.size > 0 else "short",
                     format_units(abs(p.size), p.size_decimals, p.base_asset or None),
                     quote(p.oracle_price, p.price_decimals, ""), quote(p.value, p.quote_decimals, ""),
                     quote(p.unrealized_pnl, p.quote_decimals, ""), quote(p.pending_funding, p.quote_decimals, "")))
    quote_asset = answer[0].quote_asset if answer else ""
    title = f"positions (prices and amounts in {quote_asset})" if quote_asset else "positions"
    return table(("market", "side", "size", "mark price", "value", "unrealized PnL", "funding"), rows,
                 title=title, numeric=("size", "mark price", "value", "unrealized PnL", "funding"))


def health(h: Health) -> Table:
    return fields(_health_pairs(h), title="margin")


def _health_pairs(h: Health) -> list[tuple[str, str]]:
    places, symbol = h.quote_decimals, h.quote_asset
    return [
        ("equity", quote(h.equity, places, symbol)),
        ("initial margin", quote(h.initial_margin, places, symbol)),
        ("maintenance margin", quote(h.maintenance_margin, places, symbol)),
        ("free collateral", quote(h.free_collateral, places, symbol)),
        ("margin ratio", "-" if h.margin_ratio_ppm is None else format_ppm_percent(h.margin_ratio_ppm)),
        ("to liquidation", quote(h.distance_to_liquidation, places, symbol)),
        ("liquidatable", h.liquidatable),
    ]


def account(a: Account) -> Group:
    """Balances, margin, then the positions."""
    balances = [(f"{a.quote_asset} balance", quote(a.quote, a.decimals.get(a.quote_asset, 0), a.quote_asset))]
    balances += [(f"{symbol} balance", format_units(amount, a.decimals.get(symbol, 0), symbol))
                 for symbol, amount in sorted(a.collateral.items())]
    parts: list[Any] = [fields([("address", a.address), *balances], title="account"), health(a.health)]
    if a.positions:
        parts.append(positions(a.positions))
    return Group(*parts)


def insurance_fund(f: InsuranceFund) -> Table:
    places = f.decimals.get(f.quote_asset, 0)
    pairs = [("insurance fund", quote(f.insurance_fund, places, f.quote_asset))]
    pairs += [(f"insurance {s}", format_units(v, f.decimals.get(s, 0), s))
              for s, v in sorted(f.insurance_collateral.items())]
    pairs += [("fee pool", quote(f.fee_pool, places, f.quote_asset)),
              ("socialized loss", quote(f.socialized_loss, places, f.quote_asset))]
    pairs += [(f"deposited {s}", format_units(v, f.decimals.get(s, 0), s)) for s, v in sorted(f.deposits.items())]
    pairs += [(f"withdrawn {s}", format_units(v, f.decimals.get(s, 0), s)) for s, v in sorted(f.withdrawals.items())]
    return fields(pairs, title="insurance fund")


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
