"""The working state of the clearing application: decoded objects cached over the store.

Two views: the *committed* objects (what ``check_tx`` and queries read) and the *block* view
(copies made on first write during a block). Only dirty keys are encoded and written at commit;
the committed caches then take the block's objects. Opening a ledger on a store that already
has a committed version loads every value back and rebuilds the in-memory indexes (open-interest
holders, expiry buckets), so a restarted node executes exactly like one that never stopped.
"""

from __future__ import annotations

from typing import Any

from primitives.codec import decode, encode
from state.genesis import Genesis
from state.kv import StateStore, WriteBatch
from state.model import (
    GLOBALS_KEY,
    Account,
    Globals,
    Market,
    account_key,
    backstop_key,
    market_key,
    prefix_end,
    report_key,
)
from state.risk import CollateralPricing


class Ledger:
    def __init__(self, store: StateStore, genesis: Genesis) -> None:
        self.store = store
        self.genesis = genesis
        self.quote_symbol = genesis.app_state.quote.symbol
        self.quote_decimals = genesis.app_state.quote.decimals
        self.accounts: dict[bytes, Account] = {}  # committed
        self.block_accounts: dict[bytes, Account] = {}  # written in the current block
        self.markets: dict[str, Market] = {}  # committed
        self.globals: Globals | None = None  # committed
        self.w_markets: dict[str, Market] = {}  # block view (all markets, copied at begin_block)
        self.w_globals: Globals | None = None
        self._market_bytes: dict[str, bytes] = {}
        self._globals_bytes = b""
        self.raw: dict[bytes, Any] = {}  # pending writes of other keys: values, encoded at commit
        self.reports: dict[str, dict[bytes, tuple[int, int]]] = {}  # market -> feeder -> (price, time)
        self.backstops: dict[str, dict[bytes, list[int]]] = {}  # market -> provider -> [size, disc]
        self.holders: dict[str, set[bytes]] = {}  # market -> addresses with a position
        self.pricing: dict[str, CollateralPricing] = {}
        self.events: list[tuple[int, dict[str, Any]]] = []  # waterfall events of this block

    # --- opening -------------------------------------------------------------------------

    def set_pricing(self) -> None:
        exponents = {m.params.id: m.params.price_exponent for m in self.markets.values()}
        self.pricing = {
            c.symbol: CollateralPricing(c, exponents[c.price_market], self.quote_decimals)
            for c in self.genesis.app_state.collateral_assets
        }

    def load(self) -> None:
        """Read every committed value back into the caches (an app opened on an existing store)."""
        self.globals = Globals.decode(self._must(GLOBALS_KEY))
        self._globals_bytes = self._must(GLOBALS_KEY)
        for key, value in self.store.iterate(b"m/", prefix_end(b"m/")):
            market = Market.decode(value, self.quote_decimals)
            self.markets[market.params.id] = market
            self._market_bytes[market.params.id] = value
            self.holders[market.params.id] = set()
        for key, value in self.store.iterate(b"a/", prefix_end(b"a/")):
            address = key[2:]
            account = Account.decode(value)
            self.accounts[address] = account
            for market_id in account.positions:
                self.holders[market_id].add(address)
        for key, value in self.store.iterate(b"o/", prefix_end(b"o/")):
            market_id, feeder = key[2:-21].decode(), key[-20:]
            price, time_ms = decode(value)
            self.reports.setdefault(market_id, {})[feeder] = (price, time_ms)
        for key, value in self.store.iterate(b"b/", prefix_end(b"b/")):
            market_id, provider = key[2:-21].decode(), key[-20:]
            self.backstops.setdefault(market_id, {})[provider] = list(decode(value))
        self.set_pricing()
        self.w_markets = {m: market.copy() for m, market in self.markets.items()}
        self.w_globals = self.globals.copy()

    def _must(self, key: bytes) -> bytes:
        value = self.store.get(key)
        if value is None:
            raise RuntimeError(f"store is missing {key!r}: not a clearchain state")
        return value

    # --- block view ----------------------------------------------------------------------

    def start_block(self) -> None:
        self.w_markets = {m: market.copy() for m, market in self.markets.items()}
        assert self.globals is not None
        self.w_globals = self.globals.copy()
        self.events = []

    @property
    def g(self) -> Globals:
        assert self.w_globals is not None
        return self.w_globals

    def account(self, address: bytes) -> Account | None:
        """Block view, read only."""
        account = self.block_accounts.get(address)
        return account if account is not None else self.accounts.get(address)

    def account_mut(self, address: bytes) -> Account:
        """Block view for writing (copied from the committed object on first write)."""
        account = self.block_accounts.get(address)
        if account is None:
            committed = self.accounts.get(address)
            account = committed.copy() if committed is not None else Account()
            self.block_accounts[address] = account
        return account

    def get_value(self, key: bytes) -> Any:
        """The decoded value under ``key`` in the block view (None when absent).

        Values written during the block stay decoded until commit encodes them, so a key written
        and read again in one block (order fills, deposits) is never encoded twice.
        """
        if key in self.raw:
            return self.raw[key]
        data = self.store.get(key)
        return None if data is None else decode(data)

    def has(self, key: bytes) -> bool:
        if key in self.raw:
            return self.raw[key] is not None
        return self.store.get(key) is not None

    def put_raw(self, key: bytes, value: Any) -> None:
        """Stage ``value`` (not to be mutated afterwards) for ``key``; encoded at commit."""
        if value is None:
            raise ValueError("use delete_raw")
        self.raw[key] = value

    def delete_raw(self, key: bytes) -> None:
        self.raw[key] = None

    def set_report(self, market_id: str, feeder: bytes, price: int, time_ms: int) -> None:
        self.reports.setdefault(market_id, {})[feeder] = (price, time_ms)
        self.put_raw(report_key(market_id, feeder), [price, time_ms])

    def set_backstop(self, market_id: str, provider: bytes, size: int, discount: int) -> None:
        book = self.backstops.setdefault(market_id, {})
        if size == 0:
            book.pop(provider, None)
            self.delete_raw(backstop_key(market_id, provider))
        else:
            book[provider] = [size, discount]
            self.put_raw(backstop_key(market_id, provider), [size, discount])

    def track_position(self, address: bytes, market_id: str, had: bool, has: bool) -> None:
        if had and not has:
            self.holders[market_id].discard(address)
        elif has and not had:
            self.holders.setdefault(market_id, set()).add(address)

    # --- commit --------------------------------------------------------------------------

    def commit(self, batch: WriteBatch | None) -> bytes:
        store = self.store
        for address in sorted(self.block_accounts):
            account = self.block_accounts[address]
            if account.is_empty():
                store.delete(account_key(address))
                self.accounts.pop(address, None)
            else:
                store.set(account_key(address), account.encode())
                self.accounts[address] = account
        self.block_accounts = {}
        for market_id in sorted(self.w_markets):
            market = self.w_markets[market_id]
            data = market.encode()
            if data != self._market_bytes.get(market_id):
                store.set(market_key(market_id), data)
                self._market_bytes[market_id] = data
            self.markets[market_id] = market
        assert self.w_globals is not None
        data = self.w_globals.encode()
        if data != self._globals_bytes:
            store.set(GLOBALS_KEY, data)
            self._globals_bytes = data
        self.globals = self.w_globals
        for key in sorted(self.raw):
            value = self.raw[key]
            if value is None:
                store.delete(key)
            else:
                store.set(key, encode(value))
        self.raw = {}
        root = store.commit(batch)
        self.start_block()
        return root
