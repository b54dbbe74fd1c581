"""The checks after a nemesis run, over what was seen from outside: each node's store read after
the nodes stopped, the clients' acknowledgements, and the recovery times the nemesis measured.

Every check is a pure function returning a list of problems (empty: it holds), so
tests/fault/test_checks.py can feed each one doctored inputs (a tampered store, a lost tx, a
slow recovery) and see it fail.

- safety: no two nodes hold different blocks at one height, nor different app hashes after it;
- acknowledged: every tx a client got a committed result for is in that block on every node,
  with the same result, and every node reached that height (nothing lost after restarts);
- liveness: after each fault healed the chain moved on within the bound stated for its kind;
- bursts: a client burst went past capacity (some txs refused for load: admission control was
  exercised, not just a busy node), the node still admitted some, and blocks kept committing
  during it (the chain degrades instead of stopping);
- disk full: a node whose data disk filled stopped by itself with the storage-failure exit
  status (74), not hanging or running on without its writes (then liveness: it came back
  after the space was freed and it was restarted);
- equivocation: evidence against the byzantine validator is in a block on every node, and the
  validator set after it no longer holds the validator (jailed);
- the clearing invariants come from :func:`localnet.demo.check_invariants` over RPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from consensus.types import Block
from node.blockstore import BlockStore, open_db
from node.storage_failure import EXIT_STORAGE_FAILURE
from primitives.hashing import sha256


@dataclass(frozen=True)
class BlockFacts:
    """What one node stored at one height."""

    block_hash: bytes
    app_hash: bytes
    """The state after executing this block (the next header's app hash)."""
    txs: tuple[bytes, ...]
    """Hashes of the block's txs, in order."""
    results: tuple[bytes, ...]
    """The encoded per-tx results, in order."""
    evidence_against: tuple[bytes, ...]
    """Addresses of validators the block's evidence proves double-signed."""


Chain = Mapping[int, BlockFacts]
"""One node's stored blocks by height."""


@dataclass(frozen=True)
class Ack:
    """A client's ``broadcast_tx_commit`` answered with a committed result."""

    tx_hash: bytes
    height: int
    code: int
    node: str


@dataclass(frozen=True)
class Recovery:
    """One healed fault: how long until every node moved ``PROGRESS_BLOCKS`` past where the
    fastest stood at the heal (None: not within the wait)."""

    kind: str
    seconds: float | None
    bound_s: float


def read_store(store_dir: Path) -> dict[int, BlockFacts]:
    """Every block a stopped node holds (its LevelDB opened read-only by this process)."""
    db = open_db(str(store_dir), write_buffer_mb=4)
    try:
        blocks = BlockStore(db)
        latest = blocks.latest()
        if latest is None:
            return {}
        decoded: dict[int, Block] = {}
        for height in range(max(1, blocks.earliest_height()), latest.height + 1):
            raw = blocks.block(height)
            if raw is not None:
                decoded[height] = Block.decode(raw)
        chain = {}
        for height, block in decoded.items():
            following = decoded.get(height + 1)
            app_hash = following.header.app_hash if following else latest.app_hash
            chain[height] = BlockFacts(
                block_hash=block.block_id().hash, app_hash=app_hash,
                txs=tuple(sha256(tx) for tx in block.txs),
                results=tuple(blocks.results(height) or ()),
                evidence_against=tuple(e.validator_address for e in block.evidence))
        return chain
    finally:
        db.close()


def check_safety(chains: Mapping[str, Chain]) -> list[str]:
    """No two nodes with different blocks, or different app hashes, at any height."""
    problems = []
    heights = sorted({h for chain in chains.values() for h in chain})
    for height in heights:
        held = {name: chain[height] for name, chain in sorted(chains.items()) if height in chain}
        if len({f.block_hash for f in held.values()}) > 1:
            problems.append(f"height {height}: nodes commit different blocks: "
                            + ", ".join(f"{n}={f.block_hash.hex()[:12]}" for n, f in held.items()))
        elif len({f.app_hash for f in held.values()}) > 1:
            problems.append(f"height {height}: app hashes differ: "
                            + ", ".join(f"{n}={f.app_hash.hex()[:12]}" for n, f in held.items()))
    return problems


def check_acknowledged(acks: Iterable[Ack], chains: Mapping[str, Chain]) -> list[str]:
    """Every acknowledged tx at its height on every node, same result; no node short of it."""
    problems = []
    for ack in acks:
        for name, chain in sorted(chains.items()):
            facts = chain.get(ack.height)
            if facts is None:
                problems.append(f"tx {ack.tx_hash.hex()[:12]} acknowledged at height {ack.height} by "
                                f"{ack.node}: {name} never stored that height")
            elif ack.tx_hash not in facts.txs:
                problems.append(f"tx {ack.tx_hash.hex()[:12]} acknowledged at height {ack.height} by "
                                f"{ack.node} is not in {name}'s block {ack.height}")
    for height in sorted({a.height for a in acks}):
        results = {name: chain[height].results for name, chain in chains.items() if height in chain}
        if len(set(results.values())) > 1:
            problems.append(f"height {height}: tx results differ between nodes")
    return problems


def check_liveness(recoveries: Iterable[Recovery]) -> list[str]:
    """Each healed fault followed by progress within its bound."""
    problems = []
    for r in recoveries:
        if r.seconds is None:
            problems.append(f"{r.kind}: no progress within {r.bound_s:g} s of healing")
        elif r.seconds > r.bound_s:
            problems.append(f"{r.kind}: progress {r.seconds:.1f} s after healing, bound {r.bound_s:g} s")
    return problems


@dataclass(frozen=True)
class Burst:
    """What one client burst met (tests/fault/testbed.py ``burst``)."""

    admitted: int
    refused_for_load: int
    blocks_during: int
    """Blocks the fastest node committed between the burst's start and its end."""


MIN_BLOCKS_DURING_BURST = 2


def check_bursts(bursts: Iterable[Burst]) -> list[str]:
    """Each burst refused some txs for load, admitted some, and did not stop the chain."""
    problems = []
    for k, b in enumerate(bursts):
        if b.refused_for_load == 0:
            problems.append(f"burst {k}: nothing refused for load ({b.admitted} admitted): it never "
                            f"passed capacity, so admission control went untested")
        if b.admitted == 0:
            problems.append(f"burst {k}: nothing admitted ({b.refused_for_load} refused): clients shut out")
        if b.blocks_during < MIN_BLOCKS_DURING_BURST:
            problems.append(f"burst {k}: {b.blocks_during} blocks committed during it, fewer than "
                            f"{MIN_BLOCKS_DURING_BURST}: the chain stopped instead of degrading")
    return problems


def check_disk_full(exit_codes: Iterable[int]) -> list[str]:
    """Each node that met a full disk stopped with ``EXIT_STORAGE_FAILURE`` (-1: still running)."""
    problems = []
    for k, code in enumerate(exit_codes):
        if code == -1:
            problems.append(f"disk-full {k}: the node kept running on a full disk")
        elif code != EXIT_STORAGE_FAILURE:
            problems.append(f"disk-full {k}: the node exited with {code}, not {EXIT_STORAGE_FAILURE} "
                            f"(a failed write)")
    return problems


def check_equivocation(byzantine: bytes, chains: Mapping[str, Chain],
                       validators_after: Mapping[str, Iterable[bytes]]) -> list[str]:
    """Evidence against ``byzantine`` committed on every node, and every node's latest
    validator set (``validators_after``, read over RPC) without it."""
    problems = []
    for name, chain in sorted(chains.items()):
        if not any(byzantine in facts.evidence_against for facts in chain.values()):
            problems.append(f"{name}: no committed evidence against {byzantine.hex()[:12]}")
    for name, addresses in sorted(validators_after.items()):
        if byzantine in set(addresses):
            problems.append(f"{name}: {byzantine.hex()[:12]} is still a validator (not jailed)")
    return problems


def check_progress(chains: Mapping[str, Chain], at_least: int) -> list[str]:
    """Every node stored at least ``at_least`` blocks (a run that never moved proves nothing)."""
    return [f"{name} stored {len(chain)} blocks, fewer than {at_least}"
            for name, chain in sorted(chains.items()) if len(chain) < at_least]
