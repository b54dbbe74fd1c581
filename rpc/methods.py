"""The method table: every JSON-RPC method, its parameters, and how its answer is shaped.

Names and result shapes follow CometBFT where the meaning is the same; the clearing methods are
ours. Each handler receives already-parsed parameters and returns JSON-ready data. Parameters
may be passed by name (object) or by position (array, in the listed order).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import trio

from primitives.hashing import sha256
from rpc import errors
from rpc.api import NodeAPI
from rpc.limits import Limits
from rpc.comet import search
from rpc.comet.query import QueryError, parse_query
from rpc.comet import shapes as comet
from rpc.views import BlockView, LiquidationPage, TxRecord, TxResultView
from rpc.events import EventBus
from rpc.render import (
    b64,
    parse_address,
    parse_base64,
    parse_bytes,
    parse_bool,
    parse_height,
    parse_int,
    parse_str,
    render,
)


def _unbounded() -> AbstractContextManager[None]:
    return nullcontext()


@dataclass
class Context:
    """What a handler sees: the node, the limits, and (from the server, per connection) the
    waiting room a broadcast_tx_commit holds a place in while it waits; ``observe`` (the node's
    metrics, if on) hears ``(method, seconds, error)`` of every answered call. ``methods`` is
    the table calls are looked up in: the node's :data:`METHODS` (a test may serve another
    table through the same dispatcher and transports)."""

    node: NodeAPI
    limits: Limits
    commit_wait: Callable[[], AbstractContextManager[None]] = _unbounded
    observe: Callable[[str, float, bool], None] | None = None
    methods: Mapping[str, Method] = field(default_factory=lambda: METHODS)
    retry_after_ms: int = 0
    """Set when a call of the request being answered was refused for load (the longest hint):
    the HTTP transport then answers 503 with ``Retry-After``."""

    @property
    def bus(self) -> EventBus:
        return self.node.events


@dataclass(frozen=True)
class Param:
    name: str
    parse: Callable[[str, Any], Any]
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class Method:
    name: str
    handler: Callable[..., Awaitable[Any]]
    params: tuple[Param, ...]
    doc: str
    websocket_only: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.doc,
            "params": [
                {"name": p.name, "required": p.required, "description": p.doc} for p in self.params
            ],
            **({"websocket_only": True} if self.websocket_only else {}),
        }


def bind_params(method: Method, params: Any) -> dict[str, Any]:
    """Map positional or named params onto the method's parameters, parsing each."""
    if params is None:
        params = {}
    if isinstance(params, list):
        if len(params) > len(method.params):
            raise errors.invalid_params(
                f"{method.name} takes at most {len(method.params)} params, got {len(params)}"
            )
        params = {p.name: value for p, value in zip(method.params, params)}
    elif not isinstance(params, dict):
        raise errors.invalid_params("params must be an object or an array")
    known = {p.name for p in method.params}
    unknown = sorted(set(params) - known)
    if unknown:
        hint = f"; accepted: {', '.join(sorted(known))}" if known else "; it takes none"
        raise errors.invalid_params(f"unknown param(s) {', '.join(unknown)} for {method.name}{hint}")
    bound = {}
    for param in method.params:
        value = params.get(param.name)
        if value is None:
            if param.required:
                raise errors.invalid_params(f"missing required param {param.name!r}")
            bound[param.name] = param.default
        else:
            bound[param.name] = param.parse(param.name, value)
    return bound


# --- parameter kinds ---------------------------------------------------------------------------

HEIGHT = parse_height


def _hash(name: str, value: Any) -> bytes:
    return parse_bytes(name, value, size=32)


def _data(name: str, value: Any) -> bytes:
    return parse_bytes(name, value) if value != "" else b""


def _order(name: str, value: Any) -> str:
    order = parse_str(name, value, max_length=8).lower() or "asc"
    if order not in ("asc", "desc"):
        raise errors.invalid_params(f"{name}: must be 'asc' or 'desc', got {value!r}")
    return order


def _page(name: str, value: Any) -> int:
    return parse_int(name, value, minimum=1, maximum=1 << 31)


