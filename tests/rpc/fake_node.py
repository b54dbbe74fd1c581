"""A test double: an in-memory ``NodeAPI`` for testing the RPC layer without consensus, p2p or the real app.

Its txs are a stand-in format (canonical msgpack ``{"type", "body", "pub", "sig"}`` signed over
``sign_bytes("fake-tx", chain_id, [type, body])``) with the checks that matter to RPC: decoding,
signature, replay. ``make_block()`` commits the mempool as one block and publishes events, so
tests control time. Nothing here is consensus-critical; the real node implements the same API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from primitives import codec
from primitives.crypto import PrivateKey, address_of, sign_bytes, verify
from primitives.hashing import sha256
from localnet.dev_node import InMemoryBlocks
from rpc.views import (
    BlockResults,
    BlockView,
    LiquidationPage,
    MempoolInfo,
    NetInfo,
    NodeStatus,
    PeerView,
    PersistentPeerView,
    QueryResult,
    TxRecord,
    TxResultView,
    ValidatorView,
)
from rpc.events import EventBus, publish_block

CHAIN_ID = "fake-chain"
CODE_UNDECODABLE = 2
CODE_BAD_SIGNATURE = 4
CODE_REPLAY = 5
CODE_INSUFFICIENT = 6


def build_fake_tx(key: PrivateKey, kind: str, body: Mapping[str, Any], chain_id: str = CHAIN_ID) -> bytes:
    signature = key.sign(sign_bytes("fake-tx", chain_id, [kind, dict(body)]))
    return codec.encode({"type": kind, "body": dict(body), "pub": key.public_key, "sig": signature})


class FakeNode(InMemoryBlocks):
    """A single-process chain: a mempool, blocks on demand, balances, positions and prices."""

    def __init__(self, chain_id: str = CHAIN_ID) -> None:
        self.events = EventBus()
        self.chain_id = chain_id
        self.blocks: list[BlockView] = []
        self.results: list[BlockResults] = []
        self.txs: dict[bytes, TxRecord] = {}
        self.pending: list[bytes] = []
        self.seen: set[bytes] = set()
        self.balances: dict[bytes, int] = {}
        self.positions_by: dict[bytes, dict[str, int]] = {}
        self.price: dict[str, int] = {"BTC-USD": 50_000_000_000}
        self.insurance = 1_000_000
        self.liquidation_log: list[dict[str, Any]] = []
        self.validator = PrivateKey(b"\x01" * 32)
        self.fail_next_status = False

    # --- the tx stand-in ---------------------------------------------------------------------

    def _check(self, tx: bytes) -> tuple[TxResultView, dict[str, Any] | None]:
        try:
            decoded = codec.decode(tx, max_bytes=65536)
            if isinstance(decoded, dict) and set(decoded) == {"body", "sig"}:
                return self._check_real(tx)
            kind, body, pub, sig = decoded["type"], decoded["body"], decoded["pub"], decoded["sig"]
        except (codec.CodecError, KeyError, TypeError) as exc:
            return TxResultView(CODE_UNDECODABLE, f"cannot decode tx: {exc}", "fake"), None
        if not verify(pub, sign_bytes("fake-tx", self.chain_id, [kind, body]), sig):
            return TxResultView(CODE_BAD_SIGNATURE, "signature does not verify", "fake"), None
        if sha256(tx) in self.seen:
            return TxResultView(CODE_REPLAY, "tx already seen (replay)", "fake"), None
        return TxResultView(), decoded

    def _check_real(self, tx: bytes) -> tuple[TxResultView, dict[str, Any] | None]:
        """The application's own tx format (state/txs.py): decoding and signatures only."""
        from state.codes import TxRejected
        from state.txs import decode_tx, verify_tx

        try:
            decoded = decode_tx(tx, self.chain_id)
        except TxRejected as exc:
            return TxResultView(int(exc.code), exc.message, "clearing"), None
        rejected = verify_tx(decoded)
        if rejected is not None:
            return TxResultView(int(rejected.code), rejected.message, "clearing"), None
        if sha256(tx) in self.seen:
            return TxResultView(12, "tx already seen (replay)", "clearing"), None
        msg = decoded.msg
        body: dict[str, Any] = {}
        if decoded.kind == "transfer":
            body = {"amount": msg.amount, "to": msg.to}
        elif decoded.kind == "deposit":
            body = {"amount": msg.amount}
        kind = decoded.kind if decoded.kind in ("transfer", "deposit") else "noop"
        return TxResultView(), {"type": kind, "kind": decoded.kind, "body": body, "pub": decoded.signer,
                            "account": getattr(msg, "account", None)}

    def _deliver(self, decoded: dict[str, Any]) -> tuple[TxResultView, list[bytes]]:
        sender = decoded.get("account") or address_of(decoded["pub"])
        kind, body = decoded["type"], decoded["body"]
        if kind == "deposit":
            self.balances[sender] = self.balances.get(sender, 0) + int(body["amount"])
            return TxResultView(events=[{"type": "deposit", "attrs": {"account": sender, "amount": body["amount"]}}]), [sender]
        if kind == "transfer":
            amount, to = int(body["amount"]), bytes(body["to"])
            if self.balances.get(sender, 0) < amount:
                return TxResultView(CODE_INSUFFICIENT, "insufficient balance", "fake"), [sender]
            self.balances[sender] -= amount
            self.balances[to] = self.balances.get(to, 0) + amount
            return TxResultView(), [sender, to]
        if kind == "trade":
            market, size, other = body["market"], int(body["size"]), bytes(body["counterparty"])
            for account, signed in ((sender, size), (other, -size)):
                book = self.positions_by.setdefault(account, {})
                book[market] = book.get(market, 0) + signed
                self.balances.setdefault(account, 0)
            return TxResultView(events=[{"type": "trade", "attrs": {
                "market": market, "buyer": sender, "seller": other, "size": size,
                "price": self.price.get(market, 0)}}]), [sender, other]
        return TxResultView(), [sender]

    # --- driving the fake chain --------------------------------------------------------------

    def make_block(self, end_events: Sequence[Mapping[str, Any]] = ()) -> BlockView:
        height = len(self.blocks) + 1
        txs, self.pending = self.pending, []
        records, results = [], []
        for index, tx in enumerate(txs):
            checked, decoded = self._check(tx)
            tx_hash = sha256(tx)
            self.seen.add(tx_hash)
            result, accounts = (checked, []) if decoded is None else self._deliver(decoded)
            record = TxRecord(tx_hash, height, index, tx, result,
                              tx_type=decoded.get("kind", decoded["type"]) if decoded else "", accounts=accounts)
            self.txs[tx_hash] = record
            records.append(record)
            results.append(result)
        for event in end_events:
            if event.get("type") == "liquidation":
                self.liquidation_log.append({"height": height, **dict(event.get("attrs", {}))})
        app_hash = sha256(codec.encode(sorted((k, v) for k, v in self.balances.items())))
        header = {"chain_id": self.chain_id, "height": height, "time": 1_700_000_000_000_000_000 + height,
                  "app_hash": self.results[-1].app_hash if self.results else b"",
                  "data_hash": sha256(b"".join(txs)), "proposer": self.validator.address}
        block_hash = sha256(codec.encode(header))
        block = BlockView(height, block_hash, header, tuple(txs), {"height": height - 1, "signatures": []},
                          size=sum(map(len, txs)))
        block_results = BlockResults(height, tuple(results), end_block_events=tuple(end_events), app_hash=app_hash)
        self.blocks.append(block)
        self.results.append(block_results)
        publish_block(self.events, block, block_results, records)
        return block

    # --- NodeAPI ----------------------------------------------------------------------------

    async def status(self) -> NodeStatus:
        if self.fail_next_status:
            self.fail_next_status = False
            raise RuntimeError("simulated node failure")
        last = self.blocks[-1] if self.blocks else None
        return NodeStatus(
            node_id="fake", moniker="fake-node", chain_id=self.chain_id, version="0.1.0",
            listen_addr="/ip4/127.0.0.1/tcp/0", rpc_addr="", latest_block_height=len(self.blocks),
            latest_block_hash=last.hash if last else b"", latest_app_hash=self.results[-1].app_hash if last else b"",
            latest_block_time_ns=int(last.header["time"]) if last else 0, earliest_block_height=1 if last else 0,
            catching_up=False, validator_address=self.validator.address,
            validator_pub_key=self.validator.public_key, validator_voting_power=10,
        )

    async def net_info(self) -> NetInfo:
        return NetInfo(True, ["/ip4/127.0.0.1/tcp/0"], [PeerView("peer1", "/ip4/127.0.0.1/tcp/1")],
                       [PersistentPeerView("peer1", "/ip4/127.0.0.1/tcp/1/p2p/peer1", True, 1_000),
                        PersistentPeerView("peer2", "/ip4/127.0.0.1/tcp/2/p2p/peer2", False, 2_000,
                                           dials=3, next_dial_ms=3_500,
                                           last_error="ConnectionRefusedError: refused")])

    async def genesis(self) -> Mapping[str, Any]:
        return {"chain_id": self.chain_id, "initial_height": 1, "validators": [{"power": 10}]}

    async def validators(self, height: int | None) -> tuple[int, Sequence[ValidatorView]]:
        return (height or len(self.blocks), [ValidatorView(self.validator.address, self.validator.public_key, 10)])

    async def tx(self, tx_hash: bytes) -> TxRecord | None:
        return self.txs.get(tx_hash)

    async def check_tx(self, tx: bytes) -> TxResultView:
        return self._check(tx)[0]

    async def broadcast_tx(self, tx: bytes) -> TxResultView:
        result, _ = self._check(tx)
        if result.code == 0 and tx in self.pending:
            return TxResultView(CODE_REPLAY, "tx already in the mempool", "mempool")
        if result.code == 0:
            self.pending.append(tx)
        return result

    async def mempool(self, limit: int) -> MempoolInfo:
        return MempoolInfo(len(self.pending), sum(map(len, self.pending)), tuple(self.pending[:limit]))

    async def query(self, path: str, data: bytes, height: int | None, prove: bool) -> QueryResult:
        if path != "/store":
            return QueryResult(code=1, log=f"unknown path {path}")
        value = self.balances.get(data)
        proof = {"ops": [{"type": "fake", "key": data}]} if prove else None
        return QueryResult(key=data, value=None if value is None else str(value).encode(),
                           height=len(self.blocks), proof=proof)

    async def account(self, address: bytes, height: int | None) -> Any:
        if address not in self.balances:
            return None
        return {"address": address, "quote_balance": self.balances[address], "collateral": {}}

    async def positions(self, address: bytes, height: int | None) -> Any:
        if address not in self.balances:
            return None
        return [{"market": m, "size": s} for m, s in sorted(self.positions_by.get(address, {}).items())]

    async def assets(self) -> Any:
        return {"quote": {"symbol": "USDC", "decimals": 6}, "collateral": []}

    async def markets(self, height: int | None) -> Any:
        return [{"id": m, "status": "active", "imf_ppm": 50_000} for m in sorted(self.price)]

    async def market(self, market_id: str, height: int | None) -> Any:
        return {"id": market_id, "status": "active"} if market_id in self.price else None

    async def prices(self, height: int | None) -> Any:
        return {m: {"price": p, "exponent": -6} for m, p in sorted(self.price.items())}

    async def insurance_fund(self, height: int | None) -> Any:
        return {"balance": self.insurance}

    async def liquidations(self, min_height: int, max_height: int, offset: int, limit: int) -> LiquidationPage:
        chosen = [e for e in self.liquidation_log if min_height <= e["height"] <= max_height]
        return LiquidationPage(chosen[offset : offset + limit], len(chosen))

    async def accounts_at_risk(self, offset: int, limit: int) -> Any:
        return {"items": [], "indexed": 0, "index_ready": True}

    async def account_health(self, address: bytes, height: int | None) -> Any:
        if address not in self.balances:
            return None
        return {"equity": self.balances[address], "imr": 0, "mmr": 0, "liquidatable": False}

    async def check_margin(self, address: bytes, order: Mapping[str, Any]) -> Any:
        if address not in self.balances:
            return None
        notional = order["size"] * (order["price"] or self.price.get(order["market"], 0))
        required = -(-notional * 50_000 // 1_000_000)
        return {"passes": self.balances[address] >= required, "imr_after": required,
                "equity_after": self.balances[address]}
