"""Child process of the crash test: commits deterministic blocks forever, until SIGKILLed.

Run as ``python crash_child.py DB_PATH``. Block ``h`` always carries the same state changes
(``block_ops(h)``), so the parent can recompute the state of any height from scratch.
"""

from __future__ import annotations

import hashlib
import random
import sys

KEEP_VERSIONS = 5
KEY_SPACE = 3000


def block_ops(height: int) -> list[tuple[bytes, bytes | None]]:
    rng = random.Random(height)
    ops: list[tuple[bytes, bytes | None]] = []
    for j in range(120):
        key = b"k%d" % rng.randrange(KEY_SPACE)
        ops.append((key, b"%d:%d;" % (height, j) * rng.randrange(1, 6)))
    for _ in range(15):
        ops.append((b"k%d" % rng.randrange(KEY_SPACE), None))
    return ops


def block_parts(height: int) -> dict:
    txs = [b"tx-%d-%d" % (height, i) for i in range(1 + height % 4)]
    return {
        "height": height,
        "block_hash": hashlib.sha256(b"block-%d" % height).digest(),
        "block_bytes": b"block-%d|" % height + b"x" * 2000,
        "commit_bytes": b"commit-%d" % height,
        "results": [b"result-" + tx for tx in txs],
        "tx_hashes": [hashlib.sha256(tx).digest() for tx in txs],
    }


def main(path: str) -> None:
    import plyvel

    from node.blockstore import BlockStore
    from state.store import MerkleStore

    db = plyvel.DB(path, create_if_missing=True)
    state = MerkleStore(db, prefix=b"s/", keep_versions=KEEP_VERSIONS)
    blocks = BlockStore(db, prefix=b"b/")
    if state.version < 0:
        state.commit()  # genesis: version 0, empty
    height = max(blocks.latest_height(), 0) + 1
    print("ready", height, flush=True)
    while True:
        for key, value in block_ops(height):
            if value is None:
                state.delete(key)
            else:
                state.set(key, value)
        pending = blocks.stage_block(**block_parts(height))  # as the chain does: block and state
        blocks.write_block(pending, state.commit(pending.batch))  # in one synced batch
        height += 1


if __name__ == "__main__":
    main(sys.argv[1])
