"""The authenticated state store: a versioned radix-16 Merkle trie on LevelDB (or in memory).

``MerkleStore`` implements :class:`state.kv.StateStore`; ``verify_proof`` (in ``proof``, which
imports nothing from the store) checks its proofs; ``MemoryDB`` stands in for plyvel in tests.
"""

from state.store.errors import (
    PrunedVersionError,
    StoreCorruptionError,
    StoreError,
    UnknownVersionError,
)
from state.store.memdb import MemoryDB
from state.store.merkle import MerkleStore
from state.store.proof import decode_proof, encode_proof, verify_proof

__all__ = [
    "MemoryDB",
    "MerkleStore",
    "PrunedVersionError",
    "StoreCorruptionError",
    "StoreError",
    "UnknownVersionError",
    "decode_proof",
    "encode_proof",
    "verify_proof",
]
