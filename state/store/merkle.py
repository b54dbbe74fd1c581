"""The versioned Merkle state store: the app hash, proofs, historical reads and pruning.

It implements :class:`state.kv.StateStore` over any plyvel-like database (a ``plyvel.DB`` or
:class:`state.store.memdb.MemoryDB`) under a key prefix, so the node keeps state and blocks in
ONE LevelDB and commits both with one write batch. See ``layout`` for the tree and the keys,
and ``README.md`` for why this structure.
"""

from __future__ import annotations

import gc
import hashlib
from collections import deque
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

import msgpack

from primitives import codec
from state.kv import WriteBatch
from state.store.errors import (
    PrunedVersionError,
    StoreCorruptionError,
    StoreError,
    UnknownVersionError,
)
from state.store.layout import (
    EMPTY_ROOT,
    EMPTY_SLOT,
    HKS_TAG,
    INTERNAL,
    KEY_TAG,
    LEAF,
    LEAF_PREFIX,
    LIVE,
    MAX_RING,
    MAX_VERSION,
    META_KEY,
    NARROW_LEVELS,
    NODE_TAG,
    VALUE_TAG,
    Slot,
    decode_root,
    encode_root,
    leaf_hash,
    node_path,
    read_slot,
    read_thin_slot,
    record_shape,
    ring_slots,
    ring_successors,
    root_key,
    slot_index,
    split_value_key,
    stale_key,
    value_key,
    value_key_ceiling,
    value_key_floor,
)
from state.store.trie import Op, TrieUpdate

_sha256 = hashlib.sha256
_first = itemgetter(0)
_drain = deque(maxlen=0).extend  # runs an iterator of calls to the end
_INVERT = bytes(range(255, -1, -1))  # byte b -> 255 - b: MAX_VERSION - v, bytewise
DEFAULT_PREFIX = b"s/"
DEFAULT_CACHE_DEPTH = 64  # the whole latest tree: ~170 bytes of memory per key


