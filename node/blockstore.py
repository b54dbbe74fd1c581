"""The block store: blocks, commit certificates, per-tx results and the tx index on LevelDB.

It shares the node's ONE plyvel database with the state store (different key prefixes), and
a block is saved in two steps around the state commit, so that everything lands in ONE synced
write batch: :meth:`BlockStore.stage_block` checks the block and stages it, the caller stages
the state commit into the same batch (``pending.batch``), and :meth:`BlockStore.write_block`
records the new height with the app hash and writes the batch. After a crash the node finds
either the old height or the new one, never a part of a block. The chain orders the steps
(execute, commit, save); the block store only stores.

Blocks, commits and results are opaque bytes encoded by the caller with the consensus types,
so this module depends on no consensus type. Layout under the prefix:

    b"h" height(8)            block bytes
    b"H" block hash           height(8)
    b"c" height(8)            commit certificate for that height
    b"x" height(8) index(4)   result of the index-th tx of the block
    b"t" tx hash              height(8) index(4)
    b"k" height(8)            block hash (so pruning finds the ``H`` entry)
    b"s"                      seen commit of the latest height: [height, commit bytes]
    b"m"                      latest: [height, block hash, app hash]
    b"e"                      earliest stored height, once pruning has deleted any block
                              (or the store started above 1: state sync, ``stage_base``)

Pruning (:meth:`BlockStore.stage_prune`, ``storage.keep_blocks``) deletes a height's ``h``,
``H``, ``k``, ``c``, ``x`` and ``t`` entries in the batch of the block being stored, so the
earliest height moves with the latest in one write.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from primitives import codec

DEFAULT_PREFIX = b"b/"
PRUNE_PER_BLOCK = 64
"""Most heights one block's batch prunes: lowering ``keep_blocks`` by a lot catches up over
many blocks instead of making one huge batch."""


class BlockStoreError(Exception):
    """A block that cannot be stored as asked (wrong height, mismatched inputs)."""


@dataclass(frozen=True)
class LatestBlock:
    height: int
    """Height of the latest stored block."""
    block_hash: bytes
    """Its hash, as the caller computed it."""
    app_hash: bytes
    """The state root after executing it (the next header's app hash)."""


@dataclass(frozen=True)
class TxLocation:
    height: int
    """Height of the block that holds the tx."""
    index: int
    """Position of the tx in that block."""
    result: bytes
    """Its encoded execution result."""


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


@dataclass
class PendingBlock:
    """A block staged in a write batch, waiting for the state commit and :meth:`BlockStore.write_block`."""

    height: int
    block_hash: bytes
    batch: Any  # the database's write batch: the state store stages its commit into it
    earliest: int | None = None
    """The earliest height once this batch is written, if it prunes."""


class CountingBatch:
    """A write batch that counts the bytes put into it (keys and values), for
    the ``state_store_bytes_written`` metric; everything else goes to the wrapped batch."""

    __slots__ = ("_batch", "bytes")

    def __init__(self, batch: Any) -> None:
        self._batch = batch
        self.bytes = 0

    def put(self, key: bytes, value: bytes) -> None:
        self.bytes += len(key) + len(value)
        self._batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self.bytes += len(key)
        self._batch.delete(key)

    def write(self) -> None:
        self._batch.write()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)


