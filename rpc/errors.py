"""JSON-RPC error codes and the one exception type that carries them.

Standard codes are the JSON-RPC 2.0 ones; the -320xx range is ours (server errors the spec leaves
to implementations). Rejected transactions are *not* errors: ``broadcast_tx_sync`` and
``check_tx`` return a result whose ``code`` is the application's rejection code, as CometBFT does.
"""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# Server-defined codes (the JSON-RPC spec reserves -32000..-32099 for them).
NOT_FOUND = -32001  # a block, tx, account or market that does not exist
LIMIT_EXCEEDED = -32002  # body, batch, connection or subscription limit hit; or the node is
# overloaded (mempool full, node behind): then ``data.retry_after_ms`` says when to try again
TIMEOUT = -32003  # broadcast_tx_commit waited too long; ``data.hash`` says what to poll
UNAVAILABLE = -32004  # the node cannot serve this now (e.g. height pruned or in the future)
TX_REJECTED = -32005  # broadcast_tx_commit: the tx failed check_tx (data holds code and log)

STANDARD_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",  # the spec's spelling (section 5.1)
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    NOT_FOUND: "Not found",
    LIMIT_EXCEEDED: "Limit exceeded",
    TIMEOUT: "Timed out",
    UNAVAILABLE: "Unavailable",
    TX_REJECTED: "Transaction rejected",
}


class RPCError(Exception):
    """An error to be returned to the caller as a JSON-RPC error object.

    ``message`` is the short standard text; ``data`` says precisely what was wrong (CometBFT puts
    the detail in ``data`` too, so clients that print ``message: data`` read well).
    """

    def __init__(self, code: int, data: Any = None, message: str | None = None) -> None:
        self.code = code
        self.message = message or STANDARD_MESSAGES.get(code, "Server error")
        self.data = data
        super().__init__(f"{self.code} {self.message}: {data}" if data is not None else self.message)

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(detail: str) -> RPCError:
    return RPCError(INVALID_PARAMS, detail)


def not_found(detail: str) -> RPCError:
    return RPCError(NOT_FOUND, detail)


def unavailable(detail: str) -> RPCError:
    return RPCError(UNAVAILABLE, detail)


def overloaded(detail: str, retry_after_ms: int) -> RPCError:
    """A tx refused for load, not for what it is: LIMIT_EXCEEDED with when to try again
    (the HTTP transport answers it 503 with ``Retry-After``)."""
    return RPCError(LIMIT_EXCEEDED, {"detail": detail, "retry_after_ms": retry_after_ms})


def retry_after_ms(error: RPCError) -> int | None:
    """The retry hint an :func:`overloaded` error carries (None: no hint)."""
    data = error.data
    if error.code == LIMIT_EXCEEDED and isinstance(data, dict):
        hint = data.get("retry_after_ms")
        if isinstance(hint, int) and not isinstance(hint, bool):
            return hint
    return None
