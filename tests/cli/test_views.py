"""The readable tables of ``clearchain query``, from fixed answers: which figures a person sees
(written out by hand from the places), that they fit 100 columns, and that ``--output json``
keeps every raw field."""

from __future__ import annotations

import io
import re

from rich.console import Console

from cli import views
from client.results import Account, InsuranceFund, Market

BTC_PERP = {
    "id": "BTC-PERP", "base_asset": "BTC", "status": "active", "oracle_price": "642505", "price_exponent": "-1",
    "size_exponent": "-5", "lot_size": "10", "tick_size": "10", "initial_margin_ppm": "50000",
    "maintenance_margin_ppm": "30000", "open_interest": "123456789", "funding_index": "0",
    "last_funding_rate_ppm": "-125", "next_funding_ms": "0", "last_price_ms": "0", "maker_fee_ppm": "100",
    "taker_fee_ppm": "500", "breaker": "", "reported_price": "0", "quote_asset": "USDC", "size_decimals": "5",
    "price_decimals": "1", "quote_decimals": "6", "value_multiplier": "1", "funding_scale": "1",
    "funding_dust_scaled": "0", "oi_lower_cap": "20000000000000", "oi_upper_cap": "50000000000000",
    "volatility_ewma_ppm": "0", "capped_blocks": "0", "base_initial_margin_ppm": "50000",
}
ACCOUNT = {
    "address": "clr1qyqszqgpqyqszqgpqyqszqgpqyqszqgpjxdnlz", "quote": "1234567890123",
    "collateral": {"BTC": "150000000"},
    "quote_asset": "USDC", "decimals": {"USDC": "6", "BTC": "8", "ETH": "9"},
    "positions": [{"market": "BTC-PERP", "size": "-2500", "oracle_price": "642505", "value": "-1606262500",
                   "cost": "-1500000000", "unrealized_pnl": "-106262500", "pending_funding": "-42",
                   "pending_funding_scaled": "-42000", "base_asset": "BTC", "quote_asset": "USDC",
                   "size_decimals": "5", "price_decimals": "1", "quote_decimals": "6"}],
    "health": {"equity": "1234461627623", "initial_margin": "80313125", "maintenance_margin": "48187875",
               "free_collateral": "1234381314498", "liquidatable": False, "distance_to_liquidation": "1234413439748",
               "margin_ratio_ppm": "25617737190", "quote_asset": "USDC", "quote_decimals": "6"},
    "replay": {"next_height": "5", "max_expiry": "105", "replay_window_blocks": "100", "min_tx_fee": "1000"},
}


def rendered(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=views.MAX_WIDTH, highlight=False).print(renderable)
    return out.getvalue()


def test_markets_table_shows_prices_in_quote_sizes_in_base_and_ratios_in_percent():
    text = rendered(views.markets([Market.from_json(BTC_PERP)]))
    header, *rows = [line for line in text.splitlines() if line.strip()]
    assert header.split() == ["market", "status", "price", "open", "interest", "funding", "IMF", "MMF", "breaker"]
    # 642505 at 1 place; 123456789 at 5 places of BTC; -125 ppm; 50000 ppm; 30000 ppm; each in its column
    assert re.split(r"\s{2,}", rows[-1].strip()) == [
        "BTC-PERP", "active", "64,250.5 USDC", "1,234.56789 BTC", "-0.0125%", "5.00%", "3.00%", "-"]
    assert "642505" not in text and "123456789" not in text  # no raw integers in the table
    assert max(map(len, text.splitlines())) <= 100


def test_account_shows_balances_margin_and_positions_in_their_units():
    text = rendered(views.account(Account.from_json(ACCOUNT)))
    for figure in ("1,234,567.890123 USDC", "1.50 BTC",          # balances: 6 and 8 places
                   "2,561,773.719%",                              # margin ratio 25617737190 ppm
                   "short", "0.025 BTC", "64,250.5", "-1,606.2625", "-106.2625", "-0.000042"):
        assert figure in text, (figure, text)
    assert "liquidatable" in text and "no" in text
    # size -2500 at 5 places; price 642505 at 1; value, PnL and funding at USDC's 6
    row = next(line for line in text.splitlines() if "BTC-PERP" in line)
    assert re.split(r"\s{2,}", row.strip()) == [
        "BTC-PERP", "short", "0.025 BTC", "64,250.5", "-1,606.2625", "-106.2625", "-0.000042"]
    assert max(map(len, text.splitlines())) <= 100


def test_wide_values_fold_within_100_columns():
    huge = dict(BTC_PERP, open_interest=str(2**63 - 1), oracle_price=str(2**63 - 1), breaker="halted-for-a-long-time")
    text = rendered(views.markets([Market.from_json(huge)] * 3))
    assert max(map(len, text.splitlines())) <= 100


def test_insurance_fund_names_each_asset():
    fund = InsuranceFund.from_json({
        "insurance_fund": "3000000000", "insurance_collateral": {"ETH": "1"}, "fee_pool": "0",
        "socialized_loss": "0", "deposits": {"USDC": "5000000"}, "withdrawals": {}, "withdrawal_seq": "0",
        "quote_asset": "USDC", "decimals": {"USDC": "6", "BTC": "8", "ETH": "9"},
    })
    text = rendered(views.insurance_fund(fund))
    assert "3,000.00 USDC" in text and "0.000000001 ETH" in text and "5.00 USDC" in text


def test_raw_json_keeps_every_field():
    market = Market.from_json(BTC_PERP)
    assert market.raw == BTC_PERP  # what --output json prints
    assert (market.size_decimals, market.price_decimals, market.oracle_price) == (5, 1, 642505)
