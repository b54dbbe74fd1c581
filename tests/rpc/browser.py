"""A real browser for the dashboard's tests and bench: Debian's chromium driven by Playwright.

``playwright install`` is never run: the browser is the system's ``chromium`` package
(``apt-get install chromium``), found on PATH. :data:`MISSING` says why a browser test cannot
run here (None when it can), for ``pytest.mark.skipif``.

Also here: a dev chain (``localnet.dev_node.DevNode``, the real clearing application, blocks on
a timer) served on 127.0.0.1 from its own thread, so a synchronous browser and the chain run
side by side, and the demo's crash on it (trades at 10x and 6x, then the oracle walks 5% per
block down), which the dashboard must show.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from localnet.demo import demo_signer
from localnet.dev_node import DevNode
from primitives.crypto import PrivateKey, Signer
from rpc.client import Client
from rpc.server import RPCServer
from state import builders
from state.genesis import Genesis

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_binary() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium_binary() is None:
        return "no chromium binary on PATH (apt-get install chromium)"
    return None


MISSING = _missing()

WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "")));
"""
"""Injected before the page's own scripts: every CSP violation the page causes is recorded."""


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A fresh headless page; console errors and page errors are collected on ``page.errors``."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium refuses root without it
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_binary(), args=args)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.errors = []
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.add_init_script(WATCH_VIOLATIONS)
            yield page
        finally:
            browser.close()


def wait_until(predicate: Any, timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns a true value (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class DevChain:
    """A DevNode and its RPC server on 127.0.0.1 in a thread of their own (``with DevChain(...)``)."""

    def __init__(self, genesis: Genesis, key: PrivateKey, block_interval: float = 0.5) -> None:
        self.node = DevNode(genesis, key, block_interval=block_interval)
        self.key = key
        self.port = 0
        self._ready = threading.Event()
        self._token: Any = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self._token = trio.lowlevel.current_trio_token()
            self._scope = nursery.cancel_scope
            self.port = await nursery.start(RPCServer(self.node).serve, "127.0.0.1", 0)
            await nursery.start(self.node.run)
            self._ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DevChain:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the dev chain did not start")
        self.client = Client(self.url, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(10)

    def height(self) -> int:
        return int(self.client.call("status")["sync_info"]["latest_block_height"])

    def wait_blocks(self, count: int, timeout: float = 10) -> None:
        target = self.height() + count
        wait_until(lambda: self.height() >= target, timeout, f"height {target}")

    def submit(self, tx: bytes) -> None:
        answer = self.client.broadcast_tx_sync(tx)
        assert answer["code"] == 0, answer

    def trade(self, buyer: str, seller: str, size: int, price: int, order_id: int, market: str = "BTC-PERP") -> bytes:
        chain_id = self.node.genesis_doc.chain_id
        expiry = self.height() + 100
        bid = builders.build_order(demo_signer(buyer), chain_id, market=market, side="buy", size=size,
                                   price=price, order_id=order_id, expiry=expiry)
        ask = builders.build_order(demo_signer(seller), chain_id, market=market, side="sell", size=size,
                                   price=price, order_id=order_id, expiry=expiry)
        tx = builders.build_trade_tx(demo_signer("venue"), chain_id, bid, ask, size, price,
                                     fee=1000, expiry=self.height() + 50)
        self.submit(tx)
        return tx

    def report_price(self, price: int, market: str = "BTC-PERP") -> None:
        self.submit(builders.build_oracle_tx(Signer(self.key), self.node.genesis_doc.chain_id, {market: price},
                                             fee=1000, expiry=self.height() + 50))

    def build_leverage(self) -> None:
        """long-0 buys 4 BTC (10x its 20,000 USDC) and long-1 2.4 BTC (6x), from the
        deep-pocketed shorts, at 50,000."""
        self.trade("long-0", "short-0", 400_000, 500_000, 1)
        self.trade("long-1", "short-1", 240_000, 500_000, 1)
        self.wait_blocks(1)

    def crash(self, steps: int = 10, start: int = 500_000) -> None:
        """The oracle walks down 5% a block (the breaker's cap) for ``steps`` blocks."""
        price = start
        for _ in range(steps):
            price = price * 95 // 100 // 10 * 10
            self.report_price(price)
            self.wait_blocks(1)