def _per_page(name: str, value: Any) -> int:
    return parse_int(name, value, minimum=1, maximum=1 << 31)


def _limit(name: str, value: Any) -> int:
    return parse_int(name, value, minimum=1, maximum=1 << 31)


def _side(name: str, value: Any) -> str:
    side = parse_str(name, value, max_length=8).lower()
    if side not in ("buy", "sell"):
        raise errors.invalid_params(f"{name}: must be 'buy' or 'sell', got {value!r}")
    return side


def _positive(name: str, value: Any) -> int:
    return parse_int(name, value, minimum=1, maximum=2**127)


def _tx(ctx: Context, value: Any) -> bytes:
    """Base64 (JSON-RPC), or ``0x`` and hex (CometBFT's URI form, ``GET /broadcast_tx_sync?tx=0x..``)."""
    if isinstance(value, str) and value.startswith(("0x", "0X")):
        if len(value) > 2 + 2 * ctx.limits.max_tx_bytes:
            raise errors.invalid_params(f"tx: larger than {ctx.limits.max_tx_bytes} bytes")
        raw = parse_bytes("tx", value)
        if not raw:
            raise errors.invalid_params("tx: empty")
        return raw
    return parse_base64("tx", value, ctx.limits.max_tx_bytes)


# --- handlers ----------------------------------------------------------------------------------


def _found(value: Any, what: str) -> Any:
    if value is None:
        raise errors.not_found(what)
    return value


async def health(ctx: Context) -> Any:
    return {}


async def status(ctx: Context) -> Any:
    s = await ctx.node.status()
    return comet.status(s, earliest=await _earliest_block(ctx.node, s.earliest_block_height))


_EARLIEST: weakref.WeakKeyDictionary[Any, BlockView] = weakref.WeakKeyDictionary()
"""Each node's earliest stored block: ``status`` shows its hash, app hash and time on every
call, and a block once stored never changes, so it is read again only when pruning moves it."""


async def _earliest_block(node: NodeAPI, height: int) -> BlockView | None:
    cached = _EARLIEST.get(node)
    if cached is not None and cached.height == height:
        return cached
    found = await node.block(height) if height else None
    if found is not None:
        _EARLIEST[node] = found
    return found


async def net_info(ctx: Context) -> Any:
    info = await ctx.node.net_info()
    return comet.net_info(info, (await ctx.node.status()).chain_id)


async def genesis(ctx: Context) -> Any:
    return {"genesis": comet.genesis(await ctx.node.genesis())}


async def validators(ctx: Context, height: int | None, page: int, per_page: int) -> Any:
    answered, vals = await ctx.node.validators(height)
    per_page = min(per_page, ctx.limits.max_per_page)
    chosen = list(vals)[(page - 1) * per_page : page * per_page]
    if page > 1 and not chosen:
        raise errors.invalid_params(f"page {page} is beyond the last page")
    return {"block_height": str(answered), "validators": [comet.validator(v) for v in chosen],
            "count": str(len(chosen)), "total": str(len(vals))}


async def _block_at(ctx: Context, height: int | None) -> BlockView:
    return _found(await ctx.node.block(height), f"no block at height {height}")


async def _block_with_hash(ctx: Context, hash: bytes) -> BlockView:
    return _found(await ctx.node.block_by_hash(hash), f"no block with hash {hash.hex().upper()}")


async def block(ctx: Context, height: int | None) -> Any:
    return comet.block_answer(await _block_at(ctx, height))


async def block_by_hash(ctx: Context, hash: bytes) -> Any:
    return comet.block_answer(await _block_with_hash(ctx, hash))


async def header(ctx: Context, height: int | None) -> Any:
    return {"header": comet.header((await _block_at(ctx, height)).header)}


async def header_by_hash(ctx: Context, hash: bytes) -> Any:
    return {"header": comet.header((await _block_with_hash(ctx, hash)).header)}


