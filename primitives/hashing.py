"""Hashes shared by every layer: SHA-256 and an RFC 6962 Merkle root over a list of leaves."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from primitives.codec import encode

HASH_SIZE = 32
EMPTY_HASH = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash_value(value: Any) -> bytes:
    """SHA-256 of the canonical encoding of ``value``."""
    return hashlib.sha256(encode(value)).digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash (as CometBFT's ``merkle.HashFromByteSlices``).

    Leaves and inner nodes carry distinct prefixes, so no inner node can pose as a leaf.
    The empty list hashes to SHA-256 of the empty string.
    """
    if not leaves:
        return EMPTY_HASH
    level = [leaf_hash(leaf) for leaf in leaves]
    return _root_of_hashes(level)


def merkle_aunts(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The inclusion proof of ``leaves[index]`` in :func:`merkle_root`: the sibling hashes from
    the leaf's level up to the root's children (CometBFT's ``Proof.Aunts`` order)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    return _aunts([leaf_hash(leaf) for leaf in leaves], index)


def _aunts(hashes: list[bytes], index: int) -> list[bytes]:
    if len(hashes) == 1:
        return []
    split = _largest_power_of_two_below(len(hashes))
    if index < split:
        return _aunts(hashes[:split], index) + [_root_of_hashes(hashes[split:])]
    return _aunts(hashes[split:], index - split) + [_root_of_hashes(hashes[:split])]


def _root_of_hashes(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    split = _largest_power_of_two_below(len(hashes))
    return inner_hash(_root_of_hashes(hashes[:split]), _root_of_hashes(hashes[split:]))


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)
