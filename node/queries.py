"""The state half of :class:`rpc.api.NodeAPI` over a :class:`state.app.ClearingApp` and its store.

One implementation for every node: :class:`node.api.NodeView` (the real node) and
:class:`localnet.dev_node.DevNode` each hold a :class:`ClearingQueries` and forward to it.

- ``query`` reads raw state with Merkle proofs at any kept version of the store.
- The clearing queries (delegating to :mod:`state.queries`) read the last committed state: a
  ``height`` other than the latest is answered with UNAVAILABLE rather than with other data.
- An address the ledger has never seen is NOT_FOUND for ``account``, ``positions`` and
  ``account_health`` alike (they return None), as for any missing object in ``NodeAPI``; an
  empty position list and a zero health are kept for accounts that exist.

The methods are synchronous inside (dict reads); they run between blocks on the node's trio loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rpc.views import QueryResult
from rpc.errors import invalid_params, unavailable
from state import queries
from state.app import ClearingApp
from state.store import MerkleStore, StoreError, encode_proof

STORE_PATHS = ("/store", "store")


class ClearingQueries:
    """``query`` and the clearing queries of ``NodeAPI`` over one app and its Merkle store."""

    def __init__(self, app: ClearingApp, store: MerkleStore) -> None:
        self.app = app
        self.store = store

    def _latest(self, height: int | None) -> int:
        latest = self.app.last_height
        if height is not None and height != latest:
            raise unavailable(f"clearing queries read the latest state (height {latest}) only; "
                              "use `query` with a height for older raw state")
        return latest

    async def query(self, path: str, data: bytes, height: int | None, prove: bool) -> QueryResult:
        if path not in STORE_PATHS:
            return QueryResult(code=1, log=f"unknown query path {path!r}; use /store")
        version = self.store.version if height is None else height
        try:
            value = self.store.get_at(version, data)
            proof = encode_proof(self.store.prove(data, version)) if prove else None
            root = self.store.root_at(version)
        except (StoreError, ValueError) as exc:  # pruned, unknown or malformed versions
            return QueryResult(code=2, log=str(exc), key=data, height=version)
        return QueryResult(key=data, value=value, height=version,
                           proof=None if proof is None else {"ops": [{"type": "clearchain/merkle", "data": proof}],
                                                             "root": root})

    async def account(self, address: bytes, height: int | None) -> Any:
        self._latest(height)
        return queries.account(self.app, address)

    async def positions(self, address: bytes, height: int | None) -> Any:
        self._latest(height)
        if queries.account(self.app, address) is None:
            return None
        return queries.positions(self.app, address)

    async def assets(self) -> Any:
        return queries.assets(self.app)

    async def markets(self, height: int | None) -> Any:
        self._latest(height)
        return queries.markets(self.app)

    async def market(self, market_id: str, height: int | None) -> Any:
        self._latest(height)
        return queries.market(self.app, market_id)

    async def prices(self, height: int | None) -> Any:
        self._latest(height)
        return queries.prices(self.app)

    async def insurance_fund(self, height: int | None) -> Any:
        self._latest(height)
        return queries.insurance_fund(self.app)

    async def liquidations(self, min_height: int, max_height: int, offset: int, limit: int) -> Any:
        return queries.liquidations(self.app, min_height, max_height, offset, limit)

    async def accounts_at_risk(self, offset: int, limit: int) -> Any:
        try:
            return queries.accounts_at_risk(self.app, offset, limit)
        except ValueError as exc:  # deeper than the exact ranking goes
            raise invalid_params(f"page too deep: {exc}") from None

    async def account_health(self, address: bytes, height: int | None) -> Any:
        self._latest(height)
        if queries.account(self.app, address) is None:
            return None
        return queries.account_health(self.app, address)

    async def check_margin(self, address: bytes, order: Mapping[str, Any]) -> Any:
        return queries.check_margin(self.app, address, dict(order))