async def blockchain(ctx: Context, minHeight: int | None, maxHeight: int | None) -> Any:
    status = await ctx.node.status()
    latest = status.latest_block_height
    high = min(maxHeight or latest, latest)
    # from the earliest stored block (a pruning node has no older ones), as CometBFT does
    low = max(minHeight or 1, status.earliest_block_height, 1,
              high - ctx.limits.max_blockchain_range + 1)
    if minHeight and maxHeight and minHeight > maxHeight:
        raise errors.invalid_params(f"minHeight {minHeight} is greater than maxHeight {maxHeight}")
    metas = []
    for height in range(high, low - 1, -1):
        found = await ctx.node.block(height)
        if found is not None:
            metas.append(comet.block_meta(found))
    return {"last_height": str(latest), "block_metas": metas}


async def block_results(ctx: Context, height: int | None) -> Any:
    return comet.block_results(_found(await ctx.node.block_results(height), f"no results for height {height}"))


async def commit(ctx: Context, height: int | None) -> Any:
    view = _found(await ctx.node.commit(height), f"no commit for height {height}")
    return {"signed_header": comet.signed_header(view), "canonical": view.canonical,
            **({"raw": b64(view.raw)} if view.raw else {})}


def _check_answer(result: TxResultView, tx_hash: bytes) -> dict[str, Any]:
    """broadcast_tx_sync/async: ResultBroadcastTx."""
    return {"code": int(result.code), "data": "", "log": result.log,
            "codespace": result.codespace, "hash": tx_hash.hex().upper()}


async def _submit(ctx: Context, raw: bytes) -> TxResultView:
    """``NodeAPI.broadcast_tx``; a refusal for load (mempool full, node behind) is raised as
    -32002 with ``data.retry_after_ms`` and its hint noted for the transport."""
    try:
        return await ctx.node.broadcast_tx(raw)
    except errors.RPCError as exc:
        hint = errors.retry_after_ms(exc)
        if hint is not None:
            ctx.retry_after_ms = max(ctx.retry_after_ms, hint)
        raise


async def broadcast_tx_async(ctx: Context, tx: Any) -> Any:
    """Hands the tx to the mempool; the answer does not wait for or report check_tx."""
    raw = _tx(ctx, tx)
    tx_hash = sha256(raw)
    await _submit(ctx, raw)
    return _check_answer(TxResultView(), tx_hash)


async def broadcast_tx_sync(ctx: Context, tx: Any) -> Any:
    raw = _tx(ctx, tx)
    return _check_answer(await _submit(ctx, raw), sha256(raw))


async def broadcast_tx_commit(ctx: Context, tx: Any) -> Any:
    """Waits until the tx is in a committed block. On timeout the error's ``data`` holds the
    hash, so the client polls ``tx`` instead of resubmitting. Waiters share one notification per
    tx hash (``EventBus.waiting_for_tx``) and hold a place in their own bounded pool
    (``ctx.commit_wait``): past it the call is refused before the tx is submitted."""
    raw = _tx(ctx, tx)
    tx_hash = sha256(raw)
    timeout_s = ctx.limits.timeout_broadcast_tx_commit_ms / 1000
    with ctx.commit_wait(), ctx.bus.waiting_for_tx(tx_hash) as wait:
        checked = await _submit(ctx, raw)
        if checked.code != 0:
            return {"check_tx": comet.tx_result(checked), "tx_result": comet.tx_result(TxResultView()),
                    "hash": tx_hash.hex().upper(), "height": "0"}
        with trio.move_on_after(timeout_s):
            await wait.done.wait()
        record = wait.record or await ctx.node.tx(tx_hash)  # or committed before we waited
        if record is None:
            raise errors.RPCError(
                errors.TIMEOUT,
                {"hash": tx_hash.hex().upper(),
                 "detail": f"tx not committed within {timeout_s:g} s; "
                           "poll `tx` with this hash instead of resubmitting"},
            )
        return {"check_tx": comet.tx_result(checked),
                "tx_result": comet.tx_result(record.result),
                "hash": tx_hash.hex().upper(), "height": str(record.height)}


