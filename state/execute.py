"""Transaction execution: each kind as validate-then-apply, raising TxRejected with its code.

Every handler checks everything before its first write, so a rejected tx leaves no trace except
the fee and its seen hash (charged by the ante step in ``state.app``). Funding settlement of the
sender is the one write allowed before the checks: it does not change equity.
"""

from __future__ import annotations

from typing import Any

from primitives.hashing import hash_value
from state import governance
from state.codes import Code, TxRejected
from state.env import BlockEnv
from state.events import Event, event
from state.model import FUNDING_SCALE, PPM, Account, deposit_key, order_key, withdrawal_key
from state.order_records import Record
from state.risk import cash_of, ceil_div, margin_allows, risk_of, settle_funding, stressed_risk
from state.txs import (
    BUY,
    SIDE_NAMES,
    BackstopRegistration,
    Cancel,
    Deposit,
    OracleReport,
    Trade,
    Transfer,
    Tx,
    GovernanceVote,
    Withdraw,
)


MAX_PRICE = 10**15
MAX_TOTAL = 2**62  # bound on totals and notionals, so every stored integer fits its encoding


def settle_all(env: BlockEnv, account: Account) -> None:
    markets = env.ledger.w_markets
    for market_id in sorted(account.positions):
        settle_funding(account, markets[market_id], market_id)


def _balance(env: BlockEnv, account: Account, asset: str) -> int:
    """What can leave: collateral held, or quote net of position values (no borrowing on haircuts)."""
    if asset == env.ledger.quote_symbol:
        return cash_of(account, env.ledger.w_markets)
    return account.collateral.get(asset, 0)


def _check_asset(env: BlockEnv, asset: str) -> None:
    if asset != env.ledger.quote_symbol and asset not in env.ledger.pricing:
        raise TxRejected(Code.UNKNOWN_ASSET, f"unknown asset {asset!r}")


def _move(env: BlockEnv, account: Account, asset: str, amount: int) -> None:
    if asset == env.ledger.quote_symbol:
        account.quote += amount
    else:
        left = account.collateral.get(asset, 0) + amount
        if left:
            account.collateral[asset] = left
        else:
            account.collateral.pop(asset, None)


def _debit_checked(env: BlockEnv, address: bytes, asset: str, amount: int) -> Account:
    """The sender's account after settling funding, if ``amount`` can leave it.

    Initial margin must hold afterwards at stressed prices (``risk.stressed_risk``: the worse
    of applied and reported per position), so value cannot leave while an oracle lags.

    Raises ``INSUFFICIENT_BALANCE``, ``INSUFFICIENT_MARGIN``.
    """
    ledger = env.ledger
    account = ledger.account_mut(address)
    settle_all(env, account)
    if _balance(env, account, asset) < amount:
        raise TxRejected(Code.INSUFFICIENT_BALANCE, f"balance of {asset} is below {amount}")
    trial = account.copy()
    _move(env, trial, asset, -amount)
    equity, imr, _mmr = stressed_risk(trial, ledger.w_markets, ledger.pricing)
    if equity < imr:
        raise TxRejected(Code.INSUFFICIENT_MARGIN, f"equity {equity} would fall below initial margin {imr}"
                         " (positions at the worse of applied and reported prices)")
    return account


# --- collateral ----------------------------------------------------------------------------


def transfer(env: BlockEnv, tx: Tx) -> list[Event]:
    msg: Transfer = tx.msg  # type: ignore[assignment]
    _check_asset(env, msg.asset)
    if msg.to == tx.sender:
        raise TxRejected(Code.SELF_TRANSFER, "sender and recipient are the same account")
    account = _debit_checked(env, tx.sender, msg.asset, msg.amount)
    _move(env, account, msg.asset, -msg.amount)
    _move(env, env.ledger.account_mut(msg.to), msg.asset, msg.amount)
    env.touch(tx.sender, msg.to)
    return [event("transfer", sender=tx.sender, to=msg.to, asset=msg.asset, amount=msg.amount)]


