"""A single-process development chain: the real clearing application behind ``NodeAPI``.

No consensus and no p2p: one trio task makes a block every ``block_interval`` seconds from its
mempool and executes it with :class:`state.app.ClearingApp` over an in-memory Merkle store.
It serves three purposes: RPC tests against the real application (codes, events, queries,
proofs), a reference for how a node maps its parts onto :class:`rpc.api.NodeAPI`, and a quick
local chain (``await nursery.start(DevNode(genesis).run)``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from primitives.crypto import PrivateKey
from primitives.hashing import hash_value, merkle_root, sha256
from rpc.views import (
    BlockResults,
    BlockView,
    CommitView,
    MempoolInfo,
    NetInfo,
    NodeStatus,
    QueryResult,
    RoundStateView,
    TxRecord,
    TxResultView,
    ValidatorView,
)
from localnet.demo import patch_genesis
from node.init import DEFAULT_VALIDATOR_POWER, default_genesis_path
from node.api import accounts_of
from node.queries import ClearingQueries
from rpc.events import EventBus, publish_block
from state.app import ClearingApp
from state.app import TxResult
from state.genesis import Genesis, load_genesis, parse_genesis, validator_entry
from state.store import MemoryDB, MerkleStore

CODE_MEMPOOL_FULL = 100
CODE_IN_MEMPOOL = 101


def dev_genesis(key: PrivateKey, genesis_time_ms: int | None = None) -> Genesis:
    """The repository's genesis with ``key`` the one validator and the demo cast funded."""
    document = load_genesis(default_genesis_path()).to_dict()
    document["validators"] = [validator_entry("dev", key.public_key, DEFAULT_VALIDATOR_POWER)]
    if genesis_time_ms is not None:
        document["genesis_time_ms"] = genesis_time_ms
    return parse_genesis(patch_genesis(document))


def _result(app_result: TxResult) -> TxResultView:
    return TxResultView(code=int(app_result.code), log=app_result.log,
                        codespace="clearing" if app_result.code else "", events=tuple(app_result.events),
                        kind=app_result.kind, sender=app_result.sender)


class InMemoryBlocks:
    """The block half of ``NodeAPI`` over in-memory lists (``blocks``, ``results``, 1-based
    heights): the dev node's block store (the RPC tests' ``FakeNode`` reuses it)."""

    blocks: list[BlockView]
    results: list[BlockResults]

    def _at(self, height: int | None) -> int | None:
        latest = len(self.blocks)
        if height is None:
            return latest or None
        return height if 1 <= height <= latest else None

    async def block(self, height: int | None) -> BlockView | None:
        at = self._at(height)
        return None if at is None else self.blocks[at - 1]

    async def consensus_state(self) -> RoundStateView:
        """No consensus: the next height, waiting for its block."""
        return RoundStateView(len(self.blocks) + 1, 0, "NewHeight")

    async def block_by_hash(self, block_hash: bytes) -> BlockView | None:
        return next((b for b in self.blocks if b.hash == block_hash), None)

    async def block_results(self, height: int | None) -> BlockResults | None:
        at = self._at(height)
        return None if at is None else self.results[at - 1]

    async def commit(self, height: int | None) -> CommitView | None:
        at = self._at(height)
        if at is None:
            return None
        found = self.blocks[at - 1]
        return CommitView(at, found.header, {"height": at, "round": 0, "signatures": []}, found.hash)


