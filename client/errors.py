"""What a client call raises: the transport's two errors (:mod:`rpc.client`), a subclass of
:class:`RPCClientError` per JSON-RPC error code a caller may want to catch, and
:class:`TxFailed` for a tx the application refused (a result code, not a JSON-RPC error).
"""

from __future__ import annotations

from typing import Any

from rpc import errors as codes
from rpc.client import ConnectionFailed, RPCClientError
from state.codes import Code

__all__ = ["ConnectionFailed", "RPCClientError", "InvalidRequest", "MethodNotFound", "InvalidParams",
           "NotFound", "LimitExceeded", "CommitTimeout", "Unavailable", "TxFailed", "classify"]


class InvalidRequest(RPCClientError):
    """-32600: the node did not read a JSON-RPC request (a client bug)."""


class MethodNotFound(RPCClientError):
    """-32601: the node has no such method (an older node, or a WebSocket-only one over HTTP)."""


class InvalidParams(RPCClientError):
    """-32602: ``data`` says which param and why."""


class NotFound(RPCClientError):
    """-32001: no such block, tx, account or market."""


class LimitExceeded(RPCClientError):
    """-32002: a body, batch, connection or subscription limit of the node."""


class CommitTimeout(RPCClientError):
    """-32003: broadcast_tx_commit gave up waiting; the tx may still commit: poll ``tx(hash)``."""

    @property
    def hash(self) -> str:
        return str((self.data or {}).get("hash", "")) if isinstance(self.data, dict) else ""


class Unavailable(RPCClientError):
    """-32004: the node cannot answer this now (a pruned or future height)."""


_BY_CODE: dict[int, type[RPCClientError]] = {
    codes.INVALID_REQUEST: InvalidRequest, codes.METHOD_NOT_FOUND: MethodNotFound,
    codes.INVALID_PARAMS: InvalidParams, codes.NOT_FOUND: NotFound,
    codes.LIMIT_EXCEEDED: LimitExceeded, codes.TIMEOUT: CommitTimeout, codes.UNAVAILABLE: Unavailable,
}


def classify(error: RPCClientError) -> RPCClientError:
    """The same error as the subclass for its code (itself when there is none)."""
    kind = _BY_CODE.get(error.code)
    return error if kind is None or isinstance(error, kind) else kind(error.code, error.message, error.data)


class TxFailed(Exception):
    """The application refused a tx: at admission (``stage`` "check_tx", nothing happened) or
    in its block (``stage`` "deliver": the fee was paid, the tx's effects were not applied)."""

    def __init__(self, stage: str, code: int, log: str, tx_hash: bytes, height: int = 0,
                 codespace: str = "") -> None:
        self.stage = stage
        self.code = code
        self.log = log
        self.hash = tx_hash
        self.height = height
        self.codespace = codespace
        where = f" in block {height}" if height else ""
        super().__init__(f"tx {tx_hash.hex().upper()} refused by {stage}{where}: code {code} "
                         f"({self.code_name}): {log}")

    @property
    def code_name(self) -> str:
        """The application's name of the code (``state.codes.Code``), e.g. INSUFFICIENT_MARGIN."""
        try:
            return Code(self.code).name
        except ValueError:
            return "UNKNOWN"

    @property
    def details(self) -> dict[str, Any]:
        return {"stage": self.stage, "code": self.code, "code_name": self.code_name, "log": self.log,
                "hash": self.hash.hex().upper(), "height": self.height}