async def check_tx(ctx: Context, tx: Any) -> Any:
    """ResponseCheckTx, plus ours: the tx's ``hash`` (as the broadcast methods give it)."""
    raw = _tx(ctx, tx)
    return {**comet.tx_result(await ctx.node.check_tx(raw)), "hash": sha256(raw).hex().upper()}


async def tx(ctx: Context, hash: bytes, prove: bool) -> Any:
    record = _found(await ctx.node.tx(hash), f"tx {hash.hex().upper()} not found")
    return await _tx_answer(ctx, record, prove)


async def _tx_answer(ctx: Context, record: TxRecord, prove: bool) -> dict[str, Any]:
    """``tx``/``tx_search`` entries; with ``prove``, the tx's Merkle proof in its block."""
    if not prove:
        return comet.tx_record(record)
    found = await ctx.node.block(record.height)
    if found is None or not 0 <= record.index < len(found.txs) or found.txs[record.index] != record.tx:
        raise errors.unavailable(f"block {record.height} is no longer stored: no proof for this tx")
    return comet.tx_record(record, comet.tx_proof(found.txs, record.index))


async def unconfirmed_txs(ctx: Context, limit: int) -> Any:
    info = await ctx.node.mempool(min(limit, ctx.limits.max_per_page))
    return {"n_txs": str(len(info.txs)), "total": str(info.n_txs),
            "total_bytes": str(info.total_bytes), "txs": [b64(t) for t in info.txs]}


async def num_unconfirmed_txs(ctx: Context) -> Any:
    info = await ctx.node.mempool(0)
    return {"n_txs": str(info.n_txs), "total": str(info.n_txs),
            "total_bytes": str(info.total_bytes), "txs": None}


async def abci_info(ctx: Context) -> Any:
    s = await ctx.node.status()
    return {"response": {"data": "clearchain", "version": s.version, "app_version": str(comet.APP_VERSION),
                         "last_block_height": str(s.latest_block_height),
                         "last_block_app_hash": comet.b64(s.latest_app_hash)}}


CLEARING_QUERY_PREFIX = "/clearing/"


async def abci_query(ctx: Context, path: str, data: bytes, height: int | None, prove: bool) -> Any:
    """Store reads (``/store``, with proof ops when ``prove``), and every clearing query as
    ``/clearing/<method>[/<first param>]`` with the other params as a JSON object in ``data``:
    the value is the method's JSON answer (UTF-8), an error is a non-zero ``code`` and its log."""
    if path.startswith(CLEARING_QUERY_PREFIX):
        return {"response": await _clearing_query(ctx, path, data, height)}
    result = await ctx.node.query(path, data, height, prove)
    return {"response": comet.query_response(result)}


async def _clearing_query(ctx: Context, path: str, data: bytes, height: int | None) -> dict[str, Any]:
    name, _, argument = path[len(CLEARING_QUERY_PREFIX):].partition("/")
    method = METHODS.get(name)
    at = height or (await ctx.node.status()).latest_block_height
    if method is None or name not in CLEARING_QUERIES:
        return comet.query_failure(1, f"unknown clearing query {name!r}; paths: "
                                      + ", ".join(CLEARING_QUERY_PREFIX + q for q in CLEARING_QUERIES), at)
    try:
        params = json.loads(data) if data else {}
        if not isinstance(params, dict):
            raise ValueError("data must be a JSON object of the method's params")
    except ValueError as exc:
        return comet.query_failure(2, f"data: {exc}", at)
    if argument:
        params[method.params[0].name] = argument
    if height is not None and any(p.name == "height" for p in method.params):
        params.setdefault("height", height)
    try:
        answer = await method.handler(ctx, **bind_params(method, params))
    except errors.RPCError as exc:
        return comet.query_failure(3, f"{exc.message}: {exc.data}" if exc.data else exc.message, at)
    value = json.dumps(answer, separators=(",", ":"), sort_keys=True).encode()
    return comet.query_success(path.encode(), value, at)


