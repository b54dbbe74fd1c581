"""One validator's CPU per trade, without network or consensus: check_tx, then execute and store.

Every validator does this work for every trade it commits (gossip, consensus and RPC come on
top), and on a local testnet all validators share this machine's cores. So

    cores / (validators x cpu_per_trade)

bounds what the e2e benchmark can commit. The figure is CPU time of this thread
(``time.thread_time``): other processes on a shared machine do not change it much, so two
versions of the code can be compared run against run.

Each block: ``--txs`` pre-signed demo trades, sent as a venue's ``fills`` txs of ``--fills``
each (``--fills 0``: one ``trade`` tx per trade), go through ``Mempool.check_tx`` (decode,
signatures, ante checks: what a gossiped tx costs), the validators' oracle reports and the
reaped txs become a block signed by all four validators, and ``Chain.execute`` runs it
(deliver, end block, Merkle store commit, one synced LevelDB write).

    .venv/bin/python bench/pipeline.py [--blocks 20] [--txs 500] [--fills 25]

Prints the figures and writes ``bench/results/pipeline.json`` (``--out FILE`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from primitives.crypto import PrivateKey, Signer
from node.blockstore import open_db
from node.chain import Chain
from node.init import DEFAULT_VALIDATOR_POWER, default_genesis_path
from node.config import MempoolSection
from node.mempool import Mempool
from localnet.synthetic import append_block
from localnet.demo import MARKET, load_fills, load_trades, patch_genesis
from state import builders
from state.genesis import load_genesis, parse_genesis, validator_entry

VALIDATORS = [PrivateKey(bytes([0x20 + i]) * 32) for i in range(4)]
T0 = 1_800_000_000_000
BLOCK_MS = 1_000


def make_chain(path: Path) -> Chain:
    document = patch_genesis(load_genesis(default_genesis_path()).to_dict())
    document["chain_id"] = "clearchain-bench-pipeline"
    document["genesis_time_ms"] = T0
    document["validators"] = [validator_entry(f"v{i}", k.public_key, DEFAULT_VALIDATOR_POWER)
                               for i, k in enumerate(VALIDATORS)]
    return Chain(open_db(str(path)), parse_genesis(document))


def run(blocks: int, txs: int, fills: int = 0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="clearchain-pipeline-") as directory:
        chain = make_chain(Path(directory) / "db")
        signers = {Signer(k).address: Signer(k) for k in VALIDATORS}
        feeders = [Signer(k) for k in VALIDATORS]
        genesis = chain.genesis
        fee = genesis.app_state.min_tx_fee
        price = genesis.app_state.markets[0].initial_price
        mempool = Mempool(chain.app, MempoolSection())
        expiry = blocks + 50
        print(f"signing {blocks * txs} trades ...", flush=True)
        batches = [load_fills(chain.chain_id, fee, expiry, txs, price, 1 + b * txs, fills) if fills
                   else load_trades(chain.chain_id, fee, expiry, txs, price, 1 + b * txs) for b in range(blocks)]
        check_s = execute_s = 0.0
        committed = 0
        for number, batch in enumerate(batches):
            height = chain.height + 1
            oracle = [builders.build_oracle_tx(f, chain.chain_id, {MARKET: price}, fee=fee, expiry=height + 5,
                                               nonce=height) for f in feeders]
            started = time.thread_time()
            for tx in [*oracle, *batch]:
                result = mempool.check_tx(tx)
                if result.code != 0:
                    raise SystemExit(f"check_tx refused a benchmark tx: {result.code} {result.log}")
            check_s += time.thread_time() - started
            started = time.thread_time()
            block_txs = mempool.reap(max_bytes=32 << 20, max_txs=len(batch) + len(oracle))
            executed = append_block(chain, signers, block_txs, T0 + (number + 1) * BLOCK_MS)
            mempool.update(block_txs)
            execute_s += time.thread_time() - started
            failed = [r for r in executed.results if r.code != 0]
            failed += [e for r in executed.results for e in r.events if e["type"] == "fill_rejected"]
            if failed:
                raise SystemExit(f"block {height}: {len(failed)} txs or fills failed, first: {failed[0]}")
            committed += txs
        chain.close()
    check_us = check_s / committed * 1e6
    execute_us = execute_s / committed * 1e6
    cores = os.cpu_count() or 1
    return {
        "blocks": blocks, "trades_per_block": txs, "fills_per_tx": fills, "trades": committed,
        "check_tx_us_per_trade": round(check_us, 1),
        "execute_us_per_trade": round(execute_us, 1),
        "cpu_us_per_trade": round(check_us + execute_us, 1),
        "cores": cores,
        "e2e_bound_trades_per_s_4_validators": round(cores * 1e6 / (4 * (check_us + execute_us))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--txs", type=int, default=500, help="trades per block")
    parser.add_argument("--fills", type=int, default=25,
                        help="fills per fills tx, as the e2e venue sends at 1,000 trades/s (0: one trade tx per trade)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pipeline.json")
    args = parser.parse_args()
    figures = run(args.blocks, args.txs, args.fills)
    print(json.dumps(figures, indent=2))
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
