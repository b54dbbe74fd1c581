"""Seeded random scenarios: a genesis and, block by block, the operations to send.

A scenario is a seed. ``Scenario(seed)`` draws its world (2-5 markets, the move cap and halt
threshold, funding interval, insurance seed 0 or large, traders, backstops, collateral) and
``next_block(model)`` draws one block's time step and operations, looking at the reference model
(prices, equity) to aim trades at a leverage of 5x-20x. The same seed gives the same scenario.

Ops (tuples, turned into signed txs by ``driver.py``):

    ("fills", [fill, ...])            one ``trade`` tx (one fill) or a ``fills`` tx; fill =
                                      (market, maker, maker_side, taker, size, price)
    ("oracle", feeder, {market: price})
    ("deposit", operator, external_id, who, asset, amount)
    ("withdraw", who, asset, amount)
    ("transfer", who, to, asset, amount)
    ("backstop", who, market, max_size, discount_ppm)
    ("resume", validator, title, market)   a vote for a resume_market proposal
"""

from __future__ import annotations

import random
from typing import Any

from state.genesis import Genesis, parse_genesis
from tests.state.helpers import USDC, make_genesis

BASE_MARKETS = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
EXTRA_MARKETS = [
    {"id": "DOGE-PERP", "base_asset": "DOGE", "size_exponent": 0, "price_exponent": -5, "lot_size": 100,
     "tick_size": 1, "initial_margin_ppm": 100000, "maintenance_margin_ppm": 50000, "initial_price": 15000},
    {"id": "AVAX-PERP", "base_asset": "AVAX", "size_exponent": -2, "price_exponent": -2, "lot_size": 10,
     "tick_size": 1, "initial_margin_ppm": 66000, "maintenance_margin_ppm": 33000, "initial_price": 3000},
]
FEEDERS = 4  # the validators v0..v3 (power 10 each): 3 of 4 make a quorum


