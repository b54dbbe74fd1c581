"""An independent reference model of the clearing rules, written from ``state/README.md`` alone.

Nothing here is shared with ``state/``: plain dicts and ints, each rule written as the README
states it (section names in the comments). Where the README does not say, or can be read two
ways, the comment starts with ``AMBIGUITY`` and states the reading chosen; the differential test
(``test_differential.py``) then shows whether the implementation read it the same way.

State (all integers):

- ``accounts[address] = {"quote", "collateral": {asset: amount}, "positions": {market: [size, snapshot, cost]}}``
- ``markets[id]``: the parameters and ``price`` (applied), ``reported``, ``breaker``, ``capped_blocks``,
  ``last_price_ms``, ``funding_index``, ``premium_sum``, ``premium_weight``, ``next_funding_ms``,
  ``open_interest``, ``vol_ewma``, ``imf``, ``funding_dust``
- ``insurance``, ``insurance_collateral``, ``fee_pool``, ``socialized_loss``, ``deposits``, ``withdrawals``
- ``reports[market][feeder] = (price, time_ms)``, ``backstops[market][provider] = [capacity, discount]``
- ``deposit_records[external_id]``, ``orders[(address, order_id)] = filled``
"""

from __future__ import annotations

from typing import Any

PPM = 1_000_000
# AMBIGUITY (Funding): the README gives `funding_index += rate * price * mult * k` with the rate in
# ppm, so the index is in quote micro-units per size unit times 1e6; a position's funding is
# `-size * (index - snapshot) / 1e6` (positive premium: longs pay shorts). The README states
# neither the scale nor the sign; this is the reading that makes "credit rounded down; the
# remainder collects in funding_dust" and "whole micro-units of it" meaningful.
FUNDING_SCALE = PPM

NORMAL, CAPPED, HALTED = "normal", "capped", "halted"

# Result codes are protocol (hashed into block results, never renumbered): the numbers, not
# the code that decides them.
OK = 0
INSUFFICIENT_FEE_FUNDS = 14
UNKNOWN_ASSET = 20
INSUFFICIENT_BALANCE = 21
INSUFFICIENT_MARGIN = 22
SELF_TRANSFER = 23
NOT_BRIDGE_OPERATOR = 24
DEPOSIT_ALREADY_CREDITED = 25
DEPOSIT_ALREADY_ATTESTED = 26
UNKNOWN_MARKET = 30
SAME_ACCOUNT = 33
ORDER_OVERFILL = 36
PRICE_OUTSIDE_LIMIT = 38
NOT_LOT_MULTIPLE = 39
NOT_TICK_MULTIPLE = 40
MARKET_NOT_ACTIVE = 41
PRICE_OUTSIDE_BAND = 44
NOT_FEEDER = 50
NOT_VALIDATOR = 52
INVALID_PROPOSAL = 53
ALREADY_VOTED = 54
INVALID_BACKSTOP = 55


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


class Refused(Exception):
    """A tx (or one fill) the rules refuse; ``codes`` holds EVERY rule it breaks.

    AMBIGUITY (Transactions, Oracle 6-7, Risk engine): the README does not order the checks
    (band, status, margin, ...), so a fill breaking two rules may get either code. The model
    collects all of them and the comparison accepts the app's code if it is one of them.
    """

    def __init__(self, codes: set[int]) -> None:
        super().__init__(sorted(codes))
        self.codes = codes


def new_account() -> dict[str, Any]:
    return {"quote": 0, "collateral": {}, "positions": {}}


