"""Every query method as a :class:`Call`: the method name, its params, and the parser of its
answer. No I/O (as h11 is to HTTP): ``Client`` and ``AsyncClient`` both run these, so a
method's params and result type are defined once for the blocking and the trio client.

Params are given as Python values (heights as ints, hashes and keys as bytes, addresses as
20 bytes or ``clr1...`` text) and put on the wire as the method table reads them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from client import results as r
from primitives.crypto import format_address

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    params: dict[str, Any]
    parse: Callable[[Any], T]

    def result(self, answer: Any) -> T:
        return self.parse(answer)


def _call(method: str, parse: Callable[[Any], T], **params: Any) -> Call[T]:
    return Call(method, {k: v for k, v in params.items() if v is not None}, parse)


def address_text(address: bytes | str) -> str:
    return address if isinstance(address, str) else format_address(address)


def _hash_text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.hex()


def _tx_text(tx: bytes) -> str:
    return base64.b64encode(tx).decode()


def _same(answer: Any) -> Any:
    return answer


# --- CometBFT's methods ------------------------------------------------------------------------


def health() -> Call[dict[str, Any]]:
    return _call("health", _same)


def status() -> Call[r.Status]:
    return _call("status", r.Status.from_json)


def net_info() -> Call[r.NetInfo]:
    return _call("net_info", r.NetInfo.from_json)


def genesis() -> Call[r.Genesis]:
    return _call("genesis", r.Genesis.from_json)


def validators(height: int | None = None, page: int | None = None,
               per_page: int | None = None) -> Call[r.Validators]:
    return _call("validators", r.Validators.from_json, height=height, page=page, per_page=per_page)


def block(height: int | None = None) -> Call[r.Block]:
    return _call("block", r.Block.from_json, height=height)


def block_by_hash(block_hash: bytes | str) -> Call[r.Block]:
    return _call("block_by_hash", r.Block.from_json, hash=_hash_text(block_hash))


def header(height: int | None = None) -> Call[r.Header]:
    return _call("header", lambda answer: r.Header.from_json(answer["header"]), height=height)


def header_by_hash(block_hash: bytes | str) -> Call[r.Header]:
    return _call("header_by_hash", lambda answer: r.Header.from_json(answer["header"]),
                 hash=_hash_text(block_hash))


def blockchain(min_height: int | None = None, max_height: int | None = None) -> Call[r.Blockchain]:
    return _call("blockchain", r.Blockchain.from_json, minHeight=min_height, maxHeight=max_height)


def block_results(height: int | None = None) -> Call[r.BlockResults]:
    return _call("block_results", r.BlockResults.from_json, height=height)


def commit(height: int | None = None) -> Call[r.SignedHeader]:
    return _call("commit", r.SignedHeader.from_json, height=height)


def broadcast_tx_async(tx: bytes) -> Call[r.Broadcast]:
    return _call("broadcast_tx_async", r.Broadcast.from_json, tx=_tx_text(tx))


def broadcast_tx_sync(tx: bytes) -> Call[r.Broadcast]:
    return _call("broadcast_tx_sync", r.Broadcast.from_json, tx=_tx_text(tx))


def broadcast_tx_commit(tx: bytes) -> Call[r.Committed]:
    return _call("broadcast_tx_commit", r.Committed.from_json, tx=_tx_text(tx))


def check_tx(tx: bytes) -> Call[r.CheckedTx]:
    return _call("check_tx", r.CheckedTx.from_json, tx=_tx_text(tx))


def tx(tx_hash: bytes | str, prove: bool = False) -> Call[r.TxInfo]:
    return _call("tx", r.TxInfo.from_json, hash=_hash_text(tx_hash), prove=prove or None)


def tx_search(query: str, prove: bool = False, page: int | None = None, per_page: int | None = None,
              order_by: str | None = None) -> Call[r.TxSearch]:
    """Committed txs matching a CometBFT query (``tx.height``, ``tx.hash``, ``message.sender``,
    the clearing events' attributes), e.g. ``"message.sender='clr1...' AND tx.height>=5"``."""
    return _call("tx_search", r.TxSearch.from_json, query=query, prove=prove or None, page=page,
                 per_page=per_page, order_by=order_by)


def block_search(query: str, page: int | None = None, per_page: int | None = None,
                 order_by: str | None = None) -> Call[r.BlockSearch]:
    return _call("block_search", r.BlockSearch.from_json, query=query, page=page, per_page=per_page,
                 order_by=order_by)


def unconfirmed_txs(limit: int | None = None) -> Call[r.Mempool]:
    return _call("unconfirmed_txs", r.Mempool.from_json, limit=limit)


def num_unconfirmed_txs() -> Call[r.Mempool]:
    return _call("num_unconfirmed_txs", r.Mempool.from_json)


def query(path: str = "/store", data: bytes = b"", height: int | None = None,
          prove: bool = False) -> Call[r.QueryResponse]:
    return _call("query", r.QueryResponse.from_json, path=path, data=data.hex(), height=height,
                 prove=prove or None)


def abci_info() -> Call[r.AbciInfo]:
    return _call("abci_info", r.AbciInfo.from_json)


def consensus_params(height: int | None = None) -> Call[r.ConsensusParams]:
    return _call("consensus_params", r.ConsensusParams.from_json, height=height)


def consensus_state() -> Call[r.RoundState]:
    return _call("consensus_state", r.RoundState.from_json)


def abci_query(path: str = "/store", data: bytes = b"", height: int | None = None,
               prove: bool = False) -> Call[r.QueryResponse]:
    return _call("abci_query", r.QueryResponse.from_json, path=path, data=data.hex(), height=height,
                 prove=prove or None)


# --- clearing ----------------------------------------------------------------------------------


def account(address: bytes | str, height: int | None = None) -> Call[r.Account]:
    return _call("account", r.Account.from_json, address=address_text(address), height=height)


def positions(address: bytes | str, height: int | None = None) -> Call[tuple[r.Position, ...]]:
    return _call("positions", r.positions_from_json, address=address_text(address), height=height)


def markets(height: int | None = None) -> Call[tuple[r.Market, ...]]:
    return _call("markets", lambda a: tuple(r.Market.from_json(m) for m in a), height=height)


def market(market_id: str, height: int | None = None) -> Call[r.Market]:
    return _call("market", r.Market.from_json, market=market_id, height=height)


def prices(height: int | None = None) -> Call[dict[str, r.Price]]:
    return _call("prices", r.prices_from_json, height=height)


def insurance_fund(height: int | None = None) -> Call[r.InsuranceFund]:
    return _call("insurance_fund", r.InsuranceFund.from_json, height=height)


def assets() -> Call[r.Assets]:
    return _call("assets", r.Assets.from_json)


def accounts_at_risk(page: int | None = None, per_page: int | None = None) -> Call[r.AccountsAtRisk]:
    return _call("accounts_at_risk", r.AccountsAtRisk.from_json, page=page, per_page=per_page)


def liquidations(min_height: int | None = None, max_height: int | None = None, page: int | None = None,
                 per_page: int | None = None) -> Call[r.Liquidations]:
    return _call("liquidations", r.Liquidations.from_json, min_height=min_height, max_height=max_height,
                 page=page, per_page=per_page)


def account_health(address: bytes | str, height: int | None = None) -> Call[r.Health]:
    return _call("account_health", r.Health.from_json, address=address_text(address), height=height)


def check_margin(address: bytes | str, market: str, side: str, size: int,
                 price: int | None = None) -> Call[r.MarginCheck]:
    return _call("check_margin", r.MarginCheck.from_json, address=address_text(address), market=market,
                 side=side, size=size, price=price)
