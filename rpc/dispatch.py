"""JSON-RPC 2.0 request handling, independent of transport (HTTP and WebSocket share it).

Follows the specification (https://www.jsonrpc.org/specification) to the letter, section 7's
examples being the test (``tests/rpc/test_jsonrpc_spec.py``): a value that is not a Request
object is answered with -32600 and the id null when it has no usable id, in a batch too; a
notification (a valid Request without ``id``) is never answered, not even with an error; a
batch of notifications only gets nothing back. Every reply is a valid JSON-RPC response: a
handler bug becomes INTERNAL_ERROR (logged with its traceback), never a dropped connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rpc import errors
from rpc.methods import Context, Method, bind_params, lookup

log = logging.getLogger(__name__)

# Hook the WebSocket transport installs to serve subscribe/unsubscribe itself.
Override = Callable[[Method, dict[str, Any], Any], Awaitable[Any]] | None


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


def parse_json(body: bytes | str) -> Any:
    """Decode a request body; raises RPCError(PARSE_ERROR) saying where it broke."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise errors.RPCError(errors.PARSE_ERROR, f"body is not UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise errors.RPCError(errors.PARSE_ERROR, f"invalid JSON: {exc.msg} at offset {exc.pos}") from None
    except (ValueError, RecursionError) as exc:
        raise errors.RPCError(errors.PARSE_ERROR, f"invalid JSON: {exc}") from None


def error_response(error: errors.RPCError, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def safe_dumps(reply: dict[str, Any]) -> bytes:
    """The encoded reply, or an INTERNAL_ERROR reply if its result cannot be serialised."""
    try:
        return dumps(reply)
    except (TypeError, ValueError, RecursionError) as exc:
        log.error("unserialisable result: %s", exc)
        return dumps(error_response(errors.RPCError(errors.INTERNAL_ERROR, f"unserialisable result: {exc}"),
                                    reply.get("id")))


UNKNOWN_METHOD = "unknown"
"""The method label of calls whose method is not in the table (bounded label values)."""


@dataclass(frozen=True)
class Request:
    """A valid JSON-RPC 2.0 Request object (section 4): ``id`` is None for a notification,
    and ``notification`` says which (an explicit ``"id": null`` is a call, not a notification)."""

    method: str
    params: dict[str, Any] | list[Any] | None
    id: str | int | float | None
    notification: bool


class InvalidRequest(Exception):
    """Not a Request object: answered with -32600 even without an id (section 5: the id is
    null when it cannot be read), never silently dropped as if it were a notification."""

    def __init__(self, detail: str, request_id: Any = None) -> None:
        super().__init__(detail)
        self.error = errors.RPCError(errors.INVALID_REQUEST, detail)
        self.request_id = request_id


def _usable_id(value: Any) -> bool:
    """Section 4: a String, Number or Null (booleans are not numbers here)."""
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def read_request(value: Any) -> Request:
    """Check one decoded value against section 4; raises :class:`InvalidRequest` with the id to
    answer with (the request's own when it is usable, else null)."""
    if not isinstance(value, dict):
        raise InvalidRequest("a request must be a JSON object")
    notification = "id" not in value
    request_id = value.get("id")
    if not _usable_id(request_id):
        raise InvalidRequest("id must be a string, number or null")
    if value.get("jsonrpc") != "2.0":
        raise InvalidRequest('jsonrpc must be exactly "2.0"', request_id)
    if "method" not in value:
        raise InvalidRequest("method is missing", request_id)
    if not isinstance(value["method"], str):
        raise InvalidRequest("method must be a string", request_id)
    params = value.get("params")
    if "params" in value and not isinstance(params, (dict, list)):
        raise InvalidRequest("params must be an object or an array (section 4.2)", request_id)
    return Request(value["method"], params, request_id, notification)


async def handle_one(ctx: Context, request: Any, override: Override = None) -> dict[str, Any] | None:
    """Answer one request object; None for a notification (a valid Request without ``id``)."""
    if ctx.observe is None:
        return (await _handle_one(ctx, request, override))[0]
    started = time.perf_counter()
    reply, name, failed = await _handle_one(ctx, request, override)
    ctx.observe(name, time.perf_counter() - started, failed)
    return reply


async def _handle_one(ctx: Context, value: Any,
                      override: Override) -> tuple[dict[str, Any] | None, str, bool]:
    """(the reply, the method's name, whether the call failed)."""
    name = UNKNOWN_METHOD
    try:
        request = read_request(value)
    except InvalidRequest as exc:
        return error_response(exc.error, exc.request_id), name, True
    try:
        method = lookup(request.method, ctx.methods)
        name = method.name
        params = bind_params(method, request.params)
        if override is not None and method.websocket_only:
            result = await override(method, params, request.id)
        else:
            result = await method.handler(ctx, **params)
    except errors.RPCError as exc:
        # section 4.1: a notification is not answered, not even with an error
        return (None if request.notification else error_response(exc, request.id)), name, True
    except Exception as exc:  # a handler or node bug: answer, log, keep serving
        log.exception("internal error in %r", request.method)
        if request.notification:
            return None, name, True
        return error_response(
            errors.RPCError(errors.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:300]), request.id
        ), name, True
    if request.notification:
        return None, name, False
    return {"jsonrpc": "2.0", "id": request.id, "result": result}, name, False


async def handle_body(ctx: Context, body: bytes | str, override: Override = None) -> bytes | None:
    """Answer a whole body (single request or batch); None when nothing is to be sent back."""
    try:
        decoded = parse_json(body)
    except errors.RPCError as exc:
        return dumps(error_response(exc))
    if isinstance(decoded, list):
        if not decoded:
            return dumps(error_response(errors.RPCError(errors.INVALID_REQUEST, "empty batch")))
        if len(decoded) > ctx.limits.max_batch_requests:
            return dumps(error_response(errors.RPCError(
                errors.LIMIT_EXCEEDED, f"batch of {len(decoded)} requests exceeds the limit of {ctx.limits.max_batch_requests}"
            )))
        replies = []
        for request in decoded:
            reply = await handle_one(ctx, request, override)
            if reply is not None:
                replies.append(safe_dumps(reply))
        return b"[" + b",".join(replies) + b"]" if replies else None
    reply = await handle_one(ctx, decoded, override)
    return None if reply is None else safe_dumps(reply)