def deposit(env: BlockEnv, tx: Tx) -> list[Event]:
    msg: Deposit = tx.msg  # type: ignore[assignment]
    ledger = env.ledger
    operators = ledger.g.operator_power()
    if tx.sender not in operators:
        raise TxRejected(Code.NOT_BRIDGE_OPERATOR, "signer is not a bridge operator")
    _check_asset(env, msg.asset)
    key = deposit_key(msg.external_id)
    record: dict[str, Any] = ledger.get_value(key) or {"done": 0, "votes": {}}
    if record["done"]:
        raise TxRejected(Code.DEPOSIT_ALREADY_CREDITED, f"deposit {msg.external_id!r} was already credited")
    if any(tx.sender in voters for voters in record["votes"].values()):
        raise TxRejected(Code.DEPOSIT_ALREADY_ATTESTED, f"signer already attested deposit {msg.external_id!r}")
    content = hash_value([msg.account, msg.asset, msg.amount])
    voters = sorted(record["votes"].get(content, []) + [tx.sender])
    record = {"done": 0, "votes": {**record["votes"], content: voters}}
    events = [event("deposit_attested", external_id=msg.external_id, operator=tx.sender)]
    power = sum(operators.get(v, 0) for v in voters)
    total = ledger.g.deposits.get(msg.asset, 0)
    if total + msg.amount > MAX_TOTAL:
        raise TxRejected(Code.AMOUNT_TOO_LARGE, f"deposits of {msg.asset} would pass {MAX_TOTAL}")
    if 3 * power > 2 * sum(operators.values()):
        record = {"done": 1, "votes": {}}
        _move(env, ledger.account_mut(msg.account), msg.asset, msg.amount)
        ledger.g.deposits[msg.asset] = ledger.g.deposits.get(msg.asset, 0) + msg.amount
        env.touch(msg.account)
        events.append(event("deposit", external_id=msg.external_id, account=msg.account, asset=msg.asset,
                            amount=msg.amount))
    ledger.put_raw(key, record)
    return events


def withdraw(env: BlockEnv, tx: Tx) -> list[Event]:
    msg: Withdraw = tx.msg  # type: ignore[assignment]
    _check_asset(env, msg.asset)
    ledger = env.ledger
    account = _debit_checked(env, tx.sender, msg.asset, msg.amount)
    _move(env, account, msg.asset, -msg.amount)
    g = ledger.g
    g.withdrawals[msg.asset] = g.withdrawals.get(msg.asset, 0) + msg.amount
    g.withdrawal_seq += 1
    receipt = {"seq": g.withdrawal_seq, "account": tx.sender, "asset": msg.asset, "amount": msg.amount,
               "destination": msg.destination, "height": env.height, "tx": tx.hash}
    ledger.put_raw(withdrawal_key(g.withdrawal_seq), receipt)
    env.touch(tx.sender)
    return [event("withdraw", **receipt)]


# --- orders and trades ---------------------------------------------------------------------


def _order_record(env: BlockEnv, address: bytes, order_id: int) -> Record | None:
    return env.orders.get(order_key(address, order_id))


def trade(env: BlockEnv, tx: Tx) -> list[Event]:
    return [clear_trade(env, tx.msg)]  # type: ignore[arg-type]


def fills(env: BlockEnv, tx: Tx) -> list[Event]:
    """Each fill clears or is refused on its own: one event per fill, in order (``trade``, or
    ``fill_rejected`` with the code and log a ``trade`` tx would have got)."""
    events = []
    for index, fill in enumerate(tx.msg.fills):  # type: ignore[union-attr]
        try:
            events.append(clear_trade(env, fill))
        except TxRejected as exc:
            events.append(event("fill_rejected", index=index, code=int(exc.code), log=exc.message,
                                maker=fill.maker.account, maker_order=fill.maker.order_id,
                                taker=fill.taker.account, taker_order=fill.taker.order_id))
    return events


