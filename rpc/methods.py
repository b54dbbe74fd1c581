"""The method table: every JSON-RPC method, its parameters, and how its answer is shaped.

Names and result shapes follow CometBFT where the meaning is the same; the clearing methods are
ours. Each handler receives already-parsed parameters and returns JSON-ready data. Parameters
may be passed by name (object) or by position (array, in the listed order).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import trio

from primitives.hashing import sha256
from rpc import errors
from rpc.api import NodeAPI
from rpc.limits import Limits
from rpc.views import BlockView, LiquidationPage, TxResultView
from rpc.events import EventBus, block_json, tx_json
from rpc.render import (
    b64,
    parse_address,
    parse_base64,
    parse_bool,
    parse_height,
    parse_hex,
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
    metrics, if on) hears ``(method, seconds, error)`` of every answered call."""

    node: NodeAPI
    limits: Limits
    commit_wait: Callable[[], AbstractContextManager[None]] = _unbounded
    observe: Callable[[str, float, bool], None] | None = None
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
    return parse_hex(name, value, size=32)


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
    return {
        "node_info": {
            "id": s.node_id,
            "listen_addr": s.listen_addr,
            "network": s.chain_id,
            "version": s.version,
            "moniker": s.moniker,
            "other": {"rpc_address": s.rpc_addr},
        },
        "sync_info": {
            "latest_block_hash": render(s.latest_block_hash),
            "latest_app_hash": render(s.latest_app_hash),
            "latest_block_height": str(s.latest_block_height),
            "latest_block_time": str(s.latest_block_time_ns),
            "earliest_block_height": str(s.earliest_block_height),
            "catching_up": s.catching_up,
        },
        "validator_info": {
            "address": render(s.validator_address),
            "pub_key": {"type": "ed25519", "value": b64(s.validator_pub_key)},
            "voting_power": str(s.validator_voting_power),
        },
    }


async def net_info(ctx: Context) -> Any:
    info = await ctx.node.net_info()
    return {
        "listening": info.listening,
        "listeners": list(info.listeners),
        "n_peers": str(len(info.peers)),
        "peers": [
            {"node_info": {"id": p.node_id, "moniker": p.moniker, "listen_addr": p.address},
             "is_outbound": p.is_outbound, "remote_ip": p.address}
            for p in info.peers
        ],
        "persistent_peers": [
            {"id": p.node_id, "address": p.address, "connected": p.connected,
             "since_ms": str(p.since_ms), "dials": str(p.dials),
             "next_dial_ms": None if p.next_dial_ms is None else str(p.next_dial_ms),
             "last_error": p.last_error}
            for p in info.persistent_peers
        ],
    }


async def genesis(ctx: Context) -> Any:
    return {"genesis": render(await ctx.node.genesis())}


async def validators(ctx: Context, height: int | None, page: int, per_page: int) -> Any:
    answered, vals = await ctx.node.validators(height)
    per_page = min(per_page, ctx.limits.max_per_page)
    chosen = list(vals)[(page - 1) * per_page : page * per_page]
    if page > 1 and not chosen:
        raise errors.invalid_params(f"page {page} is beyond the last page")
    return {
        "block_height": str(answered),
        "validators": [
            {"address": render(v.address), "pub_key": {"type": "ed25519", "value": b64(v.pub_key)},
             "voting_power": str(v.voting_power), "proposer_priority": str(v.proposer_priority)}
            for v in chosen
        ],
        "count": str(len(chosen)),
        "total": str(len(vals)),
    }


def _block_answer(block: BlockView) -> Any:
    return {"block_id": {"hash": render(block.hash)}, "block": block_json(block)}


async def block(ctx: Context, height: int | None) -> Any:
    return _block_answer(_found(await ctx.node.block(height), f"no block at height {height}"))


async def block_by_hash(ctx: Context, hash: bytes) -> Any:
    found = await ctx.node.block_by_hash(hash)
    return _block_answer(_found(found, f"no block with hash {hash.hex().upper()}"))


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
        if found is None:
            continue
        metas.append({
            "block_id": {"hash": render(found.hash)},
            "block_size": str(found.size),
            "header": render(found.header),
            "num_txs": str(len(found.txs)),
        })
    return {"last_height": str(latest), "block_metas": metas}


async def block_results(ctx: Context, height: int | None) -> Any:
    results = _found(await ctx.node.block_results(height), f"no results for height {height}")
    return {
        "height": str(results.height),
        "txs_results": render(list(results.txs_results)),
        "begin_block_events": render(list(results.begin_block_events)),
        "end_block_events": render(list(results.end_block_events)),
        "validator_updates": render(list(results.validator_updates)),
        "app_hash": render(results.app_hash),
    }


async def commit(ctx: Context, height: int | None) -> Any:
    view = _found(await ctx.node.commit(height), f"no commit for height {height}")
    return {
        "signed_header": {"header": render(view.header), "commit": render(view.commit)},
        "block_hash": render(view.block_hash),
        "canonical": view.canonical,
        **({"raw": b64(view.raw)} if view.raw else {}),
    }


