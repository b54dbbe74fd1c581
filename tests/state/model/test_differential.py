"""Differential test: the independent reference model (written from state/README.md) against the app.

Each scenario is a seed (``scenarios.py``); after every block every value is compared and the
model-independent invariants are checked on the app's state (``driver.py``, ``invariants.py``).
A failure names the seed and the block; replay it with
``python -m tests.state.model.fuzz --scenarios 1 --seed SEED --blocks BLOCK``.

The suite runs 300 scenarios of 50 blocks (the CLI runs 100-300 blocks each).
"""

from __future__ import annotations

import pytest

from tests.state.model import model as reference
from tests.state.model.driver import Mismatch, Stats, run_scenario

BATCHES = 10
PER_BATCH = 30
BLOCKS = 50


@pytest.mark.parametrize("batch", range(BATCHES))
def test_model_and_app_agree_block_by_block(batch: int) -> None:
    stats = Stats()
    for seed in range(batch * PER_BATCH, (batch + 1) * PER_BATCH):
        run_scenario(seed, BLOCKS, stats)  # raises Mismatch with the seed, block and diff
    assert stats.scenarios == PER_BATCH


def test_the_scenarios_reach_the_waterfall_and_the_breaker() -> None:
    """The ranges are wide enough that every layer really runs (else the comparison proves little)."""
    stats = Stats()
    for seed in range(1000, 1040):
        run_scenario(seed, 60, stats)
    counts = stats.counts
    for name in ("liquidations", "backstop_fills", "insurance_covers", "adl_fills", "adl_charges",
                 "socialized_losses", "breaker_trips", "collateral_conversions", "resumes"):
        assert counts[name] > 0, (name, counts)
    for code in (0, reference.INSUFFICIENT_MARGIN, reference.PRICE_OUTSIDE_BAND, reference.MARKET_NOT_ACTIVE,
                 reference.INSUFFICIENT_BALANCE, reference.INSUFFICIENT_FEE_FUNDS, reference.INVALID_BACKSTOP,
                 reference.INVALID_PROPOSAL):
        assert stats.codes.get(code, 0) > 0, (code, stats.codes)
    assert stats.coverage.get("stressed_refusals", 0) > 0, stats.coverage


def _perturbed(monkeypatch: pytest.MonkeyPatch, name: str, wrapper) -> None:
    monkeypatch.setattr(reference.Model, name, wrapper(getattr(reference.Model, name)))


def test_the_comparison_sees_a_one_unit_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model off by one micro-unit in the liquidation fee must fail the comparison."""
    def wrapper(original):
        def pass_with_fee_plus_one(self, *args):
            self.liq_fee += 1
            try:
                return original(self, *args)
            finally:
                self.liq_fee -= 1
        return pass_with_fee_plus_one
    _perturbed(monkeypatch, "waterfall_pass", wrapper)
    with pytest.raises(Mismatch) as info:
        for seed in range(20):
            run_scenario(seed, 40)
    assert "insurance" in str(info.value)


def test_the_comparison_sees_a_wrong_result_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that forgets the band check must fail on the first off-band fill."""
    monkeypatch.setattr(reference, "PRICE_OUTSIDE_BAND", -1)
    def wrapper(original):
        def trade(self, maker, taker, size, price):
            try:
                return original(self, maker, taker, size, price)
            except reference.Refused as exc:
                if exc.codes == {-1}:
                    raise reference.Refused({reference.INSUFFICIENT_MARGIN}) from None
                raise
        return trade
    _perturbed(monkeypatch, "trade", wrapper)
    with pytest.raises(Mismatch) as info:
        for seed in range(20):
            run_scenario(seed, 40)
    assert "result code" in str(info.value)
