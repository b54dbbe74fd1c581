"""One commit's batch update of the radix-16 trie (see ``layout`` for the format).

The pending writes are sorted by key hash and pushed down the tree together, so every node on
the union of their paths is loaded, patched and hashed exactly once per commit, however many
keys pass through it. Records are patched in place by offset arithmetic and slice assignment:
the per-node work is a handful of C-level copies and one SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from state.store.layout import (
    EMPTY,
    EMPTY_SLOT,
    INTERNAL,
    LEAF,
    LEAF_EXTRA,
    LEAF_PREFIX,
    NODE_EXTRA,
    NODE_TAG,
    Slot,
    new_record,
    node_path,
    read_slot,
    write_slot,
)

_sha256 = hashlib.sha256

# One pending write: (hk, key, value or None for a deletion, sha256(value) or None).
Op = tuple[bytes, bytes, bytes | None, bytes | None]
# A leaf while the update rebuilds a subtree: (hk, vh, version8, leaf hash).
Entry = tuple[bytes, bytes, bytes, bytes]


def nibble(hk: bytes, depth: int) -> int:
    byte = hk[depth >> 1]
    return byte & 15 if depth & 1 else byte >> 4


class TrieUpdate:
    """Applies sorted ops to the tree as of the last commit and collects the writes of ``version``.

    ``load(version8, path) -> record`` fetches an internal node. Results, read by the store:
    ``node_puts`` (key, record), ``stale_nodes`` (keys no longer in the new tree),
    ``value_puts`` (key, value or None), ``stale_values`` ((key, version) value entries that
    only older versions need).
    """

    def __init__(self, version: int, load: Callable[[bytes, bytes], bytes]) -> None:
        self.version8 = version.to_bytes(8, "big")
        self.load = load
        self.node_puts: list[tuple[bytes, bytes]] = []
        self.stale_nodes: list[bytes] = []
        self.value_puts: list[tuple[bytes, bytes | None]] = []
        self.stale_values: list[tuple[bytes, int]] = []

    def apply(self, root: Slot, ops: list[Op]) -> Slot:
        """The new root slot after ``ops`` (sorted by hk, one op per key)."""
        if not ops:
            return root
        new = self._update_slot(root, 0, ops, 0, len(ops))
        return root if new is None else new

    # -- the recursion -------------------------------------------------------------------

    def _update_slot(self, slot: Slot, depth: int, ops: list[Op], lo: int, hi: int) -> Slot | None:
        """New content of a slot at ``depth`` after ``ops[lo:hi]``; None if nothing changed."""
        kind = slot[0]
        if kind == INTERNAL:
            if hi - lo == 1:
                return self._update_one(slot, depth, ops[lo])
            path = node_path(depth, ops[lo][0])
            record = self.load(slot[2], path)
            return self._update_node(record, NODE_TAG + slot[2] + path, path, depth, ops, lo, hi)
        entries: list[Entry] = []
        version8 = self.version8
        value_puts = self.value_puts
        if kind == EMPTY:
            for i in range(lo, hi):
                hk, key, value, vh = ops[i]
                if value is not None:
                    entries.append((hk, vh, version8, _sha256(LEAF_PREFIX + hk + vh).digest()))
                    value_puts.append((key, value))
            if not entries:
                return None
            return self._build(depth, entries)
        # A leaf: merge it with the ops that reach its slot.
        extra = slot[2]
        leaf_hk = extra[:32]
        leaf_vh = extra[32:64]
        kept = True
        for i in range(lo, hi):
            hk, key, value, vh = ops[i]
            if hk == leaf_hk:
                if value is None:
                    kept = False
                    value_puts.append((key, None))
                    self.stale_values.append((key, int.from_bytes(extra[64:72], "big")))
                elif vh != leaf_vh:
                    kept = False
                    entries.append((hk, vh, version8, _sha256(LEAF_PREFIX + hk + vh).digest()))
                    value_puts.append((key, value))
                    self.stale_values.append((key, int.from_bytes(extra[64:72], "big")))
            elif value is not None:
                entries.append((hk, vh, version8, _sha256(LEAF_PREFIX + hk + vh).digest()))
                value_puts.append((key, value))
        if kept:
            if not entries:
                return None
            entries.append((leaf_hk, leaf_vh, extra[64:72], slot[1]))
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
        hk = op[0]
        stack = []
        load = self.load
        while slot[0] == INTERNAL:
            version8 = slot[2]
            path = node_path(depth, hk)
            record = load(version8, path)
            b = hk[depth >> 1]
            nib = b & 15 if depth & 1 else b >> 4
            bitmap = (record[1] << 8) | record[2]
            bit = 1 << nib
            base = 3 + (bitmap.bit_count() << 5)
            if bitmap & bit:
                below = bit - 1
                pos = (bitmap & below).bit_count()
                leafmap = (record[base] << 8) | record[base + 1]
                leaves_below = (leafmap & below).bit_count()
                h0 = 3 + (pos << 5)
                e0 = base + 2 + LEAF_EXTRA * leaves_below + NODE_EXTRA * (pos - leaves_below)
                if leafmap & bit:
                    slot = (LEAF, record[h0 : h0 + 32], record[e0 : e0 + LEAF_EXTRA])
                else:
                    slot = (INTERNAL, record[h0 : h0 + 32], record[e0 : e0 + NODE_EXTRA])
            else:
                h0 = e0 = 0
                slot = EMPTY_SLOT
            stack.append((record, version8, path, nib, slot[0], h0, e0, base))
            depth += 1
        new = self._update_slot(slot, depth, [op], 0, 1)
        if new is None:
            return None
        stale = self.stale_nodes
        puts = self.node_puts
        tag = NODE_TAG + self.version8
        while stack:
            record, version8, path, nib, old_kind, h0, e0, base = stack.pop()
            stale.append(NODE_TAG + version8 + path)
            patched = bytearray(record)
            kind = new[0]
            if kind == old_kind and kind != EMPTY:
                patched[h0 : h0 + 32] = new[1]
                patched[e0 : e0 + len(new[2])] = new[2]
                data = bytes(patched)
                puts.append((tag + path, data))
                new = (INTERNAL, _sha256(data[:base]).digest(), self.version8)
            else:
                write_slot(patched, nib, new)
                new = self._finish(patched, path)
        return new

    def _update_node(
        self, record: bytes, key: bytes, path: bytes, depth: int, ops: list[Op], lo: int, hi: int
    ) -> Slot | None:
        new = bytearray(record)
        changed = False
        i = lo
        shift_low = depth & 1
        byte_at = depth >> 1
        while i < hi:
            b = ops[i][0][byte_at]
            nib = b & 15 if shift_low else b >> 4
            j = i + 1
            while j < hi:
                b = ops[j][0][byte_at]
                if (b & 15 if shift_low else b >> 4) != nib:
                    break
                j += 1
            slot = self._update_slot(read_slot(record, nib), depth + 1, ops, i, j)
            if slot is not None:
                changed = True
                write_slot(new, nib, slot)
            i = j
        if not changed:
            return None
        self.stale_nodes.append(key)
        return self._finish(new, path)

    def _finish(self, record: bytearray, path: bytes) -> Slot:
        """Canonical form of a patched node: empty, a lone leaf moved up, or a stored node."""
        bitmap = (record[1] << 8) | record[2]
        count = bitmap.bit_count()
        if count == 0:
            return EMPTY_SLOT
        if count == 1:
            base = 3 + 32
            if record[base] or record[base + 1]:  # the one child is a leaf: no node for one key
                return (LEAF, bytes(record[3:35]), bytes(record[base + 2 : base + 74]))
        data = bytes(record)
        digest = _sha256(data[: 3 + (count << 5)]).digest()
        self.node_puts.append((NODE_TAG + self.version8 + path, data))
        return (INTERNAL, digest, self.version8)

    def _build(self, depth: int, entries: list[Entry]) -> Slot:
        """The subtree at ``depth`` holding exactly ``entries`` (sorted by hk)."""
        if len(entries) == 1:
            hk, vh, version8, lh = entries[0]
            return (LEAF, lh, hk + vh + version8)
        record = new_record()
        i = 0
        n = len(entries)
        while i < n:
            nib = nibble(entries[i][0], depth)
            j = i + 1
            while j < n and nibble(entries[j][0], depth) == nib:
                j += 1
            write_slot(record, nib, self._build(depth + 1, entries[i:j]))
            i = j
        return self._finish(record, node_path(depth, entries[0][0]))
