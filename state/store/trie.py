"""One commit's batch update of the hashed-key trie (see ``layout`` for the format).

The pending writes are sorted by key hash and pushed down the tree together, so every node on
the union of their paths is loaded, patched and hashed exactly once per commit, however many
keys pass through it. Records are patched in place by offset arithmetic and slice assignment:
the per-node work is a handful of C-level copies and one SHA-256.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable

from state.store.layout import (
    EMPTY,
    EMPTY_SLOT,
    HKS_TAG,
    INTERNAL,
    LEAF,
    NARROW_LEVELS,
    NARROW_TAG,
    NODE_TAG,
    Slot,
    new_record,
    node_path,
    ring_successors,
    slot_index,
    write_slot,
)

_sha256 = hashlib.sha256
_BYTE = tuple(bytes((b,)) for b in range(256))  # a path's first byte, a bisection bound's last

# One pending write: (hk, key, value or None for a deletion, its leaf hash or None).
Op = tuple[bytes, bytes, bytes | None, bytes | None]
# A leaf while the update rebuilds a subtree: (hk, location of its value, leaf hash).
Entry = tuple[bytes, bytes, bytes]


def _no_delete(key: bytes) -> None:
    raise TypeError("this update was given no delete callback")


class TrieUpdate:
    """Applies sorted ops to the tree as of the last commit and collects the writes of ``version``.

    ``load(version8, path) -> record`` fetches an internal node that ``cache`` (path -> the
    latest tree's record at that path) does not hold. New nodes go straight to ``put(key,
    record)`` (the commit's write batch: the thin record, and the path's hks when they
    changed; ``delete`` drops the hks of a path whose node vanished) and, down to
    ``cache_depth``, into ``cache``: the store drops the cache if the update fails halfway.
    Results, read by the store:
    ``stale_nodes`` (keys no longer in the new tree, with ``prefix`` in front),
    ``value_puts`` (key, value or None, the location of the value it replaces or None, the
    new value's location or None for a deletion), ``new_keys`` ((hk, key) of keys that did
    not exist).
    """

    def __init__(
        self,
        version: int,
        load: Callable[[bytes, bytes], bytes],
        put: Callable[[bytes, bytes], None],
        prefix: bytes = b"",
        cache: dict[bytes, bytes] | None = None,
        cache_depth: int = -1,
        delete: Callable[[bytes], None] | None = None,
        ring: int = 0,
    ) -> None:
        self.version8 = version.to_bytes(8, "big")
        # A leaf's extra version field locates its value (see layout, "Values"): the version
        # written at, or with ``ring`` slots per key, creation version(7) and slot(1).
        self.ring = ring_successors(ring) if ring else None
        self.first8 = self.version8 if not ring else version.to_bytes(7, "big") + bytes(1)
        self.cache = {} if cache is None else cache
        self.cache_depth = cache_depth
        self.put = put
        self.node_tag = prefix + NODE_TAG  # node keys come out ready for the database
        self.hks_tag = prefix + HKS_TAG
        self.delete = delete if delete is not None else _no_delete
        self.load = load
        self.stale_nodes: list[bytes] = []
        self.value_puts: list[tuple[bytes, bytes | None, bytes | None, bytes | None]] = []
        self.new_keys: list[tuple[bytes, bytes]] = []

    def apply(self, root: Slot, ops: list[Op]) -> Slot:
        """The new root slot after ``ops`` (sorted by hk, one op per key)."""
        if not ops:
            return root
        # The ops' key hashes, for bisecting the groups of a node that many ops pass through.
        self.ops = ops
        self.hks = [op[0] for op in ops]
        new = self._update_slot(root, 0, ops, 0, len(ops))
        return root if new is None else new

    def next_location(self, old8: bytes) -> bytes:
        """Where a key's next value goes, given where its current one is."""
        return self.version8 if self.ring is None else old8[:7] + self.ring[old8[7]]

    # -- the recursion -------------------------------------------------------------------

    def _update_slot(self, slot: Slot, depth: int, ops: list[Op], lo: int, hi: int) -> Slot | None:
        """New content of a slot at ``depth`` after ``ops[lo:hi]``; None if nothing changed."""
        kind = slot[0]
        if kind == INTERNAL:
            if hi - lo == 1:
                return self._update_one(slot, depth, ops[lo])
            path = node_path(depth, ops[lo][0])
            record = self.cache.get(path)
            if record is None:
                record = self.load(slot[2], path)
            key = self.node_tag + slot[2] + path
            return self._update_node(record, key, path, depth, ops, lo, hi)
        entries: list[Entry] = []
        first8 = self.first8
        value_puts = self.value_puts
        if kind == EMPTY:
            for i in range(lo, hi):
                hk, key, value, lh = ops[i]
                if value is not None:
                    entries.append((hk, first8, lh))
                    value_puts.append((key, value, None, first8))
                    self.new_keys.append((hk, key))
            if not entries:
                return None
            return self._build(depth, entries)
        # A leaf: merge it with the ops that reach its slot.
        extra = slot[2]
        leaf_hk = extra[:32]
        kept = True
        for i in range(lo, hi):
            hk, key, value, lh = ops[i]
            if hk == leaf_hk:
                if value is None:
                    kept = False
                    value_puts.append((key, None, extra[32:40], None))
                elif lh != slot[1]:  # same key, new value (an unchanged value is no write)
                    kept = False
                    new8 = self.next_location(extra[32:40])
                    entries.append((hk, new8, lh))
                    value_puts.append((key, value, extra[32:40], new8))
            elif value is not None:
                entries.append((hk, first8, lh))
                value_puts.append((key, value, None, first8))
                self.new_keys.append((hk, key))
        if kept:
            if not entries:
                return None
            entries.append((leaf_hk, extra[32:40], slot[1]))
            entries.sort()
        elif not entries:
            return EMPTY_SLOT
        return self._build(depth, entries)

    def _update_one(self, slot: Slot, depth: int, op: Op) -> Slot | None:
        """The common case below the top levels: one op under an internal node, iteratively.

        Descends remembering each node's slot offsets; on the way back up a slot that keeps
        its kind is overwritten in place (same length), anything else goes through
        ``write_slot`` and ``_finish``.
        """
        hk, key, value, lh = op
        cache = self.cache
        if depth >= NARROW_LEVELS and value is not None:
            # Fast path, most ops at scale: the node is cached and the key's leaf is in it.
            version8 = slot[2]
            path = _BYTE[depth] + hk[: depth - 2]
            record = cache.get(path)
            if record is not None:
                bitmap = int.from_bytes(record[1:33], "big")
                bit = 1 << hk[depth - 2]
                count = bitmap.bit_count()
                base = 33 + (count << 5)
                leafmap = int.from_bytes(record[base : base + 32], "big")
                if leafmap & bit:
                    below = bit - 1
                    thin = base + 32 + (count << 3)  # the hks start here
                    if record.startswith(hk, thin + ((leafmap & below).bit_count() << 5)):
                        pos = (bitmap & below).bit_count()
                        h0 = 33 + (pos << 5)
                        if record.startswith(lh, h0):  # type: ignore[arg-type]
                            return None  # same value: no write
                        e0 = base + 32 + (pos << 3)
                        old8 = record[e0 : e0 + 8]
                        ring = self.ring
                        new8 = self.version8
                        loc8 = new8 if ring is None else old8[:7] + ring[old8[7]]
                        self.value_puts.append((key, value, old8, loc8))
                        node_tag = self.node_tag
                        self.stale_nodes.append(node_tag + version8 + path)
                        data = b"".join(
                            (record[:h0], lh, record[h0 + 32 : e0], loc8, record[e0 + 8 :])  # type: ignore[arg-type]
                        )
                        # Same leaves, same hks: the database gets the thin record alone.
                        self.put(node_tag + new8 + path, data[:thin])
                        if depth <= self.cache_depth:
                            cache[path] = data
                        return (INTERNAL, _sha256(data[:base]).digest(), new8)
        stack = []
        load = self.load
        while slot[0] == INTERNAL:
            version8 = slot[2]
            path = (
                _BYTE[depth] + hk[: depth - 2]
                if depth >= NARROW_LEVELS
                else node_path(depth, hk)
            )
            record = cache.get(path)
            if record is None:
                record = load(version8, path)
            if depth < NARROW_LEVELS:
                b = hk[depth >> 1]
                index = b & 15 if depth & 1 else b >> 4
            else:
                index = hk[depth - 2]
            width = 2 if record[0] == NARROW_TAG else 32
            bitmap = int.from_bytes(record[1 : 1 + width], "big")
            bit = 1 << index
            count = bitmap.bit_count()
            base = 1 + width + (count << 5)
            thin = base + width + (count << 3)
            k0 = 0
            if bitmap & bit:
                below = bit - 1
                pos = (bitmap & below).bit_count()
                leafmap = int.from_bytes(record[base : base + width], "big")
                h0 = 1 + width + (pos << 5)
                e0 = base + width + (pos << 3)
                if leafmap & bit:
                    k0 = thin + ((leafmap & below).bit_count() << 5)
                    slot = (LEAF, record[h0 : h0 + 32], record[k0 : k0 + 32] + record[e0 : e0 + 8])
                else:
                    slot = (INTERNAL, record[h0 : h0 + 32], record[e0 : e0 + 8])
            else:
                h0 = e0 = 0
                slot = EMPTY_SLOT
            stack.append((record, version8, path, index, slot[0], h0, e0, base, thin))
            depth += 1
        if slot[0] == LEAF and value is not None and slot[2][:32] == hk:
            # An existing key gets a new value.
            if lh == slot[1]:
                return None
            new8 = self.next_location(slot[2][32:40])
            self.value_puts.append((key, value, slot[2][32:40], new8))
            new: Slot | None = (LEAF, lh, hk + new8)
        else:
            new = self._update_slot(slot, depth, [op], 0, 1)
        if new is None:
            return None
        stale = self.stale_nodes
        put = self.put
        node_tag = self.node_tag
        tag = node_tag + self.version8
        limit = self.cache_depth
        while stack:
            record, version8, path, index, old_kind, h0, e0, base, thin = stack.pop()
            stale.append(node_tag + version8 + path)
            patched = bytearray(record)
            kind = new[0]
            if kind == old_kind and kind != EMPTY:
                patched[h0 : h0 + 32] = new[1]
                # One op cannot put another key's leaf where a leaf was: the hks stay.
                patched[e0 : e0 + 8] = new[2] if kind == INTERNAL else new[2][32:]
                data = bytes(patched)
                put(tag + path, data[:thin])
                if path[0] <= limit:
                    cache[path] = data
                new = (INTERNAL, _sha256(data[:base]).digest(), self.version8)
            else:
                write_slot(patched, index, new)
                new = self._finish(patched, path, record[thin:])
        return new

    def _update_node(
        self, record: bytes, key: bytes, path: bytes, depth: int, ops: list[Op], lo: int, hi: int
    ) -> Slot | None:
        new = bytearray(record)
        changed = shifted = False
        i = lo
        if depth < NARROW_LEVELS:
            at, low, width = depth >> 1, depth & 1, 2
        else:
            at, low, width = depth - 2, 2, 32
        # The slot offsets are read off the original record (see layout.locate, inlined).
        bitmap = int.from_bytes(record[1 : 1 + width], "big")
        count = bitmap.bit_count()
        base = 1 + width + (count << 5)
        leafmap = int.from_bytes(record[base : base + width], "big")
        extras = base + width
        hks = extras + (count << 3)
        # Many ops per child (the top levels; a wide node sees that only with batches of
        # millions): find where each child's ops end by bisecting the sorted key hashes for
        # the first hash of the next slot, instead of stepping through them.
        sorted_hks = self.hks if width == 2 and hi - lo >= 32 and ops is self.ops else None
        while i < hi:
            hk = ops[i][0]
            b = hk[at]
            index = b if low == 2 else b & 15 if low else b >> 4
            if sorted_hks is not None:
                if index == 15:
                    j = hi
                else:
                    # The smallest hash in slot index + 1: the prefix, then that nibble.
                    first = (b & 0xF0) + index + 1 if low else b + 16 & 0xF0
                    j = bisect_left(sorted_hks, hk[:at] + _BYTE[first], i + 1, hi)
            else:
                j = i + 1
                while j < hi:
                    b = ops[j][0][at]
                    if (b if low == 2 else b & 15 if low else b >> 4) != index:
                        break
                    j += 1
            bit = 1 << index
            if bitmap & bit:
                below = bit - 1
                pos = (bitmap & below).bit_count()
                h0 = 1 + width + (pos << 5)
                e0 = extras + (pos << 3)
                kind = LEAF if leafmap & bit else INTERNAL
            else:
                kind = EMPTY
            if kind == EMPTY:
                slot = self._update_slot(EMPTY_SLOT, depth + 1, ops, i, j)
            elif kind == INTERNAL:
                old = (INTERNAL, record[h0 : h0 + 32], record[e0 : e0 + 8])
                # One op below (the common case under the top levels): straight down.
                slot = (
                    self._update_one(old, depth + 1, ops[i])
                    if j - i == 1
                    else self._update_slot(old, depth + 1, ops, i, j)
                )
            else:
                k0 = hks + ((leafmap & below).bit_count() << 5)
                old = (LEAF, record[h0 : h0 + 32], record[k0 : k0 + 32] + record[e0 : e0 + 8])
                slot = self._update_slot(old, depth + 1, ops, i, j)
            if slot is not None:
                changed = True
                if slot[0] == kind != EMPTY and not shifted:
                    # Same kind, same length: overwrite in place; other offsets stay valid.
                    new[h0 : h0 + 32] = slot[1]
                    if kind == INTERNAL:
                        new[e0 : e0 + 8] = slot[2]
                    else:
                        new[e0 : e0 + 8] = slot[2][32:]
                        new[k0 : k0 + 32] = slot[2][:32]
                else:
                    write_slot(new, index, slot)
                    shifted = True
            i = j
        if not changed:
            return None
        self.stale_nodes.append(key)
        return self._finish(new, path, record[hks:])

    def _finish(self, record: bytearray, path: bytes, old_hks: bytes | None) -> Slot:
        """Canonical form of a patched node: empty, a lone leaf moved up, or a stored node.

        ``old_hks``: the hks of the node the path held before this commit (None for a new
        node), which the database holds under the path: written again only if they changed.
        """
        width = 2 if record[0] == NARROW_TAG else 32
        count = int.from_bytes(record[1 : 1 + width], "big").bit_count()
        if count == 0:
            self.delete(self.hks_tag + path)  # the node vanished (only existing ones can)
            return EMPTY_SLOT
        base = 1 + width + (count << 5)
        thin = base + width + (count << 3)
        if count == 1 and any(record[base : base + width]):
            # The one child is a leaf: no node holds a single key, the leaf moves up.
            self.delete(self.hks_tag + path)
            h0 = 1 + width
            e0 = base + width
            hk8 = bytes(record[thin : thin + 32] + record[e0 : e0 + 8])
            return (LEAF, bytes(record[h0 : h0 + 32]), hk8)
        data = bytes(record)
        self.put(self.node_tag + self.version8 + path, data[:thin])
        hks = data[thin:]
        if hks != old_hks:
            self.put(self.hks_tag + path, hks)
        if path[0] <= self.cache_depth:
            self.cache[path] = data
        return (INTERNAL, _sha256(data[:base]).digest(), self.version8)

    def _build(self, depth: int, entries: list[Entry]) -> Slot:
        """The subtree at ``depth`` holding exactly ``entries`` (sorted by hk)."""
        if len(entries) == 1:
            hk, version8, lh = entries[0]
            return (LEAF, lh, hk + version8)
        record = new_record(depth)
        i = 0
        n = len(entries)
        while i < n:
            index = slot_index(entries[i][0], depth)
            j = i + 1
            while j < n and slot_index(entries[j][0], depth) == index:
                j += 1
            write_slot(record, index, self._build(depth + 1, entries[i:j]))
            i = j
        return self._finish(record, node_path(depth, entries[0][0]), None)
