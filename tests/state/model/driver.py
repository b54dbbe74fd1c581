"""Drive one scenario through the reference model and the real app, block by block, and compare.

After every tx: its result code (per fill for ``fills``). After every block: every account's
quote, collateral, positions (size, cost, funding snapshot), every market's oracle, breaker,
funding, open-interest and margin state and status, the insurance fund (and the collateral it
holds), fee pool, socialized loss, deposit and withdrawal totals and backstop capacities; then the
model-independent invariants (``invariants.py``) on the app's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from state import builders
from tests.state.helpers import Chain, signer
from tests.state.model import invariants
from tests.state.model.model import OK, Model, Refused
from tests.state.model.scenarios import FEEDERS, Scenario

MARKET_FIELDS = {  # model name -> app Market attribute
    "price": "price", "reported": "reported", "breaker": "breaker", "capped_blocks": "capped_blocks",
    "last_price_ms": "last_price_ms", "funding_index": "funding_index", "premium_sum": "premium_sum",
    "premium_weight": "premium_weight", "next_funding_ms": "next_funding_ms", "open_interest": "open_interest",
    "vol_ewma": "vol_ewma_ppm", "imf": "imf_ppm", "funding_dust": "funding_dust",
}
COUNTERS = ("liquidations", "backstop_fills", "insurance_covers", "adl_fills", "adl_charges", "socialized_losses",
            "breaker_trips", "collateral_conversions", "resumes")
EVENT_COUNTER = {"liquidation": "liquidations", "liquidation_fill": "backstop_fills",
                 "insurance_cover": "insurance_covers", "deleverage": "adl_fills",
                 "socialized_loss": "socialized_losses", "breaker_trip": "breaker_trips",
                 "collateral_conversion": "collateral_conversions", "resume": "resumes"}


class Mismatch(AssertionError):
    def __init__(self, seed: int, height: int, kind: str, lines: list[str]) -> None:
        self.seed, self.height, self.kind, self.lines = seed, height, kind, lines
        shown = lines[:40] + ([f"... and {len(lines) - 40} more"] if len(lines) > 40 else [])
        super().__init__(f"seed {seed}, block {height}: {kind}\n  " + "\n  ".join(shown)
                         + f"\n  reproduce: python -m tests.state.model.fuzz --seed {seed} --scenarios 1 "
                           f"--blocks {height}")


@dataclass
class Stats:
    scenarios: int = 0
    blocks: int = 0
    txs: int = 0
    fills: int = 0
    refused: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {c: 0 for c in COUNTERS})
    codes: dict[int, int] = field(default_factory=dict)
    coverage: dict[str, int] = field(default_factory=dict)


def run_scenario(seed: int, blocks: int, stats: Stats | None = None, check_invariants: bool = True,
                 app_factory: Any = None) -> Stats:
    """Run one seeded scenario; raises Mismatch at the first difference or broken invariant."""
    stats = stats if stats is not None else Stats()
    sc = Scenario(seed, blocks)
    genesis = sc.genesis
    chain = Chain(genesis, check=False)
    app = chain.app
    model = Model(genesis)
    cid = genesis.chain_id
    fee = genesis.app_state.min_tx_fee
    names = {signer(n).address: n for n in sc.traders + sc.backstop_names + [sc.venue]}
    names.update({signer(f"v{i}").address: f"v{i}" for i in range(FEEDERS)})
    compare(seed, 0, model, app, names)
    for height in range(1, blocks + 1):
        dt, ops = sc.next_block(model)
        chain.time_ms += dt
        app.begin_block(height, chain.time_ms, b"", [])
        model.begin_block(height, chain.time_ms)
        for op in ops:
            tx, orders = build(sc, chain, cid, fee, height, op)
            result = app.deliver_tx(tx)
            expected, per_fill = deliver(model, op, orders, fee)
            stats.txs += 1
            check_code(seed, height, op, result.code, expected, names)
            if op[0] == "fills" and result.code == OK:
                got = [0 if ev["type"] == "trade" else ev["attrs"]["code"] for ev in result.events
                       if ev["type"] in ("trade", "fill_rejected")]
                if len(op[1]) == 1 and len(got) == 0:
                    got = [result.code]  # a ``trade`` tx: its own code
                for i, (code, want) in enumerate(zip(got, per_fill)):
                    stats.fills += 1
                    check_code(seed, height, ("fill", i) + op[1][i], code, want, names)
                    stats.codes[code] = stats.codes.get(code, 0) + 1
            else:
                stats.codes[result.code] = stats.codes.get(result.code, 0) + 1
        before = {a: acc.copy() for a, acc in list(app.ledger.accounts.items()) + list(app.ledger.block_accounts.items())}
        end = app.end_block()
        model.end_block()
        app.commit()
        stats.blocks += 1
        for ev in model.events:
            counter = EVENT_COUNTER.get(ev["type"])
            if counter:
                stats.counts[counter] += 1
            if ev["type"] == "deleverage" and ev["charge"]:
                stats.counts["adl_charges"] += 1
        compare(seed, height, model, app, names)
        if check_invariants:
            problems = invariants.check(app, genesis, before, end.events, names)
            if problems:
                raise Mismatch(seed, height, "invariant broken (app state)", problems)
    for key, value in model.coverage.items():
        stats.coverage[key] = stats.coverage.get(key, 0) + value
    stats.scenarios += 1
    return stats


def build(sc: Scenario, chain: Chain, cid: str, fee: int, height: int, op: tuple) -> tuple[bytes, list]:
    """The signed tx for ``op`` and, for fills, the orders as the model reads them."""
    kind = op[0]
    expiry = height + 5
    if kind == "fills":
        fills, orders = [], []
        for market, a, maker_side, b, size, price in op[1]:
            pair = []
            for who, side in ((a, maker_side), (b, -maker_side)):
                order_id = sc.new_order_id()
                envelope = builders.build_order(signer(who), cid, market=market, side=side, size=size, price=price,
                                                order_id=order_id, expiry=height + 50)
                pair.append((envelope, {"account": signer(who).address, "market": market, "side": side,
                                        "size": size, "price": price, "order_id": order_id}))
            fills.append((pair[0][0], pair[1][0], size, price))
            orders.append((pair[0][1], pair[1][1], size, price))
        if len(fills) == 1:
            tx = builders.build_trade_tx(signer(sc.venue), cid, fills[0][0], fills[0][1], fills[0][2], fills[0][3],
                                         fee=fee, expiry=expiry, nonce=chain.nonce())
        else:
            tx = builders.build_fills_tx(signer(sc.venue), cid, fills, fee=fee * len(fills), expiry=expiry,
                                         nonce=chain.nonce())
        return tx, orders
    if kind == "oracle":
        return builders.build_oracle_tx(signer(f"v{op[1]}"), cid, op[2], fee=fee, expiry=expiry,
                                        nonce=chain.nonce()), []
    if kind == "deposit":
        _, operator, ext, who, asset, amount = op
        return builders.build_deposit_tx(signer(f"v{operator}"), cid, ext, signer(who).address, asset, amount,
                                         fee=fee, expiry=expiry, nonce=chain.nonce()), []
    if kind == "withdraw":
        _, who, asset, amount = op
        return builders.build_withdraw_tx(signer(who), cid, asset, amount, "ext", fee=fee, expiry=expiry,
                                          nonce=chain.nonce()), []
    if kind == "transfer":
        _, who, to, asset, amount = op
        return builders.build_transfer_tx(signer(who), cid, signer(to).address, asset, amount, fee=fee,
                                          expiry=expiry, nonce=chain.nonce()), []
    if kind == "backstop":
        _, who, market, max_size, discount = op
        return builders.build_backstop_tx(signer(who), cid, market, max_size, discount, fee=fee, expiry=expiry,
                                          nonce=chain.nonce()), []
    if kind == "resume":
        _, validator, title, market = op
        proposal = {"kind": "resume_market", "title": title, "market": market}
        return builders.build_vote_tx(signer(f"v{validator}"), cid, proposal, fee=fee, expiry=expiry,
                                      nonce=chain.nonce()), []
    raise ValueError(kind)


def deliver(model: Model, op: tuple, orders: list, fee: int) -> tuple[set[int], list[set[int]]]:
    """The model's verdict: the set of acceptable codes for the tx, and per fill for fills."""
    kind = op[0]
    sender = {"fills": "venue", "oracle": f"v{op[1]}", "deposit": f"v{op[1]}", "resume": f"v{op[1]}"}.get(kind) or op[1]
    tx_fee = fee * len(op[1]) if kind == "fills" and len(op[1]) > 1 else fee
    try:
        model.pay_fee(signer(sender).address, tx_fee)
    except Refused as exc:
        return exc.codes, []
    per_fill: list[set[int]] = []
    try:
        if kind == "fills":
            for maker, taker, size, price in orders:
                try:
                    model.trade(maker, taker, size, price)
                    per_fill.append({OK})
                except Refused as exc:
                    per_fill.append(exc.codes)
            if len(orders) == 1:  # a ``trade`` tx: the fill's code is the tx's
                return per_fill[0], per_fill
        elif kind == "oracle":
            model.oracle_report(signer(sender).address, op[2])
        elif kind == "deposit":
            _, _operator, ext, who, asset, amount = op
            model.deposit(signer(sender).address, ext, signer(who).address, asset, amount)
        elif kind == "withdraw":
            _, who, asset, amount = op
            model.withdraw(signer(who).address, asset, amount)
        elif kind == "transfer":
            _, who, to, asset, amount = op
            model.transfer(signer(who).address, signer(to).address, asset, amount)
        elif kind == "resume":
            _, _validator, title, market = op
            model.vote_resume(signer(sender).address, title, market)
        elif kind == "backstop":
            _, who, market, max_size, discount = op
            model.register_backstop(signer(who).address, market, max_size, discount)
    except Refused as exc:
        return exc.codes, per_fill
    return {OK}, per_fill


