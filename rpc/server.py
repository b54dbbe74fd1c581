"""The JSON-RPC server: HTTP/1.1 (h11) and WebSocket (wsproto) directly on trio streams.

Why not hypercorn: DESIGN.md measured it at ~1,200 req/s for a minimal JSON-RPC call; h11 on
trio streams with keep-alive serves several times that on the same machine (bench/rpc_server.py
numbers are in rpc/README.md), and it gives us direct control over limits and timeouts.

Routes: ``POST /`` (single or batch), ``GET /`` (method listing; a browser gets a page linking
the dashboard), ``GET /<method>?k=v`` (URI style, CometBFT-compatible), ``GET /websocket``
(JSON-RPC over WebSocket with subscriptions), ``GET /dashboard`` and its files (``rpc.static``).

Every connection runs in its own task; anything that goes wrong in it is logged and closes only
that connection. Bound with ``port = await nursery.start(server.serve, "127.0.0.1", 0)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import h11
import trio
import wsproto.connection
import wsproto.events
import wsproto.utilities
from wsproto import ConnectionType

from rpc import errors
from rpc.admission import Admission, Phase, Slot, refusal_status
from rpc.api import NodeAPI
from rpc.dispatch import dumps, error_response, handle_body, handle_one, safe_dumps
from rpc.events import QueryError, Subscription, parse_query
from rpc.limits import Limits
from rpc.methods import METHODS, Context, Method, method_listing
from rpc.static import SECURITY_HEADERS, Dashboard, StaticFile, root_page, wants_html

log = logging.getLogger(__name__)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RECEIVE_SIZE = 64 * 1024
CLOSE_GRACE_S = 1.0
"""A WebSocket being closed by us gets this long to take our close frame and answer it."""
SERVER_NAME = b"clearchain-rpc"


class _Closed(Exception):
    """The peer went away or broke the protocol: end this connection quietly."""


def too_large(size: int, limit: int) -> errors.RPCError:
    """The error for a body or WebSocket message over ``max_body_bytes``, naming the limit."""
    return errors.RPCError(errors.LIMIT_EXCEEDED, f"request of {size}+ bytes exceeds the body "
                           f"limit of {limit} bytes (max_body_bytes in config.toml [rpc])")


def _address(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except (OSError, IndexError, TypeError):
        return "?"


QUIET_ERRORS = (_Closed, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError)


class RPCServer:
    """One server per node. ``serve`` runs until cancelled.

    Connection slots, deadlines and eviction are :class:`rpc.admission.Admission`'s; this class
    does the I/O and tells it what each connection is doing.
    """

    def __init__(self, node: NodeAPI, limits: Limits | None = None, *,
                 observe: Callable[[str, float, bool], None] | None = None,
                 methods: Mapping[str, Method] | None = None) -> None:
        self.ctx = Context(node, limits or Limits(), observe=observe,
                           methods=METHODS if methods is None else methods)
        self.limits = self.ctx.limits
        self.admission = Admission(self.limits)
        self.requests_served = 0
        self.open_websockets = 0
        self.dashboard = Dashboard()

    @property
    def open_connections(self) -> int:
        return self.admission.open_connections

    async def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve forever; reports the bound port through ``task_status``."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        log.info("RPC listening on http://%s:%d", host, bound)
        task_status.started(bound)
        await trio.serve_listeners(self._handle_connection, listeners)

    # --- connections ---------------------------------------------------------------------------

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        slot: Slot | None = None
        try:
            scope = trio.CancelScope()
            slot = self.admission.admit(_address(stream), scope, stream.socket.fileno())
            if slot is None:
                await self._reject_busy(stream)
                return
            ctx = Context(self.ctx.node, self.limits, partial(self.admission.waiting, slot),
                          self.ctx.observe, self.ctx.methods)
            with scope:
                await self._serve_http(stream, slot, ctx)
            if slot.evicted:
                log.debug("RPC connection from %s evicted (%s)", slot.address, slot.phase.value)
        except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except Exception:  # never let one connection take the server down
            log.exception("RPC connection failed")
        finally:
            if slot is not None:
                self.admission.release(slot)
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _reject_busy(self, stream: trio.SocketStream) -> None:
        body = dumps(error_response(errors.RPCError(
            errors.LIMIT_EXCEEDED,
            f"too many open connections (limit {self.limits.max_open_connections}, all busy "
            "answering); retry later",
        )))
        with trio.move_on_after(1):
            # h11 insists on seeing a request before a response; answer at the byte level.
            head = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n")
            await stream.send_all(head + body)

    async def _next_event(self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot) -> Any:
        """The next h11 event; every byte read moves the slot's request deadline (rate, head)."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.Request) and not slot.head_done:
                    self.admission.received(slot, 0, head_done=True)
                return event
            data = await stream.receive_some(RECEIVE_SIZE)
            if data and slot.phase is Phase.IDLE:
                self.admission.enter(slot, Phase.READING)
            if slot.phase is Phase.READING:
                self.admission.received(slot, len(data), slot.head_done)
            conn.receive_data(data)

    async def _send(self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot, *events: Any) -> None:
        data = b"".join(conn.send(event) or b"" for event in events)
        self.admission.sending(slot, True)
        try:
            with trio.fail_after(self.limits.send_timeout_ms / 1000):
                await stream.send_all(data)
        finally:
            self.admission.sending(slot, False)

    async def _respond(
        self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot, status: int, body: bytes,
        close: bool = False, content_type: bytes = b"application/json",
        extra: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                   (b"server", SERVER_NAME), *extra]
        if close or slot.close_after_answer:
            headers.append((b"connection", b"close"))
        await self._send(conn, stream, slot, h11.Response(status_code=status, headers=headers),
                         h11.Data(data=body), h11.EndOfMessage())

    async def _serve_http(self, stream: trio.SocketStream, slot: Slot, ctx: Context) -> None:
        """Requests one after another until the client or a deadline ends the connection."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        while True:
            try:
                event = await self._next_event(conn, stream, slot)
                if not isinstance(event, h11.Request):
                    return  # closed, or bytes that are not a request
                if slot.phase is Phase.IDLE:  # a pipelined request already buffered
                    self.admission.enter(slot, Phase.READING)
                    self.admission.received(slot, 0, head_done=True)
                keep_going = await self._serve_request(conn, stream, slot, ctx, event)
                if isinstance(keep_going, WebSocketSession):
                    await keep_going.run()
                    return
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    body = dumps(error_response(errors.RPCError(errors.INVALID_REQUEST, f"bad HTTP: {exc}")))
                    try:
                        await self._respond(conn, stream, slot, exc.error_status_hint, body, close=True)
                    except (h11.LocalProtocolError, trio.TooSlowError):
                        pass
                return
            except trio.TooSlowError:
                return
            if (not keep_going or slot.close_after_answer or conn.our_state is not h11.DONE
                    or conn.their_state is not h11.DONE):
                return
            conn.start_next_cycle()
            self.admission.enter(slot, Phase.IDLE)

    async def _serve_request(
        self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot, ctx: Context,
        request: h11.Request,
    ) -> bool | WebSocketSession:
        """Answer one HTTP request; False when the connection must close afterwards, or the
        WebSocket session to run once the upgrade handshake is done."""
        target = request.target.decode("latin-1")
        path, _, query_string = target.partition("?")
        method = request.method
        headers = {name.lower(): value for name, value in request.headers}
        if path == "/websocket" and method == b"GET" and headers.get(b"upgrade", b"").lower() == b"websocket":
            session = await self._upgrade_websocket(conn, stream, slot, ctx, headers)
            return session if session is not None else False
        if method == b"POST":
            if path not in ("/", ""):
                await self._respond(conn, stream, slot, 404, dumps(error_response(errors.RPCError(
                    errors.METHOD_NOT_FOUND, f"POST to {path!r}: JSON-RPC is served at /"))))
                return await self._drain(conn, stream, slot)
            body = await self._read_body(conn, stream, slot, headers)
            if body is None:
                return False
            self.admission.enter(slot, Phase.ANSWERING)
            ctx.retry_after_ms = 0
            reply = await handle_body(ctx, body)
            self.requests_served += 1
            if reply is None:
                await self._send(conn, stream, slot, h11.Response(status_code=204, headers=[(b"server", SERVER_NAME)]),
                                 h11.EndOfMessage())
            else:
                status, extra = refusal_status(ctx.retry_after_ms, reply)
                await self._respond(conn, stream, slot, status, reply, extra=extra)
            return True
        if method in (b"GET", b"HEAD"):
            if not await self._drain(conn, stream, slot):
                return False
            self.admission.enter(slot, Phase.ANSWERING)
            ctx.retry_after_ms = 0
            if self.dashboard.serves(path):
                await self._send_static(conn, stream, slot, self.dashboard.find(path), headers,
                                        method == b"HEAD")
                return True
            if path in ("/", "") and wants_html(headers.get(b"accept", b"")):
                page = root_page(sorted(METHODS))
                await self._respond(conn, stream, slot, 200, page if method == b"GET" else b"",
                                    content_type=b"text/html; charset=utf-8", extra=SECURITY_HEADERS)
                return True
            if path in ("/", ""):
                body = dumps({"jsonrpc": "2.0", "id": None,
                              "result": {"methods": method_listing(ctx.methods)}})
            else:
                body = await self._uri_call(ctx, path.lstrip("/"), query_string)
            status, extra = refusal_status(ctx.retry_after_ms, body)
            await self._respond(conn, stream, slot, status, body if method == b"GET" else b"",
                                extra=extra)
            return True
        await self._respond(conn, stream, slot, 405, dumps(error_response(errors.RPCError(
            errors.INVALID_REQUEST, f"HTTP method {method.decode(errors='replace')} not allowed; use POST /"))),
            close=True)
        return False

    async def _send_static(self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot,
                           file: StaticFile | None, headers: dict[bytes, bytes], head: bool) -> None:
        """A dashboard file, 304 when the client holds this version (its ETag), or 404."""
        if file is None:
            await self._respond(conn, stream, slot, 404, b"not found\n" if not head else b"",
                                content_type=b"text/plain; charset=utf-8", extra=SECURITY_HEADERS)
            return
        if headers.get(b"if-none-match") == file.etag:
            response = h11.Response(status_code=304, headers=[(b"server", SERVER_NAME), *file.validators()])
            await self._send(conn, stream, slot, response, h11.EndOfMessage())
            return
        body = b"" if head else file.body
        fixed = [(b"content-length", str(len(file.body)).encode()), (b"server", SERVER_NAME), *file.headers()]
        await self._send(conn, stream, slot, h11.Response(status_code=200, headers=fixed),
                         h11.Data(data=body), h11.EndOfMessage())

    async def _drain(self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot) -> bool:
        """Read and discard a request body we do not use (bounded)."""
        seen = 0
        while True:
            event = await self._next_event(conn, stream, slot)
            if isinstance(event, h11.Data):
                seen += len(event.data)
                if seen > self.limits.max_body_bytes:
                    return False
            elif isinstance(event, h11.EndOfMessage):
                return True
            else:
                return False

    async def _read_body(self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot, headers: dict[bytes, bytes]) -> bytes | None:
        limit = self.limits.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(conn, stream, slot, int(declared))
            return None
        parts: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event(conn, stream, slot)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    await self._too_large(conn, stream, slot, size)
                    return None
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            else:
                raise _Closed()

    async def _too_large(self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot, size: int) -> None:
        """413 with a JSON-RPC error body (id null: the request was not read), then close: the
        rest of the body is never read."""
        body = dumps(error_response(too_large(size, self.limits.max_body_bytes)))
        await self._respond(conn, stream, slot, 413, body, close=True)

    async def _uri_call(self, ctx: Context, name: str, query_string: str) -> bytes:
        """``GET /status`` or ``GET /block?height=5``: the same methods, params from the URL."""
        params: dict[str, Any] = {}
        for key, value in urllib.parse.parse_qsl(query_string, keep_blank_values=True):
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            params[key] = value
        reply = await handle_one(ctx, {"jsonrpc": "2.0", "id": -1, "method": name, "params": params})
        return safe_dumps(reply) if reply is not None else b""

    # --- WebSocket -----------------------------------------------------------------------------

    async def _upgrade_websocket(
        self, conn: h11.Connection, stream: trio.SocketStream, slot: Slot, ctx: Context,
        headers: dict[bytes, bytes],
    ) -> WebSocketSession | None:
        key = headers.get(b"sec-websocket-key")
        if key is None or headers.get(b"sec-websocket-version") != b"13":
            await self._respond(conn, stream, slot, 400, dumps(error_response(errors.RPCError(
                errors.INVALID_REQUEST, "WebSocket upgrade needs Sec-WebSocket-Key and version 13"))), close=True)
            return None
        event = await self._next_event(conn, stream, slot)  # EndOfMessage of the GET
        if not isinstance(event, h11.EndOfMessage):
            raise _Closed()
        if not self.admission.upgrade(slot):
            await self._respond(conn, stream, slot, 503, dumps(error_response(errors.RPCError(
                errors.LIMIT_EXCEEDED, f"too many WebSocket clients (limit "
                f"{self.limits.max_websocket_clients}, all reading); retry later"))), close=True)
            return None
        accept = base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest())
        await self._send(conn, stream, slot, h11.InformationalResponse(status_code=101, headers=[
            (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", accept), (b"server", SERVER_NAME)]))
        trailing, _ = conn.trailing_data
        ws = wsproto.connection.Connection(ConnectionType.SERVER, trailing_data=trailing)
        return WebSocketSession(self, stream, ws, slot, ctx)


class WebSocketSession:
    """One WebSocket client: JSON-RPC requests in, replies and subscription events out."""

    def __init__(self, server: RPCServer, stream: trio.SocketStream, ws: wsproto.connection.Connection,
                 slot: Slot, ctx: Context) -> None:
        self.server = server
        self.ctx = ctx
        self.slot = slot
        self.stream = stream
        self.ws = ws
        self.send_lock = trio.Lock()
        self.subscriptions: dict[str, tuple[Subscription, trio.CancelScope]] = {}
        self.nursery: trio.Nursery | None = None
        self.closing = False

    async def run(self) -> None:
        self.server.open_websockets += 1
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                nursery.start_soon(self._keepalive)
                await self._read_loop()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # a peer that vanished is not an error worth a trace
            _quiet, rest = group.split(QUIET_ERRORS)
            if rest is not None:
                raise rest from None
        finally:
            self.server.open_websockets -= 1
            for subscription, _ in self.subscriptions.values():
                self.ctx.bus.unsubscribe(subscription)
            self.subscriptions.clear()

    async def _send_ws(self, event: Any) -> None:
        async with self.send_lock:
            try:
                data = self.ws.send(event)
            except wsproto.utilities.LocalProtocolError as exc:  # the connection is closing
                raise _Closed() from exc
            admission = self.server.admission
            admission.sending(self.slot, True)
            try:
                with trio.fail_after(self.server.limits.send_timeout_ms / 1000):
                    await self.stream.send_all(data)
            finally:
                admission.sending(self.slot, False)

    async def _keepalive(self) -> None:
        """Ping on connect and every ``websocket_ping_interval_ms``; a client that leaves a ping
        unanswered for ``websocket_pong_timeout_ms`` is not reading: hang up (no close frame, it
        would not be read). Until it answers, a full WebSocket pool may evict it."""
        limits, slot = self.server.limits, self.slot
        interval = limits.websocket_ping_interval_ms / 1000
        timeout = limits.websocket_pong_timeout_ms / 1000
        while True:
            slot.ping_sent = self.server.admission.clock()
            await self._send_ws(wsproto.events.Ping(payload=b"clearchain"))
            await trio.sleep(timeout)
            if slot.ping_sent is not None:
                log.debug("WebSocket from %s left a ping unanswered for %.0f s", slot.address, timeout)
                self._hang_up()
                return
            await trio.sleep(max(0.0, interval - timeout))

    def _hang_up(self) -> None:
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()

    async def send_text(self, text: str) -> None:
        await self._send_ws(wsproto.events.TextMessage(data=text))

    async def _read_loop(self) -> None:
        buffer: list[str] = []
        size = 0
        limit = self.server.limits.max_body_bytes
        while True:
            for event in self.ws.events():
                if isinstance(event, wsproto.events.CloseConnection):
                    if self.ws.state is wsproto.connection.ConnectionState.REMOTE_CLOSING:
                        await self._send_ws(event.response())
                    return
                if self.closing:
                    continue  # after our close frame, only the peer's close matters
                if isinstance(event, wsproto.events.TextMessage):
                    buffer.append(event.data)
                    size += len(event.data)
                    if size > limit:
                        await self.send_text(dumps(error_response(too_large(size, limit))).decode())
                        buffer, size = [], 0
                        await self._close(1009, f"message larger than {limit} bytes")
                        continue
                    if event.message_finished:
                        text, buffer, size = "".join(buffer), [], 0
                        reply = await handle_body(self.ctx, text, self._override)
                        self.server.requests_served += 1
                        if reply is not None and not self.closing:
                            await self.send_text(reply.decode())
                elif isinstance(event, wsproto.events.BytesMessage):
                    await self.send_text(dumps(error_response(errors.RPCError(
                        errors.PARSE_ERROR, "binary frames are not accepted; send JSON text"))).decode())
                elif isinstance(event, wsproto.events.Ping):
                    await self._send_ws(event.response())
                elif isinstance(event, wsproto.events.Pong):
                    self.slot.ping_sent = None
            data = await self.stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            self.ws.receive_data(data)

    async def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake: the peer gets ``CLOSE_GRACE_S`` to take our close frame
        and as long again to answer, then we hang up (a client that does not read keeps its slot
        no longer than that)."""
        if self.closing:
            return
        self.closing = True
        for subscription, scope in self.subscriptions.values():
            self.ctx.bus.unsubscribe(subscription)
        sent = False
        with trio.move_on_after(CLOSE_GRACE_S):
            try:
                await self._send_ws(wsproto.events.CloseConnection(code=code, reason=reason[:100]))
                sent = True
            except Exception:
                pass
        if not sent:
            self._hang_up()
        elif self.nursery is not None:
            self.nursery.cancel_scope.deadline = trio.current_time() + CLOSE_GRACE_S

    async def _override(self, method: Method, params: dict[str, Any], request_id: Any) -> Any:
        if method.name == "subscribe":
            return self._subscribe(params["query"], request_id)
        if method.name == "unsubscribe":
            entry = self.subscriptions.pop(params["query"].strip(), None)
            if entry is None:
                raise errors.not_found(f"no subscription to {params['query']!r} on this connection")
            self._drop(entry)
            return {}
        if method.name == "unsubscribe_all":
            for entry in self.subscriptions.values():
                self._drop(entry)
            self.subscriptions.clear()
            return {}
        raise errors.RPCError(errors.METHOD_NOT_FOUND, method.name)

    def _drop(self, entry: tuple[Subscription, trio.CancelScope]) -> None:
        self.ctx.bus.unsubscribe(entry[0])
        entry[1].cancel()

    def _subscribe(self, text: str, request_id: Any) -> Any:
        try:
            query = parse_query(text)
        except QueryError as exc:
            raise errors.invalid_params(f"query: {exc}") from None
        if query.text in self.subscriptions:
            raise errors.invalid_params(f"already subscribed to {query.text!r}")
        limit = self.server.limits.max_subscriptions_per_client
        if len(self.subscriptions) >= limit:
            raise errors.RPCError(errors.LIMIT_EXCEEDED, f"subscription limit of {limit} per client reached")
        subscription = self.ctx.bus.subscribe(query, self.server.limits.subscriber_queue)
        scope = trio.CancelScope()
        self.subscriptions[query.text] = (subscription, scope)
        if self.nursery is None:
            raise errors.RPCError(errors.INTERNAL_ERROR, "session not running")
        self.nursery.start_soon(self._forward, subscription, scope, request_id)
        return {}

    async def _forward(self, subscription: Subscription, scope: trio.CancelScope, request_id: Any) -> None:
        """Send a subscription's events; a client too slow to keep up is disconnected."""
        with scope:
            async for message in subscription.receive:
                reply = {"jsonrpc": "2.0", "id": request_id, "result": {
                    "query": subscription.query.text, "data": message.data, "events": message.keys}}
                try:
                    await self.send_text(json.dumps(reply, separators=(",", ":")))
                except trio.TooSlowError:
                    subscription.overflowed = True
                    break
                except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    if self.nursery is not None:
                        self.nursery.cancel_scope.cancel()
                    return
            if subscription.overflowed:
                self.slot.overflowed = True  # the first to go if the WebSocket pool is full
                queue = self.server.limits.subscriber_queue
                try:
                    with trio.move_on_after(CLOSE_GRACE_S):
                        await self.send_text(dumps(error_response(errors.RPCError(
                            errors.LIMIT_EXCEEDED,
                            f"subscriber too slow: more than {queue} undelivered events for "
                            f"{subscription.query.text!r}; disconnecting"), request_id)).decode())
                except Exception:
                    pass
                await self._close(1008, "subscriber too slow")
                scope.cancel()


async def serve(
    node: NodeAPI, listen_address: str = "127.0.0.1:26657", limits: Limits | None = None, *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """What a node runs: ``port = await nursery.start(serve, node, config.rpc.listen_address, limits)``.

    ``listen_address`` is ``host:port`` (port 0 = any free port, reported through task_status).
    """
    host, _, port = listen_address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"RPC listen address must be host:port, got {listen_address!r}")
    await RPCServer(node, limits).serve(host.strip("[]"), int(port), task_status=task_status)
