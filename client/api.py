"""``Client`` (blocking) and ``AsyncClient`` (trio): every query method as a typed call and
every tx kind built, signed and submitted.

Both run the same :mod:`client.calls` (params and result parsing, no I/O) over the transports
of :mod:`rpc.client` (JSON-RPC over HTTP keep-alive, WebSocket subscriptions), which stay the
one place that speaks HTTP. JSON-RPC errors are raised as the subclass for their code
(:mod:`client.errors`); a refused tx raises :class:`client.errors.TxFailed`.

    with Client("http://127.0.0.1:26657") as node:
        node.status().latest_block_height
        node.send(alice, Transfer(to=bob.address, asset="USDC", amount=5_000_000))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import trio

from client import calls
from client import results as r
from client.calls import Call
from client.errors import RPCClientError, TxFailed, classify
from client.txs import TxMessage
from primitives.crypto import Signer
from rpc import client as transport
from rpc.client import DEFAULT_URL, AnswerVerifier

T = TypeVar("T")
Mode = Literal["commit", "sync", "async"]
DEFAULT_EXPIRY_BLOCKS = 20
"""A tx built without an explicit expiry is valid for this many blocks past the latest."""


@dataclass(frozen=True)
class ChainParams:
    """What building a tx needs from the chain: its id and the minimum fee (from genesis)."""

    chain_id: str
    min_tx_fee: int


def _broadcast(mode: Mode, tx: bytes) -> Call[Any]:
    if mode == "commit":
        return calls.broadcast_tx_commit(tx)
    if mode == "sync":
        return calls.broadcast_tx_sync(tx)
    if mode == "async":
        return calls.broadcast_tx_async(tx)
    raise ValueError(f"mode must be commit, sync or async, not {mode!r}")


def accepted(answer: r.Broadcast | r.Committed) -> r.Broadcast | r.Committed:
    """The answer of a broadcast, or :class:`TxFailed` if check_tx or the block refused the tx."""
    if isinstance(answer, r.Committed):
        if not answer.check_tx.ok:
            check = answer.check_tx
            raise TxFailed("check_tx", check.code, check.log, answer.hash, codespace=check.codespace)
        if answer.tx_result is not None and not answer.tx_result.ok:
            result = answer.tx_result
            raise TxFailed("deliver", result.code, result.log, answer.hash, answer.height, result.codespace)
    elif answer.code != 0:
        raise TxFailed("check_tx", answer.code, answer.log, answer.hash, codespace=answer.codespace)
    return answer


def _typed(batch: Sequence[Call[T]], answers: list[Any]) -> list[T | RPCClientError]:
    return [classify(a) if isinstance(a, RPCClientError) else c.result(a) for c, a in zip(batch, answers)]


def _fee(params: ChainParams, message: TxMessage, fee: int | None) -> int:
    return params.min_tx_fee * message.fee_units() if fee is None else fee


class Client:
    """Blocking client over one keep-alive connection (one per thread).

    ``verify`` makes every answer pass a verifier first (the light client's
    ``node.light_client.AnswerProver``), as :class:`rpc.client.Client` does.
    """

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 30.0,
                 verify: AnswerVerifier | None = None) -> None:
        self.transport = transport.Client(url, timeout, verify)
        self.url = url
        self._chain: ChainParams | None = None

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, call: Call[T]) -> T:
        """Make one call; its typed result."""
        try:
            answer = self.transport.call(call.method, **call.params)
        except RPCClientError as exc:
            raise classify(exc) from None
        return call.result(answer)

    def call(self, method: str, **params: Any) -> Any:
        """Any method by name, its JSON result as sent (for methods this client does not type)."""
        try:
            return self.transport.call(method, **params)
        except RPCClientError as exc:
            raise classify(exc) from None

    def batch(self, batch: Sequence[Call[T]]) -> list[T | RPCClientError]:
        """Several calls in one JSON-RPC batch: each a typed result or its error (classified);
        an error for the whole batch (e.g. over the node's batch limit) raises."""
        try:
            answers = self.transport.batch([(c.method, c.params) for c in batch])
        except RPCClientError as exc:
            raise classify(exc) from None
        return _typed(batch, answers)

    # --- txs -----------------------------------------------------------------------------------

    def chain(self) -> ChainParams:
        """The chain id and minimum fee (read once from genesis)."""
        if self._chain is None:
            genesis = self.genesis()
            self._chain = ChainParams(genesis.chain_id, genesis.min_tx_fee)
        return self._chain

    def build(self, signer: Signer, message: TxMessage, *, fee: int | None = None,
              expiry: int | None = None) -> bytes:
        """The signed tx bytes; fee defaults to the minimum, expiry to latest + 20 blocks."""
        params = self.chain()
        if expiry is None:
            expiry = self.latest_height() + DEFAULT_EXPIRY_BLOCKS
        return message.build(signer, params.chain_id, fee=_fee(params, message, fee), expiry=expiry)

    def submit(self, tx: bytes, mode: Mode = "commit") -> r.Broadcast | r.Committed:
        """Broadcast signed bytes; raises :class:`TxFailed` if the tx is refused."""
        return accepted(self.run(_broadcast(mode, tx)))

    def send(self, signer: Signer, message: TxMessage, *, fee: int | None = None, expiry: int | None = None,
             mode: Mode = "commit") -> r.Broadcast | r.Committed:
        """Build, sign and submit ``message``; by default wait for its block."""
        return self.submit(self.build(signer, message, fee=fee, expiry=expiry), mode)

    def latest_height(self) -> int:
        return self.status().latest_block_height

    def subscribe(self, query: str, timeout: float | None = None) -> Iterator[Any]:
        """Events matching ``query`` over a WebSocket of their own (see rpc.client)."""
        return self.transport.subscribe(query, timeout)

    # --- every query method (client.calls) -----------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.run(calls.health())

    def status(self) -> r.Status:
        return self.run(calls.status())

    def net_info(self) -> r.NetInfo:
        return self.run(calls.net_info())

    def genesis(self) -> r.Genesis:
        return self.run(calls.genesis())

    def validators(self, height: int | None = None, page: int | None = None,
                   per_page: int | None = None) -> r.Validators:
        return self.run(calls.validators(height, page, per_page))

    def block(self, height: int | None = None) -> r.Block:
        return self.run(calls.block(height))

    def block_by_hash(self, block_hash: bytes | str) -> r.Block:
        return self.run(calls.block_by_hash(block_hash))

    def header(self, height: int | None = None) -> r.Header:
        return self.run(calls.header(height))

    def header_by_hash(self, block_hash: bytes | str) -> r.Header:
        return self.run(calls.header_by_hash(block_hash))

    def tx_search(self, query: str, prove: bool = False, page: int | None = None,
                  per_page: int | None = None, order_by: str | None = None) -> r.TxSearch:
        return self.run(calls.tx_search(query, prove, page, per_page, order_by))

    def block_search(self, query: str, page: int | None = None, per_page: int | None = None,
                     order_by: str | None = None) -> r.BlockSearch:
        return self.run(calls.block_search(query, page, per_page, order_by))

    def abci_info(self) -> r.AbciInfo:
        return self.run(calls.abci_info())

    def consensus_params(self, height: int | None = None) -> r.ConsensusParams:
        return self.run(calls.consensus_params(height))

    def consensus_state(self) -> r.RoundState:
        return self.run(calls.consensus_state())

    def blockchain(self, min_height: int | None = None, max_height: int | None = None) -> r.Blockchain:
        return self.run(calls.blockchain(min_height, max_height))

    def block_results(self, height: int | None = None) -> r.BlockResults:
        return self.run(calls.block_results(height))

    def commit(self, height: int | None = None) -> r.SignedHeader:
        return self.run(calls.commit(height))

    def broadcast_tx_async(self, tx: bytes) -> r.Broadcast:
        return self.run(calls.broadcast_tx_async(tx))

    def broadcast_tx_sync(self, tx: bytes) -> r.Broadcast:
        return self.run(calls.broadcast_tx_sync(tx))

    def broadcast_tx_commit(self, tx: bytes) -> r.Committed:
        return self.run(calls.broadcast_tx_commit(tx))

    def check_tx(self, tx: bytes) -> r.CheckedTx:
        return self.run(calls.check_tx(tx))

    def tx(self, tx_hash: bytes | str, prove: bool = False) -> r.TxInfo:
        return self.run(calls.tx(tx_hash, prove))

    def unconfirmed_txs(self, limit: int | None = None) -> r.Mempool:
        return self.run(calls.unconfirmed_txs(limit))

    def num_unconfirmed_txs(self) -> r.Mempool:
        return self.run(calls.num_unconfirmed_txs())

    def query(self, path: str = "/store", data: bytes = b"", height: int | None = None,
              prove: bool = False) -> r.QueryResponse:
        return self.run(calls.query(path, data, height, prove))

    def abci_query(self, path: str = "/store", data: bytes = b"", height: int | None = None,
                   prove: bool = False) -> r.QueryResponse:
        return self.run(calls.abci_query(path, data, height, prove))

    def account(self, address: bytes | str, height: int | None = None) -> r.Account:
        return self.run(calls.account(address, height))

    def positions(self, address: bytes | str, height: int | None = None) -> tuple[r.Position, ...]:
        return self.run(calls.positions(address, height))

    def markets(self, height: int | None = None) -> tuple[r.Market, ...]:
        return self.run(calls.markets(height))

    def market(self, market_id: str, height: int | None = None) -> r.Market:
        return self.run(calls.market(market_id, height))

    def prices(self, height: int | None = None) -> dict[str, r.Price]:
        return self.run(calls.prices(height))

    def insurance_fund(self, height: int | None = None) -> r.InsuranceFund:
        return self.run(calls.insurance_fund(height))

    def assets(self) -> r.Assets:
        return self.run(calls.assets())

    def accounts_at_risk(self, page: int | None = None, per_page: int | None = None) -> r.AccountsAtRisk:
        return self.run(calls.accounts_at_risk(page, per_page))

    def liquidations(self, min_height: int | None = None, max_height: int | None = None,
                     page: int | None = None, per_page: int | None = None) -> r.Liquidations:
        return self.run(calls.liquidations(min_height, max_height, page, per_page))

    def account_health(self, address: bytes | str, height: int | None = None) -> r.Health:
        return self.run(calls.account_health(address, height))

    def check_margin(self, address: bytes | str, market: str, side: str, size: int,
                     price: int | None = None) -> r.MarginCheck:
        return self.run(calls.check_margin(address, market, side, size, price))


class AsyncClient:
    """trio client: a pool of keep-alive connections, so concurrent calls run in parallel."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 30.0, max_connections: int = 32) -> None:
        self.transport = transport.AsyncClient(url, timeout, max_connections)
        self.url = url
        self._chain: ChainParams | None = None

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run(self, call: Call[T]) -> T:
        """Make one call; its typed result."""
        try:
            answer = await self.transport.call(call.method, **call.params)
        except RPCClientError as exc:
            raise classify(exc) from None
        return call.result(answer)

    async def call(self, method: str, **params: Any) -> Any:
        """Any method by name, its JSON result as sent (for methods this client does not type)."""
        try:
            return await self.transport.call(method, **params)
        except RPCClientError as exc:
            raise classify(exc) from None

    async def batch(self, batch: Sequence[Call[T]]) -> list[T | RPCClientError]:
        """Several calls in one JSON-RPC batch: each a typed result or its error (classified);
        an error for the whole batch (e.g. over the node's batch limit) raises."""
        try:
            answers = await self.transport.batch([(c.method, c.params) for c in batch])
        except RPCClientError as exc:
            raise classify(exc) from None
        return _typed(batch, answers)

    # --- txs -----------------------------------------------------------------------------------

    async def chain(self) -> ChainParams:
        """The chain id and minimum fee (read once from genesis)."""
        if self._chain is None:
            genesis = await self.genesis()
            self._chain = ChainParams(genesis.chain_id, genesis.min_tx_fee)
        return self._chain

    async def build(self, signer: Signer, message: TxMessage, *, fee: int | None = None,
                    expiry: int | None = None) -> bytes:
        """The signed tx bytes; fee defaults to the minimum, expiry to latest + 20 blocks."""
        params = await self.chain()
        if expiry is None:
            expiry = await self.latest_height() + DEFAULT_EXPIRY_BLOCKS
        return message.build(signer, params.chain_id, fee=_fee(params, message, fee), expiry=expiry)

    async def submit(self, tx: bytes, mode: Mode = "commit") -> r.Broadcast | r.Committed:
        """Broadcast signed bytes; raises :class:`TxFailed` if the tx is refused."""
        return accepted(await self.run(_broadcast(mode, tx)))

    async def send(self, signer: Signer, message: TxMessage, *, fee: int | None = None,
                   expiry: int | None = None, mode: Mode = "commit") -> r.Broadcast | r.Committed:
        """Build, sign and submit ``message``; by default wait for its block."""
        return await self.submit(await self.build(signer, message, fee=fee, expiry=expiry), mode)

    async def latest_height(self) -> int:
        return (await self.status()).latest_block_height

    @asynccontextmanager
    async def subscribe(self, query: str, queue: int = 1024) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        """A channel of the events matching ``query`` (see rpc.client.AsyncClient.subscribe)."""
        async with self.transport.subscribe(query, queue) as events:
            yield events

    # --- every query method (client.calls) -----------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self.run(calls.health())

    async def status(self) -> r.Status:
        return await self.run(calls.status())

    async def net_info(self) -> r.NetInfo:
        return await self.run(calls.net_info())

    async def genesis(self) -> r.Genesis:
        return await self.run(calls.genesis())

    async def validators(self, height: int | None = None, page: int | None = None,
                         per_page: int | None = None) -> r.Validators:
        return await self.run(calls.validators(height, page, per_page))

    async def block(self, height: int | None = None) -> r.Block:
        return await self.run(calls.block(height))

    async def block_by_hash(self, block_hash: bytes | str) -> r.Block:
        return await self.run(calls.block_by_hash(block_hash))

    async def header(self, height: int | None = None) -> r.Header:
        return await self.run(calls.header(height))

    async def header_by_hash(self, block_hash: bytes | str) -> r.Header:
        return await self.run(calls.header_by_hash(block_hash))

    async def tx_search(self, query: str, prove: bool = False, page: int | None = None,
                  per_page: int | None = None, order_by: str | None = None) -> r.TxSearch:
        return await self.run(calls.tx_search(query, prove, page, per_page, order_by))

    async def block_search(self, query: str, page: int | None = None, per_page: int | None = None,
                     order_by: str | None = None) -> r.BlockSearch:
        return await self.run(calls.block_search(query, page, per_page, order_by))

    async def abci_info(self) -> r.AbciInfo:
        return await self.run(calls.abci_info())

    async def consensus_params(self, height: int | None = None) -> r.ConsensusParams:
        return await self.run(calls.consensus_params(height))

    async def consensus_state(self) -> r.RoundState:
        return await self.run(calls.consensus_state())

    async def blockchain(self, min_height: int | None = None, max_height: int | None = None) -> r.Blockchain:
        return await self.run(calls.blockchain(min_height, max_height))

    async def block_results(self, height: int | None = None) -> r.BlockResults:
        return await self.run(calls.block_results(height))

    async def commit(self, height: int | None = None) -> r.SignedHeader:
        return await self.run(calls.commit(height))

    async def broadcast_tx_async(self, tx: bytes) -> r.Broadcast:
        return await self.run(calls.broadcast_tx_async(tx))

    async def broadcast_tx_sync(self, tx: bytes) -> r.Broadcast:
        return await self.run(calls.broadcast_tx_sync(tx))

    async def broadcast_tx_commit(self, tx: bytes) -> r.Committed:
        return await self.run(calls.broadcast_tx_commit(tx))

    async def check_tx(self, tx: bytes) -> r.CheckedTx:
        return await self.run(calls.check_tx(tx))

    async def tx(self, tx_hash: bytes | str, prove: bool = False) -> r.TxInfo:
        return await self.run(calls.tx(tx_hash, prove))

    async def unconfirmed_txs(self, limit: int | None = None) -> r.Mempool:
        return await self.run(calls.unconfirmed_txs(limit))

    async def num_unconfirmed_txs(self) -> r.Mempool:
        return await self.run(calls.num_unconfirmed_txs())

    async def query(self, path: str = "/store", data: bytes = b"", height: int | None = None,
                    prove: bool = False) -> r.QueryResponse:
        return await self.run(calls.query(path, data, height, prove))

    async def abci_query(self, path: str = "/store", data: bytes = b"", height: int | None = None,
                         prove: bool = False) -> r.QueryResponse:
        return await self.run(calls.abci_query(path, data, height, prove))

    async def account(self, address: bytes | str, height: int | None = None) -> r.Account:
        return await self.run(calls.account(address, height))

    async def positions(self, address: bytes | str, height: int | None = None) -> tuple[r.Position, ...]:
        return await self.run(calls.positions(address, height))

    async def markets(self, height: int | None = None) -> tuple[r.Market, ...]:
        return await self.run(calls.markets(height))

    async def market(self, market_id: str, height: int | None = None) -> r.Market:
        return await self.run(calls.market(market_id, height))

    async def prices(self, height: int | None = None) -> dict[str, r.Price]:
        return await self.run(calls.prices(height))

    async def insurance_fund(self, height: int | None = None) -> r.InsuranceFund:
        return await self.run(calls.insurance_fund(height))

    async def assets(self) -> r.Assets:
        return await self.run(calls.assets())

    async def accounts_at_risk(self, page: int | None = None,
                               per_page: int | None = None) -> r.AccountsAtRisk:
        return await self.run(calls.accounts_at_risk(page, per_page))

    async def liquidations(self, min_height: int | None = None, max_height: int | None = None,
                           page: int | None = None, per_page: int | None = None) -> r.Liquidations:
        return await self.run(calls.liquidations(min_height, max_height, page, per_page))

    async def account_health(self, address: bytes | str, height: int | None = None) -> r.Health:
        return await self.run(calls.account_health(address, height))

    async def check_margin(self, address: bytes | str, market: str, side: str, size: int,
                           price: int | None = None) -> r.MarginCheck:
        return await self.run(calls.check_margin(address, market, side, size, price))
