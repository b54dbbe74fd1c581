"""Byte layout of the Merkle store: record format, hashing rules and database key layout.

Tree
    A trie over ``hk = sha256(key)``. Levels 0-3 branch on one nibble of hk (16 slots), deeper
    levels on one byte (256 slots): level L's slot index is nibble L for L < 4 and byte
    ``hk[L - 2]`` from level 4 on. A subtree holding exactly one key is that key's leaf; a
    subtree holding two or more is an internal node. The shape is therefore a function of the
    set of keys alone, and so is the root.

    Why two widths: the top levels are shared by every update of a commit, so narrow nodes keep
    them (and proofs) small; at the bottom a 256-wide node absorbs what would otherwise be
    one or two more sparse 16-wide levels, so a key update rewrites fewer nodes (about 1.4
    per key instead of 2 for 10k-key batches at 1M keys).

    leaf hash         sha256(0x00 || hk || sha256(value))
    narrow node hash  sha256(0x01 || bitmap(2)  || hashes of the occupied slots, in order)
    wide node hash    sha256(0x02 || bitmap(32) || hashes of the occupied slots, in order)
    empty tree        sha256(b"")

Internal node record (compact; its first 1 + W + 32n bytes are exactly the hash input)
    tag(1: 0x01 narrow, 0x02 wide) | bitmap(W) | n child hashes | leafmap(W) | n versions(8)
    | hks(32) of the leaf children
    W = 2 (narrow) or 32 (wide) bytes, big-endian, bit i for slot i. A child's version is the
    version its value (leaf) or node (internal) was written at; the key hashes of the leaf
    children come last, in slot order. Leaves live inline in their parent, so a key update
    rewrites the nodes on its path and nothing else. A slot is read or replaced by offset
    arithmetic (popcounts) and slice assignment: nothing is parsed.

    The database holds a node without its hks (the "thin" record, its first 1 + 2W + 40n
    bytes): they are 40% of a wide node's bytes and change only when a node's set of leaves changes, not
    when a key gets a new value (the common write). The latest tree's hks are kept per path
    in ``x`` (rewritten only when they change); the in-memory cache holds whole records.
    A historic tree's leaf is identified, when a proof needs it, through the ``k`` index.

Database keys (under the store's prefix)
    b"n" version(8) depth(1) packed-path   internal node written at ``version``
    b"r" version(8)                        root slot of that version (kind, hash, extra)
    b"v" escaped-key 0x00 0x00 location(8) a value (see Values)
    b"t" version(8)                        full database keys that became stale then (pruning)
    b"k" hk                                key (to find a leaf's value for absence proofs)
    b"x" packed-path                       hks of the latest tree's node at that path
    b"m"                                   metadata: latest version, oldest kept version,
                                           value slots per key (0: versioned values)

Values
    A leaf's version field in its parent's record is its value's location, and so is the end
    of the value's database key. Two layouts, fixed when the store is created:

    versioned (keep_versions 0, or more than MAX_RING)
        location = the version written at; the key ends with ~version (newest first: a seek
        finds the newest at or below a version); stored: 0x01 || value, or b"" for a deletion. Replaced entries are listed as
        stale and deleted by pruning: one random delete per update.
    slots (keep_versions K, 1 <= K <= MAX_RING)
        location = creation version of the key (7) || slot (1); a key's writes cycle through
        slots 0..K-1, each write overwriting the one K writes back. That one is visible in no
        kept version: the K-1 writes after it took K-1 distinct versions, so its successor was
        written at V-K+1 or before, the oldest version kept after commit V. Stored: version(8)
        || 0x01 || value, or version(8) alone for a deletion; a read at V takes the key's entry
        with the highest version <= V. An update is one put and no delete. A deletion writes
        its tombstone to the next slot and lists the K slots as stale; a key created again
        starts at slot 0 under its new creation version, apart from the old entries.
"""

from __future__ import annotations

import hashlib

ZERO32 = bytes(32)

EMPTY = 0
LEAF = 1
INTERNAL = 2

EMPTY_ROOT = hashlib.sha256(b"").digest()
LEAF_PREFIX = b"\x00"
NARROW_TAG = 1
WIDE_TAG = 2
NARROW_LEVELS = 4
MAX_LEVEL = NARROW_LEVELS + 32 - NARROW_LEVELS // 2  # 34: the last byte of hk

NODE_TAG = b"n"
ROOT_TAG = b"r"
VALUE_TAG = b"v"
KEY_TAG = b"k"
STALE_TAG = b"t"
HKS_TAG = b"x"
META_KEY = b"m"

MAX_VERSION = (1 << 64) - 1
MAX_RING = 16  # slots per key at most: a read scans them all
LIVE = b"\x01"  # first byte of a stored value; a deletion is stored as b""

# A slot as the update code passes it around: (kind, hash, extra).
Slot = tuple[int, bytes, bytes]
EMPTY_SLOT: Slot = (EMPTY, ZERO32, b"")


def v8(version: int) -> bytes:
    return version.to_bytes(8, "big")


def slot_index(hk: bytes, level: int) -> int:
    """The slot of ``hk`` in a node at ``level``."""
    if level < NARROW_LEVELS:
        byte = hk[level >> 1]
        return byte & 15 if level & 1 else byte >> 4
    return hk[level - 2]


