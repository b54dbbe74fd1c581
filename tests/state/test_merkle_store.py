"""The clearing app on the authenticated store (state.store.MerkleStore over MemoryDB)."""

from __future__ import annotations

import pytest

import tests.state.test_crash as crash
from state import queries
from state.app import ClearingApp
from tests.state.helpers import Chain

store_module = pytest.importorskip("state.store")


def crash_on(store, reopen_at: int | None) -> Chain:
    original = crash.Chain
    crash.Chain = lambda genesis: original(genesis, store=store)  # type: ignore[assignment]
    try:
        chain = crash.setup_chain()
    finally:
        crash.Chain = original
    chain.block(chain.prices({crash.BTC: 495_000}))
    for number in range(5):
        if number == reopen_at:
            chain.app = ClearingApp(chain.store, chain.genesis)
        chain.block(chain.prices({crash.BTC: 300_000}))
    return chain


def test_crash_scenario_on_the_merkle_store_reopens_and_replays_identically() -> None:
    straight = crash_on(store_module.MerkleStore(store_module.MemoryDB()), None)
    reopened = crash_on(store_module.MerkleStore(store_module.MemoryDB()), 2)
    assert straight.hashes == reopened.hashes
    kinds = {item["type"] for item in queries.liquidations(reopened.app, 0, 100, 0, 1000)["items"]}
    assert {"liquidation", "insurance_cover", "deleverage"} <= kinds
    assert reopened.app.app_hash == reopened.store.root_hash()