class MerkleStore:
    """A :class:`state.kv.StateStore` whose root commits to every key and value.

    ``keep_versions``: how many committed versions stay readable (``get_at``, ``prove``);
    0 keeps all. A store created with 1 to ``MAX_RING`` keeps values in that many slots per
    key (see ``layout``, "Values"): it can be reopened keeping fewer versions, not more.
    ``cache_depth``: internal nodes of the latest tree down to this level stay in memory
    once read or written. The default keeps them all (~170 bytes per key at 1M
    keys); 4 caps the cache at the 69,905 nodes of levels 0-4 (~80 MB when full), the rest
    is then read through LevelDB's block cache.
    """

    def __init__(
        self,
        db: Any,
        prefix: bytes = DEFAULT_PREFIX,
        keep_versions: int = 0,
        cache_depth: int = DEFAULT_CACHE_DEPTH,
    ) -> None:
        if keep_versions < 0:
            raise ValueError("keep_versions must be >= 0 (0 keeps every version)")
        self._db = db
        self._prefix = bytes(prefix)
        self.keep_versions = keep_versions
        self.cache_depth = cache_depth
        # path -> record of the latest tree's nodes down to cache_depth. Not checked against
        # versions: every commit replaces the entries of the paths it rewrites, and a path
        # whose node vanished is only looked up again after a commit has rebuilt it there.
        self._cache: dict[bytes, bytes] = {}
        self._pending: dict[bytes, bytes | None] = {}
        # The last commit's stale keys, so pruning them next does not read its stale record.
        self._last_stale: tuple[int, list[bytes]] = (-1, [])
        meta = db.get(self._prefix + META_KEY)
        if meta is None:
            self._version = -1
            self._oldest = 0
            self._root: Slot = EMPTY_SLOT
            self.ring = keep_versions if keep_versions <= MAX_RING else 0
        else:
            fields = codec.decode(meta)
            if len(fields) != 3:
                # [version, oldest] was written by the layout before thin node records:
                # its nodes would be misread here.
                raise StoreCorruptionError("the store was written in an earlier layout: resync")
            self._version, self._oldest, self.ring = fields
            self._root = self._root_slot(self._version)
        if self.ring and not 0 < keep_versions <= self.ring:
            raise ValueError(
                f"this store keeps values in {self.ring} slots per key: it can keep between 1 "
                f"and {self.ring} versions, not keep_versions={keep_versions}"
            )

    # -- the StateStore protocol -------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    @property
    def oldest_version(self) -> int:
        """Oldest version still readable (0 until pruning starts)."""
        return self._oldest

    def get(self, key: bytes) -> bytes | None:
        pending = self._pending
        if key in pending:
            return pending[key]
        if self._version < 0:
            return None
        return self._read(key, self._version)

    def set(self, key: bytes, value: bytes) -> None:
        if type(key) is bytes is type(value):  # the common case: nothing to check or copy
            self._pending[key] = value
            return
        if not isinstance(key, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
            raise TypeError("state keys and values are bytes")
        self._pending[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise TypeError("state keys are bytes")
        self._pending[bytes(key)] = None

    def iterate(
        self, start: bytes = b"", end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Key-ordered ``(key, value)`` with ``start <= key < end`` over committed + pending."""
        pending = sorted(
            (k, v) for k, v in self._pending.items() if k >= start and (end is None or k < end)
        )
        committed = self._iterate_committed(start, end) if self._version >= 0 else iter(())
        index = 0
        for key, value in committed:
            while index < len(pending) and pending[index][0] < key:
                pkey, pvalue = pending[index]
                index += 1
                if pvalue is not None:
                    yield pkey, pvalue
            if index < len(pending) and pending[index][0] == key:
                pvalue = pending[index][1]
                index += 1
                if pvalue is not None:
                    yield key, pvalue
                continue
            yield key, value
        for pkey, pvalue in pending[index:]:
            if pvalue is not None:
                yield pkey, pvalue

    def commit(self, batch: WriteBatch | None = None, *, at_version: int | None = None) -> bytes:
        """Make the pending writes version ``version + 1``; return its root (the app hash).

        With ``batch`` every write (tree nodes, values, root, pruning, metadata) is staged
        there and the caller must write it; without, one synced batch is written here.
        ``at_version``: an empty store's first commit may be any version (a state-sync restore
        of a snapshot taken at that version); it is then the oldest readable version.
        """
        if at_version is not None:
            if self._version != -1 or at_version < 0:
                raise StoreError("only an empty store's first commit takes a version")
        # A 10k-key commit allocates ~100k short-lived tuples and lists, none in a cycle: the
        # collections they trigger only rescan the young objects and, now and then, the whole
        # heap (the node cache). Measured at 1M keys: 7% of the commit's CPU.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._commit(batch, at_version)
        except BaseException:
            # The update writes new nodes into the cache as it goes; the tree did not change.
            self._cache.clear()
            raise
        finally:
            if collecting:
                gc.enable()

    def _commit(self, batch: WriteBatch | None, at_version: int | None = None) -> bytes:
        version = self._version + 1
        if at_version is not None:  # a restore: nothing below it was ever here to prune
            version = self._oldest = at_version
        sha = _sha256
        ops: list[Op] = [
            (
                hk := sha(key).digest(),
                key,
                value,
                None if value is None else sha(LEAF_PREFIX + hk + sha(value).digest()).digest(),
            )
            for key, value in self._pending.items()
        ]
        ops.sort(key=_first)  # by hk alone: unique
        p = self._prefix
        own_batch = batch is None
        out: Any = self._db.write_batch(sync=True) if own_batch else batch
        put = out.put
        update = TrieUpdate(
            version, self._load, put, p, self._cache, self.cache_depth, out.delete, self.ring
        )
        root = update.apply(self._root, ops)
        if self.ring:
            stale = self._stage_slot_values(put, version, update.value_puts)
        else:
            stale = self._stage_versioned_values(put, version, update.value_puts)
        key_tag = p + KEY_TAG
        for hk, key in update.new_keys:
            put(key_tag + hk, key)
        stale_values = stale
        out.put(p + stale_key(version), msgpack.packb([update.stale_nodes, stale_values]))
        out.put(p + root_key(version), encode_root(root))
        oldest = self._oldest
        stale_keys = update.stale_nodes + stale_values
        if self.keep_versions:
            oldest = max(oldest, version - self.keep_versions + 1)
            self._stage_pruning(out, version, oldest, stale_keys)
        out.put(p + META_KEY, codec.encode([version, oldest, self.ring]))
        if own_batch:
            out.write()
        self._root = root
        self._version = version
        self._oldest = oldest
        self._pending = {}
        self._last_stale = (version, stale_keys)
        return self.root_hash()

    def _stage_versioned_values(
        self, put: Any, version: int, value_puts: list[tuple[Any, ...]]
    ) -> list[bytes]:
        """Value entries keyed by ~version (see layout.value_key), built inline: this loop runs
        once per written key. The entry a write replaces is stale: ~version of an 8-byte
        version is its bytes inverted. Returns the stale value keys."""
        value_tag = self._prefix + VALUE_TAG
        this_version = b"\x00\x00" + (MAX_VERSION - version).to_bytes(8, "big")
        stale: list[bytes] = []
        stale_append = stale.append
        for key, value, old8, _ in value_puts:
            base = value_tag + (key.replace(b"\x00", b"\x00\xff") if b"\x00" in key else key)
            if value is None:
                put(base + this_version, b"")
                stale_append(base + this_version)
            else:
                put(base + this_version, LIVE + value)
            if old8 is not None:
                stale_append(base + b"\x00\x00" + old8.translate(_INVERT))
        return stale

    def _stage_slot_values(
        self, put: Any, version: int, value_puts: list[tuple[Any, ...]]
    ) -> list[bytes]:
        """Value entries in per-key slots (layout, "Values"): an update overwrites the slot
        its location names and makes nothing stale; a deletion writes a tombstone to the
        next slot and makes all the key's slots stale. Returns the stale value keys."""
        value_tag = self._prefix + VALUE_TAG
        this8 = version.to_bytes(8, "big")
        live8 = this8 + LIVE
        stale: list[bytes] = []
        successor = ring_successors(self.ring)
        slots = ring_slots(self.ring)
        for key, value, old8, new8 in value_puts:
            base = value_tag + (key.replace(b"\x00", b"\x00\xff") if b"\x00" in key else key)
            if value is not None:
                put(base + b"\x00\x00" + new8, live8 + value)
            else:
                epoch = base + b"\x00\x00" + old8[:7]
                put(epoch + successor[old8[7]], this8)
                stale.extend([epoch + slot for slot in slots])
        return stale

    def root_hash(self) -> bytes:
        return _slot_hash(self._root)

    # -- history and proofs ----------------------------------------------------------------

    def root_at(self, version: int) -> bytes:
        """The app hash of a kept version."""
        self._check_version(version)
        return _slot_hash(self._root_slot(version))

    def get_at(self, version: int, key: bytes) -> bytes | None:
        """The value of ``key`` in committed ``version`` (pending writes are not seen)."""
        self._check_version(version)
        return self._read(key, version)

    def prove(self, key: bytes, version: int | None = None) -> list[Any]:
        """A proof that ``key`` has its value (or is absent) at ``version`` (default: latest).

        The proof is ``[nodes, leaf]``: ``nodes`` lists, root first, each internal node on the
        key's path as ``[bitmap bytes, sibling hashes]``; ``leaf`` is None, or ``[hk, vh]`` of the
        other key whose leaf occupies the path. Plain lists, ints and bytes: encodable with
        ``primitives.codec`` and checked by :func:`state.store.proof.verify_proof`.
        """
        if version is None:
            version = self._version
        self._check_version(version)
        latest = version == self._version
        root = self._root if latest else self._root_slot(version)
        hk = _sha256(key).digest()
        nodes: list[list[Any]] = []
        depth = 0
        kind, slot_hash, version8 = root[0], root[1], root[2][-8:]
        leaf_hk = root[2][:32] if kind == LEAF else None
        while kind == INTERNAL:
            path = node_path(depth, hk)
            # The latest tree's records are whole; older ones are read thin (without hks).
            record = self._load(version8, path) if latest else self._load_uncached(version8, path)
            index = slot_index(hk, depth)
            width, count, _ = record_shape(record)
            bitmap = int.from_bytes(record[1 : 1 + width], "big")
            first = 1 + width
            siblings = [bytes(record[first + 32 * i : first + 32 * i + 32]) for i in range(count)]
            if bitmap >> index & 1:
                del siblings[(bitmap & ((1 << index) - 1)).bit_count()]
            nodes.append([bytes(record[1 : 1 + width]), siblings])
            kind, slot_hash, version8 = read_thin_slot(record, index)
            if kind == LEAF and latest:
                leaf_hk = read_slot(record, index)[2][:32]
            depth += 1
        leaf = None
        if kind == LEAF:
            if leaf_hk is None:
                leaf_hk = self._find_leaf_hk(key, hk, depth, slot_hash, version)
            if leaf_hk != hk:
                other_key = self._db.get(self._prefix + KEY_TAG + leaf_hk)
                value = None if other_key is None else self._read(other_key, version)
                if value is None:
                    raise StoreCorruptionError(f"the key of leaf {leaf_hk.hex()} is not readable")
                leaf = [leaf_hk, _sha256(value).digest()]
        return [nodes, leaf]

    # -- internals -------------------------------------------------------------------------

    def _check_version(self, version: int) -> None:
        if not isinstance(version, int) or version < 0 or version > self._version:
            raise UnknownVersionError(version, self._version)
        if version < self._oldest:
            raise PrunedVersionError(version, self._oldest, self._version, self.keep_versions)

    def _root_slot(self, version: int) -> Slot:
        data = self._db.get(self._prefix + root_key(version))
        if data is None:
            raise StoreCorruptionError(f"root record of version {version} is missing")
        return decode_root(data)

    def _find_leaf_hk(
        self, key: bytes, hk: bytes, depth: int, slot_hash: bytes, version: int
    ) -> bytes:
        """The hk of the leaf at ``depth`` on ``hk``'s path in an older tree.

        Thin records do not hold it: the candidates are the keys ever created whose hk shares
        the path (the ``k`` index, by prefix; usually one), and the leaf is the one whose leaf
        hash, with its value at ``version``, is the slot's hash.
        """
        value = self._read(key, version)
        if value is not None and leaf_hash(hk, value) == slot_hash:
            return hk
        narrow = min(depth, NARROW_LEVELS)
        known = hk[: depth - 2] if depth > NARROW_LEVELS else hk[: narrow >> 1]
        nibble = hk[narrow >> 1] >> 4 if depth <= NARROW_LEVELS and narrow & 1 else None
        tag = self._prefix + KEY_TAG
        with self._db.iterator(prefix=tag + known) as it:
            for dbkey, other_key in it:
                other_hk = dbkey[len(tag) :]
                if other_hk == hk or (nibble is not None and other_hk[len(known)] >> 4 != nibble):
                    continue
                value = self._read(other_key, version)
                if value is not None and leaf_hash(other_hk, value) == slot_hash:
                    return other_hk
        raise StoreCorruptionError(f"no key matches the leaf at depth {depth} of version {version}")

    def _load(self, version8: bytes, path: bytes) -> bytes:
        """A whole node of the latest tree: through the cache, else thin record and hks."""
        record = self._cache.get(path)
        if record is not None:
            return record
        hks = self._db.get(self._prefix + HKS_TAG + path)
        if hks is None:
            raise StoreCorruptionError(
                f"the key hashes of the tree node at depth {path[0]} are missing"
            )
        record = self._load_uncached(version8, path) + hks
        if path[0] <= self.cache_depth:
            self._cache[path] = record
        return record

    def _load_uncached(self, version8: bytes, path: bytes) -> bytes:
        record = self._db.get(self._prefix + NODE_TAG + version8 + path)
        if record is None:
            raise StoreCorruptionError(
                f"tree node at depth {path[0]} of version "
                f"{int.from_bytes(version8, 'big')} is missing"
            )
        return record

    def _read(self, key: bytes, version: int) -> bytes | None:
        p = self._prefix
        if self.ring:
            # The key's entries of every creation (slots of a deleted one wait for pruning):
            # the one with the highest version at or below ``version`` holds the value.
            best, found = -1, b""
            with self._db.iterator(
                start=p + value_key_floor(key), stop=p + value_key_ceiling(key)
            ) as it:
                for _, stored in it:
                    written = int.from_bytes(stored[:8], "big")
                    if best < written <= version:
                        best, found = written, stored
            return found[9:] if len(found) > 8 else None
        with self._db.iterator(
            start=p + value_key(key, version), stop=p + value_key_ceiling(key)
        ) as it:
            for _, stored in it:
                return stored[1:] if stored else None
        return None

    def view(self) -> StoreView:
        """The latest committed version, read-only, over a snapshot of the database: later
        commits and pruning do not change what it reads, so a state-sync snapshot can be cut
        from it in a thread while blocks go on. Close it (it pins LevelDB's files)."""
        if self._version < 0:
            raise StoreError("an empty store has no committed version to view")
        return StoreView(self, self._db.snapshot(), self._version, self.root_hash())

    def _iterate_committed(self, start: bytes, end: bytes | None,
                           db: Any = None) -> Iterator[tuple[bytes, bytes]]:
        """Committed values in key order, read from ``db`` (default: the live database)."""
        p = self._prefix
        plen = len(p)
        lo = p + value_key_floor(start)
        hi = p + (value_key_floor(end) if end is not None else bytes((VALUE_TAG[0] + 1,)))
        with (db or self._db).iterator(start=lo, stop=hi) as it:
            if self.ring:
                yield from _latest_in_slots(it, plen)
                return
            for dbkey, stored in it:
                key, _ = split_value_key(dbkey[plen:])
                if stored:
                    yield key, stored[1:]
                it.seek(p + value_key_ceiling(key))

    def _stage_pruning(self, out: Any, version: int, oldest: int, current: list[bytes]) -> None:
        """Delete what only versions below ``oldest`` need, in the same batch as the commit."""
        p = self._prefix
        for stale_version in range(self._oldest + 1, oldest + 1):
            if stale_version == version:
                keys = current
            elif stale_version == self._last_stale[0]:
                keys = self._last_stale[1]
            else:
                data = self._db.get(p + stale_key(stale_version))
                if data is None:
                    continue
                nodes, values = msgpack.unpackb(data)
                keys = nodes + values
            _drain(map(out.delete, keys))  # the loop in C: ~25k keys per 10k-key commit
            out.delete(p + stale_key(stale_version))
            out.delete(p + root_key(stale_version - 1))


class StoreView:
    """One committed version of a :class:`MerkleStore` over a database snapshot
    (:meth:`MerkleStore.view`): ``version``, ``root_hash()`` and ``iterate()`` as the store's,
    safe to read from another thread. Reads only the value table, never the node cache."""

    def __init__(self, store: MerkleStore, snapshot: Any, version: int, root: bytes) -> None:
        self._store = store
        self._snapshot = snapshot
        self.version = version
        self._root = root

    def root_hash(self) -> bytes:
        return self._root

    def iterate(self, start: bytes = b"", end: bytes | None = None
                ) -> Iterator[tuple[bytes, bytes]]:
        return self._store._iterate_committed(start, end, self._snapshot)

    def close(self) -> None:
        close = getattr(self._snapshot, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> StoreView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _latest_in_slots(it: Any, plen: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each live key from an iterator over slot-layout value entries: a key's
    entries are adjacent, its latest is the one with the highest version."""
    current, best, found = b"", -1, b""
    for dbkey, stored in it:
        head = dbkey[:-8]  # prefix, tag, escaped key, 0x00 0x00
        if head != current:
            if len(found) > 8:
                yield split_value_key(current[plen:] + bytes(8))[0], found[9:]
            current, best, found = head, -1, b""
        written = int.from_bytes(stored[:8], "big")
        if written > best:
            best, found = written, stored
    if len(found) > 8:
        yield split_value_key(current[plen:] + bytes(8))[0], found[9:]


def _slot_hash(slot: Slot) -> bytes:
    return EMPTY_ROOT if slot[0] == 0 else slot[1]
