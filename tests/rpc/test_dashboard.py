"""The dashboard in a real browser (Debian's chromium via Playwright) against a dev chain: live
updates, the crash in the feed, the account page's figures, and no way for chain data to
become markup or script.

Expected figures are computed here from the RPC answers with Python's Decimal (cut toward zero
to the shown decimals, as the page promises), not with the page's own code.
"""

from __future__ import annotations

import os
import threading
import time
from decimal import ROUND_DOWN, Decimal, localcontext

import pytest
import trio

from localnet.demo import demo_signer
from localnet.dev_node import dev_genesis
from primitives.crypto import PrivateKey, format_address
from primitives.hashing import sha256
from rpc import errors
from rpc.client import Client, RPCClientError
from state.genesis import parse_genesis
from tests.rpc.browser import MISSING, DevChain, browser_page, wait_until

pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"browser test: {MISSING}")

KEY = PrivateKey(b"\x31" * 32)
EVIL_MARKET = "<img src=x onerror=__pwned=1>"
PPM = 10**6


def cut(value: int, exponent: int, shown: int) -> str:
    with localcontext() as ctx:
        ctx.prec = 80
        q = Decimal(value).scaleb(exponent).quantize(Decimal(1).scaleb(-shown), rounding=ROUND_DOWN)
    return f"{q:,.{shown}f}"


def money(micro: int | str) -> str:
    return f"{cut(int(micro), -6, 2)} USDC"


def price_text(market: dict, price: int) -> str:
    exponent = int(market["price_exponent"])
    return cut(price, exponent, max(2, -exponent))


def liquidation_price(position: dict, market: dict, health: dict) -> int | None:
    """From the definition: equity(P) = equity + size * mult * (P - oracle) and MMR(P) = MMR +
    |size| * mult * mmf * (P - oracle); the P where they meet, cut toward the oracle price."""
    size, oracle = int(position["size"]), int(position["oracle_price"])
    mult, mmf = int(market["value_multiplier"]), int(market["maintenance_margin_ppm"])
    gap = (int(health["maintenance_margin"]) - int(health["equity"])) * PPM
    slope = mult * (size * PPM - abs(size) * mmf)
    move = abs(gap) // abs(slope) * (1 if (gap >= 0) == (slope > 0) else -1)
    return oracle + move if oracle + move > 0 else None


def positions_of(client: Client, address: str) -> list | None:
    """The account's positions; None when the state holds no such account."""
    try:
        return client.call("positions", address=address)
    except RPCClientError as exc:
        if exc.code == errors.NOT_FOUND:
            return None
        raise


def evil_genesis():
    document = dev_genesis(KEY, int(time.time() * 1000) - 1000).to_dict()
    for market in document["app_state"]["markets"]:
        if market["id"] == "SOL-PERP":
            market["id"] = EVIL_MARKET  # symbols (base_asset) are refused unless alphanumeric
    return parse_genesis(document)


@pytest.fixture(scope="module")
def chain():
    with DevChain(evil_genesis(), KEY, block_interval=0.4) as dev:
        dev.build_leverage()
        yield dev


def open_dashboard(page, chain: DevChain, fragment: str = "") -> None:
    page.goto(f"{chain.url}/dashboard{fragment}")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)


def test_chain_data_renders_as_text_and_runs_nothing(chain):
    with browser_page() as page:
        open_dashboard(page, chain)
        wait_until(lambda: page.locator("#market-table tbody tr").count() == 3, 10, "the market rows")
        cells = page.locator("#market-table tbody td").all_text_contents()
        assert EVIL_MARKET in cells  # shown as the text it is
        assert EVIL_MARKET in page.locator("#market-select option").all_text_contents()
        assert page.locator("img").count() == page.locator("svg").count() == 0  # never parsed as markup
        assert page.locator("script").count() == 2  # uPlot and app.js, nothing injected
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.evaluate("window.__violations") == []  # the CSP had nothing to block
        assert page.errors == []
        # an address-like fragment that is not one: refused as text, no query built from it
        page.goto(f"{chain.url}/dashboard#account=%3Cimg%20src%3Dx%20onerror%3D__pwned%3D3%3E")
        wait_until(lambda: "not a clearchain address" in page.locator("#account-status").text_content(), 10,
                   "the refusal")
        assert page.locator("#account-address").text_content() == "<img src=x onerror=__pwned=3>"
        assert page.locator("img").count() == 0 and page.evaluate("typeof window.__pwned") == "undefined"


