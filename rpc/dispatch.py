"""JSON-RPC 2.0 request handling, independent of transport (HTTP and WebSocket share it).

Every reply is a valid JSON-RPC response: a handler bug becomes INTERNAL_ERROR (logged with its
traceback), never a dropped connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rpc import errors
from rpc.methods import Context, Method, bind_params, lookup

log = logging.getLogger(__name__)

_NO_ID = object()
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


async def handle_one(ctx: Context, request: Any, override: Override = None) -> dict[str, Any] | None:
    """Answer one request object; None for a notification (no ``id``)."""
    if ctx.observe is None:
        return (await _handle_one(ctx, request, override))[0]
    started = time.perf_counter()
    reply, name, failed = await _handle_one(ctx, request, override)
    ctx.observe(name, time.perf_counter() - started, failed)
    return reply


async def _handle_one(ctx: Context, request: Any,
                      override: Override) -> tuple[dict[str, Any] | None, str, bool]:
    """(the reply, the method's name, whether the call failed)."""
    name = UNKNOWN_METHOD
    if not isinstance(request, dict):
        return error_response(errors.RPCError(errors.INVALID_REQUEST, "a request must be a JSON object")), name, True
    request_id = request.get("id", _NO_ID)
    is_notification = request_id is _NO_ID
    if is_notification:
        request_id = None
    elif request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (str, int, float))):
        return error_response(errors.RPCError(errors.INVALID_REQUEST, "id must be a string, number or null")), name, True
    try:
        if request.get("jsonrpc") != "2.0":
            raise errors.RPCError(errors.INVALID_REQUEST, 'jsonrpc must be exactly "2.0"')
        if "method" not in request:
            raise errors.RPCError(errors.INVALID_REQUEST, "method is missing")
        method = lookup(request["method"])
        name = method.name
        params = bind_params(method, request.get("params"))
        if override is not None and method.websocket_only:
            result = await override(method, params, request_id)
        else:
            result = await method.handler(ctx, **params)
    except errors.RPCError as exc:
        if is_notification:
            return None, name, True
        return error_response(exc, request_id), name, True
    except Exception as exc:  # a handler or node bug: answer, log, keep serving
        log.exception("internal error in %r", request.get("method"))
        if is_notification:
            return None, name, True
        return error_response(
            errors.RPCError(errors.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:300]), request_id
        ), name, True
    if is_notification:
        return None, name, False
    return {"jsonrpc": "2.0", "id": request_id, "result": result}, name, False


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