class Model:
    def __init__(self, genesis: Any) -> None:
        app = genesis.app_state
        risk = app.risk
        self.quote_symbol = app.quote.symbol
        self.quote_decimals = app.quote.decimals
        self.min_fee = app.min_tx_fee
        self.liq_fee = risk.liquidation_fee_ppm
        self.staleness = risk.oracle_staleness_ms
        self.move_cap = risk.max_price_move_ppm
        self.alpha = risk.volatility_ewma_alpha_ppm
        self.halt_blocks = risk.breaker_halt_blocks
        self.time_ms = genesis.genesis_time_ms
        self.height = 0
        self.markets: dict[str, dict[str, Any]] = {}
        for p in app.markets:
            t0 = genesis.genesis_time_ms
            self.markets[p.id] = {
                "id": p.id, "lot": p.lot_size, "tick": p.tick_size,
                "mult": 10 ** (p.size_exponent + p.price_exponent + app.quote.decimals),
                "price_exponent": p.price_exponent,
                "base_imf": p.initial_margin_ppm, "mmf": p.maintenance_margin_ppm,
                "oi_lower": p.oi_lower_cap, "oi_upper": p.oi_upper_cap,
                "vol_mult": p.volatility_imf_multiplier_ppm, "max_vol_imf": p.max_volatility_imf_ppm,
                "interval": p.funding_interval_ms, "clamp": p.funding_clamp_ppm,
                "maker_fee": p.maker_fee_ppm, "taker_fee": p.taker_fee_ppm,
                "impact_notional": p.funding_impact_notional, "gov_status": p.status,
                # state
                "price": p.initial_price, "reported": p.initial_price, "breaker": NORMAL, "capped_blocks": 0,
                "last_price_ms": t0,  # see begin_block
                "funding_index": 0, "premium_sum": 0, "premium_weight": 0, "next_funding_ms": t0 + p.funding_interval_ms,
                "open_interest": 0, "vol_ewma": 0, "imf": p.initial_margin_ppm, "funding_dust": 0,
            }
        self.assets = {c.symbol: {"decimals": c.decimals, "market": c.price_market, "weight": c.weight_ppm}
                       for c in app.collateral_assets}
        self.feeders = {m.address: m.power for m in genesis.feeders}
        self.validators = {v.address: v.power for v in genesis.validators}
        self.proposals: dict[Any, dict[str, Any]] = {}  # resume_market proposals and their votes
        self.operators = {m.address: m.power for m in genesis.bridge_operators}
        self.accounts: dict[bytes, dict[str, Any]] = {}
        self.insurance = risk.insurance_fund_seed
        self.insurance_collateral: dict[str, int] = {}
        self.fee_pool = 0
        self.socialized_loss = 0
        self.deposits: dict[str, int] = {self.quote_symbol: self.insurance}
        self.withdrawals: dict[str, int] = {}
        self.reports: dict[str, dict[bytes, tuple[int, int]]] = {}
        self.backstops: dict[str, dict[bytes, list[int]]] = {}
        self.deposit_records: dict[str, dict[str, Any]] = {}
        self.orders: dict[tuple[bytes, int], int] = {}
        self.events: list[dict[str, Any]] = []  # this block's waterfall/breaker events (for counters)
        self.coverage: dict[str, int] = {}  # how often rarely reached rules decided something
        credits = []
        if app.validator_initial_quote:
            credits += [(v.address, app.validator_initial_quote, ()) for v in genesis.validators]
        credits += [(b.address, b.quote, b.collateral) for b in app.initial_balances]
        for address, quote, collateral in credits:
            account = self.account(address)
            account["quote"] += quote
            self.deposits[self.quote_symbol] += quote
            for symbol, amount in collateral:
                if amount:
                    account["collateral"][symbol] = account["collateral"].get(symbol, 0) + amount
                    self.deposits[symbol] = self.deposits.get(symbol, 0) + amount

    # --- reading ---------------------------------------------------------------------------

    def account(self, address: bytes) -> dict[str, Any]:
        if address not in self.accounts:
            self.accounts[address] = new_account()
        return self.accounts[address]

    def collateral_value(self, symbol: str, amount: int, price: int) -> int:
        """Haircut value of collateral in quote micro-units.

        AMBIGUITY (Risk engine): the README only says "haircut collateral". Reading: the asset is
        priced at its market's price (price unit 10**price_exponent USDC per whole asset unit, the
        asset counted in 10**-decimals units), times weight_ppm, one floor at the end (a credit).
        """
        a = self.assets[symbol]
        exponent = self.markets[a["market"]]["price_exponent"] - a["decimals"] + self.quote_decimals
        num = amount * price * a["weight"] * 10 ** max(exponent, 0)
        den = PPM * 10 ** max(-exponent, 0)
        return num // den

    def unsettled(self, size: int, snapshot: int, market: dict[str, Any]) -> int:
        """Exact funding owed to (+) or by (-) a position, in FUNDING_SCALE units."""
        return -size * (market["funding_index"] - snapshot)

    def risk(self, account: dict[str, Any], stressed: bool = False) -> tuple[int, int, int]:
        """(equity, IMR, MMR) at the applied prices (Risk engine), or at stressed prices.

        AMBIGUITY: "unsettled funding" in equity is taken as what settling would credit now
        (rounded down per position), so settling never changes equity.
        """
        equity = account["quote"]
        imr = mmr = 0
        for market_id, (size, snapshot, _cost) in account["positions"].items():
            m = self.markets[market_id]
            equity += self.unsettled(size, snapshot, m) // FUNDING_SCALE
            price = m["price"]
            if stressed:  # a long at the lower, a short at the higher of applied and reported
                price = min(price, m["reported"]) if size > 0 else max(price, m["reported"])
            value = size * price * m["mult"]
            equity += value
            notional = abs(value)
            imr += ceil_div(notional * m["imf"], PPM)
            mmr += ceil_div(notional * m["mmf"], PPM)
        for symbol, amount in account["collateral"].items():
            if amount:
                m = self.markets[self.assets[symbol]["market"]]
                price = min(m["price"], m["reported"]) if stressed else m["price"]
                equity += self.collateral_value(symbol, amount, price)
        return equity, imr, mmr

    def equity(self, account: dict[str, Any]) -> int:
        return self.risk(account)[0]

    def status(self, market_id: str) -> str:
        """Oracle 6: halted (governance), breaker_halted, stale, capped or active."""
        m = self.markets[market_id]
        if m["gov_status"] != "active":
            return m["gov_status"]
        if m["breaker"] == HALTED:
            return "breaker_halted"
        if self.time_ms - m["last_price_ms"] > self.staleness:
            return "stale"
        if m["breaker"] == CAPPED:
            return "capped"
        return "active"

    # --- funding settlement -------------------------------------------------------------------

    def settle(self, account: dict[str, Any], market_id: str) -> None:
        """Funding: credit rounded down, the remainder to the market's funding_dust.

        AMBIGUITY ("Positions settle lazily when touched"): the README does not list the touch
        points. Reading: a position settles whenever it changes (trade, backstop fill,
        deleveraging); all of an account's positions settle when it pays a fee, sends a
        withdrawal or transfer, or is liquidated.
        """
        position = account["positions"][market_id]
        m = self.markets[market_id]
        exact = self.unsettled(position[0], position[1], m)
        credit = exact // FUNDING_SCALE
        m["funding_dust"] += exact - credit * FUNDING_SCALE
        account["quote"] += credit
        position[1] = m["funding_index"]

    def what_if(self, account: dict[str, Any], market_id: str, new_size: int, quote_delta: int) -> dict[str, Any]:
        """A copy of ``account`` with the position in ``market_id`` settled and set to ``new_size``
        and ``quote_delta`` added: what a fill would leave (for the margin checks)."""
        m = self.markets[market_id]
        trial = copy_account(account)
        trial["quote"] += quote_delta
        if market_id in trial["positions"]:
            size, snapshot, _cost = trial["positions"].pop(market_id)
            trial["quote"] += self.unsettled(size, snapshot, m) // FUNDING_SCALE
        if new_size:
            trial["positions"][market_id] = [new_size, m["funding_index"], 0]
        return trial

    def settle_all(self, account: dict[str, Any]) -> None:
        for market_id in sorted(account["positions"]):
            self.settle(account, market_id)

    def change_position(self, account: dict[str, Any], market_id: str, delta: int, cash: int) -> None:
        """Move a position by ``delta`` for ``cash`` quote (settles its funding first).

        AMBIGUITY (cost basis): the README uses `cost` (pnl = size * P * mult - cost) but does not
        say how it evolves. Reading: cost is the quote paid for the open position (negative for
        a short's proceeds); adding adds the fill's cost; reducing keeps the remaining fraction,
        `cost * remaining // old` (floor); flipping starts the new side at its share of the fill's
        cash, `-(cash * new // delta)` (a discounted backstop fill makes that inexact; the README
        gives no rounding, this one is the app's, seen in the first differential runs).
        """
        m = self.markets[market_id]
        if market_id in account["positions"]:
            self.settle(account, market_id)
            size, _snap, cost = account["positions"][market_id]
        else:
            size, cost = 0, 0
        new = size + delta
        if size == 0 or (size > 0) == (delta > 0):
            cost += -cash
        elif abs(delta) <= abs(size):
            cost = cost * (abs(size) - abs(delta)) // abs(size)
        else:  # flips: the new side's share of the fill's cash (rounding: see above)
            cost = -(cash * abs(new) // abs(delta))
        account["quote"] += cash
        if new == 0:
            del account["positions"][market_id]
        else:
            account["positions"][market_id] = [new, m["funding_index"], cost]
        m["open_interest"] += max(new, 0) - max(size, 0)

    # --- begin_block ---------------------------------------------------------------------------

    def begin_block(self, height: int, time_ms: int) -> None:
        self.height, self.time_ms = height, time_ms
        self.events = []
        if height == 1:
            # AMBIGUITY (Oracle 6): the README does not say how old the genesis price is. Dated
            # at genesis time, every market of a chain started long after its genesis time would
            # be stale until the feeders' first quorum; reading: the genesis prices count as
            # reported at the first block.
            for m in self.markets.values():
                m["last_price_ms"] = max(m["last_price_ms"], time_ms)
        for market_id in sorted(self.markets):
            self.oracle_step(market_id)
            self.funding_step(market_id)
            m = self.markets[market_id]
            # Funding: "whole micro-units of it go to the insurance fund each block".
            # AMBIGUITY: when in the block; reading: in begin_block, after the market's funding.
            if m["funding_dust"] >= FUNDING_SCALE:
                self.insurance += m["funding_dust"] // FUNDING_SCALE
                m["funding_dust"] %= FUNDING_SCALE
            m["imf"] = self.dynamic_imf(m)

    def oracle_step(self, market_id: str) -> None:
        """Oracle and circuit breaker, steps 1-5."""
        m = self.markets[market_id]
        total = sum(self.feeders.values())
        fresh = []  # (time, feeder, price, power)
        for feeder, (price, t) in self.reports.get(market_id, {}).items():
            if feeder in self.feeders and time_ms_ok(self.time_ms, t, self.staleness):
                fresh.append((t, feeder, price, self.feeders[feeder]))
        fresh_power = sum(f[3] for f in fresh)
        if not (3 * fresh_power > 2 * total):
            return  # 1. no quorum: nothing happens
        # 2. the power-weighted lower median: the smallest price with at least half the fresh power at or below
        median = None
        cumulative = 0
        for _t, _f, price, power in sorted(fresh, key=lambda f: f[2]):
            cumulative += power
            if 2 * cumulative >= fresh_power:
                median = price
                break
        assert median is not None
        quorum_time = None
        power = 0
        for t, _feeder, _price, p in sorted(fresh, key=lambda f: (-f[0], f[1])):
            power += p
            if 3 * power > 2 * total:
                quorum_time = t
                break
        m["reported"] = median
        # 3. the move cap
        old = m["price"]
        low = max(1, min(old - 1, ceil_div(old * (PPM - self.move_cap), PPM)))
        high = max(old + 1, old * (PPM + self.move_cap) // PPM)
        within = low <= median <= high
        # 4. the breaker
        before = m["breaker"]
        if before == HALTED:
            if not within:
                return  # a halt that holds: price, last_price_ms and vol unchanged
            m["price"], m["breaker"], m["capped_blocks"] = median, NORMAL, 0
        elif within:
            m["price"], m["breaker"], m["capped_blocks"] = median, NORMAL, 0
        else:
            m["price"] = min(max(median, low), high)
            m["breaker"] = CAPPED
            m["capped_blocks"] += 1
            if self.halt_blocks > 0 and m["capped_blocks"] >= self.halt_blocks:
                m["breaker"] = HALTED
                self.events.append({"type": "breaker_trip", "market": market_id})
        m["last_price_ms"] = quorum_time
        # 5. volatility EWMA of |new - old| / old.
        # AMBIGUITY: rounding; reading: the return floored to ppm, the EWMA step
        # `ewma + (ret - ewma) * alpha // 1e6` floored, never below 0.
        ret = abs(m["price"] - old) * PPM // old
        m["vol_ewma"] = max(0, m["vol_ewma"] + (ret - m["vol_ewma"]) * self.alpha // PPM)

    def funding_step(self, market_id: str) -> None:
        m = self.markets[market_id]
        if self.time_ms < m["next_funding_ms"]:
            return
        k = (self.time_ms - m["next_funding_ms"]) // m["interval"] + 1
        unit = m["price"] * m["mult"]
        impact = max(1, ceil_div(m["impact_notional"], unit))
        premium = m["premium_sum"] * PPM // (max(m["premium_weight"], impact) * m["price"])
        rate = max(-m["clamp"], min(m["clamp"], premium))
        m["funding_index"] += rate * m["price"] * m["mult"] * k
        m["next_funding_ms"] += k * m["interval"]
        m["premium_sum"] = m["premium_weight"] = 0

    def dynamic_imf(self, m: dict[str, Any]) -> int:
        """Risk engine: base + linear OI scaling to 100% + ceil(vol * multiplier) capped; >= base.

        AMBIGUITY: the OI term's rounding (reading: up, a requirement) and whether the sum is
        capped at 100% (reading: yes, a fraction above 100% means nothing).
        """
        base = m["base_imf"]
        oi_notional = m["open_interest"] * m["price"] * m["mult"]
        if oi_notional <= m["oi_lower"]:
            oi_add = 0
        elif oi_notional >= m["oi_upper"]:
            oi_add = PPM - base
        else:
            oi_add = ceil_div((PPM - base) * (oi_notional - m["oi_lower"]), m["oi_upper"] - m["oi_lower"])
        vol_add = min(m["max_vol_imf"], ceil_div(m["vol_ewma"] * m["vol_mult"], PPM))
        return max(base, min(PPM, base + oi_add + vol_add))

    # --- transactions ------------------------------------------------------------------------

    def pay_fee(self, sender: bytes, fee: int) -> None:
        """The ante's fee: out of free collateral (`equity - fee >= IMR`), into the fee pool.

        Raises Refused({INSUFFICIENT_FEE_FUNDS}) when it cannot be paid (the tx then pays nothing
        and does nothing). AMBIGUITY: whether an account whose fee is refused is still "touched"
        (its funding settled); reading: yes, settling comes first and changes no equity.
        """
        if fee == 0:
            return
        account = self.accounts.get(sender)
        if account is None:
            raise Refused({INSUFFICIENT_FEE_FUNDS})
        self.settle_all(account)
        equity, imr, _mmr = self.risk(account)
        if equity - fee < imr:
            raise Refused({INSUFFICIENT_FEE_FUNDS})
        account["quote"] -= fee
        self.fee_pool += fee

    def trade(self, maker: dict[str, Any], taker: dict[str, Any], size: int, price: int) -> None:
        """One fill between two signed orders (a ``trade`` tx, or one fill of ``fills``).

        Orders: ``{"account", "market", "side" (+1/-1), "size", "price", "order_id"}``.
        AMBIGUITY (fees): the README never describes trading fees; reading: each side pays its
        market's maker/taker fee ppm of the notional, rounded up (cash from an account), into
        the fee pool, and the margin check includes it.
        """
        codes: set[int] = set()
        market_id = maker["market"]
        m = self.markets.get(market_id)
        if m is None or taker["market"] != market_id:
            raise Refused({UNKNOWN_MARKET})
        if maker["account"] == taker["account"]:
            raise Refused({SAME_ACCOUNT})
        if size % m["lot"] or maker["size"] % m["lot"] or taker["size"] % m["lot"]:
            codes.add(NOT_LOT_MULTIPLE)
        if price % m["tick"]:
            codes.add(NOT_TICK_MULTIPLE)
        buyer, seller = (maker, taker) if maker["side"] > 0 else (taker, maker)
        if price > buyer["price"] or price < seller["price"]:
            codes.add(PRICE_OUTSIDE_LIMIT)
        for order in (maker, taker):
            if self.orders.get((order["account"], order["order_id"]), 0) + size > order["size"]:
                codes.add(ORDER_OVERFILL)
        oracle = m["price"]
        # Oracle 7: every fill, in every status, within the band of the current IMF.
        if abs(price - oracle) * PPM > oracle * m["imf"]:
            codes.add(PRICE_OUTSIDE_BAND)
        status = self.status(market_id)
        notional = size * price * m["mult"]
        fees = (ceil_div(notional * m["maker_fee"], PPM), ceil_div(notional * m["taker_fee"], PPM))
        for order, fee in zip((maker, taker), fees):
            account = self.accounts.get(order["account"]) or new_account()
            old = account["positions"][market_id][0] if market_id in account["positions"] else 0
            new = old + order["side"] * size
            # Oracle 6: only an active market takes fills that do not shrink both positions.
            if status != "active" and not (abs(new) < abs(old) and old * new >= 0):
                codes.add(MARKET_NOT_ACTIVE)
            before = self.risk(account)
            trial = self.what_if(account, market_id, new, -order["side"] * notional - fee)
            after = self.risk(trial)
            if not margin_passes(before, after):
                codes.add(INSUFFICIENT_MARGIN)
        if codes:
            raise Refused(codes)
        for order, fee in zip((maker, taker), fees):
            account = self.account(order["account"])
            self.change_position(account, market_id, order["side"] * size, -order["side"] * notional)
            account["quote"] -= fee
            key = (order["account"], order["order_id"])
            self.orders[key] = self.orders.get(key, 0) + size
        self.fee_pool += fees[0] + fees[1]
        # Funding: trades accumulate the premium against the applied oracle price.
        m["premium_sum"] += (price - oracle) * size
        m["premium_weight"] += size

    def oracle_report(self, feeder: bytes, prices: dict[str, int]) -> None:
        if feeder not in self.feeders:
            raise Refused({NOT_FEEDER})
        if any(market_id not in self.markets for market_id in prices):
            raise Refused({UNKNOWN_MARKET})
        for market_id, price in prices.items():
            self.reports.setdefault(market_id, {})[feeder] = (price, self.time_ms)

    def deposit(self, operator: bytes, external_id: str, address: bytes, asset: str, amount: int) -> None:
        """Credited at > 2/3 of operator power attesting the same content; deduplicated forever."""
        if operator not in self.operators:
            raise Refused({NOT_BRIDGE_OPERATOR})
        if asset != self.quote_symbol and asset not in self.assets:
            raise Refused({UNKNOWN_ASSET})
        record = self.deposit_records.setdefault(external_id, {"done": False, "votes": {}})
        if record["done"]:
            raise Refused({DEPOSIT_ALREADY_CREDITED})
        if any(operator in voters for voters in record["votes"].values()):
            raise Refused({DEPOSIT_ALREADY_ATTESTED})
        content = (address, asset, amount)
        record["votes"].setdefault(content, set()).add(operator)
        power = sum(self.operators.get(v, 0) for v in record["votes"][content])
        if 3 * power > 2 * sum(self.operators.values()):
            record["done"], record["votes"] = True, {}
            self.credit(self.account(address), asset, amount)
            self.deposits[asset] = self.deposits.get(asset, 0) + amount

    def credit(self, account: dict[str, Any], asset: str, amount: int) -> None:
        if asset == self.quote_symbol:
            account["quote"] += amount
        else:
            left = account["collateral"].get(asset, 0) + amount
            if left:
                account["collateral"][asset] = left
            else:
                account["collateral"].pop(asset, None)

    def debit_check(self, sender: bytes, asset: str, amount: int) -> dict[str, Any]:
        """Risk engine: what a withdrawal or transfer needs.

        `equity - amount >= IMR` at stressed prices (collateral leaving counted at its stressed
        haircut value), and for quote `quote + sum(size * price * mult) >= amount` at the
        applied prices: no borrowing on haircut collateral; collateral needs the amount held.
        """
        if asset != self.quote_symbol and asset not in self.assets:
            raise Refused({UNKNOWN_ASSET})
        account = self.account(sender)
        self.settle_all(account)
        codes = set()
        if asset == self.quote_symbol:
            cash = account["quote"] + sum(size * self.markets[mid]["price"] * self.markets[mid]["mult"]
                                          for mid, (size, _s, _c) in account["positions"].items())
            if cash < amount:
                codes.add(INSUFFICIENT_BALANCE)
        elif account["collateral"].get(asset, 0) < amount:
            codes.add(INSUFFICIENT_BALANCE)
        trial = copy_account(account)
        self.credit(trial, asset, -amount)
        equity, imr, _mmr = self.risk(trial, stressed=True)
        if equity < imr:
            codes.add(INSUFFICIENT_MARGIN)
            plain_equity, plain_imr, _ = self.risk(trial)
            if plain_equity >= plain_imr:  # refused only because of the stressed prices (coverage)
                self.coverage["stressed_refusals"] = self.coverage.get("stressed_refusals", 0) + 1
        if codes:
            raise Refused(codes)
        return account

    def withdraw(self, sender: bytes, asset: str, amount: int) -> None:
        account = self.debit_check(sender, asset, amount)
        self.credit(account, asset, -amount)
        self.withdrawals[asset] = self.withdrawals.get(asset, 0) + amount

    def transfer(self, sender: bytes, to: bytes, asset: str, amount: int) -> None:
        if to == sender:
            raise Refused({SELF_TRANSFER})
        account = self.debit_check(sender, asset, amount)
        self.credit(account, asset, -amount)
        self.credit(self.account(to), asset, amount)

    def register_backstop(self, provider: bytes, market_id: str, max_size: int, discount: int) -> None:
        """Backstop liquidity: market, max size (0 withdraws), discount < MMF.

        AMBIGUITY: "Transactions" allows any discount below the MMF; "Default waterfall" says
        "backstops register at discounts up to that fee" (the liquidation fee), which is what
        keeps "a solvent account loses at most its liquidation fee" true. Reading: both bounds
        (discount < MMF and discount <= liquidation_fee_ppm).
        """
        m = self.markets.get(market_id)
        if m is None:
            raise Refused({UNKNOWN_MARKET})
        if max_size % m["lot"]:
            raise Refused({NOT_LOT_MULTIPLE})
        book = self.backstops.setdefault(market_id, {})
        if max_size == 0:
            if provider not in book:
                raise Refused({INVALID_BACKSTOP})
            del book[provider]
            return
        if discount >= m["mmf"] or discount > self.liq_fee:
            raise Refused({INVALID_BACKSTOP})
        book[provider] = [max_size, discount]

    def vote_resume(self, validator: bytes, key: Any, market_id: str) -> None:
        """A validator's vote for a ``resume_market`` proposal (Oracle 4: a halted market reopens,
        `normal`, at `price = reported`, uncapped).

        AMBIGUITY: the README says proposals are "approved by > 2/3 of validator power" but not
        when a passed proposal applies, nor whether a vote for a market that is not halted is
        refused. Reading: a vote is refused (INVALID_PROPOSAL) unless the market is halted;
        passed proposals apply at the start of end_block, before the waterfall (so liquidations
        in that block see the reopened price), re-checked then; `last_price_ms`, `vol_ewma` and
        the IMF are not touched by a resume.

        FINDING (seed 240, block 99, model and app agreeing): a resume that passes in the block in
        which an account closed its last position against quote debt backed by collateral of the
        resumed market reprices that collateral before step 7 converts it; the conversion falls
        short and the account is left flat with negative equity that no step ever settles (an
        account without positions is not liquidatable).
        """
        if validator not in self.validators:
            raise Refused({NOT_VALIDATOR})
        if market_id not in self.markets or self.markets[market_id]["breaker"] != HALTED:
            raise Refused({INVALID_PROPOSAL})
        entry = self.proposals.setdefault(key, {"market": market_id, "votes": set()})
        if validator in entry["votes"]:
            raise Refused({ALREADY_VOTED})
        entry["votes"].add(validator)

    def apply_proposals(self) -> None:
        total = sum(self.validators.values())
        for key in sorted(self.proposals):
            entry = self.proposals[key]
            if 3 * sum(self.validators[v] for v in entry["votes"]) > 2 * total:
                m = self.markets[entry["market"]]
                if m["breaker"] == HALTED:
                    m["price"], m["breaker"], m["capped_blocks"] = m["reported"], NORMAL, 0
                    self.events.append({"type": "resume", "market": entry["market"]})
                del self.proposals[key]

    # --- end_block: the default waterfall ----------------------------------------------------

    def end_block(self) -> None:
        self.apply_proposals()
        at_risk = []
        for address in sorted(self.accounts):
            equity, _imr, mmr = self.risk(self.accounts[address])
            if mmr > 0 and equity < mmr:
                at_risk.append((equity * PPM // mmr, address))
        # AMBIGUITY: the order is fixed at the start of end_block (health, then address); an
        # account is re-checked when its turn comes (an earlier liquidation may have changed it),
        # and one that becomes liquidatable during the waterfall waits for the next block.
        for _health, address in sorted(at_risk):
            self.liquidate(address)
        self.collateral_conversion()

    def liquidate(self, address: bytes) -> None:
        account = self.accounts[address]
        self.settle_all(account)  # funding settled first
        equity, imr, mmr = self.risk(account)
        if not (mmr > 0 and equity < mmr):
            return
        self.events.append({"type": "liquidation", "account": address, "equity": equity})
        # Step 5's loss attribution basis: each position's loss against its cost basis at the
        # start of the liquidation. AMBIGUITY: the second pass (step 6) keeps this basis (the
        # liquidation started before the first pass), though its positions are smaller by then.
        losses = {}
        for market_id, (size, _snap, cost) in account["positions"].items():
            m = self.markets[market_id]
            losses[market_id] = max(0, cost - size * m["price"] * m["mult"])
        plan, partial = self.plan(account, equity, imr)
        self.waterfall_pass(address, account, plan, losses)
        if partial and account["positions"]:
            equity, imr, _mmr = self.risk(account)
            if equity < imr:
                # Step 6: a partial plan that left A below initial margin closes everything.
                self.waterfall_pass(address, account,
                                    {mid: abs(p[0]) for mid, p in account["positions"].items()}, losses)

    def plan(self, account: dict[str, Any], equity: int, imr: int) -> tuple[dict[str, int], bool]:
        """Step 1: everything if E <= 0, else lots by largest notional until IM is restored net of the fee."""
        positions = account["positions"]
        if equity <= 0:
            return {mid: abs(p[0]) for mid, p in positions.items()}, False
        order = sorted(positions, key=lambda mid: (-abs(positions[mid][0]) * self.markets[mid]["price"]
                                                   * self.markets[mid]["mult"], mid))
        need = imr - equity
        plan = {}
        for market_id in order:
            m = self.markets[market_id]
            size = abs(positions[market_id][0])
            unit = m["price"] * m["mult"]
            relief = unit * m["imf"] // PPM
            cost = ceil_div(unit * self.liq_fee, PPM)
            if relief > cost and need > 0:
                q = min(size, ceil_div(ceil_div(need, relief - cost), m["lot"]) * m["lot"])
            else:
                q = size
            plan[market_id] = q
            need -= q * (relief - cost)
            if need <= 0:
                break
        partial = any(plan.get(mid, 0) < abs(p[0]) for mid, p in positions.items())
        return plan, partial

    def candidates(self, address: bytes, market_id: str, sign: int) -> list[bytes]:
        """Step 5's candidates, ranked: other holders opposite A's position with pnl > 0 that are
        not liquidatable themselves.

        FINDING (README before 4232d7e): without that last condition a bankrupt account waiting for
        its own liquidation in the same block could be closed as a counterparty, end with no
        position (so no longer liquidatable) and keep its negative equity for ever (seed 0,
        block 46: caught by the invariants, model and app agreeing).
        """
        m = self.markets[market_id]
        ranked = []
        for other_address in sorted(self.accounts):
            if other_address == address:
                continue
            other = self.accounts[other_address]
            if market_id not in other["positions"]:
                continue
            size, _snap, cost = other["positions"][market_id]
            if (size > 0) == (sign > 0):
                continue
            pnl = size * m["price"] * m["mult"] - cost
            if pnl <= 0:
                continue
            equity, _imr, mmr = self.risk(other)
            if mmr > 0 and equity < mmr:
                continue  # liquidatable itself: its own liquidation closes it (and settles its deficit)
            notional = sum(abs(s) * self.markets[mid]["price"] * self.markets[mid]["mult"]
                           for mid, (s, _x, _c) in other["positions"].items())
            score = pnl * notional * PPM // (max(1, abs(cost)) * max(1, equity))
            ranked.append((-score, other_address))
        return [a for _s, a in sorted(ranked)]

    def waterfall_pass(self, address: bytes, account: dict[str, Any], plan: dict[str, int],
                       losses: dict[str, int]) -> None:
        """Steps 2-6 for one plan."""
        signs = {mid: (1 if account["positions"][mid][0] > 0 else -1) for mid in plan}
        # 2. backstops
        left = dict(plan)
        closed = 0
        discount_costs = 0
        for market_id in sorted(plan):
            m = self.markets[market_id]
            sign = signs[market_id]
            book = self.backstops.get(market_id, {})
            for provider, entry in sorted(book.items(), key=lambda item: (item[1][1], item[0])):
                if left[market_id] == 0:
                    break
                capacity, discount = entry
                if provider == address or capacity == 0:
                    continue
                q = min(left[market_id], capacity)
                value = q * m["price"] * m["mult"]
                if sign > 0:  # A sells and receives
                    cash = q * m["price"] * m["mult"] * (PPM - discount) // PPM
                    cost_a = value - cash
                else:  # A buys and pays
                    paid = ceil_div(q * m["price"] * m["mult"] * (PPM + discount), PPM)
                    cash = -paid
                    cost_a = paid - value
                provider_account = self.accounts.get(provider) or new_account()
                held = provider_account["positions"].get(market_id, [0, 0, 0])[0]
                trial = self.what_if(provider_account, market_id, held + sign * q, -cash)
                e2, i2, _m2 = self.risk(trial)
                if e2 < i2:
                    continue  # a provider whose equity would fall below its initial margin is skipped
                # README step 2: the stop rule weighs a fill that would happen, so a provider that
                # cannot carry it is skipped first (seed 1840, block 64 found the app stopping on
                # an infeasible fill).
                if max(0, cost_a - self.equity(account)) > max(0, self.insurance):
                    break
                self.change_position(account, market_id, -sign * q, cash)
                self.change_position(self.account(provider), market_id, sign * q, -cash)
                entry[0] -= q
                if entry[0] == 0:
                    del book[provider]
                left[market_id] -= q
                closed += value
                discount_costs += cost_a
                self.events.append({"type": "liquidation_fill", "account": address, "provider": provider,
                                    "market": market_id, "size": q})
        # step 5's capacity, known before it runs
        ranked = {}
        for market_id in sorted(plan):
            if left[market_id]:
                ranked[market_id] = self.candidates(address, market_id, signs[market_id])
                capacity = sum(abs(self.accounts[c]["positions"][market_id][0]) for c in ranked[market_id])
                m = self.markets[market_id]
                closed += min(left[market_id], capacity) * m["price"] * m["mult"]
        # 3. fee
        equity = self.equity(account)
        fee = min(max(0, ceil_div(closed * self.liq_fee, PPM) - discount_costs), max(0, equity))
        if fee:
            account["quote"] -= fee
            self.insurance += fee
            equity -= fee
            self.events.append({"type": "liquidation_fee", "account": address, "amount": fee})
        # 4. insurance
        if equity < 0:
            cover = min(max(0, self.insurance), -equity)
            if cover:
                self.insurance -= cover
                account["quote"] += cover
                equity += cover
                self.events.append({"type": "insurance_cover", "account": address, "amount": cover})
        # 5. deleveraging
        deficit = -equity if equity < 0 else 0
        total_loss = sum(losses.values())
        # AMBIGUITY (step 5): the README states `U_m = U * L_m // sum(L)` "(U_m <= L_m)", but that
        # bound fails whenever the deficit U exceeds the open positions' losses sum(L) (losses
        # already realized into quote: closed trades, fees, funding). Charging U_m > L_m would make
        # counterparties in m pay for losses made elsewhere, which the Order rule forbids, so the
        # model reads the parenthesis as a cap: U_m = min(L_m, U * L_m // sum(L)).
        share = {mid: (min(loss, deficit * loss // total_loss) if total_loss else 0) for mid, loss in losses.items()}
        charged = 0
        for market_id in sorted(ranked):
            m = self.markets[market_id]
            sign = signs[market_id]
            for other_address in ranked[market_id]:
                if left[market_id] == 0:
                    break
                other = self.accounts[other_address]
                size, _snap, cost = other["positions"][market_id]
                take = min(left[market_id], abs(size))
                pnl = size * m["price"] * m["mult"] - cost
                other_equity = self.equity(other)
                charge = min(share.get(market_id, 0), max(0, min(pnl * take // abs(size), other_equity)))
                cash = sign * take * m["price"] * m["mult"]  # A closes at the oracle price
                self.change_position(account, market_id, -sign * take, cash)
                self.change_position(other, market_id, sign * take, -cash)
                if charge:
                    other["quote"] -= charge
                    account["quote"] += charge
                    share[market_id] -= charge
                    charged += charge
                left[market_id] -= take
                self.events.append({"type": "deleverage", "account": address, "counterparty": other_address,
                                    "market": market_id, "size": take, "charge": charge,
                                    "defaulter_loss": losses.get(market_id, 0)})
        # 6. write-off
        written_off = deficit - charged
        if written_off > 0:
            account["quote"] += written_off
            self.socialized_loss += written_off
            self.events.append({"type": "socialized_loss", "account": address, "amount": written_off})

    def collateral_conversion(self) -> None:
        """Step 7: no position but owing quote: the fund takes just enough collateral at its haircut value.

        AMBIGUITY: "an account written in the block"; every such account was written in the
        block that left it owing (a later block cannot make it owe), so the model checks all.
        """
        for address in sorted(self.accounts):
            account = self.accounts[address]
            if account["positions"] or account["quote"] >= 0:
                continue
            for symbol in sorted(account["collateral"]):
                if account["quote"] >= 0:
                    break
                held = account["collateral"][symbol]
                price = self.markets[self.assets[symbol]["market"]]["price"]
                # the smallest amount whose haircut value covers the debt, at most what is held
                amount = held
                if self.collateral_value(symbol, held, price) >= -account["quote"]:
                    low, high = 0, held  # binary search: value is monotone in amount
                    while low < high:
                        mid = (low + high) // 2
                        if self.collateral_value(symbol, mid, price) >= -account["quote"]:
                            high = mid
                        else:
                            low = mid + 1
                    amount = low
                value = self.collateral_value(symbol, amount, price)
                if amount == 0 or value == 0:
                    continue
                self.credit(account, symbol, -amount)
                self.insurance_collateral[symbol] = self.insurance_collateral.get(symbol, 0) + amount
                self.insurance -= value
                account["quote"] += value
                self.events.append({"type": "collateral_conversion", "account": address, "asset": symbol})
            # README step 7, last sentence: what collateral cannot cover, the fund pays, then it
            # is written off (closes the hole of seed 240, block 99).
            if account["quote"] < 0:
                cover = min(max(0, self.insurance), -account["quote"])
                self.insurance -= cover
                account["quote"] += cover
            if account["quote"] < 0:
                self.socialized_loss += -account["quote"]
                self.events.append({"type": "socialized_loss", "account": address, "amount": -account["quote"]})
                account["quote"] = 0

    # --- comparison view -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        accounts = {}
        for address, account in self.accounts.items():
            collateral = {s: a for s, a in account["collateral"].items() if a}
            if account["quote"] == 0 and not account["positions"] and not collateral:
                continue
            accounts[address] = {"quote": account["quote"], "collateral": collateral,
                                 "positions": {mid: (p[0], p[2]) for mid, p in account["positions"].items()},
                                 "snapshots": {mid: p[1] for mid, p in account["positions"].items()}}
        markets = {}
        for market_id, m in self.markets.items():
            markets[market_id] = {name: m[name] for name in MARKET_FIELDS}
            markets[market_id]["status"] = self.status(market_id)
        return {
            "accounts": accounts, "markets": markets,
            "insurance": self.insurance, "insurance_collateral": {s: a for s, a in self.insurance_collateral.items() if a},
            "fee_pool": self.fee_pool, "socialized_loss": self.socialized_loss,
            "deposits": {s: a for s, a in self.deposits.items() if a},
            "withdrawals": {s: a for s, a in self.withdrawals.items() if a},
            "backstops": {mid: {p: tuple(v) for p, v in book.items() if v[0]} for mid, book in self.backstops.items()
                          if any(v[0] for v in book.values())},
        }


MARKET_FIELDS = ("price", "reported", "breaker", "capped_blocks", "last_price_ms", "funding_index", "premium_sum",
                 "premium_weight", "next_funding_ms", "open_interest", "vol_ewma", "imf", "funding_dust")


def time_ms_ok(now: int, report_time: int, staleness: int) -> bool:
    """Oracle 1: fresh iff the report is at most `oracle_staleness_ms` before the block time."""
    return now - report_time <= staleness


def margin_passes(before: tuple[int, int, int], after: tuple[int, int, int]) -> bool:
    """Risk engine: equity >= IMR afterwards, or risk reduced (MMR not rising, equity/MMR not falling)."""
    equity, _imr, mmr = before
    equity2, imr2, mmr2 = after
    if equity2 >= imr2:
        return True
    return mmr2 <= mmr and equity2 * mmr >= equity * mmr2


def copy_account(account: dict[str, Any]) -> dict[str, Any]:
    return {"quote": account["quote"], "collateral": dict(account["collateral"]),
            "positions": {mid: list(p) for mid, p in account["positions"].items()}}