def _check_answer(result: TxResultView, tx_hash: bytes) -> dict[str, Any]:
    return {
        "code": str(result.code),
        "data": "",
        "log": result.log,
        "codespace": result.codespace,
        "hash": tx_hash.hex().upper(),
    }


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
            return {"check_tx": render(checked), "tx_result": None,
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
        return {"check_tx": render(checked), "tx_result": render(record.result),
                "hash": tx_hash.hex().upper(), "height": str(record.height)}


async def check_tx(ctx: Context, tx: Any) -> Any:
    raw = _tx(ctx, tx)
    return {**render(await ctx.node.check_tx(raw)), "hash": sha256(raw).hex().upper()}


async def tx(ctx: Context, hash: bytes, prove: bool) -> Any:
    record = _found(await ctx.node.tx(hash), f"tx {hash.hex().upper()} not found")
    return tx_json(record)


async def unconfirmed_txs(ctx: Context, limit: int) -> Any:
    info = await ctx.node.mempool(min(limit, ctx.limits.max_per_page))
    return {"n_txs": str(len(info.txs)), "total": str(info.n_txs),
            "total_bytes": str(info.total_bytes), "txs": [b64(t) for t in info.txs]}


async def num_unconfirmed_txs(ctx: Context) -> Any:
    info = await ctx.node.mempool(0)
    return {"n_txs": str(info.n_txs), "total": str(info.n_txs),
            "total_bytes": str(info.total_bytes)}


async def query(ctx: Context, path: str, data: bytes, height: int | None, prove: bool) -> Any:
    result = await ctx.node.query(path, data, height, prove)
    return {"response": {
        "code": str(result.code), "log": result.log, "key": b64(result.key),
        "value": None if result.value is None else b64(result.value),
        "height": str(result.height), "proofOps": render(result.proof),
    }}


# --- clearing ----------------------------------------------------------------------------------


async def account(ctx: Context, address: bytes, height: int | None) -> Any:
    return render(_found(await ctx.node.account(address, height), "account not found"))


async def positions(ctx: Context, address: bytes, height: int | None) -> Any:
    return render(_found(await ctx.node.positions(address, height), "account not found"))


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
_TX = Param("tx", _raw_tx, required=True, doc="signed tx bytes, base64")
_QUERY = Param("query", parse_str, required=True, doc="e.g. tm.event='NewBlock'")


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
    _m(block_by_hash, "The block with a hash.", Param("hash", _hash, required=True, doc="hex")),
    _m(blockchain, "Block headers from maxHeight down to minHeight (at most 20).",
       Param("minHeight", HEIGHT), Param("maxHeight", HEIGHT)),
    _m(block_results, "Per-tx results and begin/end-block events of a height.", _H),
    _m(commit, "The signed header of a height.", _H),
    _m(broadcast_tx_async, "Submit a tx; returns its hash without waiting for check_tx.", _TX),
    _m(broadcast_tx_sync, "Submit a tx; returns the check_tx code and log.", _TX),
    _m(broadcast_tx_commit, "Submit a tx and wait for its block (the hash is returned "
       "even on timeout, in error.data).", _TX),
    _m(check_tx, "Run check_tx without adding to the mempool.", _TX),
    _m(tx, "A committed tx by hash.", Param("hash", _hash, required=True, doc="hex"),
       Param("prove", parse_bool, default=False)),
    _m(unconfirmed_txs, "Txs waiting in the mempool.", Param("limit", _limit, default=30)),
    _m(num_unconfirmed_txs, "Count and bytes of the mempool."),
    _m(query, "Raw store read with an optional Merkle proof.",
       Param("path", parse_str, default="/store", doc="e.g. /store"),
       Param("data", parse_hex, default=b"", doc="key, hex"), _H,
       Param("prove", parse_bool, default=False)),
    _m(account, "Collateral balances, quote balance and replay state of an account.", _ADDR, _H),
    _m(positions, "Open perpetual positions of an account.", _ADDR, _H),
    _m(markets, "All markets with their parameters and status.", _H),
    _m(market, "One market.", Param("market", parse_str, required=True, doc="market id"), _H),
    _m(prices, "Latest oracle prices.", _H),
    _m(insurance_fund, "Insurance fund balance.", _H),
    _m(liquidations, "Liquidation events in a height range, oldest first, paged.",
       Param("min_height", HEIGHT), Param("max_height", HEIGHT),
       Param("page", _page, default=1), Param("per_page", _per_page, default=30)),
    _m(account_health, "Equity, IMR, MMR and distance to liquidation.", _ADDR, _H),
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
METHODS["abci_query"] = Method("abci_query", query, METHODS["query"].params,
                               "Alias of query (CometBFT name).")


def method_listing() -> list[dict[str, Any]]:
    return [METHODS[name].describe() for name in sorted(METHODS)]


def lookup(name: Any) -> Method:
    if not isinstance(name, str):
        raise errors.RPCError(errors.INVALID_REQUEST, "method must be a string")
    found = METHODS.get(name)
    if found is None:
        raise errors.RPCError(errors.METHOD_NOT_FOUND, f"unknown method {name[:64]!r}; GET / lists them")
    return found


MethodMap = Mapping[str, Method]