def clear_trade(env: BlockEnv, msg: Trade) -> Event:
    """Check everything, then apply: a refusal (TxRejected) leaves the state untouched."""
    ledger = env.ledger
    maker, taker = msg.maker, msg.taker
    size, price = msg.size, msg.price
    if maker.market != taker.market:
        raise TxRejected(Code.MARKET_MISMATCH, "maker and taker orders are for different markets")
    market_id = maker.market
    market = ledger.w_markets.get(market_id)
    if market is None:
        raise TxRejected(Code.UNKNOWN_MARKET, f"unknown market {market_id!r}")
    if maker.side == taker.side:
        raise TxRejected(Code.SIDE_MISMATCH, "maker and taker orders are on the same side")
    if maker.account == taker.account:
        raise TxRejected(Code.SAME_ACCOUNT, "an account cannot trade with itself")
    p = market.params
    if size % p.lot_size or maker.size % p.lot_size or taker.size % p.lot_size:
        raise TxRejected(Code.NOT_LOT_MULTIPLE, f"sizes must be multiples of the lot size {p.lot_size}")
    if price % p.tick_size:
        raise TxRejected(Code.NOT_TICK_MULTIPLE, f"price must be a multiple of the tick size {p.tick_size}")
    height = env.height
    lifetime = ledger.g.risk.max_order_lifetime_blocks
    for order in (maker, taker):
        if order.expiry < height:
            raise TxRejected(Code.ORDER_EXPIRED, f"order {order.order_id} expired at height {order.expiry}")
        if order.expiry > height + lifetime:
            raise TxRejected(Code.ORDER_LIFETIME_TOO_LONG, f"order {order.order_id} lives beyond {lifetime} blocks")
    buyer, seller = (maker, taker) if maker.side == BUY else (taker, maker)
    if price > buyer.price or price < seller.price:
        raise TxRejected(Code.PRICE_OUTSIDE_LIMIT, f"price {price} is outside the orders' limits")
    if abs(price - market.price) * PPM > market.price * market.imf_ppm:
        raise TxRejected(Code.PRICE_OUTSIDE_BAND, f"price {price} is further from the oracle {market.price} "
                                                  f"than the initial margin fraction {market.imf_ppm} ppm")
    if size * price * p.value_multiplier > MAX_TOTAL:
        raise TxRejected(Code.AMOUNT_TOO_LARGE, f"notional of {size} at {price} is out of range")
    records = []
    for order in (maker, taker):
        record = _order_record(env, order.account, order.order_id)
        filled = 0
        if record is not None:
            if record[2]:
                raise TxRejected(Code.ORDER_CANCELLED, f"order {order.order_id} was cancelled")
            if record[0] != order.hash:
                raise TxRejected(Code.ORDER_ID_REUSED, f"order id {order.order_id} belongs to another order")
            filled = record[1]
        if filled + size > order.size:
            raise TxRejected(Code.ORDER_OVERFILL, f"order {order.order_id} has only {order.size - filled} left")
        records.append((order, filled))
    active = env.market_active(market)
    mult = p.value_multiplier
    notional = size * price * mult
    fees = (ceil_div(notional * p.maker_fee_ppm, PPM), ceil_div(notional * p.taker_fee_ppm, PPM))
    for order, fee in zip((maker, taker), fees):
        account = ledger.account(order.account) or Account()
        old = account.positions[market_id][0] if market_id in account.positions else 0
        new = old + order.side * size
        if not active and not (abs(new) < abs(old) and old * new >= 0):
            raise TxRejected(Code.MARKET_NOT_ACTIVE, f"market {market_id} is {env.market_status(market)}: "
                                                     "only risk-reducing trades")
        if abs(new) * price * mult > MAX_TOTAL:
            raise TxRejected(Code.AMOUNT_TOO_LARGE, f"position of order {order.order_id} would be out of range")
        after = risk_of(account, ledger.w_markets, ledger.pricing, (market_id, new, -order.side * notional - fee))
        if after[0] < after[1] and not margin_allows(risk_of(account, ledger.w_markets, ledger.pricing), after):
            raise TxRejected(Code.INSUFFICIENT_MARGIN,
                             f"account of order {order.order_id} would hold equity {after[0]} against "
                             f"initial margin {after[1]}")
    # --- apply
    for (order, filled), fee in zip(records, fees):
        account = ledger.account_mut(order.account)
        apply_fill(env, order.account, account, market_id, order.side * size, -order.side * notional)
        account.quote -= fee
        env.orders.put(order.account, order.order_id, (order.hash, filled + size, 0, order.expiry))
    ledger.g.fee_pool += fees[0] + fees[1]
    market.premium_sum += (price - market.price) * size
    market.premium_weight += size
    return event("trade", market=market_id, size=size, price=price, buyer=buyer.account, seller=seller.account,
                 maker=maker.account, maker_side=SIDE_NAMES[maker.side], maker_fee=fees[0], taker_fee=fees[1])


