"""The dashboard's cost in a real browser: page weight and update cost per block.

A dev chain (the real clearing application, blocks on a timer, tests/rpc/browser.py) with
trades every 0.1 s and, halfway, the demo's crash (the oracle walks down 5% a block); headless
chromium shows the dashboard for ``--seconds``, once per block interval given. Measured:

- page weight: bytes of every HTTP response the page loads (uncompressed; the node does not
  compress), per file;
- JS time per block: the page's own performance marks, the NewBlock handling plus the refresh
  drawing, summed and divided by the blocks seen;
- RPC per block: JSON-RPC requests and WebSocket frames the page sent, divided by the blocks.

    python bench/dashboard.py [--seconds 30] [--intervals 1.0 0.2]

Writes bench/results/dashboard.json. Needs playwright and a chromium binary (as the test).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rpc.browser import MISSING, DevChain, browser_page, wait_until  # noqa: E402
from tests.rpc.test_dashboard import KEY, evil_genesis  # noqa: E402

TRADE_EVERY_S = 0.1


def load(chain: DevChain, seconds: float, stop: threading.Event) -> None:
    """Trades between the shorts all along; the longs' leverage first; the crash at half time."""
    chain.build_leverage()
    crash_at = time.monotonic() + seconds / 2
    price, order_id, crashed = 500_000, 100, 0
    while not stop.is_set():
        order_id += 1
        chain.trade("short-2", "short-3", 1000, price, order_id)
        if time.monotonic() > crash_at and crashed < 8 and order_id % 5 == 0:
            price = price * 95 // 100 // 10 * 10
            chain.report_price(price)
            crashed += 1
        time.sleep(TRADE_EVERY_S)


def measure(interval: float, seconds: float) -> dict:
    with DevChain(evil_genesis(), KEY, block_interval=interval) as chain, browser_page() as page:
        weights: dict[str, int] = {}
        page.on("response", lambda r: weights.__setitem__(r.url.split("/", 3)[-1], len(r.body()))
                if r.request.resource_type != "websocket" else None)
        stop = threading.Event()
        loader = threading.Thread(target=load, args=(chain, seconds, stop), daemon=True)
        page.goto(f"{chain.url}/dashboard")
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        loaded = dict(weights)
        before = page.evaluate("({...clearchainDashboard})")
        loader.start()
        time.sleep(seconds)
        stop.set()
        loader.join(10)
        wait_until(lambda: page.locator("#feed li[data-kind='liquidation']").count() >= 1, 10, "the crash")
        after = page.evaluate("clearchainDashboard")
    blocks = after["blocks"] - before["blocks"]
    block_ms, render_ms = after["blockMs"][len(before["blockMs"]):], after["renderMs"][len(before["renderMs"]):]
    return {
        "block_interval_s": interval,
        "seconds": seconds,
        "blocks": blocks,
        "refreshes": after["refreshes"] - before["refreshes"],
        "page_weight_bytes": sum(loaded.values()),
        "page_files": loaded,
        "js_ms_per_block": round((sum(block_ms) + sum(render_ms)) / max(1, blocks), 3),
        "newblock_ms_median": round(statistics.median(block_ms), 3),
        "refresh_ms_median": round(statistics.median(render_ms), 3),
        "refresh_ms_max": round(max(render_ms), 3),
        "rpc_requests_per_block": round((after["requests"] - before["requests"]) / max(1, blocks), 3),
        "ws_frames_per_block": round((after["messages"] - before["messages"]) / max(1, blocks), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.2])
    args = parser.parse_args()
    if MISSING:
        sys.exit(f"cannot run: {MISSING}")
    runs = [measure(interval, args.seconds) for interval in args.intervals]
    for run in runs:
        print(f"blocks every {run['block_interval_s']} s: {run['blocks']} blocks, page weight "
              f"{run['page_weight_bytes']:,} bytes, JS {run['js_ms_per_block']} ms per block "
              f"(NewBlock {run['newblock_ms_median']} ms, refresh {run['refresh_ms_median']} ms median, "
              f"{run['refresh_ms_max']} ms max), {run['rpc_requests_per_block']} RPC requests and "
              f"{run['ws_frames_per_block']} WebSocket frames per block")
    out = ROOT / "bench" / "results" / "dashboard.json"
    out.write_text(json.dumps({"command": "python bench/dashboard.py " + " ".join(sys.argv[1:]),
                               "runs": runs}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
