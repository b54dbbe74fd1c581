"""Memory of the tx_search index (rpc/comet/search.py) per indexed trade.

    python bench/search_index.py

20,000 trades over 200 accounts and 100 prices, every size distinct (the worst case for the
index: one new value per trade); prints bytes per trade and writes bench/results/search_index.json.
"""

from __future__ import annotations

import json
import random
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from primitives.hashing import sha256  # noqa: E402
from rpc.comet import shapes  # noqa: E402
from rpc.comet.search import ChainIndex  # noqa: E402
from rpc.views import TxResultView  # noqa: E402

TRADES = 20_000
PER_BLOCK = 100


def main() -> None:
    rng = random.Random(1)
    accounts = [rng.randbytes(20) for _ in range(200)]
    results = [
        TxResultView(0, events=({"type": "trade", "attrs": {
            "market": "BTC-PERP", "buyer": accounts[i % 200], "seller": accounts[(i * 7) % 200],
            "size": i * 3, "price": 50_000 + i % 100}},), kind="trade", sender=accounts[(i * 3) % 200])
        for i in range(TRADES)
    ]
    tracemalloc.start()
    index = ChainIndex()
    for i, result in enumerate(results):
        index.txs.add(shapes.event_keys(shapes.tx_result(result)["events"]), i // PER_BLOCK + 1,
                      i % PER_BLOCK, sha256(i.to_bytes(8, "big")))
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_trade = used / TRADES
    print(f"search index: {per_trade:.0f} bytes per indexed trade ({TRADES} trades)")
    out = Path(__file__).resolve().parent / "results" / "search_index.json"
    out.write_text(json.dumps({"trades": TRADES, "bytes_per_trade": round(per_trade)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