def apply_fill(env: BlockEnv, address: bytes, account: Account, market_id: str, delta: int, cash: int) -> None:
    """Change a position by ``delta`` for ``cash`` quote (settles funding first); keeps OI and holders."""
    market = env.ledger.w_markets[market_id]
    if market_id in account.positions:
        settle_funding(account, market, market_id)
        size, _snapshot, cost = account.positions[market_id]
    else:
        size, cost = 0, 0
    new = size + delta
    if size == 0 or (size > 0) == (delta > 0):
        cost -= cash
    elif abs(delta) <= abs(size):
        cost = cost * (abs(size) - abs(delta)) // abs(size)
    else:
        cost = -(cash * abs(new) // abs(delta))
    account.quote += cash
    if new == 0:
        del account.positions[market_id]
    else:
        account.positions[market_id] = (new, market.funding_index, cost)
    market.open_interest += max(new, 0) - max(size, 0)
    env.ledger.track_position(address, market_id, size != 0, new != 0)
    env.touch(address)


def cancel(env: BlockEnv, tx: Tx) -> list[Event]:
    """Mark an order cancelled until it can no longer fill.

    The record lives at least until the order's real expiry: the filled record's (an order that
    has filled carries its signed expiry; a later stated expiry extends it), else the signed
    order's given with the cancel, else the stated ``order_expiry`` but at least the longest
    order lifetime from now (every order that can fill before then is covered whatever expiry
    the caller states).

    Raises ``INVALID_FIELD``, ``ORDER_EXPIRED``, ``ORDER_LIFETIME_TOO_LONG``, ``ORDER_CANCELLED``.
    """
    msg: Cancel = tx.msg  # type: ignore[assignment]
    height = env.height
    lifetime = env.ledger.g.risk.max_order_lifetime_blocks
    stated = msg.order_expiry
    if msg.order is not None:
        if msg.order.account != tx.sender or msg.order.order_id != msg.order_id:
            raise TxRejected(Code.INVALID_FIELD, "the order given is not the sender's order with this id")
        if msg.order.expiry != stated:
            raise TxRejected(Code.INVALID_FIELD, f"order_expiry must be the order's expiry {msg.order.expiry}")
    if stated < height:
        raise TxRejected(Code.ORDER_EXPIRED, "the order has already expired")
    if stated > height + lifetime:
        raise TxRejected(Code.ORDER_LIFETIME_TOO_LONG, f"an order expiring after height {height + lifetime} "
                                                       "cannot fill yet; cancel it once it is within the lifetime")
    record = _order_record(env, tx.sender, msg.order_id)
    if record is not None and record[2]:
        raise TxRejected(Code.ORDER_CANCELLED, f"order {msg.order_id} is already cancelled")
    if record is not None:
        expiry, filled, order_hash = max(record[3], stated), record[1], record[0]
    elif msg.order is not None:
        expiry, filled, order_hash = msg.order.expiry, 0, msg.order.hash
    else:
        expiry, filled, order_hash = max(stated, height + lifetime), 0, b""
    env.orders.put(tx.sender, msg.order_id, (order_hash, filled, 1, expiry))
    return [event("cancel", account=tx.sender, order_id=msg.order_id)]


# --- oracle, backstop, governance ----------------------------------------------------------


def oracle(env: BlockEnv, tx: Tx) -> list[Event]:
    msg: OracleReport = tx.msg  # type: ignore[assignment]
    ledger = env.ledger
    if tx.sender not in ledger.g.feeder_power():
        raise TxRejected(Code.NOT_FEEDER, "signer is not a registered oracle feeder")
    for market_id, price in msg.prices:
        if market_id not in ledger.w_markets:
            raise TxRejected(Code.UNKNOWN_MARKET, f"unknown market {market_id!r}")
        if price > MAX_PRICE:
            raise TxRejected(Code.INVALID_PRICE, f"price {price} for {market_id} is out of range")
    for market_id, price in msg.prices:
        ledger.set_report(market_id, tx.sender, price, env.time_ms)
    return [event("oracle_report", feeder=tx.sender, markets=len(msg.prices))]


def backstop(env: BlockEnv, tx: Tx) -> list[Event]:
    msg: BackstopRegistration = tx.msg  # type: ignore[assignment]
    ledger = env.ledger
    market = ledger.w_markets.get(msg.market)
    if market is None:
        raise TxRejected(Code.UNKNOWN_MARKET, f"unknown market {msg.market!r}")
    if msg.max_size % market.params.lot_size:
        raise TxRejected(Code.NOT_LOT_MULTIPLE, f"max_size must be a multiple of {market.params.lot_size}")
    if msg.max_size == 0 and tx.sender not in ledger.backstops.get(msg.market, {}):
        raise TxRejected(Code.INVALID_BACKSTOP, "no registration to withdraw")
    if msg.max_size and msg.discount_ppm > ledger.g.risk.liquidation_fee_ppm:
        raise TxRejected(Code.INVALID_BACKSTOP, "discount may be at most the liquidation fee "
                                                f"({ledger.g.risk.liquidation_fee_ppm} ppm)")
    if msg.max_size and msg.discount_ppm >= market.params.maintenance_margin_ppm:
        raise TxRejected(Code.INVALID_BACKSTOP, "discount must be below the maintenance margin fraction")
    ledger.set_backstop(msg.market, tx.sender, msg.max_size, msg.discount_ppm)
    return [event("backstop", provider=tx.sender, market=msg.market, max_size=msg.max_size,
                  discount_ppm=msg.discount_ppm)]


def vote(env: BlockEnv, tx: Tx) -> list[Event]:
    msg: GovernanceVote = tx.msg  # type: ignore[assignment]
    if tx.sender not in env.ledger.g.validator_power():
        raise TxRejected(Code.NOT_VALIDATOR, "signer is not an active validator")
    governance.validate(env, msg.proposal)
    return governance.record_vote(env, msg.proposal_hash, msg.proposal, tx.sender)


HANDLERS = {
    "transfer": transfer, "deposit": deposit, "withdraw": withdraw, "trade": trade, "fills": fills,
    "cancel": cancel,
    "oracle": oracle, "backstop": backstop, "vote": vote,
}

__all__ = ["FUNDING_SCALE", "HANDLERS", "Event", "apply_fill", "event", "settle_all"]