def test_live_chart_crash_feed_fund_and_account_page(chain):
    long0 = format_address(demo_signer("long-0").address)
    long1 = format_address(demo_signer("long-1").address)
    with browser_page() as page:
        opened = time.monotonic()
        open_dashboard(page, chain)
        points = lambda: int(page.locator("#price-chart").get_attribute("data-points"))  # noqa: E731
        first = wait_until(points, 10, "a first chart point")
        wait_until(lambda: points() >= first + 2, 10, "the price chart to gain points as blocks arrive")
        assert page.locator("#height").get_attribute("data-raw") != "0"
        # the nearest to liquidation, before the crash: long-0 (10x) then long-1 (6x)
        wait_until(lambda: page.locator("#at-risk tbody tr").count() >= 2, 10, "the at-risk rows")
        at_risk = [a.get_attribute("title") for a in page.locator("#at-risk tbody a").all()]
        assert at_risk[:2] == [long0, long1]

        chain.crash(steps=4)  # the 10x and the 6x long are liquidated
        liquidated = chain.client.call("liquidations")["liquidations"]
        accounts = {e["attrs"]["account"] for e in liquidated if e["type"] == "liquidation"}
        assert long0 in accounts
        shown = lambda: {a.get_attribute("title")  # noqa: E731
                         for a in page.locator("#feed li[data-kind='liquidation'] a").all()}
        wait_until(lambda: shown() == accounts, 10, "every liquidation in the feed, and nothing else")
        feed = page.locator("#feed li[data-kind='liquidation']").first.text_content()
        assert "equity" in feed and "USDC < maintenance margin" in feed  # human units

        def fund_matches() -> bool:
            rpc = chain.client.call("insurance_fund")["insurance_fund"]
            chart = page.locator("#insurance-chart").get_attribute("data-last")
            return chart == rpc and page.locator("#insurance").get_attribute("data-raw") == rpc
        wait_until(fund_matches, 10, "the insurance fund shown to match the RPC value")
        assert page.locator("#insurance").text_content() == money(chain.client.call("insurance_fund")["insurance_fund"])
        assert page.errors == [] and page.evaluate("window.__violations") == []
        # blocks every 0.4 s, refreshes (one batch frame each) at most once a second
        stats = page.evaluate("clearchainDashboard")
        seconds = time.monotonic() - opened
        assert stats["refreshes"] <= seconds + 1 < stats["blocks"], (stats["blocks"], stats["refreshes"], seconds)
        assert stats["messages"] <= stats["refreshes"] + 12  # + the load's batch and the subscriptions

        # the account page of a liquidated account the state still holds (its quote left after the
        # waterfall), and of the short on the other side (a position with a liquidation price)
        kept = [a for a in sorted(accounts) if positions_of(chain.client, a) is not None]
        assert kept, "an account liquidated with equity left keeps it"
        for gone in sorted(accounts - set(kept)):  # wiped out and emptied: said so, no figures
            page.goto(f"{chain.url}/dashboard#account={gone}")
            wait_until(lambda: "no such account" in page.locator("#account-status").text_content(), 10,
                       "the page to say the account is gone")
            assert page.locator("#acct-equity").text_content() == "-"
        short0 = format_address(demo_signer("short-0").address)
        for address in (kept[0], short0):
            check_account_page(page, chain.client, chain.url, address)
        # the account's txs reach its page as they are committed, with their result
        price = int(chain.client.call("market", market="BTC-PERP")["oracle_price"])
        tx_hash = sha256(chain.trade("short-0", "short-1", 1000, price, 77)).hex().upper()
        item = page.locator("#acct-activity li[data-kind='tx']").first
        wait_until(lambda: item.count() and tx_hash[:16] in item.text_content(), 10, "the trade on the account page")
        assert item.text_content().endswith("ok") and "trade" in item.text_content()
        assert page.errors == []


def check_account_page(page, client: Client, url: str, address: str) -> None:
    """The account page's figures are the ``account`` answer's, in human units; each position's
    liquidation price is the one the definition gives (and is where margin really runs out)."""
    page.goto(f"{url}/dashboard#account={address}")
    markets = {m["id"]: m for m in client.call("markets")}

    def figures_match() -> dict | None:
        answer = client.call("account", address=address)
        health = answer["health"]
        same = (page.locator("#acct-equity").text_content() == money(health["equity"])
                and page.locator("#acct-margin-used").text_content() == money(health["initial_margin"])
                and page.locator("#acct-margin-free").text_content() == money(health["free_collateral"])
                and page.locator("#acct-quote").text_content() == money(answer["quote"])
                and page.locator("#acct-positions tbody tr").count() == len(answer["positions"]))
        return answer if same else None
    answer = wait_until(figures_match, 10, f"the account page of {address} to show the RPC's figures")
    equity, mmr = int(answer["health"]["equity"]), int(answer["health"]["maintenance_margin"])
    for position in answer["positions"]:
        row = page.locator(f"#acct-positions tbody tr[data-market='{position['market']}']")
        cells = row.locator("td").all_text_contents()
        market = markets[position["market"]]
        expected = liquidation_price(position, market, answer["health"])
        assert cells[5] == (price_text(market, expected) if expected else "none")
        assert cells[3] == price_text(market, int(position["oracle_price"]))
        size_exponent = int(market["size_exponent"])
        assert cells[1] == f"{cut(int(position['size']), size_exponent, -size_exponent)} {market['base_asset']}"
        if expected is None:
            continue
        # at the shown liquidation price equity still covers MMR; one price unit further it does not
        size, mult = int(position["size"]), int(market["value_multiplier"])
        mmf = int(market["maintenance_margin_ppm"])
        for p, holds in [(expected, True), (expected - (1 if size > 0 else -1), False)]:
            dp = p - int(position["oracle_price"])
            assert ((equity + size * mult * dp) * PPM >= mmr * PPM + abs(size) * mult * mmf * dp) is holds


