"""The genesis document: chain identity, consensus parameters, validators and the clearing state.

``parse_genesis`` validates EVERY field and fails with a :class:`GenesisError` naming the field
path and the reason (``markets[1].maintenance_margin_ppm must be lower than initial_margin_ppm``),
so a bad file is rejected before a node starts, never half-loaded.

Units (state/README.md): quote amounts in integer micro-units of the quote asset; a market's
size 1 is ``10**size_exponent`` base units and its price 1 is ``10**price_exponent`` quote units
per base unit, so the quote value of ``size * price`` is ``size * price * value_multiplier``
micro-units with ``value_multiplier = 10**(size_exponent + price_exponent + quote.decimals)``
(validated to be a whole number). Ratios are ppm.

Human units are derived from those, never stated twice: an asset's amounts have ``decimals``
places; a market's sizes are in its ``base_asset`` with ``size_decimals = -size_exponent`` places
and its prices in the quote asset with ``price_decimals = -price_exponent`` places (negative
places: a human value must be a multiple of a power of ten). Symbols are a letter then letters
or digits (``USDC``, ``BTC``), so ``100.5USDC`` reads one way only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from primitives.crypto import AddressError, address_of, format_address, parse_address

PPM = 1_000_000
MAX_INT = 2**63 - 1
DEFAULT_FUNDING_IMPACT_NOTIONAL = 10_000 * 10**6  # 10,000 USDC
DEFAULT_BREAKER_HALT_BLOCKS = 10
SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}\Z")
"""An asset symbol: what a person types after an amount (``100.5USDC``)."""


class GenesisError(ValueError):
    """A genesis document that cannot be used; the message names the field and the reason."""


# --- parsed types --------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockParams:
    max_bytes: int
    max_txs: int


@dataclass(frozen=True)
class TimeoutParams:
    propose_ms: int
    propose_delta_ms: int
    prevote_ms: int
    prevote_delta_ms: int
    precommit_ms: int
    precommit_delta_ms: int
    commit_ms: int


@dataclass(frozen=True)
class ConsensusParams:
    block: BlockParams
    timeouts: TimeoutParams


@dataclass(frozen=True)
class GenesisValidator:
    name: str
    pub_key: bytes
    power: int

    @property
    def address(self) -> bytes:
        return address_of(self.pub_key)


@dataclass(frozen=True)
class QuoteAsset:
    symbol: str
    decimals: int


@dataclass(frozen=True)
class CollateralAsset:
    """A haircut collateral asset; valued at the oracle price of ``price_market``."""

    symbol: str
    decimals: int
    price_market: str
    weight_ppm: int


@dataclass(frozen=True)
class MarketParams:
    """A perpetual market's static parameters (changed only by validator proposals)."""

    id: str
    base_asset: str
    size_exponent: int
    price_exponent: int
    lot_size: int
    tick_size: int
    initial_margin_ppm: int
    maintenance_margin_ppm: int
    oi_lower_cap: int  # quote micro-units of open interest where IMF scaling starts
    oi_upper_cap: int  # ... and where IMF reaches 100%
    volatility_imf_multiplier_ppm: int  # IMF added per unit of EWMA |return| (ppm of ppm)
    max_volatility_imf_ppm: int
    funding_interval_ms: int
    funding_clamp_ppm: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    initial_price: int
    status: str  # "active" or "halted"
    # Trades below this notional (quote micro-units) move the funding premium in proportion
    # to their size, so a dust trade cannot set the rate.
    funding_impact_notional: int = DEFAULT_FUNDING_IMPACT_NOTIONAL
    value_multiplier: int = 1  # derived: quote micro-units per (size 1 x price 1)

    @property
    def size_decimals(self) -> int:
        """Decimal places of a size in whole ``base_asset`` units (size 1 = 10**size_exponent)."""
        return -self.size_exponent

    @property
    def price_decimals(self) -> int:
        """Decimal places of a price in whole quote units per whole base unit."""
        return -self.price_exponent


@dataclass(frozen=True)
class RiskParams:
    liquidation_fee_ppm: int
    oracle_staleness_ms: int
    max_price_move_ppm: int
    insurance_fund_seed: int
    volatility_ewma_alpha_ppm: int
    max_order_lifetime_blocks: int
    # Consecutive blocks with the reported median beyond the move cap after which a market's
    # breaker halts it (0: never halts, the price keeps walking by the cap).
    breaker_halt_blocks: int = DEFAULT_BREAKER_HALT_BLOCKS