class BlockStore:
    """Blocks and their side tables under ``prefix`` of a plyvel-like database."""

    def __init__(self, db: Any, prefix: bytes = DEFAULT_PREFIX) -> None:
        self._db = db
        self._p = bytes(prefix)
        meta = db.get(self._p + b"m")
        self._latest: LatestBlock | None = None
        if meta is not None:
            height, block_hash, app_hash = codec.decode(meta)
            self._latest = LatestBlock(height, block_hash, app_hash)
        earliest = db.get(self._p + b"e")
        self._earliest = int.from_bytes(earliest, "big") if earliest is not None else self._first()

    def _first(self) -> int:
        """The lowest stored height (one seek), 0 when none is stored."""
        start = self._p + b"h"
        with self._db.iterator(start=start, stop=self._p + b"i", include_value=False) as it:
            for key in it:
                return int.from_bytes(key[len(start):], "big")
        return 0

    # -- writing -------------------------------------------------------------------------

    def stage_block(
        self,
        height: int,
        block_hash: bytes,
        block_bytes: bytes,
        commit_bytes: bytes,
        results: list[bytes],
        tx_hashes: list[bytes],
    ) -> PendingBlock:
        """Check block ``height`` and stage it in a new synced batch (nothing is written yet).

        Raises :class:`BlockStoreError`, before staging anything, if the height does not follow
        the latest stored block or the inputs disagree.
        """
        latest = self.latest_height()
        if latest >= 0 and height != latest + 1:
            raise BlockStoreError(
                f"block {height} does not follow the latest stored block {latest}"
            )
        if height < 0:
            raise BlockStoreError(f"block height {height} is negative")
        if len(results) != len(tx_hashes):
            raise BlockStoreError(
                f"block {height} has {len(tx_hashes)} tx hashes but {len(results)} results"
            )
        if self._db.get(self._p + b"H" + block_hash) is not None:
            raise BlockStoreError(f"block hash {block_hash.hex()} is already stored")
        p = self._p
        h8 = _h8(height)
        batch = self._db.write_batch(sync=True)
        batch.put(p + b"h" + h8, block_bytes)
        batch.put(p + b"H" + block_hash, h8)
        batch.put(p + b"k" + h8, block_hash)
        batch.put(p + b"c" + h8, commit_bytes)
        for index, (tx_hash, result) in enumerate(zip(tx_hashes, results, strict=True)):
            i4 = index.to_bytes(4, "big")
            batch.put(p + b"x" + h8 + i4, result)
            batch.put(p + b"t" + tx_hash, h8 + i4)
        batch.put(p + b"s", codec.encode([height, commit_bytes]))
        return PendingBlock(height, bytes(block_hash), batch)

    def stage_prune(self, pending: PendingBlock, below: int,
                    tx_hashes_of: Callable[[bytes], list[bytes]],
                    limit: int = PRUNE_PER_BLOCK) -> list[int]:
        """Stage the deletion of stored blocks under height ``below`` (at most ``limit`` of
        them, lowest first) into ``pending``'s batch; returns the heights it prunes.

        ``tx_hashes_of(block bytes)`` names a block's txs, for their index entries (blocks are
        opaque here). The latest block is never pruned.
        """
        first = self._earliest
        stop = min(below, pending.height, first + limit)
        if first == 0 or stop <= first:
            return []
        p, batch = self._p, pending.batch
        pruned = []
        for height in range(first, stop):
            h8 = _h8(height)
            block = self._db.get(p + b"h" + h8)
            if block is None:
                continue
            block_hash = self._db.get(p + b"k" + h8)
            if block_hash is not None:  # stored before pruning existed: its H entry stays
                batch.delete(p + b"H" + block_hash)
            for tx_hash in tx_hashes_of(block):
                batch.delete(p + b"t" + tx_hash)
            with self._db.iterator(start=p + b"x" + h8, stop=p + b"x" + _h8(height + 1),
                                   include_value=False) as it:
                for key in it:
                    batch.delete(key)
            for kind in (b"h", b"k", b"c"):
                batch.delete(p + kind + h8)
            pruned.append(height)
        pending.earliest = stop
        batch.put(p + b"e", _h8(stop))
        return pruned

    def write_block(self, pending: PendingBlock, app_hash: bytes) -> bytes:
        """Record ``pending`` as the latest block with ``app_hash`` and write its batch."""
        pending.batch.put(self._p + b"m", codec.encode([pending.height, pending.block_hash, app_hash]))
        pending.batch.write()
        self._latest = LatestBlock(pending.height, pending.block_hash, app_hash)
        if pending.earliest is not None:
            self._earliest = pending.earliest
        elif not self._earliest:
            self._earliest = pending.height
        return app_hash

    def stage_base(self, batch: Any, height: int, block_hash: bytes, commit_bytes: bytes,
                   app_hash: bytes) -> None:
        """Stage an empty store's start at ``height`` (state sync): it reads as if block
        ``height`` (hash, commit, app hash after it) were the latest, with no block stored
        yet; the next stored is ``height + 1``, the earliest. Open a new BlockStore after
        the batch is written."""
        if self.latest_height() >= 0:
            raise BlockStoreError("only an empty block store starts at a height")
        if height < 1:
            raise BlockStoreError(f"a block store starts at height 1 or above, not {height}")
        batch.put(self._p + b"s", codec.encode([height, commit_bytes]))
        batch.put(self._p + b"e", _h8(height + 1))
        batch.put(self._p + b"m", codec.encode([height, block_hash, app_hash]))

    def save_block(self, height: int, block_hash: bytes, block_bytes: bytes, commit_bytes: bytes,
                   results: list[bytes], tx_hashes: list[bytes], app_hash: bytes) -> bytes:
        """Stage and write a block whose state is kept elsewhere (tools, tests)."""
        pending = self.stage_block(height, block_hash, block_bytes, commit_bytes, results, tx_hashes)
        return self.write_block(pending, app_hash)

    # -- reading -------------------------------------------------------------------------

    def latest(self) -> LatestBlock | None:
        return self._latest

    def earliest_height(self) -> int:
        """Lowest height still stored (0 when none is): 1 on a store that never pruned."""
        return self._earliest

    def latest_height(self) -> int:
        """Height of the latest stored block; -1 when none is stored."""
        return -1 if self._latest is None else self._latest.height

    def block(self, height: int) -> bytes | None:
        return self._db.get(self._p + b"h" + _h8(height)) if height >= 0 else None

    def height_of(self, block_hash: bytes) -> int | None:
        data = self._db.get(self._p + b"H" + block_hash)
        return None if data is None else int.from_bytes(data, "big")

    def block_by_hash(self, block_hash: bytes) -> bytes | None:
        height = self.height_of(block_hash)
        return None if height is None else self.block(height)

    def commit(self, height: int) -> bytes | None:
        return self._db.get(self._p + b"c" + _h8(height)) if height >= 0 else None

    def seen_commit(self) -> tuple[int, bytes] | None:
        """The commit certificate this node saw for the latest height (what it restarts with)."""
        data = self._db.get(self._p + b"s")
        if data is None:
            return None
        height, commit_bytes = codec.decode(data)
        return height, commit_bytes

    def results(self, height: int) -> list[bytes] | None:
        """Per-tx results of block ``height`` in tx order; None if the block is not stored."""
        if self.block(height) is None:
            return None
        start = self._p + b"x" + _h8(height)
        with self._db.iterator(start=start, stop=self._p + b"x" + _h8(height + 1)) as it:
            return [value for _, value in it]

    def tx(self, tx_hash: bytes) -> TxLocation | None:
        where = self._db.get(self._p + b"t" + tx_hash)
        if where is None:
            return None
        result = self._db.get(self._p + b"x" + where)
        if result is None:
            return None
        return TxLocation(
            int.from_bytes(where[:8], "big"), int.from_bytes(where[8:], "big"), result
        )


def open_db(path: str, write_buffer_mb: int | None = None) -> Any:
    """Open (creating) the node's one LevelDB with options sized for the state tree.

    A 128 MB block cache keeps the trie's lower nodes hot; bloom filters spare point reads
    (tree nodes, blocks by height) a probe per level; a write buffer of 32-96 MB absorbs a
    block's batch without stalling on compaction.

    The write buffer's size is drawn at random unless given. Validators write the same blocks
    and state, so with equal buffers they flush to disk and compact at the same moment; on a
    testnet sharing cores that is 2-3 s in which all four are short of CPU together (seen as
    1-2 s heights at 1,000 trades/s: p99 latency 1.4-2.0 s in five runs of bench/e2e.py, 2.4 s
    with 8 MB buffers, 0.55 s with staggered ones). Node-local: nothing in the store depends
    on it.
    """
    import plyvel

    if write_buffer_mb is None:
        write_buffer_mb = random.randrange(32, 97)
    return plyvel.DB(
        path,
        create_if_missing=True,
        lru_cache_size=128 * 1024 * 1024,
        bloom_filter_bits=10,
        write_buffer_size=write_buffer_mb * 1024 * 1024,
        max_open_files=512,
    )
