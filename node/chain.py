"""The committed chain of one node: block store + state store + application on ONE LevelDB.

This is the execution pipeline every committed block takes, whether consensus decided it or
block sync fetched it (docs/architecture.md, "One block's way")::

    check the header against our state (app hash, results hash, validator set)
    -> begin_block, deliver_tx for each tx, end_block            (the ClearingApp)
    -> block, commit, results, state changes, validator sets    (ONE synced write batch)

A header whose ``app_hash`` differs from ours means this node computed a different state than
the +2/3 that signed the block: :class:`AppHashMismatch` stops the node (never continue on a
forked state). Validator sets follow CometBFT: updates returned by ``end_block`` of height h take
effect at h + 2, and each height's set is stored so commits of any height can be verified
(block sync, light clients, RPC ``validators``).

Keys of our own, beside the block store's ``b/`` and the state store's ``s/`` prefixes::

    n/v height(8)   validator set that signs ``height`` (ValidatorSet.to_obj)
    n/r height(8)   {begin, end, updates, results_hash, app_hash} of block ``height``
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from primitives.codec import decode, encode
from primitives.hashing import EMPTY_HASH, merkle_root, sha256
from consensus.types import Block, Commit, Header
from consensus.validators import Validator, ValidatorSet, ValidatorSetError
from node.blockstore import BlockStore, CountingBatch
from node.event_log_index import EventLogIndex
from node.storage_failure import StorageFailure
from state.app import ClearingApp, EndBlockResult
from state.app import TxResult
from state.genesis import Genesis
from state.store import MerkleStore
from state.store.merkle import DEFAULT_PREFIX as STATE_PREFIX

log = logging.getLogger("clearchain.chain")

_VALSET = b"n/v"
_RESULTS = b"n/r"


class ChainHalted(Exception):
    """The node must stop: continuing would diverge from the network (or the store is bad)."""


class AppHashMismatch(ChainHalted):
    def __init__(self, height: int, ours: bytes, theirs: bytes, what: str = "app_hash") -> None:
        self.height, self.ours, self.theirs = height, ours, theirs
        super().__init__(
            f"CONSENSUS FAILURE: block {height} carries {what} {theirs.hex()} but this node "
            f"computed {ours.hex()} for the state before it; halting (this node's state differs "
            "from the validators that signed the block)"
        )


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


def _tx_hashes_of(block_bytes: bytes) -> list[bytes]:
    """The tx hashes of a stored block (to delete their index entries when it is pruned)."""
    return [sha256(tx) for tx in Block.decode(block_bytes, max_bytes=len(block_bytes)).txs]


def result_to_obj(result: TxResult) -> dict[str, Any]:
    return {"code": int(result.code), "log": result.log, "events": list(result.events),
            "fee": result.priority, "sender": result.sender, "kind": result.kind}


def results_hash(results: Sequence[TxResult]) -> bytes:
    """``last_results_hash`` of the next header: each tx's result code.

    Logs stay out (as CometBFT leaves them out): they carry library and interpreter text
    (msgpack's error messages, ``repr`` of user strings) that may differ between honest nodes.
    """
    return merkle_root([encode([int(r.code)]) for r in results])


@dataclass
class ExecutedBlock:
    """What executing one block produced (for events, RPC and the mempool)."""

    block: Block
    commit: Commit
    results: list[TxResult]
    begin_events: list[dict[str, Any]]
    end: EndBlockResult
    app_hash: bytes
    tx_hashes: list[bytes] = field(default_factory=list)
    exec_s: float = 0.0
    """Seconds in begin_block, the txs and end_block."""
    commit_s: float = 0.0
    """Seconds in the state commit and the block's synced write."""
    bytes_written: int = 0
    block_bytes: int = 0
    """Size of the encoded block."""
    """Bytes (keys and values) the state commit staged; 0 unless ``Chain.count_writes``."""

    @property
    def height(self) -> int:
        return self.block.height


def open_state_store(db: Any, keep_recent: int) -> MerkleStore:
    """The state store of a node keeping ``keep_recent`` versions below the latest (0: all)."""
    try:
        return MerkleStore(db, keep_versions=keep_recent + 1 if keep_recent else 0)
    except ValueError as exc:  # the store's value layout fixes how many versions it can keep
        raise ChainHalted(f"storage.keep_recent = {keep_recent} does not fit this node's store "
                          f"({exc}): set it back, or start from an empty home and sync") from exc


def is_empty(db: Any) -> bool:
    """Nothing stored yet: no block and no state (a home state sync may start)."""
    if BlockStore(db).latest_height() >= 0:
        return False
    with db.iterator(prefix=STATE_PREFIX, include_value=False) as keys:
        return next(iter(keys), None) is None


def stage_restored_base(db: Any, batch: Any, *, header: Header, commit: Commit, app_hash: bytes,
                        results_hash: bytes, validators: dict[int, ValidatorSet]) -> None:
    """Stage what the chain needs to go on from a restored snapshot of height ``header.height``
    (its state is staged in ``batch`` too): the block store's base (latest = that height,
    its commit; earliest = the next), the results hash the next header carries and the
    validator sets of that height and the two after it (all verified by the light client)."""
    height = header.height
    BlockStore(db).stage_base(batch, height, header.hash(), encode(commit.to_obj()), app_hash)
    meta = {"begin": [], "end": [], "updates": [], "results_hash": results_hash,
            "time_ms": header.time_ms}
    batch.put(_RESULTS + _h8(height), encode(meta))
    for at, valset in validators.items():
        batch.put(_VALSET + _h8(at), encode(valset.to_obj()))


class Chain:
    def __init__(self, db: Any, genesis: Genesis, *, keep_recent: int = 0,
                 keep_blocks: int = 0, store_path: str = "the node's store") -> None:
        self.db = db
        self.store_path = store_path
        """Where ``db`` lives, for the message of a failed write."""
        self.failed: StorageFailure | None = None
        """Set when a block's write failed: the app's memory is then ahead of the store, so
        nothing may execute on it again (a restart reopens the store)."""
        self.keep_blocks = keep_blocks
        """Blocks kept below and including the latest (0: all); older ones are pruned in the
        batch of each new block (``storage.keep_blocks``)."""
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.blocks = BlockStore(db)
        self.count_writes = False
        """Count the bytes of each block's write batch (metrics on: ``CountingBatch``)."""
        self.store = open_state_store(db, keep_recent)
        self.app = ClearingApp(self.store, genesis)
        if self.store.version < 0:
            root = self.app.init_chain()
            log.info("init_chain: genesis state written, app hash %s", root.hex())
        self.event_log = EventLogIndex(db, self.store.iterate)
        """The waterfall event log numbered across blocks (``liquidations`` in O(page))."""
        indexed = self.event_log.build_if_missing()
        if indexed:
            log.info("event log index built for %d logged events", indexed)
        if self.db.get(_VALSET + _h8(1)) is None:
            first = self.genesis_validators()
            batch = self.db.write_batch(sync=True)
            batch.put(_VALSET + _h8(1), encode(first.to_obj()))
            batch.put(_VALSET + _h8(2), encode(first.advance().to_obj()))
            batch.write()
        stored = max(self.blocks.latest_height(), 0)
        if self.store.version != stored:
            raise ChainHalted(
                f"the state store is at version {self.store.version} but the block store at "
                f"height {stored}: the data directory is inconsistent"
            )
        self._valsets: dict[int, ValidatorSet] = {}
        # The app now holds every account as a long-lived object: move them out of the cyclic
        # collector's reach, or its full passes over millions of accounts stall end_block
        # (bench/clearing.py measured 3x on the 1%-at-risk figure without this).
        gc.collect()
        gc.freeze()

    def genesis_validators(self) -> ValidatorSet:
        if not self.genesis.validators:
            raise ChainHalted("the genesis lists no validators")
        return ValidatorSet.from_genesis(
            Validator.from_public_key(v.pub_key, v.power) for v in self.genesis.validators)

    # --- reading ------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        """Latest committed height (0 before the first block)."""
        return max(self.blocks.latest_height(), 0)

    @property
    def earliest_height(self) -> int:
        """Lowest height whose block is stored (0 before the first block)."""
        return self.blocks.earliest_height()

    @property
    def app_hash(self) -> bytes:
        return self.app.app_hash

    def validators(self, height: int) -> ValidatorSet | None:
        """The set that signs ``height`` (known up to the latest height + 2)."""
        cached = self._valsets.get(height)
        if cached is not None:
            return cached
        data = self.db.get(_VALSET + _h8(height)) if height >= 1 else None
        if data is None:
            return None
        valset = ValidatorSet.from_obj(decode(data))
        if len(self._valsets) > 64:
            self._valsets.clear()
        self._valsets[height] = valset
        return valset

    def block(self, height: int) -> Block | None:
        data = self.blocks.block(height)
        return None if data is None else Block.decode(data, max_bytes=len(data))

    def commit(self, height: int) -> Commit | None:
        data = self.blocks.commit(height)
        return None if data is None else Commit.from_obj(decode(data))

    def block_meta(self, height: int) -> dict[str, Any] | None:
        data = self.db.get(_RESULTS + _h8(height))
        return None if data is None else decode(data)

    def results_hash(self, height: int) -> bytes:
        """Results hash of block ``height`` (EMPTY_HASH before the first block)."""
        if height <= 0:
            return EMPTY_HASH
        meta = self.block_meta(height)
        if meta is None:
            raise ChainHalted(f"results of block {height} are missing from the store")
        return meta["results_hash"]

    def tx_results(self, height: int) -> list[dict[str, Any]] | None:
        raw = self.blocks.results(height)
        return None if raw is None else [decode(r) for r in raw]

    # --- the pipeline -------------------------------------------------------------------------

    def check_header(self, block: Block) -> None:
        """The checks that, failing on a block +2/3 signed, mean OUR state is wrong: halt."""
        height = block.height
        if block.header.app_hash != self.app_hash:
            raise AppHashMismatch(height, self.app_hash, block.header.app_hash)
        ours = self.results_hash(height - 1)
        if block.header.last_results_hash != ours:
            raise AppHashMismatch(height, ours, block.header.last_results_hash, "last_results_hash")

    def execute(self, block: Block, commit: Commit) -> ExecutedBlock:
        """Execute and durably store the next block with its commit certificate.

        Raises :class:`StorageFailure` when the state commit or the block's write batch fails
        (a full disk): the store keeps the previous height whole (one batch), but the app's
        memory has moved on, so this chain refuses every later block with the same error.
        """
        if self.failed is not None:
            raise self.failed
        height = block.height
        if height != self.height + 1:
            raise ChainHalted(f"asked to execute block {height} on top of height {self.height}")
        self.check_header(block)
        app = self.app
        header = block.header
        evidence = [(ev.validator_address, ev.height) for ev in block.evidence]
        started = time.perf_counter()
        begin_events = app.begin_block(height, header.time_ms, header.proposer_address, evidence)
        results = [app.deliver_tx(tx) for tx in block.txs]
        end = app.end_block()
        executed_at = time.perf_counter()
        following = self.validators(height + 1)
        if following is None:
            raise ChainHalted(f"the validator set of height {height + 1} is missing")
        try:
            changes = [Validator.from_public_key(u.pub_key, u.power) for u in end.validator_updates]
            after = (following.apply_updates(changes) if changes else following).advance()
        except ValidatorSetError as exc:
            raise ChainHalted(f"validator updates of block {height} cannot be applied: {exc}") from exc
        tx_hashes = [sha256(tx) for tx in block.txs]
        meta = {
            "begin": begin_events, "end": end.events,
            "updates": [{"pub_key": u.pub_key, "power": u.power} for u in end.validator_updates],
            "results_hash": results_hash(results), "time_ms": header.time_ms,
        }
        extras = [(_VALSET + _h8(height + 2), encode(after.to_obj())),
                  (_RESULTS + _h8(height), encode(meta))]
        block_bytes = block.encode()
        pending = self.blocks.stage_block(
            height, block.hash(), block_bytes, encode(commit.to_obj()),
            [encode(result_to_obj(r)) for r in results], tx_hashes,
        )
        for key, value in extras:
            pending.batch.put(key, value)
        self.event_log.stage(pending.batch, height, end.logged)
        if self.keep_blocks:
            for pruned in self.blocks.stage_prune(pending, height - self.keep_blocks + 1,
                                                  _tx_hashes_of):
                pending.batch.delete(_RESULTS + _h8(pruned))
        if self.count_writes:
            pending.batch = CountingBatch(pending.batch)
        # The state commit is staged last, into the block's batch: it is the only step that
        # changes memory, and the batch makes block and state one write.
        try:
            app_hash = app.commit(pending.batch)
            self.blocks.write_block(pending, app_hash)
        except OSError as exc:  # plyvel's IOError is one; nothing else here touches a file
            self.failed = StorageFailure(f"writing block {height} and its state to",
                                         self.store_path, height, exc)
            raise self.failed from exc
        written = pending.batch.bytes if isinstance(pending.batch, CountingBatch) else 0
        return ExecutedBlock(block, commit, results, begin_events, end, app_hash, tx_hashes,
                             exec_s=executed_at - started,
                             commit_s=time.perf_counter() - executed_at, bytes_written=written,
                             block_bytes=len(block_bytes))

    def close(self) -> None:
        self.db.close()