@dataclass(frozen=True)
class Member:
    """A feeder or bridge operator: an address with voting power."""

    address: bytes
    power: int


@dataclass(frozen=True)
class InitialBalance:
    address: bytes
    quote: int
    collateral: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AppState:
    quote: QuoteAsset
    collateral_assets: tuple[CollateralAsset, ...]
    markets: tuple[MarketParams, ...]
    risk: RiskParams
    min_tx_fee: int
    replay_window_blocks: int
    feeders: tuple[Member, ...]  # empty: the validators
    bridge_operators: tuple[Member, ...]  # empty: the validators
    validator_initial_quote: int
    initial_balances: tuple[InitialBalance, ...]

    def asset_decimals(self) -> dict[str, int]:
        """Decimal places of every asset (quote first, then collateral), by symbol."""
        return {self.quote.symbol: self.quote.decimals, **{c.symbol: c.decimals for c in self.collateral_assets}}


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    initial_height: int
    consensus_params: ConsensusParams
    validators: tuple[GenesisValidator, ...]
    app_state: AppState
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def feeders(self) -> tuple[Member, ...]:
        """The oracle feeders: the listed ones, or every validator with its power."""
        return self.app_state.feeders or tuple(Member(v.address, v.power) for v in self.validators)

    @property
    def bridge_operators(self) -> tuple[Member, ...]:
        return self.app_state.bridge_operators or tuple(
            Member(v.address, v.power) for v in self.validators
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document this genesis was parsed from (a deep copy)."""
        return json.loads(json.dumps(self.raw))

    def with_validators(self, validators: list[dict[str, Any]] | list[GenesisValidator]) -> Genesis:
        """A copy whose ``validators`` list is replaced (``init``/``testnet`` use it).

        Entries are genesis ``validators`` dicts or :class:`GenesisValidator` objects.
        """
        document = self.to_dict()
        document["validators"] = [
            validator_entry(v.name, v.pub_key, v.power) if isinstance(v, GenesisValidator) else dict(v)
            for v in validators
        ]
        return parse_genesis(document)


# --- field checking ------------------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise GenesisError(f"{_join(path, key)} is missing")
    return obj[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _dict(value: Any, path: str, keys: set[str], optional: set[str] = frozenset()) -> dict:  # type: ignore[assignment]
    if not isinstance(value, dict):
        raise GenesisError(f"{path or 'genesis'} must be an object")
    unknown = sorted(set(value) - keys - optional)
    if unknown:
        raise GenesisError(f"{_join(path, unknown[0])} is not a known field")
    for key in sorted(keys):
        if key not in value:
            raise GenesisError(f"{_join(path, key)} is missing")
    return value


def _int(value: Any, path: str, low: int | None = None, high: int = MAX_INT) -> int:
    if type(value) is not int:
        raise GenesisError(f"{path} must be an integer")
    if low is not None and value < low:
        raise GenesisError(f"{path} must be at least {low}")
    if value > high:
        raise GenesisError(f"{path} must be at most {high}")
    return value


def _str(value: Any, path: str, max_len: int = 64) -> str:
    if not isinstance(value, str) or not value:
        raise GenesisError(f"{path} must be a non-empty string")
    if len(value) > max_len or not value.isascii() or not value.isprintable():
        raise GenesisError(f"{path} must be printable ASCII and at most {max_len} characters")
    return value


def _symbol(value: Any, path: str) -> str:
    if not isinstance(value, str) or not SYMBOL.match(value):
        raise GenesisError(f"{path} must be a symbol: a letter, then up to 15 letters or digits")
    return value


def _list(value: Any, path: str) -> list:  # type: ignore[type-arg]
    if not isinstance(value, list):
        raise GenesisError(f"{path} must be a list")
    return value


def _address(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"{path} must be a clr1... address string")
    try:
        return parse_address(value)
    except AddressError as exc:
        raise GenesisError(f"{path} is not a valid address: {exc}") from exc


# --- sections ------------------------------------------------------------------------------


def _parse_consensus(value: Any, path: str) -> ConsensusParams:
    value = _dict(value, path, {"block", "timeouts"})
    bpath = f"{path}.block"
    block = _dict(value["block"], bpath, {"max_bytes", "max_txs"})
    tpath = f"{path}.timeouts"
    names = [f.name for f in TimeoutParams.__dataclass_fields__.values()]
    timeouts = _dict(value["timeouts"], tpath, set(names))
    return ConsensusParams(
        block=BlockParams(
            max_bytes=_int(block["max_bytes"], f"{bpath}.max_bytes", 1024, 64 * 1024 * 1024),
            max_txs=_int(block["max_txs"], f"{bpath}.max_txs", 1, 1_000_000),
        ),
        timeouts=TimeoutParams(
            **{n: _int(timeouts[n], f"{tpath}.{n}", 0 if n.endswith("delta_ms") else 1, 600_000) for n in names}
        ),
    )


def _parse_validators(value: Any, path: str) -> tuple[GenesisValidator, ...]:
    result = []
    seen: set[bytes] = set()
    for i, item in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        item = _dict(item, p, {"name", "pub_key", "power"}, {"address"})
        name = _str(item["name"], f"{p}.name")
        try:
            pub = base64.b64decode(item["pub_key"], validate=True) if isinstance(item["pub_key"], str) else b""
        except (binascii.Error, ValueError):
            pub = b""
        if len(pub) != 32:
            raise GenesisError(f"{p}.pub_key must be a base64 Ed25519 public key (32 bytes)")
        if "address" in item and _address(item["address"], f"{p}.address") != address_of(pub):
            raise GenesisError(f"{p}.address does not match pub_key")
        power = _int(item["power"], f"{p}.power", 1, 2**50)
        if pub in seen:
            raise GenesisError(f"{p}.pub_key is listed twice")
        seen.add(pub)
        result.append(GenesisValidator(name, pub, power))
    return tuple(result)


def _parse_members(value: Any, path: str) -> tuple[Member, ...]:
    result = []
    seen: set[bytes] = set()
    for i, item in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        item = _dict(item, p, {"address", "power"})
        address = _address(item["address"], f"{p}.address")
        if address in seen:
            raise GenesisError(f"{p}.address is listed twice")
        seen.add(address)
        result.append(Member(address, _int(item["power"], f"{p}.power", 1, 2**50)))
    return tuple(sorted(result, key=lambda m: m.address))


MARKET_FIELDS = {
    "id", "base_asset", "size_exponent", "price_exponent", "lot_size", "tick_size",
    "initial_margin_ppm", "maintenance_margin_ppm", "oi_lower_cap", "oi_upper_cap",
    "volatility_imf_multiplier_ppm", "max_volatility_imf_ppm", "funding_interval_ms",
    "funding_clamp_ppm", "maker_fee_ppm", "taker_fee_ppm", "initial_price", "status",
}
OPTIONAL_MARKET_FIELDS = {"funding_impact_notional"}
MARKET_STATUSES = ("active", "halted")


def parse_market(item: Any, p: str, quote_decimals: int = 6) -> MarketParams:
    """Validate one market's parameters (also used for market proposals)."""
    item = _dict(item, p, MARKET_FIELDS, OPTIONAL_MARKET_FIELDS)
    market_id = _str(item["id"], f"{p}.id", 32)
    size_exp = _int(item["size_exponent"], f"{p}.size_exponent", -18, 18)
    price_exp = _int(item["price_exponent"], f"{p}.price_exponent", -18, 18)
    if size_exp + price_exp + quote_decimals < 0:
        raise GenesisError(
            f"{p}.price_exponent must make size_exponent + price_exponent + quote decimals >= 0 "
            "(a lot times a tick must be a whole number of quote micro-units)"
        )
    imf = _int(item["initial_margin_ppm"], f"{p}.initial_margin_ppm", 1, PPM)
    mmf = _int(item["maintenance_margin_ppm"], f"{p}.maintenance_margin_ppm", 1, PPM)
    if mmf >= imf:
        raise GenesisError(f"{p}.maintenance_margin_ppm must be lower than initial_margin_ppm")
    lower = _int(item["oi_lower_cap"], f"{p}.oi_lower_cap", 0)
    upper = _int(item["oi_upper_cap"], f"{p}.oi_upper_cap", 0)
    if upper <= lower:
        raise GenesisError(f"{p}.oi_upper_cap must be greater than oi_lower_cap")
    status = item["status"]
    if status not in MARKET_STATUSES:
        raise GenesisError(f"{p}.status must be one of {', '.join(MARKET_STATUSES)}")
    lot = _int(item["lot_size"], f"{p}.lot_size", 1, 10**12)
    tick = _int(item["tick_size"], f"{p}.tick_size", 1, 10**12)
    price = _int(item["initial_price"], f"{p}.initial_price", 1, 10**15)
    if price % tick:
        raise GenesisError(f"{p}.initial_price must be a multiple of tick_size")
    return MarketParams(
        id=market_id,
        base_asset=_symbol(item["base_asset"], f"{p}.base_asset"),
        size_exponent=size_exp,
        price_exponent=price_exp,
        lot_size=lot,
        tick_size=tick,
        initial_margin_ppm=imf,
        maintenance_margin_ppm=mmf,
        oi_lower_cap=lower,
        oi_upper_cap=upper,
        volatility_imf_multiplier_ppm=_int(
            item["volatility_imf_multiplier_ppm"], f"{p}.volatility_imf_multiplier_ppm", 0, 1000 * PPM
        ),
        max_volatility_imf_ppm=_int(item["max_volatility_imf_ppm"], f"{p}.max_volatility_imf_ppm", 0, PPM),
        funding_interval_ms=_int(item["funding_interval_ms"], f"{p}.funding_interval_ms", 1000, 7 * 86_400_000),
        funding_clamp_ppm=_int(item["funding_clamp_ppm"], f"{p}.funding_clamp_ppm", 0, 100_000),
        maker_fee_ppm=_int(item["maker_fee_ppm"], f"{p}.maker_fee_ppm", 0, 100_000),
        taker_fee_ppm=_int(item["taker_fee_ppm"], f"{p}.taker_fee_ppm", 0, 100_000),
        initial_price=price,
        status=status,
        funding_impact_notional=_int(item.get("funding_impact_notional", DEFAULT_FUNDING_IMPACT_NOTIONAL),
                                     f"{p}.funding_impact_notional", 1, 10**17),
        value_multiplier=10 ** (size_exp + price_exp + quote_decimals),
    )


RISK_FIELDS = {
    "liquidation_fee_ppm", "oracle_staleness_ms", "max_price_move_ppm", "insurance_fund_seed",
    "volatility_ewma_alpha_ppm", "max_order_lifetime_blocks", "breaker_halt_blocks",
}
OPTIONAL_RISK_FIELDS = {"breaker_halt_blocks"}


def parse_risk(value: Any, p: str) -> RiskParams:
    value = _dict(value, p, RISK_FIELDS - OPTIONAL_RISK_FIELDS, OPTIONAL_RISK_FIELDS)
    return RiskParams(
        liquidation_fee_ppm=_int(value["liquidation_fee_ppm"], f"{p}.liquidation_fee_ppm", 0, 200_000),
        oracle_staleness_ms=_int(value["oracle_staleness_ms"], f"{p}.oracle_staleness_ms", 100, 86_400_000),
        max_price_move_ppm=_int(value["max_price_move_ppm"], f"{p}.max_price_move_ppm", 1, 500_000),
        insurance_fund_seed=_int(value["insurance_fund_seed"], f"{p}.insurance_fund_seed", 0),
        volatility_ewma_alpha_ppm=_int(
            value["volatility_ewma_alpha_ppm"], f"{p}.volatility_ewma_alpha_ppm", 1, PPM
        ),
        max_order_lifetime_blocks=_int(
            value["max_order_lifetime_blocks"], f"{p}.max_order_lifetime_blocks", 1, 10_000_000
        ),
        breaker_halt_blocks=_int(value.get("breaker_halt_blocks", DEFAULT_BREAKER_HALT_BLOCKS),
                                 f"{p}.breaker_halt_blocks", 0, 1_000_000),
    )


APP_FIELDS = {
    "quote_asset", "collateral_assets", "markets", "risk", "min_tx_fee", "replay_window_blocks",
    "feeders", "bridge_operators", "validator_initial_quote", "initial_balances",
}


def _parse_app_state(value: Any, path: str) -> AppState:
    value = _dict(value, path, APP_FIELDS - {"feeders", "bridge_operators", "initial_balances"},
                  {"feeders", "bridge_operators", "initial_balances"})
    qp = f"{path}.quote_asset"
    q = _dict(value["quote_asset"], qp, {"symbol", "decimals"})
    quote = QuoteAsset(_symbol(q["symbol"], f"{qp}.symbol"), _int(q["decimals"], f"{qp}.decimals", 0, 18))

    markets: list[MarketParams] = []
    for i, item in enumerate(_list(value["markets"], f"{path}.markets")):
        market = parse_market(item, f"{path}.markets[{i}]", quote.decimals)
        if any(m.id == market.id for m in markets):
            raise GenesisError(f"{path}.markets[{i}].id {market.id!r} is listed twice")
        markets.append(market)
    if not markets:
        raise GenesisError(f"{path}.markets must list at least one market")
    market_ids = {m.id for m in markets}

    collateral: list[CollateralAsset] = []
    for i, item in enumerate(_list(value["collateral_assets"], f"{path}.collateral_assets")):
        p = f"{path}.collateral_assets[{i}]"
        item = _dict(item, p, {"symbol", "decimals", "price_market", "weight_ppm"})
        symbol = _symbol(item["symbol"], f"{p}.symbol")
        if symbol == quote.symbol or any(c.symbol == symbol for c in collateral):
            raise GenesisError(f"{p}.symbol {symbol!r} is listed twice")
        if item["price_market"] not in market_ids:
            raise GenesisError(f"{p}.price_market must name a market in markets")
        collateral.append(CollateralAsset(
            symbol, _int(item["decimals"], f"{p}.decimals", 0, 18), item["price_market"],
            _int(item["weight_ppm"], f"{p}.weight_ppm", 0, PPM),
        ))
    symbols = {quote.symbol} | {c.symbol for c in collateral}

    balances: list[InitialBalance] = []
    seen: set[bytes] = set()
    for i, item in enumerate(_list(value.get("initial_balances", []), f"{path}.initial_balances")):
        p = f"{path}.initial_balances[{i}]"
        item = _dict(item, p, {"address", "quote"}, {"collateral"})
        address = _address(item["address"], f"{p}.address")
        if address in seen:
            raise GenesisError(f"{p}.address is listed twice")
        seen.add(address)
        coll = _dict(item.get("collateral", {}), f"{p}.collateral", set(), symbols - {quote.symbol})
        balances.append(InitialBalance(
            address, _int(item["quote"], f"{p}.quote", 0, 10**17),
            tuple(sorted((s, _int(a, f"{p}.collateral.{s}", 0, 10**17)) for s, a in coll.items())),
        ))

    return AppState(
        quote=quote,
        collateral_assets=tuple(collateral),
        markets=tuple(markets),
        risk=parse_risk(value["risk"], f"{path}.risk"),
        min_tx_fee=_int(value["min_tx_fee"], f"{path}.min_tx_fee", 0, 10**12),
        replay_window_blocks=_int(value["replay_window_blocks"], f"{path}.replay_window_blocks", 1, 1_000_000),
        feeders=_parse_members(value.get("feeders", []), f"{path}.feeders"),
        bridge_operators=_parse_members(value.get("bridge_operators", []), f"{path}.bridge_operators"),
        validator_initial_quote=_int(value["validator_initial_quote"], f"{path}.validator_initial_quote", 0, 10**17),
        initial_balances=tuple(balances),
    )


def parse_genesis(document: Any) -> Genesis:
    """Validate a genesis document (the parsed JSON) and return its typed form."""
    doc = _dict(document, "", {"chain_id", "genesis_time_ms", "initial_height", "consensus_params",
                               "validators", "app_state"})
    chain_id = _str(doc["chain_id"], "chain_id", 50)
    if not all(c.isalnum() or c in "-_." for c in chain_id):
        raise GenesisError("chain_id may hold only letters, digits, '-', '_' and '.'")
    initial_height = _int(doc["initial_height"], "initial_height", 1, 1)
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=_int(doc["genesis_time_ms"], "genesis_time_ms", 0),
        initial_height=initial_height,
        consensus_params=_parse_consensus(doc["consensus_params"], "consensus_params"),
        validators=_parse_validators(doc["validators"], "validators"),
        app_state=_parse_app_state(doc["app_state"], "app_state"),
        raw=json.loads(json.dumps(doc)),
    )
    return genesis


def load_genesis(path: str | Path) -> Genesis:
    """Read and validate a genesis file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise GenesisError(f"genesis file {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise GenesisError(f"genesis file {path} is not valid JSON: {exc}") from exc
    return parse_genesis(document)


def validator_entry(name: str, pub_key: bytes, power: int) -> dict[str, Any]:
    """A genesis ``validators`` entry."""
    return {"name": name, "address": format_address(address_of(pub_key)),
            "pub_key": base64.b64encode(pub_key).decode(), "power": power}


__all__ = [
    "AppState",
    "CollateralAsset",
    "ConsensusParams",
    "Genesis",
    "GenesisError",
    "GenesisValidator",
    "MarketParams",
    "Member",
    "QuoteAsset",
    "RiskParams",
    "load_genesis",
    "parse_genesis",
    "parse_market",
    "parse_risk",
    "validator_entry",
]
