"""Byte layout of the Merkle store: record format, hashing rules and database key layout.

Tree
    A radix-16 trie over ``hk = sha256(key)``. A subtree holding exactly one key is that key's
    leaf; a subtree holding two or more is an internal node with 16 slots, one per nibble. The
    shape is therefore a function of the set of keys alone, and so is the root.

    leaf hash      sha256(0x00 || hk || sha256(value))
    internal hash  sha256(0x01 || bitmap(2) || hashes of the occupied slots, in slot order)
    empty tree     sha256(b"")

Internal node record (compact; its first 3 + 32n bytes are exactly the hash input)
    0x01 | bitmap(2) | n child hashes (32 each) | leafmap(2) | n extras
    extra of a leaf child: hk(32) vh(32) version(8); of an internal child: version(8).
    bitmap bit i: slot i occupied; leafmap bit i: slot i holds a leaf. Leaves live inline in
    their parent, so a key update rewrites the nodes on its path and nothing else. A slot is
    read or replaced by offset arithmetic (popcounts) and slice assignment: nothing is parsed.

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
LEAF_EXTRA = 72
NODE_EXTRA = 8

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
EMPTY_SLOT: Slot = (EMPTY, ZERO32, b"")


def v8(version: int) -> bytes:
    return version.to_bytes(8, "big")


def node_path(depth: int, hk: bytes) -> bytes:
    """The position of the node at ``depth`` on the path of ``hk``: depth and packed nibbles."""
    if depth & 1:
        return bytes((depth,)) + hk[: depth >> 1] + bytes((hk[depth >> 1] & 0xF0,))
    return bytes((depth,)) + hk[: depth >> 1]


def node_key(version8: bytes, depth: int, hk: bytes) -> bytes:
    """Key of the internal node at ``depth`` on the path of ``hk``, written at ``version8``."""
    return NODE_TAG + version8 + node_path(depth, hk)


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
    return (data[0], data[1:33], data[33:])


def read_slot(record: bytes | bytearray, nib: int) -> Slot:
    """The slot ``nib`` of an internal node record."""
    bitmap = (record[1] << 8) | record[2]
    bit = 1 << nib
    if not bitmap & bit:
        return EMPTY_SLOT
    below = bit - 1
    pos = (bitmap & below).bit_count()
    base = 3 + (bitmap.bit_count() << 5)
    leafmap = (record[base] << 8) | record[base + 1]
    leaves_below = (leafmap & below).bit_count()
    offset = base + 2 + LEAF_EXTRA * leaves_below + NODE_EXTRA * (pos - leaves_below)
    h0 = 3 + (pos << 5)
    if leafmap & bit:
        return (LEAF, bytes(record[h0 : h0 + 32]), bytes(record[offset : offset + LEAF_EXTRA]))
    return (INTERNAL, bytes(record[h0 : h0 + 32]), bytes(record[offset : offset + NODE_EXTRA]))


def write_slot(record: bytearray, nib: int, slot: Slot) -> None:
    """Replace slot ``nib`` of ``record`` in place (inserting or removing bytes as needed)."""
    kind = slot[0]
    bitmap = (record[1] << 8) | record[2]
    bit = 1 << nib
    below = bit - 1
    pos = (bitmap & below).bit_count()
    count = bitmap.bit_count()
    base = 3 + (count << 5)
    leafmap = (record[base] << 8) | record[base + 1]
    leaves_below = (leafmap & below).bit_count()
    offset = base + 2 + LEAF_EXTRA * leaves_below + NODE_EXTRA * (pos - leaves_below)
    if bitmap & bit:
        old_extra = LEAF_EXTRA if leafmap & bit else NODE_EXTRA
        old_hash = 32
    else:
        old_extra = old_hash = 0
    # Back to front, so the offsets computed above stay valid.
    record[offset : offset + old_extra] = slot[2]
    leafmap = leafmap | bit if kind == LEAF else leafmap & ~bit
    record[base : base + 2] = leafmap.to_bytes(2, "big")
    h0 = 3 + (pos << 5)
    if kind == EMPTY:
        record[h0 : h0 + old_hash] = b""
        bitmap &= ~bit
    else:
        record[h0 : h0 + old_hash] = slot[1]
        bitmap |= bit
    record[1:3] = bitmap.to_bytes(2, "big")


def new_record() -> bytearray:
    """An internal node record with no occupied slot (filled by :func:`write_slot`)."""
    return bytearray(b"\x01\x00\x00\x00\x00")


def record_hash_area(record: bytes | bytearray) -> int:
    """Length of the prefix of ``record`` that is hashed: 0x01, bitmap, child hashes."""
    return 3 + ((((record[1] << 8) | record[2]).bit_count()) << 5)
