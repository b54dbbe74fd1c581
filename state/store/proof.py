"""Standalone verification of state proofs: what a light client (or another chain) runs.

Depends on nothing but ``hashlib`` and the canonical codec, never on the store, so it can be
copied out alone. The rules it checks are those of ``state.store.layout``:

    leaf hash      sha256(0x00 || sha256(key) || sha256(value))
    internal hash  sha256(0x01 || bitmap(2, big-endian) || hashes of the occupied slots in order)
    empty tree     sha256(b"")

A proof is ``[nodes, leaf]``: ``nodes`` are the internal nodes on the path of ``sha256(key)``,
root first, each as ``[bitmap, sibling hashes]`` (bit i set when slot i is occupied; the
siblings are the occupied slots other than the path's, in slot order, or all occupied slots
when the path ends at an empty slot); ``leaf`` is None or ``[hk, vh]`` of another key's leaf
sitting where the path ends, which proves the key absent.
"""

from __future__ import annotations

import hashlib
from typing import Any

from consensus import codec

EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_DEPTH = 64
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


def _nibble(hk: bytes, depth: int) -> int:
    byte = hk[depth >> 1]
    return byte & 15 if depth & 1 else byte >> 4


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
            if _nibble(other_hk, d) != _nibble(hk, d):
                return False
        current = hashlib.sha256(b"\x00" + other_hk + other_vh).digest()
    for d in range(depth - 1, -1, -1):
        entry = nodes[d]
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            return False
        bitmap, siblings = entry
        if type(bitmap) is not int or not 0 < bitmap < 1 << 16:
            return False
        if not isinstance(siblings, (list, tuple)):
            return False
        nib = _nibble(hk, d)
        on_path = bitmap >> nib & 1
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
            parts.insert((bitmap & ((1 << nib) - 1)).bit_count(), current)
        current = hashlib.sha256(b"\x01" + bitmap.to_bytes(2, "big") + b"".join(parts)).digest()
    return current == root
