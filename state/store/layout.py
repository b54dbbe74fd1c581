"""Byte layout of the Merkle store: record format, hashing rules and database key layout.

Tree
    A radix-16 trie over ``hk = sha256(key)``. A subtree holding exactly one key is that key's
    leaf; a subtree holding two or more is an internal node with 16 slots, one per nibble. The
    shape is therefore a function of the set of keys alone, and so is the root.

    leaf hash      sha256(0x00 || hk || sha256(value))
    internal hash  sha256(0x01 || child_hash[0] || ... || child_hash[15])   (ZERO32 if empty)
    empty tree     sha256(b"")

Internal node record (fixed size, so nothing is parsed in Python: slots are slices)
    [0:512)      16 child hashes
    [512:528)    16 kinds: 0 empty, 1 leaf, 2 internal
    [528:1680)   16 extras of 72 bytes: leaf -> hk(32) vh(32) version(8); internal -> version(8)
    Leaves live inline in their parent, so a key update rewrites the path and nothing else.

Database keys (under the store's prefix)
    b"n" version(8) depth(1) packed-path   internal node written at ``version``
    b"r" version(8)                        root slot of that version (kind, hash, extra)
    b"v" escaped-key 0x00 0x00 ~version(8) value at version: 0x01 || value, or b"" (deleted)
    b"t" version(8)                        what became stale at that version (for pruning)
    b"m"                                   metadata: latest version, oldest kept version
"""

from __future__ import annotations

import hashlib

ZERO32 = bytes(32)
ZERO64 = bytes(64)
HASH_AREA = 512
KIND_OFF = 512
EXTRA_OFF = 528
EXTRA_SIZE = 72
RECORD_SIZE = EXTRA_OFF + 16 * EXTRA_SIZE

EMPTY = 0
LEAF = 1
INTERNAL = 2

EMPTY_ROOT = hashlib.sha256(b"").digest()
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

NODE_TAG = b"n"
ROOT_TAG = b"r"
VALUE_TAG = b"v"
STALE_TAG = b"t"
META_KEY = b"m"

MAX_VERSION = (1 << 64) - 1
LIVE = b"\x01"  # first byte of a stored value; a deletion is stored as b""

# A slot as the update code passes it around: (kind, hash, extra).
Slot = tuple[int, bytes, bytes]
EMPTY_SLOT: Slot = (EMPTY, ZERO32, bytes(EXTRA_SIZE))


def v8(version: int) -> bytes:
    return version.to_bytes(8, "big")


def node_key(version8: bytes, depth: int, hk: bytes) -> bytes:
    """Key of the internal node at ``depth`` on the path of ``hk``, written at ``version8``."""
    packed = hk[: (depth + 1) >> 1]
    if depth & 1:
        packed = packed[:-1] + bytes((packed[-1] & 0xF0,))
    return NODE_TAG + version8 + bytes((depth,)) + packed


def root_key(version: int) -> bytes:
    return ROOT_TAG + v8(version)


def stale_key(version: int) -> bytes:
    return STALE_TAG + v8(version)


def escape(key: bytes) -> bytes:
    """Order-preserving escape: 0x00 -> 0x00 0xFF, so 0x00 0x00 can end the key."""
    return key.replace(b"\x00", b"\x00\xff")


def value_key(key: bytes, version: int) -> bytes:
    """Versions of one key sort newest first, so a seek finds the newest at or below a version."""
    return VALUE_TAG + escape(key) + b"\x00\x00" + (MAX_VERSION - version).to_bytes(8, "big")


def value_key_floor(key: bytes) -> bytes:
    """Smallest database key of ``key``'s versions (its newest possible version)."""
    return VALUE_TAG + escape(key) + b"\x00\x00"


def value_key_ceiling(key: bytes) -> bytes:
    """A database key just after every version of ``key`` and before any longer key."""
    return VALUE_TAG + escape(key) + b"\x00\x01"


def split_value_key(dbkey: bytes) -> tuple[bytes, int]:
    """(key, version) of a value-table key (without the store prefix)."""
    key = dbkey[1:-10].replace(b"\x00\xff", b"\x00")
    return key, MAX_VERSION - int.from_bytes(dbkey[-8:], "big")


def leaf_hash(hk: bytes, vh: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + hk + vh).digest()


def encode_root(slot: Slot) -> bytes:
    return bytes((slot[0],)) + slot[1] + slot[2]


def decode_root(data: bytes) -> Slot:
    return (data[0], data[1:33], data[33:105])
