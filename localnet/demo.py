"""Demo load, driven through RPC only: funded traders, a small matching venue, oracle feeders
publishing a random walk, then a crash that liquidates the most leveraged accounts.

The cast (keys derived from fixed names, so every run and every tool agrees on them):
- ``long-0..3``: modest collateral, buy BTC-PERP up to 4x-13x leverage;
- ``short-0..3``: deep pockets, sell to the longs and trade among themselves (volume);
- ``backstop``: registers limited liquidation liquidity at a 1% discount (at most the liquidation fee);
- ``venue``: pairs orders (price-time, crossing limits) and submits the fills as trade txs;
- the validators' keys: oracle feeders.

After trading, the feeders report a 40% lower price; the circuit breaker caps the market (only
risk-reducing trades) and walks the price down 5% per block, accounts fall below maintenance
margin, and the waterfall runs: backstop fills, the insurance fund pays deficits, what no
backstop takes closes against the profitable shorts at the oracle price, and once the fund is
empty they also bear the loss (never more than their profit).
Everything is printed as it happens from a WebSocket subscription, and :func:`check_invariants`
verifies the books through RPC at the end.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from primitives.crypto import KeyFileError, PrivateKey, Signer, format_address
from primitives.keyfile import save_key
from primitives.hashing import sha256
from client import AsyncClient, Backstop, Deposit, Fills, OracleReport, Trade, TxFailed, sign_order
from client import results
from client import calls
from client.errors import ConnectionFailed, NotFound, RPCClientError, Unavailable
from client.txs import TxMessage
from client.units import format_units
from state.builders import Envelope

MARKET = "BTC-PERP"
LONGS = 4
SHORTS = 4
LONG_QUOTE = 20_000 * 10**6  # micro-USDC
SHORT_QUOTE = 2_000_000 * 10**6
BACKSTOP_QUOTE = 300_000 * 10**6
VENUE_QUOTE = 50_000 * 10**6
INSURANCE_SEED = 3_000 * 10**6  # small on purpose: the crash drains it and ADL follows
BACKSTOP_SIZE = 100_000  # 1 BTC at size exponent -5
LEVERAGES = (13, 9, 5, 2)  # the 2x account survives a 40% crash
CRASH_PPM = 400_000


def demo_signer(name: str) -> Signer:
    return Signer(PrivateKey(sha256(f"clearchain demo key {name}".encode())))


def demo_names() -> list[str]:
    return [f"long-{i}" for i in range(LONGS)] + [f"short-{i}" for i in range(SHORTS)] + ["backstop", "venue"]


def save_demo_keys(directory: Path) -> None:
    """Write the cast's keys as a keyring (``clearchain tx --keyring-dir DIR/keys``)."""
    for name in demo_names():
        try:
            save_key(demo_signer(name).key, directory / f"{name}.json", name=name)
        except KeyFileError:
            pass  # already there from an earlier run


def patch_genesis(document: dict[str, Any]) -> dict[str, Any]:
    """Fund the cast in the genesis and shrink the insurance fund (so the crash reaches ADL)."""
    quotes = {"backstop": BACKSTOP_QUOTE, "venue": VENUE_QUOTE}
    quotes.update({f"long-{i}": LONG_QUOTE for i in range(LONGS)})
    quotes.update({f"short-{i}": SHORT_QUOTE for i in range(SHORTS)})
    app_state = document["app_state"]
    app_state["initial_balances"] = [
        {"address": format_address(demo_signer(name).address), "quote": quote} for name, quote in quotes.items()
    ]
    app_state["risk"]["insurance_fund_seed"] = INSURANCE_SEED
    app_state["risk"]["breaker_halt_blocks"] = 20  # the 40% walk takes ~10 capped blocks: no halt
    return document


