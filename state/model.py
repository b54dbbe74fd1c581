"""State values of the clearing application, their store keys and canonical encodings.

Every value is encoded with ``primitives.codec`` (canonical msgpack) under a one-letter key prefix:

    a/<address>            account: [quote, {asset: amount}, {market: [size, funding_snapshot, cost]}]
    m/<market id>          market: parameters + oracle, funding, open-interest and volatility state
    g/                     globals: insurance fund, fee pool, totals, params, validator set
    o/<market>/<feeder>    latest oracle report [price, time_ms]
    b/<market>/<address>   backstop registration [remaining max size, discount ppm]
    t/<tx hash>            seen tx -> expiry height (replay window)
    r/<address><order id>  order record [order hash, filled, cancelled, expiry]
    d/<external id>        deposit attestations {"done": 0|1, "votes": {content hash: [operators]}}
    w/<seq>                withdrawal receipt
    p/<proposal hash>      pending proposal with its votes
    e/<height><index>      waterfall event log (liquidations, insurance, deleveraging)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from primitives.codec import decode, encode
from state.genesis import MarketParams, RiskParams

PPM = 1_000_000
BREAKER_NORMAL, BREAKER_CAPPED, BREAKER_HALTED = "normal", "capped", "halted"
FUNDING_SCALE = PPM  # funding index unit: quote micro-units per size unit, times 1e6


def account_key(address: bytes) -> bytes:
    return b"a/" + address


def market_key(market_id: str) -> bytes:
    return b"m/" + market_id.encode()


GLOBALS_KEY = b"g/"


def report_key(market_id: str, feeder: bytes) -> bytes:
    return b"o/" + market_id.encode() + b"/" + feeder


def backstop_key(market_id: str, address: bytes) -> bytes:
    return b"b/" + market_id.encode() + b"/" + address


def seen_key(tx_hash: bytes) -> bytes:
    return b"t/" + tx_hash


def order_key(address: bytes, order_id: int) -> bytes:
    return b"r/" + address + order_id.to_bytes(8, "big")


def deposit_key(external_id: str) -> bytes:
    return b"d/" + external_id.encode()


def withdrawal_key(seq: int) -> bytes:
    return b"w/" + seq.to_bytes(8, "big")


def proposal_key(proposal_hash: bytes) -> bytes:
    return b"p/" + proposal_hash


def event_key(height: int, index: int) -> bytes:
    return b"e/" + height.to_bytes(8, "big") + index.to_bytes(4, "big")


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


# --- accounts ------------------------------------------------------------------------------

Position = tuple[int, int, int]  # (size, funding index snapshot, cost basis in quote micro-units)


class Account:
    """Collateral and positions of one address.

    ``quote`` absorbs every cash flow (trades, fees, funding), so equity needs no separate PnL
    bookkeeping; ``cost`` of a position is kept only to rank deleveraging by profit.
    """

    __slots__ = ("collateral", "positions", "quote")

    def __init__(self, quote: int = 0, collateral: dict[str, int] | None = None,
                 positions: dict[str, Position] | None = None) -> None:
        self.quote = quote
        self.collateral: dict[str, int] = collateral if collateral is not None else {}
        self.positions: dict[str, Position] = positions if positions is not None else {}

    def copy(self) -> Account:
        return Account(self.quote, dict(self.collateral), dict(self.positions))

    def encode(self) -> bytes:
        return encode([self.quote, self.collateral, {m: list(p) for m, p in self.positions.items()}])

    @classmethod
    def decode(cls, data: bytes) -> Account:
        quote, collateral, positions = decode(data)
        return cls(quote, collateral, {m: (p[0], p[1], p[2]) for m, p in positions.items()})

    def is_empty(self) -> bool:
        return self.quote == 0 and not self.positions and not any(self.collateral.values())


# --- markets -------------------------------------------------------------------------------


class Market:
    """A perpetual market: parameters plus the state the chain updates every block."""

    __slots__ = (
        "breaker",
        "capped_blocks",
        "funding_dust",
        "funding_index",
        "imf_ppm",
        "last_price_ms",
        "last_rate_ppm",
        "next_funding_ms",
        "open_interest",
        "params",
        "premium_sum",
        "premium_weight",
        "price",
        "reported",
        "vol_ewma_ppm",
    )

    def __init__(self, params: MarketParams, price: int, last_price_ms: int, next_funding_ms: int) -> None:
        self.params = params
        self.price = price
        self.last_price_ms = last_price_ms
        self.funding_index = 0
        self.next_funding_ms = next_funding_ms
        self.premium_sum = 0  # sum of (trade price - oracle price) * size since the last funding
        self.premium_weight = 0  # sum of trade sizes since the last funding
        self.open_interest = 0  # sum of long sizes
        self.vol_ewma_ppm = 0  # EWMA of |per-block oracle return| in ppm
        self.imf_ppm = params.initial_margin_ppm  # dynamic initial margin fraction
        self.funding_dust = 0  # funding rounding kept by the system, in FUNDING_SCALE units
        self.last_rate_ppm = 0
        self.reported = price  # the feeders' latest quorum median, uncapped
        self.breaker = BREAKER_NORMAL  # normal | capped | halted (see state/oracle.py)
        self.capped_blocks = 0  # consecutive blocks with the median beyond the move cap

    def copy(self) -> Market:
        other = Market.__new__(Market)
        for name in Market.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def to_value(self) -> dict[str, Any]:
        params = asdict(self.params)
        del params["value_multiplier"]
        value: dict[str, Any] = {name: getattr(self, name) for name in Market.__slots__ if name != "params"}
        value["params"] = params
        return value

    def encode(self) -> bytes:
        return encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes, quote_decimals: int) -> Market:
        from state.genesis import parse_market

        value = decode(data)
        params = parse_market(value.pop("params"), "market", quote_decimals)
        market = cls(params, 0, 0, 0)
        for name, item in value.items():
            setattr(market, name, item)
        return market


# --- globals -------------------------------------------------------------------------------


class Globals:
    """Chain-wide balances, totals, parameters and the validator / feeder / operator sets."""

    __slots__ = (
        "deposits",
        "fee_pool",
        "feeders",
        "feeders_follow_validators",
        "insurance",
        "insurance_collateral",
        "min_tx_fee",
        "operators",
        "operators_follow_validators",
        "replay_window",
        "risk",
        "socialized_loss",
        "validators",
        "withdrawal_seq",
        "withdrawals",
    )

    def __init__(self, risk: RiskParams, min_tx_fee: int, replay_window: int) -> None:
        self.insurance = 0
        self.insurance_collateral: dict[str, int] = {}  # collateral the fund took over for debts
        self.fee_pool = 0
        self.socialized_loss = 0  # deficits no one could absorb, written off (quote micro-units)
        self.deposits: dict[str, int] = {}  # asset -> total ever deposited (genesis included)
        self.withdrawals: dict[str, int] = {}
        self.withdrawal_seq = 0
        self.risk = risk
        self.min_tx_fee = min_tx_fee
        self.replay_window = replay_window
        self.validators: dict[bytes, list[Any]] = {}  # address -> [pub_key, power, name, jailed]
        self.feeders: dict[bytes, int] = {}  # address -> power (when not following validators)
        self.operators: dict[bytes, int] = {}
        self.feeders_follow_validators = True
        self.operators_follow_validators = True

    def copy(self) -> Globals:
        other = Globals.__new__(Globals)
        for name in Globals.__slots__:
            setattr(other, name, getattr(self, name))
        other.deposits = dict(self.deposits)
        other.insurance_collateral = dict(self.insurance_collateral)
        other.withdrawals = dict(self.withdrawals)
        other.validators = {a: list(v) for a, v in self.validators.items()}
        other.feeders = dict(self.feeders)
        other.operators = dict(self.operators)
        return other

    def validator_power(self) -> dict[bytes, int]:
        """Voting power of every unjailed validator."""
        return {a: v[1] for a, v in sorted(self.validators.items()) if not v[3] and v[1] > 0}

    def feeder_power(self) -> dict[bytes, int]:
        return self.validator_power() if self.feeders_follow_validators else dict(sorted(self.feeders.items()))

    def operator_power(self) -> dict[bytes, int]:
        return self.validator_power() if self.operators_follow_validators else dict(sorted(self.operators.items()))

    def to_value(self) -> dict[str, Any]:
        value = {name: getattr(self, name) for name in Globals.__slots__}
        value["risk"] = asdict(self.risk)
        return value

    def encode(self) -> bytes:
        return encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes) -> Globals:
        value = decode(data)
        g = cls(RiskParams(**value.pop("risk")), 0, 0)
        for name, item in value.items():
            setattr(g, name, item)
        return g