async def tx_search(ctx: Context, query: str, prove: bool, page: int, per_page: int, order_by: str) -> Any:
    index, found, chosen = await _search(ctx, query, page, per_page, order_by, blocks=False)
    records = [await ctx.node.tx(index.txs.tx_hash(position)) for position in chosen]
    return {"txs": [await _tx_answer(ctx, r, prove) for r in records if r is not None],
            "total_count": str(found)}


async def block_search(ctx: Context, query: str, page: int, per_page: int, order_by: str) -> Any:
    index, found, chosen = await _search(ctx, query, page, per_page, order_by, blocks=True)
    views = [await ctx.node.block(index.blocks.heights[position]) for position in chosen]
    return {"blocks": [comet.block_answer(v) for v in views if v is not None], "total_count": str(found)}


async def _search(ctx: Context, text: str, page: int, per_page: int, order_by: str, *,
                  blocks: bool) -> tuple[search.ChainIndex, int, list[int]]:
    """(the index, how many match, the positions of the page asked for), the index brought up
    to the tip first."""
    try:
        conditions = parse_query(text).conditions
    except QueryError as exc:
        raise errors.invalid_params(f"query: {exc}") from None
    index = search.index_of(ctx.node)
    await index.catch_up(ctx.node)
    found = (index.blocks if blocks else index.txs).search(conditions, index.earliest_height)
    if order_by == "desc":
        found.reverse()
    per_page = min(per_page, ctx.limits.max_per_page)
    chosen = found[(page - 1) * per_page : page * per_page]
    if page > 1 and not chosen:
        raise errors.invalid_params(f"page {page} is beyond the last page")
    return index, len(found), chosen


async def consensus_params(ctx: Context, height: int | None) -> Any:
    answered = height or (await ctx.node.status()).latest_block_height
    return {"block_height": str(answered),
            "consensus_params": comet.consensus_params(await ctx.node.genesis())}


async def consensus_state(ctx: Context) -> Any:
    return {"round_state": comet.round_state(await ctx.node.consensus_state())}


# --- clearing ----------------------------------------------------------------------------------


async def account(ctx: Context, address: bytes, height: int | None) -> Any:
    return render(_found(await ctx.node.account(address, height), "account not found"))


async def positions(ctx: Context, address: bytes, height: int | None) -> Any:
    return render(_found(await ctx.node.positions(address, height), "account not found"))


async def assets(ctx: Context) -> Any:
    return render(await ctx.node.assets())


async def markets(ctx: Context, height: int | None) -> Any:
    return render(await ctx.node.markets(height))


async def market(ctx: Context, market: str, height: int | None) -> Any:
    return render(_found(await ctx.node.market(market, height), f"market {market!r} not found"))


async def prices(ctx: Context, height: int | None) -> Any:
    return render(await ctx.node.prices(height))


async def insurance_fund(ctx: Context, height: int | None) -> Any:
    return render(await ctx.node.insurance_fund(height))


MAX_LIQUIDATIONS_OFFSET = 100_000
"""Deepest event a page may start at: each page scans the events before it."""


async def liquidations(
    ctx: Context, min_height: int | None, max_height: int | None, page: int, per_page: int
) -> Any:
    low, high = min_height or 1, max_height or (1 << 63) - 1
    if low > high:
        raise errors.invalid_params(f"min_height {low} is greater than max_height {high}")
    per_page = min(per_page, ctx.limits.max_per_page)
    offset = (page - 1) * per_page
    if offset > MAX_LIQUIDATIONS_OFFSET:
        raise errors.invalid_params(f"page {page} starts past event {MAX_LIQUIDATIONS_OFFSET}: "
                                    "narrow min_height/max_height instead of paging that deep")
    found = await ctx.node.liquidations(low, high, offset, per_page)
    if isinstance(found, Mapping):  # state/queries.py answers {"items", "total", "total_exact"}
        found = LiquidationPage(found["items"], found["total"], found.get("total_exact", True))
    return {"liquidations": render(list(found.items)), "total": str(found.total),
            "total_exact": found.total_exact, "page": str(page), "per_page": str(per_page)}