class DevNode(InMemoryBlocks):
    """``NodeAPI`` over a ClearingApp; blocks on a timer (``run``) or on demand (``make_block``)."""

    def __init__(self, genesis: Genesis, validator_key: PrivateKey | None = None,
                 block_interval: float = 0.2, max_block_txs: int = 5000, max_mempool: int = 50_000) -> None:
        self.genesis_doc = genesis
        self.events = EventBus()
        self.store = MerkleStore(MemoryDB())
        self.app = ClearingApp(self.store, genesis)
        self.app.init_chain()
        self.queries = ClearingQueries(self.app, self.store)
        self.validator_key = validator_key or PrivateKey(b"\x42" * 32)
        self.block_interval = block_interval
        self.max_block_txs = max_block_txs
        self.max_mempool = max_mempool
        self.blocks: list[BlockView] = []
        self.results: list[BlockResults] = []
        self.records: dict[bytes, TxRecord] = {}
        self.pending: dict[bytes, bytes] = {}  # hash -> tx, in arrival order
        self.start_ms = int(time.time() * 1000)

    # --- block production ---------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.block_interval)
            self.make_block()

    def make_block(self) -> BlockView:
        app = self.app
        height = app.last_height + 1
        hashes = list(self.pending)[: self.max_block_txs]
        txs = [self.pending.pop(h) for h in hashes]
        time_ms = max(int(time.time() * 1000), self.genesis_doc.genesis_time_ms + height)
        previous = self.blocks[-1] if self.blocks else None
        header = {
            "chain_id": self.genesis_doc.chain_id, "height": height, "time": time_ms * 1_000_000,
            "last_block_hash": previous.hash if previous else b"", "data_hash": merkle_root(hashes),
            "app_hash": app.app_hash, "proposer": self.validator_key.address,
        }
        begin_events = app.begin_block(height, time_ms, self.validator_key.address)
        results, records = [], []
        for index, (tx_hash, tx) in enumerate(zip(hashes, txs)):
            outcome = app.deliver_tx(tx)
            result = _result(outcome)
            record = TxRecord(tx_hash, height, index, tx, result, outcome.kind,
                              accounts_of(outcome.events, outcome.sender))
            results.append(result)
            records.append(record)
        end = app.end_block()
        app_hash = app.commit()
        block = BlockView(height, hash_value(header), header, tuple(txs),
                          {"height": height - 1, "signatures": []}, size=sum(map(len, txs)))
        block_results = BlockResults(height, tuple(results), tuple(begin_events), tuple(end.events),
                                     tuple({"pub_key": u.pub_key, "power": u.power} for u in end.validator_updates),
                                     app_hash)
        self.blocks.append(block)
        self.results.append(block_results)
        for record in records:
            self.records[record.hash] = record
        self._recheck()
        publish_block(self.events, block, block_results, records)
        return block

    def _recheck(self) -> None:
        for tx_hash, tx in list(self.pending.items()):
            if self.app.check_tx(tx).code != 0:
                del self.pending[tx_hash]

    # --- NodeAPI: chain ------------------------------------------------------------------------

    async def status(self) -> NodeStatus:
        last = self.blocks[-1] if self.blocks else None
        return NodeStatus(
            node_id="dev", moniker="dev-node", chain_id=self.genesis_doc.chain_id, version="0.1.0-dev",
            listen_addr="", rpc_addr="", latest_block_height=len(self.blocks),
            latest_block_hash=last.hash if last else b"", latest_app_hash=self.app.app_hash,
            latest_block_time_ns=int(last.header["time"]) if last else 0,
            earliest_block_height=1 if last else 0, catching_up=False,
            validator_address=self.validator_key.address, validator_pub_key=self.validator_key.public_key,
            validator_voting_power=sum(v.power for v in self.genesis_doc.validators),
        )

    async def net_info(self) -> NetInfo:
        return NetInfo(False, [])

    async def genesis(self) -> Mapping[str, Any]:
        return self.genesis_doc.to_dict()

    async def validators(self, height: int | None) -> tuple[int, Sequence[ValidatorView]]:
        return (height or len(self.blocks),
                [ValidatorView(v.address, v.pub_key, v.power) for v in self.genesis_doc.validators])

    async def tx(self, tx_hash: bytes) -> TxRecord | None:
        return self.records.get(tx_hash)

    # --- NodeAPI: mempool ----------------------------------------------------------------------

    async def check_tx(self, tx: bytes) -> TxResultView:
        return _result(self.app.check_tx(tx))

    async def broadcast_tx(self, tx: bytes) -> TxResultView:
        tx_hash = sha256(tx)
        if tx_hash in self.pending:
            return TxResultView(CODE_IN_MEMPOOL, "tx is already in the mempool", "mempool")
        if len(self.pending) >= self.max_mempool:
            return TxResultView(CODE_MEMPOOL_FULL, f"mempool is full ({self.max_mempool} txs)", "mempool")
        result = _result(self.app.check_tx(tx))
        if result.code == 0:
            self.pending[tx_hash] = tx
        return result

    async def mempool(self, limit: int) -> MempoolInfo:
        txs = list(self.pending.values())
        return MempoolInfo(len(txs), sum(map(len, txs)), tuple(txs[:limit]))

    # --- NodeAPI: state (the node's own query code) ---------------------------------------------

    async def query(self, path: str, data: bytes, height: int | None, prove: bool) -> QueryResult:
        return await self.queries.query(path, data, height, prove)

    async def account(self, address: bytes, height: int | None) -> Any:
        return await self.queries.account(address, height)

    async def positions(self, address: bytes, height: int | None) -> Any:
        return await self.queries.positions(address, height)

    async def assets(self) -> Any:
        return await self.queries.assets()

    async def markets(self, height: int | None) -> Any:
        return await self.queries.markets(height)

    async def market(self, market_id: str, height: int | None) -> Any:
        return await self.queries.market(market_id, height)

    async def prices(self, height: int | None) -> Any:
        return await self.queries.prices(height)

    async def insurance_fund(self, height: int | None) -> Any:
        return await self.queries.insurance_fund(height)

    async def liquidations(self, min_height: int, max_height: int, offset: int, limit: int) -> Any:
        return await self.queries.liquidations(min_height, max_height, offset, limit)

    async def accounts_at_risk(self, offset: int, limit: int) -> Any:
        return await self.queries.accounts_at_risk(offset, limit)

    async def account_health(self, address: bytes, height: int | None) -> Any:
        return await self.queries.account_health(address, height)

    async def check_margin(self, address: bytes, order: Mapping[str, Any]) -> Any:
        return await self.queries.check_margin(address, order)