def node_path(level: int, hk: bytes) -> bytes:
    """The position of the node at ``level`` on the path of ``hk``: level and packed prefix."""
    if level >= NARROW_LEVELS:
        return bytes((level,)) + hk[: level - 2]
    if level & 1:
        return bytes((level,)) + hk[: level >> 1] + bytes((hk[level >> 1] & 0xF0,))
    return bytes((level,)) + hk[: level >> 1]


def node_key(version8: bytes, level: int, hk: bytes) -> bytes:
    """Key of the internal node at ``level`` on the path of ``hk``, written at ``version8``."""
    return NODE_TAG + version8 + node_path(level, hk)


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


def ring_successors(ring: int) -> tuple[bytes, ...]:
    """Slot number -> the next slot's byte, for ``ring`` slots per key."""
    return tuple(bytes(((i + 1) % ring,)) for i in range(ring))


def ring_slots(ring: int) -> list[bytes]:
    return [bytes((i,)) for i in range(ring)]


def leaf_hash(hk: bytes, value: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + hk + hashlib.sha256(value).digest()).digest()


def encode_root(slot: Slot) -> bytes:
    return bytes((slot[0],)) + slot[1] + slot[2]


def decode_root(data: bytes) -> Slot:
    return (data[0], data[1:33], data[33:])


def read_slot(record: bytes | bytearray, index: int) -> Slot:
    """Slot ``index`` of a whole (in-memory) internal node record."""
    width = 2 if record[0] == NARROW_TAG else 32
    bitmap = int.from_bytes(record[1 : 1 + width], "big")
    bit = 1 << index
    if not bitmap & bit:
        return EMPTY_SLOT
    below = bit - 1
    pos = (bitmap & below).bit_count()
    count = bitmap.bit_count()
    base = 1 + width + (count << 5)
    leafmap = int.from_bytes(record[base : base + width], "big")
    h0 = 1 + width + (pos << 5)
    e0 = base + width + (pos << 3)
    if not leafmap & bit:
        return (INTERNAL, bytes(record[h0 : h0 + 32]), bytes(record[e0 : e0 + 8]))
    k0 = base + width + (count << 3) + ((leafmap & below).bit_count() << 5)
    return (LEAF, bytes(record[h0 : h0 + 32]), bytes(record[k0 : k0 + 32] + record[e0 : e0 + 8]))


def read_thin_slot(record: bytes | bytearray, index: int) -> tuple[int, bytes, bytes]:
    """(kind, hash, version8) of slot ``index``; works on thin records (no hks) too."""
    width = 2 if record[0] == NARROW_TAG else 32
    bitmap = int.from_bytes(record[1 : 1 + width], "big")
    bit = 1 << index
    if not bitmap & bit:
        return EMPTY, ZERO32, b""
    pos = (bitmap & (bit - 1)).bit_count()
    base = 1 + width + (bitmap.bit_count() << 5)
    leafmap = int.from_bytes(record[base : base + width], "big")
    h0 = 1 + width + (pos << 5)
    e0 = base + width + (pos << 3)
    kind = LEAF if leafmap & bit else INTERNAL
    return kind, bytes(record[h0 : h0 + 32]), bytes(record[e0 : e0 + 8])


def write_slot(record: bytearray, index: int, slot: Slot) -> None:
    """Replace slot ``index`` of ``record`` in place (inserting or removing bytes as needed)."""
    kind = slot[0]
    width = 2 if record[0] == NARROW_TAG else 32
    bitmap = int.from_bytes(record[1 : 1 + width], "big")
    bit = 1 << index
    below = bit - 1
    pos = (bitmap & below).bit_count()
    count = bitmap.bit_count()
    base = 1 + width + (count << 5)
    leafmap = int.from_bytes(record[base : base + width], "big")
    e0 = base + width + (pos << 3)
    k0 = base + width + (count << 3) + ((leafmap & below).bit_count() << 5)
    occupied = bitmap & bit
    old_hk = 32 if leafmap & bit else 0
    # Back to front, so the offsets computed above stay valid.
    record[k0 : k0 + old_hk] = slot[2][:32] if kind == LEAF else b""
    if kind == EMPTY:
        record[e0 : e0 + 8 if occupied else e0] = b""
    else:
        record[e0 : e0 + 8 if occupied else e0] = slot[2][-8:]
    leafmap = leafmap | bit if kind == LEAF else leafmap & ~bit
    record[base : base + width] = leafmap.to_bytes(width, "big")
    h0 = 1 + width + (pos << 5)
    if kind == EMPTY:
        record[h0 : h0 + 32 if occupied else h0] = b""
        bitmap &= ~bit
    else:
        record[h0 : h0 + 32 if occupied else h0] = slot[1]
        bitmap |= bit
    record[1 : 1 + width] = bitmap.to_bytes(width, "big")


_EMPTY_NARROW = bytes((NARROW_TAG,)) + bytes(4)
_EMPTY_WIDE = bytes((WIDE_TAG,)) + bytes(64)


def new_record(level: int) -> bytearray:
    """An internal node record for ``level`` with no occupied slot (see :func:`write_slot`)."""
    return bytearray(_EMPTY_NARROW if level < NARROW_LEVELS else _EMPTY_WIDE)


def record_shape(record: bytes | bytearray) -> tuple[int, int, int]:
    """(width, count, base): bitmap width, occupied slots, offset of the leafmap.

    ``record[:base]`` is the node's hash input.
    """
    width = 2 if record[0] == NARROW_TAG else 32
    count = int.from_bytes(record[1 : 1 + width], "big").bit_count()
    return width, count, 1 + width + (count << 5)