class Scenario:
    def __init__(self, seed: int, blocks: int = 60) -> None:
        self.seed = seed
        self.blocks = blocks
        rng = self.rng = random.Random(seed)
        n_markets = rng.choice([2, 3, 3, 4, 5])
        self.market_ids = (["BTC-PERP", "ETH-PERP"] if n_markets == 2 else BASE_MARKETS + [m["id"] for m in
                                                                                      EXTRA_MARKETS[:n_markets - 3]])
        self.traders = [f"t{i}" for i in range(rng.randint(4, 9))]
        self.backstop_names = [f"bs{i}" for i in range(rng.choice([0, 0, 1, 2]))]
        self.venue = "venue"
        self.move_cap = rng.choice([50_000, 100_000, 200_000, 500_000, 500_000])
        self.halt_blocks = rng.choice([0, 2, 3, 5, 10])
        self.staleness = rng.choice([30_000, 30_000, 120_000])
        self.funding_interval = rng.choice([3_000, 5_000, 10_000, 60_000])
        self.insurance_seed = rng.choice([0, 0, 10 * USDC, 5_000 * USDC, 10**7 * USDC])
        self.liq_fee = rng.choice([5_000, 10_000, 20_000])
        self.report_rate = rng.choice([0.5, 0.8, 1.0])
        balances = {t: rng.choice([200, 1_000, 5_000, 20_000]) * USDC for t in self.traders}
        balances[self.venue] = 10**6 * USDC
        for b in self.backstop_names:
            balances[b] = rng.choice([2_000, 50_000, 10**6]) * USDC
        self.collateral_holders = {t: rng.choice(["BTC", "ETH"]) for t in self.traders if rng.random() < 0.35}
        self.genesis = self._genesis(balances)
        self.order_id = 0
        self.external_id = 0
        self.proposal = 0
        self.height = 0
        # each market's "true" price the feeders report (and how far they deviate)
        self.targets: dict[str, int] = {}
        self.pending_deposits: list[tuple[str, str, str, int, list[int]]] = []

    def _genesis(self, balances: dict[str, int]) -> Genesis:
        rng = self.rng
        base = make_genesis(validators=FEEDERS, balances=balances, liquidation_fee_ppm=self.liq_fee,
                            oracle_staleness_ms=self.staleness, max_price_move_ppm=self.move_cap,
                            insurance_fund_seed=self.insurance_seed, breaker_halt_blocks=self.halt_blocks)
        doc = base.to_dict()
        app = doc["app_state"]
        template = app["markets"][0]
        markets = [m for m in app["markets"] if m["id"] in self.market_ids]
        for extra in EXTRA_MARKETS:
            if extra["id"] in self.market_ids:
                markets.append({**template, **extra})
        for m in markets:
            m["funding_interval_ms"] = self.funding_interval
            m["funding_clamp_ppm"] = rng.choice([1_000, 10_000, 100_000])
            m["funding_impact_notional"] = rng.choice([1 * USDC, 1_000 * USDC, 10_000 * USDC])
            if rng.random() < 0.5:  # open interest scaling within reach of these traders
                m["oi_lower_cap"] = rng.choice([10_000, 100_000]) * USDC
                m["oi_upper_cap"] = m["oi_lower_cap"] * rng.choice([2, 10])
            m["volatility_imf_multiplier_ppm"] = rng.choice([0, 2_000_000, 20_000_000])
            m["maker_fee_ppm"] = rng.choice([0, 100, 200])
            m["taker_fee_ppm"] = rng.choice([0, 500, 1000])
        app["markets"] = markets
        # genesis collateral for some holders (the rest arrive by deposit attestations);
        # make_genesis appends one initial balance per name, in the order given
        entries = dict(zip(balances, app["initial_balances"][-len(balances):]))
        for name, asset in self.collateral_holders.items():
            if rng.random() < 0.5:
                entries[name]["collateral"] = {asset: self._collateral_amount(asset)}
        return parse_genesis(doc)

    def _collateral_amount(self, asset: str) -> int:
        # BTC in 1e-8 (~$50k each), ETH in 1e-9 (~$3k each): $500 - $20,000 worth
        dollars = self.rng.choice([500, 2_000, 20_000])
        return dollars * 10**8 // 50_000 if asset == "BTC" else dollars * 10**9 // 3_000

    # --- blocks ------------------------------------------------------------------------------

    def next_block(self, model: Any) -> tuple[int, list[tuple]]:
        """(time step in ms, ops) for the next block, drawn from the scenario's RNG and the model."""
        rng = self.rng
        self.height += 1
        ops: list[tuple] = []
        if self.height == 1:
            for m in self.market_ids:
                self.targets[m] = model.markets[m]["price"]
            for b in self.backstop_names:
                for m in self.market_ids:
                    # discounts above the liquidation fee probe the registration rule
                    discount = rng.choice([0, 1_000, self.liq_fee // 2, self.liq_fee, self.liq_fee + 1_000])
                    ops.append(("backstop", b, m, self._lots(m, rng.choice([1, 5, 50, 1000])), discount))
            ops += self._reports(model, everyone=True)
            return 1000, ops
        dt = 1000
        r = rng.random()
        if r < 0.05:
            dt = self.funding_interval * rng.randint(2, 5) + rng.randint(0, 999)  # several intervals at once
        elif r < 0.15:
            dt = rng.choice([2000, 5000, 10000])
        self._move_targets(model)
        if rng.random() < self.report_rate:
            ops += self._reports(model)
        for _ in range(rng.choice([0, 1, 2, 3, 4, 6])):
            kind = rng.random()
            if kind < 0.6:
                ops.append(self._fills(model))
            elif kind < 0.72:
                ops.append(self._withdraw(model))
            elif kind < 0.8:
                ops.append(self._transfer(model))
            elif kind < 0.9:
                ops += self._deposit(model)
            else:
                ops.append(self._close(model))
        if self.pending_deposits and rng.random() < 0.5:
            ops += self._more_attestations()
        halted = [m for m in self.market_ids if model.markets[m]["breaker"] == "halted"]
        if halted and rng.random() < 0.25:  # governance reopens a halted market at the reported price
            self.proposal += 1
            market = rng.choice(halted + self.market_ids[:1])  # now and then one that is not halted
            for v in rng.sample(range(FEEDERS), rng.choice([2, 3, 3, 4])):
                ops.append(("resume", v, f"resume {self.proposal}", market))
        if self.backstop_names and rng.random() < 0.03:
            b, m = rng.choice(self.backstop_names), rng.choice(self.market_ids)
            ops.append(("backstop", b, m, self._lots(m, rng.choice([0, 10, 100])), rng.choice([0, self.liq_fee // 2])))
        rng.shuffle(ops)
        return dt, ops

    def _lots(self, market_id: str, lots: int) -> int:
        return lots * self.genesis_market(market_id).lot_size

    def genesis_market(self, market_id: str) -> Any:
        return next(m for m in self.genesis.app_state.markets if m.id == market_id)

    def _move_targets(self, model: Any) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.04:  # a crash or squeeze: 40-60%, markets in opposite directions
            direction = rng.choice([-1, 1])
            for m in self.market_ids:
                move = rng.randint(400_000, 600_000) * direction * rng.choice([1, 1, -1])
                self.targets[m] = max(10, self.targets[m] * (1_000_000 + move) // 1_000_000)
        elif r < 0.08:  # one market jumps
            m = rng.choice(self.market_ids)
            self.targets[m] = max(10, self.targets[m] * (1_000_000 + rng.choice([-1, 1]) * rng.randint(100_000, 600_000)) // 1_000_000)
        elif r < 0.12:  # feeders come back to where the (possibly halted) price is
            m = rng.choice(self.market_ids)
            self.targets[m] = model.markets[m]["price"]
        else:
            for m in self.market_ids:
                if rng.random() < 0.5:
                    step = rng.randint(-30_000, 30_000)
                    self.targets[m] = max(10, self.targets[m] * (1_000_000 + step) // 1_000_000)

    def _reports(self, model: Any, everyone: bool = False) -> list[tuple]:
        rng = self.rng
        ops = []
        feeders = list(range(FEEDERS)) if everyone else [f for f in range(FEEDERS) if rng.random() < 0.85]
        for f in feeders:
            prices = {}
            for m in self.market_ids:
                if not everyone and rng.random() < 0.1:
                    continue
                noise = rng.choice([0, 0, 0, rng.randint(-5_000, 5_000), rng.randint(-300_000, 300_000)])
                prices[m] = max(1, self.targets[m] * (1_000_000 + noise) // 1_000_000)
            if prices:
                ops.append(("oracle", f, prices))
        return ops

    def _fills(self, model: Any) -> tuple:
        rng = self.rng
        fills = []
        for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
            m = rng.choice(self.market_ids)
            market = model.markets[m]
            a, b = rng.sample(self.traders, 2)
            if rng.random() < 0.03:
                b = a  # refused: same account
            leverage = rng.choice([1, 3, 5, 8, 10, 15, 20, 25])
            account = model.accounts.get(_address(a))
            equity = max(model.equity(account) if account else 0, 1)
            unit = market["price"] * market["mult"]
            lot = market["lot"]
            size = max(lot, equity * leverage // (unit * rng.randint(1, 3)) // lot * lot)
            tick = market["tick"]
            r = rng.random()
            if r < 0.08:  # outside the band
                off = market["price"] * market["imf"] // 1_000_000 + tick * rng.randint(1, 20)
                price = market["price"] + rng.choice([-1, 1]) * off
            elif r < 0.16:  # at the band's edge
                price = market["price"] + rng.choice([-1, 1]) * (market["price"] * market["imf"] // 1_000_000)
            else:
                price = market["price"] + rng.randint(-5, 5) * tick * max(1, market["price"] // (tick * 2000))
            price = max(tick, price // tick * tick)
            maker_side = rng.choice([1, -1])
            fills.append((m, a, maker_side, b, size, price))
        return ("fills", fills)

    def _close(self, model: Any) -> tuple:
        """A trader reduces (or closes, or flips) a position against another trader."""
        rng = self.rng
        holders = [(t, m) for t in self.traders if _address(t) in model.accounts
                   for m in model.accounts[_address(t)]["positions"]]
        if not holders:
            return self._fills(model)
        t, m = rng.choice(holders)
        size = model.accounts[_address(t)]["positions"][m][0]
        market = model.markets[m]
        lot = market["lot"]
        q = rng.choice([abs(size), max(lot, abs(size) // 2 // lot * lot), abs(size) * 2])
        other = rng.choice([x for x in self.traders if x != t])
        side = -1 if size > 0 else 1
        price = market["price"] // market["tick"] * market["tick"] or market["tick"]
        return ("fills", [(m, t, side, other, q, price)])

    def _withdraw(self, model: Any) -> tuple:
        rng = self.rng
        who = rng.choice(self.traders + self.backstop_names)
        if who in self.collateral_holders and rng.random() < 0.3:
            asset = self.collateral_holders[who]
            return ("withdraw", who, asset, rng.choice([1, 10**5, 10**7, 10**9]))
        account = model.accounts.get(_address(who))
        cash = account["quote"] if account else 0
        amount = max(1, int(max(cash, 1) * rng.choice([0.01, 0.1, 0.5, 0.9, 1.0, 1.5])))
        return ("withdraw", who, "USDC", amount)

    def _transfer(self, model: Any) -> tuple:
        rng = self.rng
        who, to = rng.sample(self.traders, 2)
        if rng.random() < 0.03:
            to = who
        account = model.accounts.get(_address(who))
        cash = account["quote"] if account else 0
        if who in self.collateral_holders and rng.random() < 0.3:
            return ("transfer", who, to, self.collateral_holders[who], rng.choice([1, 10**5, 10**7]))
        return ("transfer", who, to, "USDC", max(1, int(max(cash, 1) * rng.choice([0.05, 0.3, 0.8, 1.2]))))

    def _deposit(self, model: Any) -> list[tuple]:
        rng = self.rng
        who = rng.choice(self.traders)
        asset = self.collateral_holders.get(who) if rng.random() < 0.7 else None
        asset = asset or rng.choice(["USDC", "BTC", "ETH"])
        amount = rng.choice([100, 1_000, 10_000]) * USDC if asset == "USDC" else self._collateral_amount(asset)
        self.external_id += 1
        ext = f"ext-{self.external_id}"
        operators = rng.sample(range(FEEDERS), rng.choice([1, 2, 3, 3]))
        self.pending_deposits.append((ext, who, asset, amount, operators))
        return [("deposit", op, ext, who, asset, amount) for op in operators]

    def _more_attestations(self) -> list[tuple]:
        """Later attestations of an earlier deposit: crediting it, or refused as already credited/attested."""
        rng = self.rng
        ext, who, asset, amount, done = rng.choice(self.pending_deposits)
        op = rng.randrange(FEEDERS)
        if op not in done or rng.random() < 0.3:
            done.append(op)
            return [("deposit", op, ext, who, asset, amount)]
        return []

    def new_order_id(self) -> int:
        self.order_id += 1
        return self.order_id


_ADDRESSES: dict[str, bytes] = {}


def _address(name: str) -> bytes:
    if name not in _ADDRESSES:
        from tests.state.helpers import signer

        _ADDRESSES[name] = signer(name).address
    return _ADDRESSES[name]