def check_code(seed: int, height: int, op: tuple, code: int, expected: set[int], names: dict[bytes, str]) -> None:
    if code in expected:
        return
    raise Mismatch(seed, height, "result code", [f"op {op!r}: app code {code}, model expects one of {sorted(expected)}"])


def app_view(app: Any) -> dict[str, Any]:
    ledger = app.ledger
    g = ledger.globals
    accounts = {}
    for address, account in ledger.accounts.items():
        collateral = {s: a for s, a in account.collateral.items() if a}
        if account.quote == 0 and not account.positions and not collateral:
            continue
        accounts[address] = {"quote": account.quote, "collateral": collateral,
                             "positions": {m: (p[0], p[2]) for m, p in account.positions.items()},
                             "snapshots": {m: p[1] for m, p in account.positions.items()}}
    markets = {}
    for market_id, market in ledger.markets.items():
        markets[market_id] = {name: getattr(market, attr, None) for name, attr in MARKET_FIELDS.items()}
        markets[market_id]["status"] = app.market_status(market)
    return {
        "accounts": accounts, "markets": markets,
        "insurance": g.insurance,
        "insurance_collateral": {s: a for s, a in getattr(g, "insurance_collateral", {}).items() if a},
        "fee_pool": g.fee_pool, "socialized_loss": getattr(g, "socialized_loss", None),
        "deposits": {s: a for s, a in g.deposits.items() if a},
        "withdrawals": {s: a for s, a in g.withdrawals.items() if a},
        "backstops": {m: {p: tuple(v) for p, v in book.items() if v[0]} for m, book in ledger.backstops.items()
                      if any(v[0] for v in book.values())},
    }


