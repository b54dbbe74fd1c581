"""Benchmark of the authenticated state store on LevelDB.

Prints and writes ``bench/results/store.json``:
  updates_per_s_1k / updates_per_s_10k   key updates per second, root recomputation and the
                                         synced write included, batches of 1k / 10k keys
                                         (wall clock; ``*_thread_cpu``: the caller's CPU only)
  write_ms_10k                           of which the synced LevelDB write (wall, median)
  proof_bytes, proof_verify_ms           encoded proof size and verification time
  disk_bytes_per_key                     database size after compaction over the key count
                                         (with value_slots K, K values per key)
on a store of 1M keys (``--quick``: 100k; ``--out``: another results file).
Run: ``.venv/bin/python bench/store.py [--quick] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import random
import shutil
import statistics
import tempfile
import time
from typing import Any

from node.blockstore import open_db
from state.store import MerkleStore, encode_proof, verify_proof

RESULTS = pathlib.Path(__file__).parent / "results" / "store.json"
VALUE_SIZE = 100
KEEP_VERSIONS = 2
LOAD_BATCH = 50_000


def key_of(i: int) -> bytes:
    return b"acct/%08d" % i


def value_of(i: int, round_: int) -> bytes:
    seed = hashlib.sha256(b"%d/%d" % (i, round_)).digest()
    return (seed * 4)[:VALUE_SIZE]


def dir_size(path: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())


def load(store: MerkleStore, n: int) -> float:
    started = time.perf_counter()
    for base in range(0, n, LOAD_BATCH):
        for i in range(base, min(n, base + LOAD_BATCH)):
            store.set(key_of(i), value_of(i, 0))
        store.commit()
    return n / (time.perf_counter() - started)


def updates(
    store: MerkleStore, db: Any, n: int, batch: int, rounds: int, rng: random.Random
) -> dict:
    """Median rates over ``rounds`` commits of ``batch`` random existing keys.

    ``median``: wall clock (set + commit + synced write). ``thread_median``: CPU time of the
    calling thread only, i.e. without LevelDB's background compaction thread and without time
    lost to other processes on a shared machine.
    ``write_ms``: median wall time of the synced LevelDB write alone (the commit stages into a
    batch the bench writes, as the node's block store does).
    """
    rates, thread_rates, writes = [], [], []
    for round_ in range(rounds):
        picks = rng.sample(range(n), batch)
        values = [value_of(i, round_ + 1) for i in picks]
        wall, cpu = time.perf_counter(), time.thread_time()
        for i, value in zip(picks, values, strict=True):
            store.set(key_of(i), value)
        out = db.write_batch(sync=True)
        store.commit(out)
        written = time.perf_counter()
        out.write()
        done = time.perf_counter()
        writes.append(done - written)
        rates.append(batch / (done - wall))
        thread_rates.append(batch / max(time.thread_time() - cpu, 1e-9))
    return {
        "median": statistics.median(rates),
        "thread_median": statistics.median(thread_rates),
        "write_ms": statistics.median(writes) * 1000,
    }


def proofs(store: MerkleStore, n: int, rng: random.Random, count: int = 1000) -> dict:
    root = store.root_hash()
    picks = [rng.randrange(n) for _ in range(count)]
    encoded = []
    for i in picks:
        encoded.append((key_of(i), store.get(key_of(i)), store.prove(key_of(i))))
    sizes = [len(encode_proof(proof)) for _, _, proof in encoded]
    started = time.perf_counter()
    for key, value, proof in encoded:
        if not verify_proof(root, key, value, proof):
            raise SystemExit(f"proof of {key!r} failed to verify")
    verify_ms = (time.perf_counter() - started) / count * 1000
    absent = [len(encode_proof(store.prove(b"absent/%d" % i))) for i in range(200)]
    return {
        "proof_bytes": statistics.mean(sizes),
        "proof_bytes_absent": statistics.mean(absent),
        "proof_verify_ms": verify_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k keys instead of 1M")
    parser.add_argument("--keys", type=int, help="store size (overrides --quick)")
    parser.add_argument("--cache-depth", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile one 10k-key commit")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS, help="results file")
    args = parser.parse_args()
    n = args.keys or (100_000 if args.quick else 1_000_000)
    rng = random.Random(2026)
    workdir = tempfile.mkdtemp(prefix="store-bench-")
    try:
        db = open_db(os.path.join(workdir, "db"), write_buffer_mb=64)  # fixed: run against run
        kwargs = {} if args.cache_depth is None else {"cache_depth": args.cache_depth}
        store = MerkleStore(db, keep_versions=KEEP_VERSIONS, **kwargs)
        load_rate = load(store, n)
        print(f"loaded {n} keys at {load_rate:,.0f} keys/s")
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            picks = rng.sample(range(n), 10_000)
            profile.enable()
            for i in picks:
                store.set(key_of(i), value_of(i, 99))
            store.commit()
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        small = updates(store, db, n, 1_000, 20, rng)
        large = updates(store, db, n, 10_000, 16, rng)
        proof = proofs(store, n, rng)
        db.compact_range()
        disk = dir_size(os.path.join(workdir, "db"))
        results = {
            "keys": n,
            "value_bytes": VALUE_SIZE,
            "keep_versions": KEEP_VERSIONS,
            "cache_depth": store.cache_depth,
            "value_slots": store.ring,  # 0: versioned values (see state/store/layout.py)
            "load_keys_per_s": round(load_rate),
            "updates_per_s_1k": round(small["median"]),
            "updates_per_s_10k": round(large["median"]),
            "updates_per_s_1k_thread_cpu": round(small["thread_median"]),
            "updates_per_s_10k_thread_cpu": round(large["thread_median"]),
            "write_ms_10k": round(large["write_ms"], 1),
            "proof_bytes": round(proof["proof_bytes"]),
            "proof_bytes_absent": round(proof["proof_bytes_absent"]),
            "proof_verify_ms": round(proof["proof_verify_ms"], 4),
            "disk_bytes_per_key": round(disk / n, 1),
            "targets": {"updates_per_s_10k": 50_000, "proof_verify_ms": 1.0},
        }
        db.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, value in results.items():
        print(f"{name:>24}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
