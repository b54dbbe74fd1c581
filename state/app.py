"""The clearing application the consensus layer drives: check, begin, deliver, end, commit.

Pure and deterministic: no clock, randomness or I/O beyond the ``StateStore`` it is given; block
time comes from ``begin_block``. Per-node caches (decoded txs, signature verdicts, the
liquidation index) never change results, only speed: every good signature is verified once per
node, whether check_tx or deliver_tx sees the tx first. Refusals are not cached (a tx offered again
is checked again), so strangers sending invalid txs cannot make the node hold memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from primitives.hashing import sha256
from state import execute, governance, waterfall
from state.codes import Code, TxRejected
from state.genesis import Genesis
from state.kv import StateStore, WriteBatch
from state.ledger import Ledger
from state.env import BlockEnv
from state.events import event
from state.funding import apply_funding, sweep_dust
from state.model import PPM, Account, Globals, Market, order_key, prefix_end, seen_key
from state.oracle import apply_oracle_reports, market_status
from state.order_records import JOURNAL_PREFIX, OrderRecords, journal_key
from state.risk import dynamic_imf, risk_of
from state.txs import Tx, decode_tx, verify_tx

CACHE_SIZE = 100_000  # decoded txs and verdicts kept per node (a full mempool and then some)


@dataclass
class TxResult:
    code: int
    log: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    priority: int = 0  # the fee (per fill, in check_tx): the mempool orders by it
    sender: bytes = b""
    tx_hash: bytes = b""
    kind: str = ""

    @property
    def ok(self) -> bool:
        return self.code == Code.OK


@dataclass(frozen=True)
class ValidatorUpdate:
    pub_key: bytes
    power: int  # 0 removes (or jails) the validator


@dataclass
class EndBlockResult:
    events: list[dict[str, Any]]
    validator_updates: list[ValidatorUpdate]
    logged: int = 0
    """Waterfall events the block logged in state (``e/<height><0..logged-1>``)."""


class ClearingApp:
    def __init__(self, store: StateStore, genesis: Genesis) -> None:
        self.store = store
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.ledger = Ledger(store, genesis)
        self.height = 0
        self.time_ms = genesis.genesis_time_ms
        self.proposer = b""
        self.seen_buckets: dict[int, set[bytes]] = {}
        self.orders = OrderRecords()  # live orders' fill records (stored as per-block journal entries)
        self.proposals: dict[bytes, dict[str, Any]] = {}
        self.env: BlockEnv | None = None  # the block being executed (begin_block to commit)
        self.liquidations = waterfall.LiquidationIndex()
        self._decoded: OrderedDict[bytes, Tx] = OrderedDict()
        self._verdicts: dict[bytes, None] = {}  # hashes of txs whose signatures verified
        self._verified_orders: set[bytes] = set()
        if store.version >= 0:
            self._open()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def last_height(self) -> int:
        return self.store.version

    @property
    def app_hash(self) -> bytes:
        return self.store.root_hash()

    def _open(self) -> None:
        from primitives.codec import decode

        self.ledger.load()
        self.height = self.store.version
        for key, value in self.store.iterate(b"t/", prefix_end(b"t/")):
            self.seen_buckets.setdefault(decode(value), set()).add(key[2:])
        journal = [(int.from_bytes(key[len(JOURNAL_PREFIX):], "big"), decode(value))
                   for key, value in self.store.iterate(JOURNAL_PREFIX, prefix_end(JOURNAL_PREFIX))]
        self.orders = OrderRecords.rebuild(journal, self.store.version)
        for key, value in self.store.iterate(b"p/", prefix_end(b"p/")):
            self.proposals[key[2:]] = decode(value)
        self.liquidations.rebuild(self.ledger)

    def init_chain(self) -> bytes:
        """Write the genesis state as version 0 (a no-op returning the root if already there)."""
        if self.store.version >= 0:
            return self.store.root_hash()
        app_state = self.genesis.app_state
        ledger = self.ledger
        g = Globals(app_state.risk, app_state.min_tx_fee, app_state.replay_window_blocks)
        for v in self.genesis.validators:
            g.validators[v.address] = [v.pub_key, v.power, v.name, False]
        g.feeders_follow_validators = not app_state.feeders
        g.feeders = {m.address: m.power for m in app_state.feeders}
        g.operators_follow_validators = not app_state.bridge_operators
        g.operators = {m.address: m.power for m in app_state.bridge_operators}
        g.insurance = app_state.risk.insurance_fund_seed
        quote = app_state.quote.symbol
        g.deposits = {quote: g.insurance}
        ledger.globals = g
        for params in app_state.markets:
            t0 = self.genesis.genesis_time_ms
            ledger.markets[params.id] = Market(params, params.initial_price, t0, t0 + params.funding_interval_ms)
            ledger.holders[params.id] = set()
        ledger.set_pricing()
        ledger.start_block()
        credits: list[tuple[bytes, int, tuple[tuple[str, int], ...]]] = []
        if app_state.validator_initial_quote:
            credits += [(v.address, app_state.validator_initial_quote, ()) for v in self.genesis.validators]
        credits += [(b.address, b.quote, b.collateral) for b in app_state.initial_balances]
        for address, amount, collateral in credits:
            account = ledger.account_mut(address)
            account.quote += amount
            g2 = ledger.g
            g2.deposits[quote] = g2.deposits.get(quote, 0) + amount
            for symbol, units in collateral:
                if units:
                    account.collateral[symbol] = account.collateral.get(symbol, 0) + units
                    g2.deposits[symbol] = g2.deposits.get(symbol, 0) + units
        root = ledger.commit(None)
        self.liquidations.rebuild(ledger)
        return root

    # --- mempool -----------------------------------------------------------------------------

    def _decode(self, tx_bytes: bytes) -> Tx:
        key = sha256(tx_bytes)
        cached = self._decoded.get(key)
        if cached is None:
            try:
                cached = decode_tx(tx_bytes, self.chain_id)
            except TxRejected:
                raise  # refusals are not cached: a stranger's invalid txs hold no memory
            except Exception as exc:  # a decoding bug must reject the tx, never halt every node
                raise TxRejected(Code.DECODE_ERROR, f"undecodable tx ({type(exc).__name__})") from None
            self._decoded[key] = cached
            if len(self._decoded) > CACHE_SIZE:
                self._decoded.popitem(last=False)
        return cached

    def _verify(self, tx: Tx) -> None:
        """Signature check, done once per node for a tx that passes it."""
        if tx.hash in self._verdicts:
            return
        verdict = verify_tx(tx, self._verified_orders)
        if len(self._verified_orders) > CACHE_SIZE:
            self._verified_orders.clear()
        if verdict is not None:
            raise verdict
        self._verdicts[tx.hash] = None
        if len(self._verdicts) > CACHE_SIZE:
            self._verdicts.pop(next(iter(self._verdicts)))

    def check_tx(self, tx_bytes: bytes) -> TxResult:
        """Stateless and cheap stateful checks against the last committed state (no writes)."""
        try:
            tx = self._decode(tx_bytes)
            self._verify(tx)
            ledger = self.ledger
            if ledger.globals is None:
                raise TxRejected(Code.INVALID_FIELD, "the chain is not initialised")
            self._ante(tx, self.last_height + 1, ledger.globals, self._seen(tx))
            account = ledger.accounts.get(tx.sender)
            self._check_fee_funds(tx, account, ledger.markets)
            self._check_role(tx, ledger.globals)
        except TxRejected as exc:
            # A refused tx leaves nothing behind (no decoded copy, no verdict): what strangers
            # can make the node remember is bounded by what passes, not by what they send.
            self._decoded.pop(sha256(tx_bytes), None)
            return TxResult(int(exc.code), exc.message)
        # The mempool ranks by this: fee per fill, so a batch paying the floor rate does not
        # outrank every single tx (oracle reports, cancels) paying it too.
        return TxResult(0, "", [], tx.fee // tx.weight(), tx.sender, tx.hash, tx.kind)

    def fee_priority(self, tx_bytes: bytes) -> int | None:
        """``check_tx``'s priority from the bytes alone (decoded, no signature checked): what a
        full mempool compares before paying for the signatures; None if they do not decode."""
        try:
            tx = self._decode(tx_bytes)
        except TxRejected:
            return None
        return tx.fee // tx.weight()

    def _seen(self, tx: Tx) -> bool:
        """Whether ``tx`` was included and is still remembered (its ``t/`` key exists).

        ``seen_buckets`` mirrors those keys by expiry, and a tx's expiry is part of the bytes its
        hash covers, so one set lookup answers without a store read. Between blocks (check_tx)
        the buckets are the committed keys; during a block they include its own txs, as the
        block view of the store does.
        """
        return tx.hash in self.seen_buckets.get(tx.expiry, ())

    @staticmethod
    def _ante(tx: Tx, height: int, g: Globals, seen: bool) -> None:
        if tx.expiry < height:
            raise TxRejected(Code.TX_EXPIRED, f"tx expired at height {tx.expiry}")
        if tx.expiry > height + g.replay_window:
            raise TxRejected(Code.EXPIRY_TOO_FAR, f"expiry may be at most {g.replay_window} blocks ahead")
        if seen:
            raise TxRejected(Code.DUPLICATE_TX, "tx was already included")
        minimum = g.min_tx_fee * tx.weight()
        if tx.fee < minimum:
            raise TxRejected(Code.FEE_TOO_LOW, f"fee {tx.fee} is below the minimum {minimum}")

    @staticmethod
    def _check_role(tx: Tx, g: Globals) -> None:
        """Cheap membership checks for the privileged kinds, so the mempool holds no spam."""
        if tx.kind == "oracle" and tx.sender not in g.feeder_power():
            raise TxRejected(Code.NOT_FEEDER, "signer is not a registered oracle feeder")
        if tx.kind == "deposit" and tx.sender not in g.operator_power():
            raise TxRejected(Code.NOT_BRIDGE_OPERATOR, "signer is not a bridge operator")
        if tx.kind == "vote" and tx.sender not in g.validator_power():
            raise TxRejected(Code.NOT_VALIDATOR, "signer is not an active validator")

    def _check_fee_funds(self, tx: Tx, account: Account | None, markets: dict[str, Market]) -> None:
        """The fee comes out of free collateral: equity after it must still cover initial margin.

        It is taken from ``quote``, which may go below zero against haircut collateral: an
        account holding only collateral can still pay to cancel or to withdraw, and the block's
        end converts collateral for any debt left with no position (waterfall step 7).
        """
        if tx.fee == 0:
            return
        if account is None:
            raise TxRejected(Code.INSUFFICIENT_FEE_FUNDS, f"account has nothing to pay the fee {tx.fee}")
        equity, imr, _mmr = risk_of(account, markets, self.ledger.pricing)
        if equity - tx.fee < imr:
            raise TxRejected(Code.INSUFFICIENT_FEE_FUNDS, f"free collateral cannot pay the fee {tx.fee}")

    # --- block execution ---------------------------------------------------------------------

    def begin_block(self, height: int, time_ms: int, proposer_address: bytes = b"",
                    evidence: list[tuple[bytes, int]] | None = None) -> list[dict[str, Any]]:
        if height != self.last_height + 1:
            raise ValueError(f"begin_block({height}) after committed height {self.last_height}")
        self.height, self.time_ms, self.proposer = height, time_ms, proposer_address
        ledger = self.ledger
        ledger.start_block()
        env = self.env = BlockEnv(ledger, height, time_ms, self.orders, self.proposals)
        events: list[dict[str, Any]] = []
        events += self._process_evidence(env, evidence or [])
        if height == self.genesis.initial_height:  # the genesis prices count as reported now
            for market in ledger.w_markets.values():
                market.last_price_ms = max(market.last_price_ms, time_ms)
        g = ledger.g
        feeders = g.feeder_power()
        moves = {}
        for market_id in sorted(ledger.w_markets):
            market = ledger.w_markets[market_id]
            old_price, old_index = market.price, market.funding_index
            events += apply_oracle_reports(market_id, market, ledger.reports.get(market_id, {}), feeders,
                                           time_ms, g.risk)
            events += apply_funding(market_id, market, time_ms)
            sweep_dust(market, g)
            market.imf_ppm = dynamic_imf(market)
            moves[market_id] = (old_price, market.price, market.funding_index - old_index)
        self.liquidations.on_moves(moves, ledger.w_markets)
        return events

    @staticmethod
    def _process_evidence(env: BlockEnv, evidence: list[tuple[bytes, int]]) -> list[dict[str, Any]]:
        """Jail each validator with evidence of double signing (never the last one with power)."""
        g = env.ledger.g
        events = []
        for address, evidence_height in sorted(evidence):
            validator = g.validators.get(address)
            active_power = sum(v[1] for v in g.validators.values() if not v[3])
            if validator is not None and not validator[3] and active_power > validator[1]:
                validator[3] = True
                env.validator_updates[validator[0]] = 0
                events.append(event("jail", validator=address, evidence_height=evidence_height))
        return events

    def deliver_tx(self, tx_bytes: bytes) -> TxResult:
        env = self.env
        assert env is not None, "deliver_tx outside a block"
        try:
            tx = self._decode(tx_bytes)
            self._verify(tx)
            ledger = self.ledger
            self._ante(tx, self.height, ledger.g, self._seen(tx))
            account = ledger.account(tx.sender)
            if account is not None and account.positions and tx.fee:
                account = ledger.account_mut(tx.sender)
                execute.settle_all(env, account)
            self._check_fee_funds(tx, account, ledger.w_markets)
        except TxRejected as exc:
            return TxResult(int(exc.code), exc.message)
        if tx.fee:
            payer = ledger.account_mut(tx.sender)
            payer.quote -= tx.fee
            ledger.g.fee_pool += tx.fee
            env.touch(tx.sender)
        ledger.put_raw(seen_key(tx.hash), tx.expiry)
        self.seen_buckets.setdefault(tx.expiry, set()).add(tx.hash)
        try:
            events = execute.HANDLERS[tx.kind](env, tx)
        except TxRejected as exc:
            return TxResult(int(exc.code), exc.message, [], tx.fee, tx.sender, tx.hash, tx.kind)
        return TxResult(0, "", events, tx.fee, tx.sender, tx.hash, tx.kind)

    def end_block(self) -> EndBlockResult:
        ledger = self.ledger
        height = self.height
        for expiry in [e for e in self.seen_buckets if e <= height]:
            for tx_hash in sorted(self.seen_buckets.pop(expiry)):
                ledger.delete_raw(seen_key(tx_hash))
        self.orders.expire(height)
        env = self.env
        assert env is not None, "end_block outside a block"
        events = governance.end_block(env)
        if env.markets_changed:
            self.liquidations.invalidate()
        events += waterfall.run(env, self.liquidations)
        events += waterfall.cover_collateral_debts(env)
        updates = [ValidatorUpdate(pub, power) for pub, power in sorted(env.validator_updates.items())]
        return EndBlockResult(events, updates, env.event_seq)

    def commit(self, batch: WriteBatch | None = None) -> bytes:
        entry, emptied = self.orders.commit(self.height)
        if entry:
            self.ledger.put_raw(journal_key(self.height), entry)
        for height in emptied:
            self.ledger.delete_raw(journal_key(height))
        root = self.ledger.commit(batch)
        self.env = None
        return root

    # --- queries ----------------------------------------------------------------------------

    def market_status(self, market: Market) -> str:
        """The market's trading status as of the last block (``oracle.market_status``)."""
        return market_status(market, self.time_ms, self.ledger.g.risk.oracle_staleness_ms)

    def prime_signature(self, tx_bytes: bytes) -> bool:
        """Decode and verify ahead of execution (benchmarks, block sync warm-up)."""
        try:
            self._verify(self._decode(tx_bytes))
        except TxRejected:
            return False
        return True


__all__ = ["PPM", "ClearingApp", "EndBlockResult", "TxResult", "ValidatorUpdate", "order_key"]
