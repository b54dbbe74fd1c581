"""Standalone verification of state proofs: what a light client (or another chain) runs.

Depends on nothing but ``hashlib`` and the canonical codec, never on the store, so it can be
copied out alone. The rules it checks are those of ``state.store.layout``:

    leaf hash         sha256(0x00 || sha256(key) || sha256(value))
    narrow node hash  sha256(0x01 || bitmap(2)  || hashes of the occupied slots, in order)
    wide node hash    sha256(0x02 || bitmap(32) || hashes of the occupied slots, in order)
    empty tree        sha256(b"")

Levels 0-3 are narrow (16 slots, indexed by nibble L of sha256(key)), deeper levels wide
(256 slots, indexed by byte L - 2); bitmaps are big-endian, bit i for slot i.

A proof is ``[nodes, leaf]``: ``nodes`` are the internal nodes on the path of ``sha256(key)``,
root first, each as ``[bitmap, sibling hashes]`` (bitmap: 2 or 32 bytes; the siblings are
the occupied slots other than the path's, in slot order, or all occupied slots when the path
ends at an empty slot); ``leaf`` is None or ``[hk, vh]`` of another key's leaf sitting where
the path ends, which proves the key absent.
"""

from __future__ import annotations

import hashlib
from typing import Any

from primitives import codec

EMPTY_ROOT = hashlib.sha256(b"").digest()
NARROW_LEVELS = 4
MAX_DEPTH = 34
MAX_PROOF_BYTES = 64 * 1024


def encode_proof(proof: list[Any]) -> bytes:
    return codec.encode(proof)


def decode_proof(data: bytes) -> list[Any]:
    """Decode a proof's canonical bytes; the shape is checked by :func:`verify_proof`."""
    value = codec.decode(data, max_bytes=MAX_PROOF_BYTES)
    if not isinstance(value, list):
        raise codec.CodecError("a state proof is a list")
    return value


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Any) -> bool:
    """True iff ``proof`` shows that under ``root`` the ``key`` maps to ``value`` (None: absent).

    Never raises on malformed input: any shape error is simply a failed verification.
    """
    try:
        return _verify(root, key, value, proof)
    except (TypeError, ValueError, IndexError):
        return False


def _slot_index(hk: bytes, level: int) -> int:
    if level < NARROW_LEVELS:
        byte = hk[level >> 1]
        return byte & 15 if level & 1 else byte >> 4
    return hk[level - 2]


def _is_hash(value: Any) -> bool:
    return type(value) is bytes and len(value) == 32


def _verify(root: bytes, key: bytes, value: bytes | None, proof: Any) -> bool:
    if not _is_hash(root) or not isinstance(key, (bytes, bytearray)):
        return False
    if not isinstance(proof, (list, tuple)) or len(proof) != 2:
        return False
    nodes, leaf = proof
    if not isinstance(nodes, (list, tuple)) or len(nodes) > MAX_DEPTH:
        return False
    hk = hashlib.sha256(key).digest()
    depth = len(nodes)
    current: bytes | None
    if value is not None:
        if leaf is not None or not isinstance(value, (bytes, bytearray)):
            return False
        current = hashlib.sha256(b"\x00" + hk + hashlib.sha256(value).digest()).digest()
    elif leaf is None:
        if depth == 0:
            return root == EMPTY_ROOT
        current = None  # the path ends at an empty slot of the deepest node
    else:
        if not isinstance(leaf, (list, tuple)) or len(leaf) != 2:
            return False
        other_hk, other_vh = leaf
        if not _is_hash(other_hk) or not _is_hash(other_vh) or other_hk == hk:
            return False
        for d in range(depth):
            if _slot_index(other_hk, d) != _slot_index(hk, d):
                return False
        current = hashlib.sha256(b"\x00" + other_hk + other_vh).digest()
    for d in range(depth - 1, -1, -1):
        entry = nodes[d]
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            return False
        bitmap, siblings = entry
        narrow = d < NARROW_LEVELS
        width = 2 if narrow else 32
        if type(bitmap) is not bytes or len(bitmap) != width:
            return False
        bitmap_bytes = bitmap
        bitmap = int.from_bytes(bitmap_bytes, "big")
        if not bitmap:
            return False
        if not isinstance(siblings, (list, tuple)):
            return False
        index = _slot_index(hk, d)
        on_path = bitmap >> index & 1
        if current is None:
            if on_path or len(siblings) != bitmap.bit_count():
                return False
        elif not on_path or len(siblings) != bitmap.bit_count() - 1:
            return False
        for sibling in siblings:
            if not _is_hash(sibling):
                return False
        parts = list(siblings)
        if current is not None:
            parts.insert((bitmap & ((1 << index) - 1)).bit_count(), current)
        tag = b"\x01" if narrow else b"\x02"
        current = hashlib.sha256(tag + bitmap_bytes + b"".join(parts)).digest()
    return current == root
