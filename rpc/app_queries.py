"""The state-reading half of ``NodeAPI`` over a :class:`state.app.ClearingApp`, ready to mix in.

A node whose object has ``self.app`` (the ClearingApp) and ``self.store`` (its
:class:`state.store.MerkleStore`) gets ``query`` (with Merkle proofs at any kept version) and the
clearing queries (delegating to :mod:`state.queries`) by inheriting :class:`ClearingQueries`.
The clearing queries read the last committed state: a ``height`` other than the latest is
answered with UNAVAILABLE rather than silently with other data. The methods are synchronous
inside (fast dict reads); they must be called between blocks, which holds on one trio loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rpc.api import QueryResult
from rpc.errors import unavailable
from state import queries
from state.store import StoreError, encode_proof

if TYPE_CHECKING:
    from state.app import ClearingApp
    from state.store import MerkleStore


class ClearingQueries:
    app: ClearingApp
    store: MerkleStore

    def _latest(self, height: int | None) -> int:
        latest = self.app.last_height
        if height is not None and height != latest:
            raise unavailable(f"clearing queries read the latest state (height {latest}) only; "
                              "use `query` with a height for older raw state")
        return latest

    async def query(self, path: str, data: bytes, height: int | None, prove: bool) -> QueryResult:
        if path not in ("/store", "store"):
            return QueryResult(code=1, log=f"unknown query path {path!r}; use /store")
        version = self.store.version if height is None else height
        try:
            value = self.store.get_at(version, data)
            proof = encode_proof(self.store.prove(data, version)) if prove else None
            root = self.store.root_at(version)
        except (StoreError, ValueError) as exc:
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

    async def account_health(self, address: bytes, height: int | None) -> Any:
        self._latest(height)
        if queries.account(self.app, address) is None:
            return None
        return queries.account_health(self.app, address)

    async def check_margin(self, address: bytes, order: Mapping[str, Any]) -> Any:
        return queries.check_margin(self.app, address, dict(order))