DEMO_SECONDS = 30.0
"""Trading for ~14 s, the crash at ~17 s, ~12 s of breaker-capped steps: liquidations in the
first few of them. With the nodes' start, the test stays near 90 s of wall time."""


@pytest.mark.slow
def test_dashboard_watches_the_demo_crash_on_a_4_validator_testnet(tmp_path):
    """The real thing: 4 validator processes, the demo's load and crash, the dashboard of node0.

    Set ``DASHBOARD_SCREENSHOT=docs/dashboard.png`` to keep the mid-crash screenshot."""
    from localnet.demo import Demo
    from localnet.testnet import Processes, TestnetError, create_testnet
    from node.home import Home
    from primitives.crypto import Signer
    from tests.localnet.test_testnet import free_base_port

    for attempt in range(5):  # other tests' testnets may hold a port of the block
        try:
            entries = create_testnet(tmp_path / f"tn{attempt}", 4, free_base_port() + 2000 + 16 * attempt,
                                     "tn-dashboard-1")
            break
        except TestnetError:
            continue
    else:
        pytest.fail("no free block of 12 ports found")
    processes = Processes(tmp_path / f"tn{attempt}", entries)
    url = entries[0].rpc_url
    client = Client(url, timeout=10)
    processes.start()
    try:
        def height() -> int:
            try:
                return int(client.call("status")["sync_info"]["latest_block_height"])
            except (OSError, RPCClientError, ConnectionError, Exception):  # still starting
                assert not processes.exited(), processes.exited()
                return 0
        wait_until(lambda: height() >= 2, 90, "the testnet's first blocks", every=0.5)

        said: list[str] = []
        outcome: dict = {}

        def run_demo() -> None:
            async def main() -> None:
                demo = Demo([e.rpc_url for e in entries],
                            [Signer(Home.at(e.home).validator_key()) for e in entries], out=said.append)
                try:
                    outcome["stats"] = await demo.run(DEMO_SECONDS)
                finally:
                    await demo.aclose()
            try:
                trio.run(main)
            except BaseException as exc:  # reported by the test thread
                outcome["error"] = exc

        with browser_page() as page:
            page.goto(f"{url}/dashboard")
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            demo = threading.Thread(target=run_demo, daemon=True)
            demo.start()
            points = lambda: int(page.locator("#price-chart").get_attribute("data-points"))  # noqa: E731
            first = wait_until(points, 15, "a first chart point")
            wait_until(lambda: points() >= first + 3, 20, "the price chart to gain points as blocks arrive")
            signed = page.locator("#validators tbody td.ok").count()
            assert page.locator("#validators tbody tr").count() == 4 and signed >= 3  # > 2/3 signed
            wait_until(lambda: page.locator("#feed li[data-kind='liquidation']").count() >= 1, 60,
                       "a liquidation from the demo's crash in the feed")
            time.sleep(1.5)  # the waterfall's fills and draws follow
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            if os.environ.get("DASHBOARD_SCREENSHOT"):
                page.screenshot(path=os.environ["DASHBOARD_SCREENSHOT"], full_page=True)
            demo.join(DEMO_SECONDS + 30)
            assert not demo.is_alive() and "error" not in outcome, outcome.get("error")
            assert outcome["stats"].liquidations >= 1

            liquidated = client.call("liquidations", per_page=100)["liquidations"]
            accounts = {e["attrs"]["account"] for e in liquidated if e["type"] == "liquidation"}
            shown = {a.get_attribute("title") for a in page.locator("#feed li[data-kind='liquidation'] a").all()}
            assert shown and shown <= accounts

            def fund_matches() -> bool:
                rpc = client.call("insurance_fund")["insurance_fund"]
                return (page.locator("#insurance-chart").get_attribute("data-last") == rpc
                        == page.locator("#insurance").get_attribute("data-raw"))
            wait_until(fund_matches, 15, "the insurance fund shown to match the RPC value")
            stats = page.evaluate("clearchainDashboard")
            kept = [a for a in sorted(accounts) if positions_of(client, a) is not None]
            for address in kept[:1] or sorted(accounts)[:1]:
                if kept:
                    check_account_page(page, client, url, address)
                else:  # every liquidated account was emptied: the page says so
                    page.goto(f"{url}/dashboard#account={address}")
                    wait_until(lambda: "no such account" in page.locator("#account-status").text_content(),
                               10, "the page to say the account is gone")
            assert page.errors == [] and page.evaluate("window.__violations") == []
        print(f"dashboard on the testnet: {stats['blocks']} blocks, {stats['refreshes']} refreshes, "
              f"{stats['requests']} JSON-RPC requests in {stats['messages']} frames, JS "
              f"{(sum(stats['blockMs']) + sum(stats['renderMs'])) / max(1, stats['blocks']):.2f} ms per block")
    finally:
        client.close()
        processes.stop()