async def accounts_at_risk(ctx: Context, page: int, per_page: int) -> Any:
    """A page of the accounts nearest to liquidation (bounded: ``max_per_page`` per page, and
    the node refuses pages deeper than it ranks exactly)."""
    per_page = min(per_page, ctx.limits.max_per_page)
    found = await ctx.node.accounts_at_risk((page - 1) * per_page, per_page)
    return {"accounts": render(list(found["items"])), "indexed": str(found["indexed"]),
            "index_ready": found["index_ready"], "page": str(page), "per_page": str(per_page)}


async def account_health(ctx: Context, address: bytes, height: int | None) -> Any:
    return render(_found(await ctx.node.account_health(address, height), "account not found"))


async def check_margin(
    ctx: Context, address: bytes, market: str, side: str, size: int, price: int | None
) -> Any:
    order: dict[str, Any] = {"market": market, "side": side, "size": size}
    if price is not None:
        order["price"] = price
    return render(_found(await ctx.node.check_margin(address, order), "account not found"))


async def _websocket_only(ctx: Context, **_: Any) -> Any:
    raise errors.RPCError(errors.METHOD_NOT_FOUND, "this method is only available over /websocket")


def _raw_tx(name: str, value: Any) -> Any:
    """Parsed inside the handler, where the size limit is known."""
    return value


# --- the table ---------------------------------------------------------------------------------

_H = Param("height", HEIGHT, doc="block height; omitted or 0 = latest")
_ADDR = Param("address", parse_address, required=True, doc="account address (clr1...)")
_TX = Param("tx", _raw_tx, required=True, doc="signed tx bytes, base64 (or 0x and hex)")
_QUERY = Param("query", parse_str, required=True, doc="e.g. tm.event='NewBlock'")
_HASH_DOC = "32 bytes, hex or base64"
_SEARCH = Param("query", parse_str, required=True, doc="e.g. tx.height=5 AND message.sender='clr1...'")
_PAGING = (Param("page", _page, default=1), Param("per_page", _per_page, default=30),
           Param("order_by", _order, default="asc", doc="asc or desc (by height, then index)"))


def _m(handler: Callable[..., Awaitable[Any]], doc: str, *params: Param, ws: bool = False) -> Method:
    return Method(handler.__name__.lstrip("_"), handler, params, doc, ws)