def diff(path: str, model: Any, app: Any, names: dict[bytes, str], out: list[str]) -> None:
    if isinstance(model, dict) and isinstance(app, dict):
        for key in sorted(set(model) | set(app), key=lambda k: (str(type(k)), k)):
            label = names.get(key, key.hex()[:10]) if isinstance(key, bytes) else str(key)
            if key not in app:
                out.append(f"{path}.{label}: model {show(model[key], names)}, app has none")
            elif key not in model:
                out.append(f"{path}.{label}: app {show(app[key], names)}, model has none")
            else:
                diff(f"{path}.{label}", model[key], app[key], names, out)
    elif model != app:
        delta = f" (app - model = {app - model})" if isinstance(model, int) and isinstance(app, int) else ""
        out.append(f"{path}: model {model!r}, app {app!r}{delta}")


def show(value: Any, names: dict[bytes, str]) -> str:
    """``repr`` with addresses shown by name."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{show(k, names)}: {show(v, names)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return names.get(value, value.hex()[:10])
    return repr(value)


def compare(seed: int, height: int, model: Model, app: Any, names: dict[bytes, str]) -> None:
    mine, theirs = model.snapshot(), app_view(app)
    out: list[str] = []
    diff("", mine, theirs, names, out)
    if out:
        raise Mismatch(seed, height, "state differs after commit (model vs app)", out)
