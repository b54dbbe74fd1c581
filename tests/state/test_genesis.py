"""The shipped genesis loads; every bad field is named with its reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from state.app import ClearingApp
from state.genesis import GenesisError, load_genesis, parse_genesis, validator_entry
from state.kv import MemoryStore
from tests.state.helpers import GENESIS_PATH, make_genesis, signer


def shipped() -> dict:
    return json.loads(Path(GENESIS_PATH).read_text())


def test_shipped_genesis_loads_with_realistic_values() -> None:
    g = load_genesis(GENESIS_PATH)
    assert g.validators == () and g.initial_height == 1
    assert [m.id for m in g.app_state.markets] == ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    assert g.app_state.quote.symbol == "USDC" and g.app_state.quote.decimals == 6
    assert {c.symbol for c in g.app_state.collateral_assets} == {"BTC", "ETH"}
    assert all(m.maintenance_margin_ppm < m.initial_margin_ppm for m in g.app_state.markets)
    assert g.consensus_params.timeouts.propose_ms < 1000
    assert g.to_dict() == shipped()


def test_units_are_derived_from_the_exponents_and_asset_decimals() -> None:
    """BTC-PERP: size 1 = 10**-5 BTC, price 1 = 10**-1 USDC per BTC (genesis.json), so sizes have 5
    places and prices 1; assets keep their stated decimals, quote first."""
    app_state = load_genesis(GENESIS_PATH).app_state
    btc = app_state.markets[0]
    assert (btc.base_asset, btc.size_decimals, btc.price_decimals) == ("BTC", 5, 1)
    assert app_state.asset_decimals() == {"USDC": 6, "BTC": 8, "ETH": 9}
    assert list(app_state.asset_decimals())[0] == "USDC"


def test_with_validators_fills_feeders_and_operators() -> None:
    g = load_genesis(GENESIS_PATH).with_validators([validator_entry("a", signer("a").public_key, 7)])
    assert [v.power for v in g.validators] == [7]
    assert [(m.address, m.power) for m in g.feeders] == [(signer("a").address, 7)]
    assert g.bridge_operators == g.feeders
    assert parse_genesis(g.to_dict()) == g


@pytest.mark.parametrize("path, value, message", [
    ("app_state.markets.1.maintenance_margin_ppm", 60000,
     "app_state.markets[1].maintenance_margin_ppm must be lower than initial_margin_ppm"),
    ("chain_id", "", "chain_id must be a non-empty string"),
    ("chain_id", "bad chain!", "chain_id may hold only"),
    ("genesis_time_ms", "soon", "genesis_time_ms must be an integer"),
    ("initial_height", 2, "initial_height must be at most 1"),
    ("consensus_params.block.max_bytes", 0, "consensus_params.block.max_bytes must be at least 1024"),
    ("consensus_params.timeouts.commit_ms", 1.5, "consensus_params.timeouts.commit_ms must be an integer"),
    ("app_state.markets.0.oi_upper_cap", 1, "app_state.markets[0].oi_upper_cap must be greater than oi_lower_cap"),
    ("app_state.markets.2.status", "open", "app_state.markets[2].status must be one of"),
    ("app_state.markets.0.initial_price", 500005, "app_state.markets[0].initial_price must be a multiple"),
    ("app_state.markets.0.price_exponent", -9, "app_state.markets[0].price_exponent must make"),
    ("app_state.quote_asset.symbol", "US DC", "app_state.quote_asset.symbol must be a symbol: a letter"),
    ("app_state.collateral_assets.0.symbol", "1INCH", "app_state.collateral_assets[0].symbol must be a symbol"),
    ("app_state.markets.1.base_asset", "ETH.e", "app_state.markets[1].base_asset must be a symbol"),
    ("app_state.collateral_assets.0.price_market", "DOGE-PERP",
     "app_state.collateral_assets[0].price_market must name a market"),
    ("app_state.collateral_assets.1.weight_ppm", 2_000_000, "app_state.collateral_assets[1].weight_ppm must be at most"),
    ("app_state.risk.max_price_move_ppm", 0, "app_state.risk.max_price_move_ppm must be at least 1"),
    ("app_state.min_tx_fee", -1, "app_state.min_tx_fee must be at least 0"),
    ("app_state.feeders", [{"address": "nope", "power": 1}], "app_state.feeders[0].address is not a valid address"),
    ("validators", [{"name": "x", "pub_key": "AAAA", "power": 1}], "validators[0].pub_key must be a base64"),
    ("app_state.initial_balances", [{"address": "clr1x", "quote": 1}],
     "app_state.initial_balances[0].address is not a valid address"),
])
def test_bad_field_is_named(path: str, value, message: str) -> None:
    doc = shipped()
    target = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[parts[-1]] = value
    with pytest.raises(GenesisError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        parse_genesis(doc)


def test_missing_and_unknown_fields_are_named(tmp_path) -> None:
    doc = shipped()
    del doc["app_state"]["risk"]["liquidation_fee_ppm"]
    with pytest.raises(GenesisError, match=r"^app_state.risk.liquidation_fee_ppm is missing"):
        parse_genesis(doc)
    doc = shipped()
    doc["app_state"]["markets"][0]["colour"] = "red"
    with pytest.raises(GenesisError, match=r"^app_state.markets\[0\].colour is not a known field"):
        parse_genesis(doc)
    with pytest.raises(GenesisError, match="does not exist"):
        load_genesis(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(GenesisError, match="not valid JSON"):
        load_genesis(tmp_path / "bad.json")


def test_init_chain_is_idempotent_and_reopening_continues_identically() -> None:
    genesis = make_genesis()
    store = MemoryStore()
    app = ClearingApp(store, genesis)
    root = app.init_chain()
    assert store.version == 0 and app.init_chain() == root
    assert ClearingApp(store, genesis).init_chain() == root
    other = ClearingApp(MemoryStore(), copy.deepcopy(genesis))
    assert other.init_chain() == root


def test_with_validators_accepts_typed_validators() -> None:
    from state.genesis import GenesisValidator

    g = load_genesis(GENESIS_PATH).with_validators([GenesisValidator("b", signer("b").public_key, 3)])
    assert g.validators == (GenesisValidator("b", signer("b").public_key, 3),)
    assert g.to_dict()["validators"][0]["address"].startswith("clr1")