METHODS: dict[str, Method] = {m.name: m for m in [
    _m(health, "Empty result when the node is up."),
    _m(status, "Node info, latest height/hash/app hash/time, catching_up, validator info."),
    _m(net_info, "Listeners, connected peers, and each persistent peer: connected or down since "
               "when, dials since its last stable connection, when the next dial is due."),
    _m(genesis, "The genesis document."),
    _m(validators, "The validator set at a height.", _H,
       Param("page", _page, default=1), Param("per_page", _per_page, default=30)),
    _m(block, "The block at a height.", _H),
    _m(block_by_hash, "The block with a hash.", Param("hash", _hash, required=True, doc=_HASH_DOC)),
    _m(blockchain, "Block headers from maxHeight down to minHeight (at most 20).",
       Param("minHeight", HEIGHT), Param("maxHeight", HEIGHT)),
    _m(header, "The header of the block at a height.", _H),
    _m(header_by_hash, "The header of the block with a hash.", Param("hash", _hash, required=True, doc=_HASH_DOC)),
    _m(block_results, "Per-tx results and the block's finalize_block_events of a height.", _H),
    _m(commit, "The signed header of a height.", _H),
    _m(broadcast_tx_async, "Submit a tx; returns its hash without waiting for check_tx.", _TX),
    _m(broadcast_tx_sync, "Submit a tx; returns the check_tx code and log.", _TX),
    _m(broadcast_tx_commit, "Submit a tx and wait for its block (the hash is returned "
       "even on timeout, in error.data).", _TX),
    _m(check_tx, "Run check_tx without adding to the mempool.", _TX),
    _m(tx, "A committed tx by hash.", Param("hash", _hash, required=True, doc=_HASH_DOC),
       Param("prove", parse_bool, default=False, doc="include the tx's Merkle proof against data_hash")),
    _m(tx_search, "Committed txs matching a query (tx.height, tx.hash, message.sender, "
       "<event>.<attribute>), paged.", _SEARCH,
       Param("prove", parse_bool, default=False, doc="include each tx's Merkle proof"),
       *_PAGING),
    _m(block_search, "Blocks matching a query (block.height, <event>.<attribute> of "
       "finalize_block_events), paged.", _SEARCH, *_PAGING),
    _m(unconfirmed_txs, "Txs waiting in the mempool.", Param("limit", _limit, default=30)),
    _m(num_unconfirmed_txs, "Count and bytes of the mempool."),
    _m(abci_info, "The application's name, version, last height and app hash."),
    _m(abci_query, "Store reads (/store, with proof ops) and every clearing query "
       "(/clearing/<method>[/<first param>], other params as JSON in data).",
       Param("path", parse_str, default="/store", doc="/store or /clearing/<method>[/<param>]"),
       Param("data", _data, default=b"", doc="hex (or base64): a store key, or a JSON object of params"),
       _H, Param("prove", parse_bool, default=False)),
    _m(consensus_params, "The consensus parameters at a height.", _H),
    _m(consensus_state, "The consensus round state: height/round/step and the blocks it holds."),
    _m(account, "Collateral balances, quote balance and replay state of an account.", _ADDR, _H),
    _m(positions, "Open perpetual positions of an account.", _ADDR, _H),
    _m(assets, "Quote and collateral assets with their symbols and decimals (for human units)."),
    _m(markets, "All markets with their parameters and status.", _H),
    _m(market, "One market.", Param("market", parse_str, required=True, doc="market id"), _H),
    _m(prices, "Latest oracle prices.", _H),
    _m(insurance_fund, "Insurance fund balance.", _H),
    _m(liquidations, "Liquidation events in a height range, oldest first, paged.",
       Param("min_height", HEIGHT), Param("max_height", HEIGHT),
       Param("page", _page, default=1), Param("per_page", _per_page, default=30)),
    _m(account_health, "Equity, IMR, MMR and distance to liquidation.", _ADDR, _H),
    _m(accounts_at_risk, "Accounts nearest to liquidation (margin ratio, distance in ppm of "
       "equity), nearest first, from the liquidation index; paged, as deep as the node ranks exactly.",
       Param("page", _page, default=1), Param("per_page", _per_page, default=10)),
    _m(check_margin, "What-if: would this order pass the margin check, and the state after.",
       _ADDR, Param("market", parse_str, required=True), Param("side", _side, required=True),
       Param("size", _positive, required=True, doc="base lots"),
       Param("price", _positive, doc="limit price; omitted = oracle price")),
]}

for _name, _doc, _params in [
    ("subscribe", "Subscribe to events matching a query.", (_QUERY,)),
    ("unsubscribe", "Cancel one subscription.", (_QUERY,)),
    ("unsubscribe_all", "Cancel every subscription of this connection.", ()),
]:
    METHODS[_name] = Method(_name, _websocket_only, _params, _doc, websocket_only=True)
METHODS["query"] = Method("query", abci_query, METHODS["abci_query"].params,
                          "Alias of abci_query.")
CLEARING_QUERIES = ("account", "positions", "markets", "market", "prices", "insurance_fund",
                    "liquidations", "account_health", "check_margin")
"""The clearing methods abci_query also answers, under /clearing/<method>."""


def method_listing(table: Mapping[str, Method] | None = None) -> list[dict[str, Any]]:
    table = METHODS if table is None else table
    return [table[name].describe() for name in sorted(table)]


def lookup(name: str, table: Mapping[str, Method] | None = None) -> Method:
    """The method called ``name``; raises METHOD_NOT_FOUND (-32601)."""
    found = (METHODS if table is None else table).get(name)
    if found is None:
        raise errors.RPCError(errors.METHOD_NOT_FOUND, f"unknown method {name[:64]!r}; GET / lists them")
    return found


MethodMap = Mapping[str, Method]
