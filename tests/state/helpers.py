"""A small chain driver over ClearingApp for tests: keys, a genesis, blocks of txs."""

from __future__ import annotations

import hashlib
from typing import Any

from primitives.crypto import PrivateKey, Signer, format_address
from state import builders
from state.app import ClearingApp, TxResult
from state.genesis import Genesis, load_genesis, validator_entry
from state.kv import MemoryStore
from state.queries import invariants

GENESIS_PATH = __file__.rsplit("/tests/", 1)[0] + "/genesis.json"
USDC = 10**6


def signer(name: str) -> Signer:
    return Signer(PrivateKey(hashlib.sha256(name.encode()).digest()))


def make_genesis(validators: int = 4, balances: dict[str, int] | None = None, **overrides: Any) -> Genesis:
    """The shipped genesis with deterministic validators, funded traders and overrides of app_state/risk."""
    base = load_genesis(GENESIS_PATH)
    doc = base.with_validators(
        [validator_entry(f"v{i}", signer(f"v{i}").public_key, 10) for i in range(validators)]
    ).to_dict()
    app_state = doc["app_state"]
    for name, amount in (balances or {}).items():
        app_state["initial_balances"].append({"address": format_address(signer(name).address), "quote": amount})
    for key, value in overrides.items():
        if key in app_state["risk"]:
            app_state["risk"][key] = value
        elif key.startswith("market_"):
            for market in app_state["markets"]:
                market[key[len("market_"):]] = value
        else:
            app_state[key] = value
    from state.genesis import parse_genesis

    return parse_genesis(doc)


class Chain:
    """Drives an app block by block, checking invariants after every block."""

    def __init__(self, genesis: Genesis, check: bool = True, store: Any = None) -> None:
        self.genesis = genesis
        self.store = MemoryStore() if store is None else store
        self.app = ClearingApp(self.store, genesis)
        self.app.init_chain()
        self.time_ms = genesis.genesis_time_ms
        self.check = check
        self.hashes: list[bytes] = []
        self.end_events: list[dict[str, Any]] = []
        self._nonce = 0

    def nonce(self) -> int:
        """Deterministic nonces, so that independent runs build identical txs."""
        self._nonce += 1
        return self._nonce

    @property
    def height(self) -> int:
        return self.app.last_height

    def block(self, txs: list[bytes] = (), dt_ms: int = 1000, evidence=None) -> list[TxResult]:
        self.time_ms += dt_ms
        app = self.app
        app.begin_block(self.height + 1, self.time_ms, b"", evidence or [])
        results = [app.deliver_tx(tx) for tx in txs]
        end = app.end_block()
        self.end_events = end.events
        self.last_end = end
        self.hashes.append(app.commit())
        if self.check:
            problems = invariants(app)
            assert not problems, problems
        return results

    def one(self, tx: bytes) -> TxResult:
        return self.block([tx])[0]

    def expiry(self, ahead: int = 100) -> int:
        return self.height + ahead

    def fee(self) -> int:
        return self.app.ledger.globals.min_tx_fee

    # --- builders bound to this chain
    def cid(self) -> str:
        return self.genesis.chain_id

    def order(self, who: Signer, market: str, side: str, size: int, price: int, order_id: int, expiry: int | None = None):
        return builders.build_order(who, self.cid(), market=market, side=side, size=size, price=price,
                                    order_id=order_id, expiry=500 if expiry is None else expiry)

    def trade(self, venue: Signer, maker, taker, size: int, price: int, **kw) -> bytes:
        return builders.build_trade_tx(venue, self.cid(), maker, taker, size, price,
                                       fee=kw.pop("fee", self.fee()), expiry=kw.pop("expiry", self.expiry()),
                                       nonce=kw.pop("nonce", self.nonce()), **kw)

    def prices(self, prices: dict[str, int], feeders: int = 4) -> list[bytes]:
        return [builders.build_oracle_tx(signer(f"v{i}"), self.cid(), prices, fee=self.fee(), expiry=self.expiry(),
                                           nonce=self.nonce())
                for i in range(feeders)]