def _order_pairs(chain_id: str, expiry: int, count: int, price: int, first_id: int,
                 traders: Sequence[str]) -> list[tuple[Envelope, Envelope]]:
    """Signed (bid, ask) pairs between funded demo traders: rotating pairs, alternating sides,
    so positions stay small; order ids from ``first_id`` never repeat."""
    signers = [demo_signer(name) for name in traders]
    n_traders = len(signers)
    pairs = []
    for n in range(count):
        a, b = signers[n % n_traders], signers[(n + 1 + n // n_traders) % n_traders]
        if a is b:
            b = signers[(n + 2) % n_traders]
        buyer, seller = (a, b) if (n // n_traders) % 2 == 0 else (b, a)
        order_id = first_id + n
        pairs.append((
            sign_order(buyer, chain_id, market=MARKET, side="buy", size=100, price=price, order_id=order_id,
                       expiry=expiry),
            sign_order(seller, chain_id, market=MARKET, side="sell", size=100, price=price, order_id=order_id,
                       expiry=expiry),
        ))
    return pairs


BENCH_TRADERS = tuple(f"short-{i}" for i in range(4))


def load_trades(chain_id: str, fee: int, expiry: int, count: int, price: int, first_id: int,
                traders: Sequence[str] = BENCH_TRADERS) -> list[bytes]:
    """``count`` signed trade txs between funded demo traders, for benchmarks."""
    venue = demo_signer("venue")
    return [Trade(maker=bid, taker=ask, size=100, price=price).build(venue, chain_id, fee=fee, expiry=expiry)
            for bid, ask in _order_pairs(chain_id, expiry, count, price, first_id, traders)]


def load_fills(chain_id: str, fee: int, expiry: int, count: int, price: int, first_id: int, per_tx: int,
               traders: Sequence[str] = BENCH_TRADERS) -> list[bytes]:
    """``count`` trades as ``fills`` txs of ``per_tx`` fills each (the last may hold fewer)."""
    venue = demo_signer("venue")
    pairs = _order_pairs(chain_id, expiry, count, price, first_id, traders)
    batches = [Fills(fills=[(bid, ask, 100, price) for bid, ask in pairs[i:i + per_tx]])
               for i in range(0, count, per_tx)]
    return [batch.build(venue, chain_id, fee=fee * batch.fee_units(), expiry=expiry) for batch in batches]


def usd(micro: Any) -> str:
    """Micro-USDC as USDC, exact (``client.units``)."""
    return format_units(int(micro), 6)


@dataclass
class DemoMarket:
    price: int
    tick: int
    lot: int
    price_exponent: int
    size_exponent: int

    def show_price(self, price: int) -> str:
        return format_units(price, -self.price_exponent)

    def show_size(self, size: int) -> str:
        return format_units(size, -self.size_exponent)

    def round_price(self, price: int) -> int:
        return max(self.tick, price // self.tick * self.tick)


@dataclass
class Stats:
    submitted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    trades: int = 0
    liquidations: int = 0
    deleverages: int = 0
    deleverage_charges: int = 0
    insurance_draws: int = 0
    backstop_fills: int = 0
    price_updates: int = 0
    last_height: int = 0


class Demo:
    """The scenario. ``urls`` are node RPC URLs (txs are spread over them); ``feeders`` sign prices."""

    def __init__(self, urls: Sequence[str], feeders: Sequence[Signer], *, out: Callable[[str], None] = print,
                 seed: int = 7, trade_interval: float = 0.05) -> None:
        self.clients = [AsyncClient(url, max_connections=8, timeout=5) for url in urls]
        self.feeders = list(feeders)
        self.out = out
        self.rng = random.Random(seed)
        self.trade_interval = trade_interval
        self.longs = [demo_signer(f"long-{i}") for i in range(LONGS)]
        self.shorts = [demo_signer(f"short-{i}") for i in range(SHORTS)]
        self.backstop = demo_signer("backstop")
        self.venue = demo_signer("venue")
        self.names = {s.address: name for name, s in zip(demo_names(), self.longs + self.shorts + [self.backstop, self.venue])}
        self.names.update({f.address: f"validator-{i}" for i, f in enumerate(self.feeders)})
        self.stats = Stats()
        self.chain_id = ""
        self.fee = 0
        self.height = 0
        self._market: DemoMarket | None = None
        self.reference_price = 0
        self.crashed = False
        self.order_ids = 0
        self.started = time.monotonic()
        self._next_client = 0

    @property
    def market(self) -> DemoMarket:
        if self._market is None:
            raise RuntimeError("call setup() first")
        return self._market

    # --- plumbing ------------------------------------------------------------------------------

    def client(self) -> AsyncClient:
        self._next_client = (self._next_client + 1) % len(self.clients)
        return self.clients[self._next_client]

    def say(self, text: str) -> None:
        self.out(f"[{time.monotonic() - self.started:6.1f}s h={self.height}] {text}")

    def name(self, address_text: str) -> str:
        for address, name in self.names.items():
            if format_address(address) == address_text:
                return name
        return address_text[:12] + "..."

    async def health(self, address: bytes) -> results.Health:
        """An account's health; all zero if the chain holds none (an account wiped out and
        emptied by the waterfall is removed from the state)."""
        try:
            return await self.clients[0].account_health(address)
        except NotFound:
            return results.Health(0, 0, 0, 0, False, 0)

    async def position(self, address: bytes) -> int:
        """The account's size in the demo market (0 if the chain holds no such account)."""
        try:
            held = await self.clients[0].positions(address)
        except NotFound:
            return 0
        return sum(p.size for p in held if p.market == MARKET)

    def _count_rejected(self, key: str) -> None:
        self.stats.rejected[key[:80]] = self.stats.rejected.get(key[:80], 0) + 1

    async def send(self, signer: Signer, message: TxMessage, what: str) -> bool:
        """Sign ``message`` at the chain's minimum fee and hand it to a node (broadcast_tx_sync)."""
        tx = message.build(signer, self.chain_id, fee=self.fee * message.fee_units(), expiry=self.expiry)
        try:
            await self.client().submit(tx, "sync")
        except TxFailed as refused:
            self.stats.submitted += 1
            self._count_rejected(f"{what} code {refused.code}: {refused.log[:60]}")
            return False
        except (RPCClientError, ConnectionFailed) as exc:
            self._count_rejected(f"{what}: {exc}")
            return False
        self.stats.submitted += 1
        return True

    @property
    def expiry(self) -> int:
        return self.height + 50

    async def setup(self) -> None:
        client = self.clients[0]
        self.height = await client.latest_height()
        chain = await client.chain()
        self.chain_id, self.fee = chain.chain_id, chain.min_tx_fee
        market = await client.market(MARKET)
        self._market = DemoMarket(market.oracle_price, market.tick_size, market.lot_size, market.price_exponent,
                                  market.size_exponent)
        self.reference_price = self.market.price

    # --- the tasks -----------------------------------------------------------------------------

    async def follow_height(self) -> None:
        while True:
            try:
                self.height = await self.clients[0].latest_height()
            except (RPCClientError, ConnectionFailed):
                pass
            await trio.sleep(0.25)

    async def feed_prices(self) -> None:
        """Every feeder reports the same random walk twice a second (the oracle needs > 2/3)."""
        while True:
            if self.crashed:
                target = self.reference_price * (1_000_000 - CRASH_PPM) // 1_000_000
            else:
                step = self.rng.gauss(0, 0.002)
                self.reference_price = self.market.round_price(int(self.reference_price * (1 + step)))
                target = self.reference_price
            price = self.market.round_price(target)
            async with trio.open_nursery() as nursery:
                for feeder in self.feeders:
                    nursery.start_soon(self.send, feeder, OracleReport(prices={MARKET: price}), "oracle")
            await trio.sleep(0.5)

    def order(self, signer: Signer, side: str, size: int, limit: int) -> Envelope:
        self.order_ids += 1
        return sign_order(signer, self.chain_id, market=MARKET, side=side, size=size, price=limit,
                          order_id=self.order_ids, expiry=self.height + 100)

    async def match(self, buyer: Signer, seller: Signer, size: int) -> bool:
        """The venue: both sides post limits around the oracle; the resting (maker) price fills."""
        m = self.market
        price = m.round_price(m.price)
        spread = m.tick * self.rng.randint(0, 3)
        bid = self.order(buyer, "buy", size, price + spread)
        ask = self.order(seller, "sell", size, max(m.tick, price - spread))
        maker, taker = (bid, ask) if self.rng.random() < 0.5 else (ask, bid)
        return await self.send(self.venue, Trade(maker=maker, taker=taker, size=size, price=price), "trade")

    async def trade(self, build_until: float) -> None:
        """Longs build leverage against the shorts; shorts churn among themselves for volume."""
        lot = self.market.lot
        targets = [lev * LONG_QUOTE // (self.market.price * 1) for lev in LEVERAGES]  # value multiplier 1
        built = [await self.position(signer.address) for signer in self.longs]  # a resumed chain may hold some
        while True:
            if not self.crashed and time.monotonic() < build_until:
                i = self.rng.randrange(LONGS)
                if built[i] < targets[i]:
                    size = min(targets[i] - built[i], targets[i] // 6 + lot) // lot * lot
                    if size and await self.match(self.longs[i], self.rng.choice(self.shorts), size):
                        built[i] += size
            a, b = self.rng.sample(self.shorts, 2)
            await self.match(a, b, self.rng.randrange(1, 50) * lot)
            await trio.sleep(self.trade_interval)

    async def watch(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Print the clearing story from a WebSocket subscription to every application event."""
        m = self.market
        async with self.clients[0].subscribe("tm.event='Clearing'", queue=100_000) as events:
            task_status.started()
            async for item in events:
                if isinstance(item, Exception):
                    self.say(f"subscription ended: {item}")
                    return
                event = item["data"]["value"]["event"]
                kind, a = event["type"], event.get("attrs", {})
                if kind == "trade":
                    self.stats.trades += 1
                elif kind == "price":
                    self.stats.price_updates += 1
                    m.price = int(a["price"])
                    if self.crashed:
                        self.say(f"oracle {MARKET} {m.show_price(int(a['previous']))} -> {m.show_price(m.price)}"
                             f" (feeders report {m.show_price(int(a.get('reported', m.price)))})")
                elif kind == "breaker":
                    self.say(f"circuit breaker {a['market']}: {a['state']} (applied {m.show_price(int(a['price']))}, "
                             f"reported {m.show_price(int(a['reported']))})")
                elif kind == "liquidation":
                    self.stats.liquidations += 1
                    self.say(f"LIQUIDATION {self.name(a['account'])}: equity {usd(a['equity'])} < "
                             f"maintenance margin {usd(a['mmr'])}")
                elif kind == "liquidation_fill":
                    self.stats.backstop_fills += 1
                    self.say(f"  backstop {self.name(a['counterparty'])} takes {m.show_size(-int(a['size']))} BTC "
                             f"at oracle {m.show_price(int(a['oracle_price']))} - {int(a['discount_ppm']) / 10_000:.1f}%")
                elif kind == "insurance_cover":
                    self.stats.insurance_draws += 1
                    self.say(f"  insurance fund pays {usd(a['amount'])} (left {usd(a['fund_left'])})")
                elif kind == "liquidation_fee":
                    self.say(f"  liquidation fee {usd(a['amount'])} to the insurance fund ({usd(a['fund'])})")
                elif kind == "deleverage":
                    self.stats.deleverages += 1
                    charge = int(a.get("charge", 0))
                    self.stats.deleverage_charges += 1 if charge else 0
                    self.say(f"  AUTO-DELEVERAGE: {self.name(a['counterparty'])} takes over "
                             f"{m.show_size(-int(a['size']))} BTC at the oracle price"
                             + (f", bearing {usd(charge)} of the loss the fund could not pay" if charge else ""))
                elif kind == "socialized_loss":
                    self.say(f"  SOCIALIZED LOSS: {usd(a['amount'])} nobody could absorb (total {usd(a['total'])})")
                elif kind == "liquidation_done":
                    self.say(f"  done: {self.name(a['account'])} equity {usd(a['equity'])}, "
                             f"{a['positions']} position(s) left")
                elif kind == "deposit":
                    self.say(f"bridge: deposit of {usd(a['amount'])} credited to {self.name(a['account'])}")
                elif kind == "backstop":
                    self.say(f"backstop {self.name(a['provider'])} registered {m.show_size(int(a['max_size']))} BTC")

    async def report_progress(self) -> None:
        while True:
            await trio.sleep(3)
            fund = await self.clients[0].insurance_fund()
            self.say(f"trades {self.stats.trades} (txs accepted {self.stats.submitted}), "
                     f"{MARKET} {self.market.show_price(self.market.price)}, "
                     f"insurance {usd(fund.insurance_fund)}, liquidations {self.stats.liquidations}, "
                     f"ADL {self.stats.deleverages}")

    async def top_up_longs(self) -> None:
        """On a resumed chain the longs may have been wiped out by an earlier crash: the bridge
        operators (the validators) attest deposits that bring each back to its starting equity."""
        run = int(time.time())
        topped = False
        for index, signer in enumerate(self.longs):
            missing = LONG_QUOTE - (await self.health(signer.address)).equity
            if missing < LONG_QUOTE // 10:
                continue
            name = self.names[signer.address]
            deposit = Deposit(external_id=f"demo-{run}-{index}", account=signer.address, asset="USDC",
                              amount=missing)
            for feeder in self.feeders:  # more than 2/3 of the operators' power credits it
                await self.send(feeder, deposit, "deposit")
            self.say(f"bridge: validators attest a deposit of {usd(missing)} for {name}")
            topped = True
        if topped:
            await trio.sleep(2)  # credited in the next block or two, before the longs trade

    # --- the scenario --------------------------------------------------------------------------

    async def run(self, duration: float) -> Stats:
        """Trade for ~55% of ``duration``, crash, let the waterfall run, then summarise."""
        await self.setup()
        self.say(f"demo on {self.chain_id}: {LONGS} leveraged longs, {SHORTS} shorts, a backstop, a venue; "
                 f"{len(self.feeders)} feeders; {MARKET} at {self.market.show_price(self.market.price)}")
        await self.top_up_longs()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.watch)
            nursery.start_soon(self.follow_height)
            await self.send(self.backstop, Backstop(market=MARKET, max_size=BACKSTOP_SIZE, discount_ppm=10_000),
                            "backstop")
            nursery.start_soon(self.feed_prices)
            nursery.start_soon(self.trade, time.monotonic() + duration * 0.45)
            nursery.start_soon(self.report_progress)
            await trio.sleep(duration * 0.55)
            await self.print_accounts("before the crash")
            self.crashed = True
            self.say(f"*** CRASH: feeders now report {MARKET} 40% lower; the circuit breaker walks it down ***")
            await trio.sleep(duration * 0.40)
            nursery.cancel_scope.cancel()
        await trio.sleep(1)
        await self.print_accounts("after the crash")
        self.say(f"summary: {self.stats.trades} trades cleared, {self.stats.liquidations} liquidations, "
                 f"{self.stats.backstop_fills} backstop fills, {self.stats.insurance_draws} insurance draws, "
                 f"{self.stats.deleverages} auto-deleverages ({self.stats.deleverage_charges} bearing a loss); "
                 f"{self.stats.submitted} txs accepted")
        for reason, count in sorted(self.stats.rejected.items(), key=lambda kv: -kv[1])[:6]:
            self.say(f"  rejected x{count}: {reason}")
        return self.stats

    async def print_accounts(self, title: str) -> None:
        rows = []
        for signer in self.longs + self.shorts + [self.backstop]:
            health = await self.health(signer.address)
            size = await self.position(signer.address)
            rows.append(f"  {self.names[signer.address]:>9}  {self.market.show_size(size):>9} BTC  "
                        f"equity {usd(health.equity):>14}  MMR {usd(health.maintenance_margin):>12}"
                        f"{'  LIQUIDATABLE' if health.liquidatable else ''}")
        fund = await self.clients[0].insurance_fund()
        self.say(f"accounts {title} (insurance fund {usd(fund.insurance_fund)}, fee pool {usd(fund.fee_pool)}):")
        for row in rows:
            self.out(row)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


READ_ATTEMPTS = 20
"""Tries at reading every account at one height before :func:`check_invariants` gives up."""
BATCH = 20
"""Calls per JSON-RPC batch (the node's default ``max_batch_requests``)."""


async def check_invariants(client: AsyncClient, addresses: Sequence[bytes]) -> list[str]:
    """The clearing invariants, checked through RPC over every account that ever held anything.

    Mirrors ``state.queries.invariants``: per market, sizes sum to zero and longs equal open
    interest; quote held by accounts (with exact unsettled funding and the funding rounding the
    markets keep), the insurance fund and the fee pool equals deposits - withdrawals plus the
    socialized loss; no account has negative equity. ``addresses`` must cover every funded account (genesis and validators).

    Every value is read at one height (clearing queries answer the latest height only, and
    refuse a named one the chain has moved past): on a chain that keeps committing, reads
    spread over several blocks would mix funding indices and balances of different states.
    """
    for _ in range(READ_ATTEMPTS):
        snapshot = await _read_at_one_height(client, addresses)
        if snapshot is not None:
            return _invariants(*snapshot)
    return [f"the chain moved during each of {READ_ATTEMPTS} reads of {len(addresses)} accounts: "
            "no consistent state to check"]


async def _read_at_one_height(client: AsyncClient, addresses: Sequence[bytes]) -> (
        tuple[tuple[results.Market, ...], results.InsuranceFund,
              list[tuple[bytes, results.Account]]] | None):
    """Markets, the insurance fund and every found account, all at the latest height (None:
    a block committed meanwhile)."""
    height = await client.latest_height()
    reads = [calls.markets(height), calls.insurance_fund(height)]
    reads += [calls.account(address, height) for address in addresses]
    answers: list[Any] = []
    for i in range(0, len(reads), BATCH):
        answers += await client.batch(reads[i:i + BATCH])
    if any(isinstance(answer, Unavailable) for answer in answers):
        return None
    for answer in answers:
        if isinstance(answer, RPCClientError) and not isinstance(answer, NotFound):
            raise answer
    accounts = [(address, answer) for address, answer in zip(addresses, answers[2:])
                if not isinstance(answer, NotFound)]  # never funded, never traded
    return answers[0], answers[1], accounts


def _invariants(markets_: tuple[results.Market, ...], fund: results.InsuranceFund,
                accounts: list[tuple[bytes, results.Account]]) -> list[str]:
    problems = []
    markets = {m.id: m for m in markets_}
    scale = next(iter(markets.values())).funding_scale
    sizes = {m: 0 for m in markets}
    longs = {m: 0 for m in markets}
    quote_scaled = 0
    for address, account in accounts:
        quote_scaled += account.quote * scale
        for position in account.positions:
            sizes[position.market] += position.size
            longs[position.market] += max(position.size, 0)
            quote_scaled += position.pending_funding_scaled
        if account.health.equity < 0:
            problems.append(f"{format_address(address)} has negative equity {account.health.equity}")
    for market_id, market in sorted(markets.items()):
        if sizes[market_id] != 0:
            problems.append(f"sizes in {market_id} sum to {sizes[market_id]}, not 0")
        if longs[market_id] != market.open_interest:
            problems.append(f"open interest of {market_id} is {market.open_interest}, longs hold {longs[market_id]}")
        quote_scaled += market.funding_dust_scaled
    quote_symbol = "USDC"
    expected = (fund.deposits.get(quote_symbol, 0) - fund.withdrawals.get(quote_symbol, 0)
                + fund.socialized_loss - fund.insurance_fund - fund.fee_pool)
    if quote_scaled != expected * scale:
        problems.append(f"quote is not conserved: accounts hold {quote_scaled} / {scale}, expected {expected}")
    if fund.insurance_fund < 0 or fund.fee_pool < 0:
        problems.append("insurance fund or fee pool is negative")
    return problems
