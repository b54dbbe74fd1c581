"""Python clients for a clearchain node: ``Client`` (blocking) and ``AsyncClient`` (trio).

Both speak JSON-RPC 2.0 over HTTP/1.1 with keep-alive; ``AsyncClient.subscribe`` streams events
over ``/websocket``. A JSON-RPC error raises :class:`RPCClientError` carrying the code, message
and data; transport failures raise :class:`ConnectionFailed`. Results are returned as the server
sent them (integers as decimal strings); :func:`to_int` converts.

    client = Client("http://127.0.0.1:26657")
    client.call("status")["sync_info"]["latest_block_height"]
    client.broadcast_tx_commit(tx_bytes)          # raw bytes in, base64 on the wire

Verifying mode: ``Client(url, verify=verifier)`` hands every answer to ``verifier.check`` with
a way to make further unverified calls; the verifier returns the answer it could prove or
raises :class:`UnverifiableAnswer`. The light client (``node.light_client.AnswerProver``) is
such a verifier; ``rpc`` itself knows nothing of headers or proofs.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import socket
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import h11
import trio
import wsproto
import wsproto.connection
import wsproto.events

DEFAULT_URL = "http://127.0.0.1:26657"


class ConnectionFailed(Exception):
    """The node could not be reached or broke the connection."""


class RPCClientError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        detail = f": {data}" if data is not None else ""
        super().__init__(f"RPC error {code} {message}{detail}")


class UnverifiableAnswer(Exception):
    """A verifying client could not prove an answer (or was asked for one it cannot prove)."""


class AnswerVerifier(Protocol):
    def check(self, call: Callable[..., Any], method: str, params: dict[str, Any],
              answer: Any) -> Any:
        """The answer, proved; ``call(method, **params)`` makes further unverified calls.

        Raises :class:`UnverifiableAnswer` (or a subclass) for an answer it cannot prove.
        """
        ...


def to_int(value: Any) -> int:
    return int(value)


def _result(reply: Any) -> Any:
    if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0":
        raise ConnectionFailed(f"not a JSON-RPC reply: {str(reply)[:200]}")
    if "error" in reply:
        error = reply["error"]
        raise RPCClientError(int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
    return reply.get("result")


def _batch_requests(calls: list[tuple[str, dict[str, Any]]], ids: Iterator[int]) -> list[dict[str, Any]]:
    return [{"jsonrpc": "2.0", "id": next(ids), "method": m, "params": p} for m, p in calls]


def _batch_results(requests: list[dict[str, Any]], replies: Any) -> list[Any]:
    """Each request's result or RPCClientError, in the requests' order; a whole-batch error
    (e.g. a batch over the node's limit) raises."""
    if isinstance(replies, dict):
        _result(replies)
    by_id = {r.get("id"): r for r in replies or [] if isinstance(r, dict)}
    out: list[Any] = []
    for request in requests:
        try:
            out.append(_result(by_id.get(request["id"])))
        except RPCClientError as exc:
            out.append(exc)
    return out


def _split_url(url: str) -> tuple[str, int, str]:
    parsed = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if parsed.scheme not in ("http", "tcp"):
        raise ValueError(f"unsupported URL scheme {parsed.scheme!r} (use http://host:port)")
    return parsed.hostname or "127.0.0.1", parsed.port or 26657, parsed.path or "/"


def _b64(tx: bytes) -> str:
    return base64.b64encode(tx).decode()


class Client:
    """Blocking client over one keep-alive HTTP connection (not thread-safe: one per thread)."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 30.0,
                 verify: AnswerVerifier | None = None) -> None:
        self.url = url
        self.host, self.port, self.path = _split_url(url)
        self.timeout = timeout
        self.verify = verify
        self._conn: http.client.HTTPConnection | None = None
        self._ids = itertools.count(1)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, body: bytes) -> Any:
        for attempt in (0, 1):  # one retry: the server may have closed an idle keep-alive
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                response = self._conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt:
                    raise ConnectionFailed(f"{self.url}: {exc}") from exc
                continue
            if response.status == 204 or not data:
                return None
            try:
                return json.loads(data)
            except ValueError as exc:
                raise ConnectionFailed(f"{self.url}: HTTP {response.status}, not JSON") from exc
        raise ConnectionFailed(self.url)

    def call(self, method: str, **params: Any) -> Any:
        """The method's result; in verifying mode only once the verifier has proved it."""
        answer = self.call_unverified(method, **params)
        if self.verify is None:
            return answer
        return self.verify.check(self.call_unverified, method, params, answer)

    def call_unverified(self, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        return _result(self._post(body.encode()))

    def batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Several calls in one request; each entry is a result or an RPCClientError instance.

        Not in verifying mode: each answer would need its own proof (call them one by one)."""
        if self.verify is not None:
            raise UnverifiableAnswer("a verifying client answers one call at a time, not batches")
        requests = _batch_requests(calls, self._ids)
        return _batch_results(requests, self._post(json.dumps(requests).encode()))

    def broadcast_tx_sync(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_sync", tx=_b64(tx))

    def broadcast_tx_async(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_async", tx=_b64(tx))

    def broadcast_tx_commit(self, tx: bytes) -> Any:
        return self.call("broadcast_tx_commit", tx=_b64(tx))

    def check_tx(self, tx: bytes) -> Any:
        return self.call("check_tx", tx=_b64(tx))

    def latest_height(self) -> int:
        return int(self.call("status")["sync_info"]["latest_block_height"])

    def subscribe(self, query: str, timeout: float | None = None) -> Iterator[Any]:
        """Blocking subscription over its own WebSocket: yields event ``result`` objects until
        the server closes (or ``timeout`` seconds pass without an event: ``TimeoutError``).
        Closing the generator closes the socket."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            sock.sendall(ws.send(wsproto.events.Request(host=f"{self.host}:{self.port}", target="/websocket")))
            sock.settimeout(timeout)
            pending: list[str] = []
            parts: list[str] = []
            accepted = subscribed = False

            def pump() -> bool:
                nonlocal accepted
                data = sock.recv(65536)
                if not data:
                    return False
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, wsproto.events.AcceptConnection):
                        accepted = True
                    elif isinstance(event, wsproto.events.RejectConnection):
                        raise ConnectionFailed(f"WebSocket rejected: HTTP {event.status_code}")
                    elif isinstance(event, wsproto.events.TextMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            pending.append("".join(parts))
                            parts.clear()
                    elif isinstance(event, wsproto.events.Ping):
                        sock.sendall(ws.send(event.response()))
                    elif isinstance(event, wsproto.events.CloseConnection):
                        if ws.state is wsproto.connection.ConnectionState.REMOTE_CLOSING:
                            sock.sendall(ws.send(event.response()))
                        return False
                return True

            while not accepted:
                if not pump():
                    raise ConnectionFailed("connection closed during the WebSocket handshake")
            sock.sendall(ws.send(wsproto.events.TextMessage(data=json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"query": query}}))))
            while True:
                while pending:
                    result = _result(json.loads(pending.pop(0)))
                    if subscribed:
                        yield result
                    subscribed = True
                try:
                    if not pump():
                        return
                except socket.timeout:
                    raise TimeoutError(f"no event for {timeout} s") from None
        finally:
            sock.close()


class _AsyncConnection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)


OVERLOAD_RETRIES = 3
"""Times a call refused for load (-32002 with ``data.retry_after_ms``) is tried again."""
MAX_RETRY_WAIT_S = 2.0
"""Longest wait before one such retry, whatever the node hints: past it the caller decides."""


def retry_hint_s(error: RPCClientError) -> float | None:
    """Seconds an overloaded node asked us to wait (None: the error is not a load refusal)."""
    data = error.data
    if error.code != -32002 or not isinstance(data, dict):
        return None
    hint = data.get("retry_after_ms")
    if not isinstance(hint, int) or isinstance(hint, bool) or hint < 0:
        return None
    return hint / 1000


class AsyncClient:
    """trio client: a small pool of keep-alive connections, so concurrent calls run in parallel.

    A call the node refuses for load (mempool full, node behind: -32002 with
    ``data.retry_after_ms``) is retried after the hinted wait, at most ``overload_retries``
    times and at most ``MAX_RETRY_WAIT_S`` per wait; then the error goes to the caller.
    """

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 30.0, max_connections: int = 32,
                 overload_retries: int = OVERLOAD_RETRIES) -> None:
        self.url = url
        self.overload_retries = overload_retries
        self.host, self.port, self.path = _split_url(url)
        self.timeout = timeout
        self._idle: list[_AsyncConnection] = []
        self._limit = trio.Semaphore(max_connections)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.stream.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _exchange(self, connection: _AsyncConnection, body: bytes) -> tuple[int, bytes]:
        conn = connection.conn
        request = h11.Request(method="POST", target=self.path, headers=[
            ("Host", f"{self.host}:{self.port}"), ("Content-Type", "application/json"),
            ("Content-Length", str(len(body)))])
        await connection.stream.send_all(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        status, parts = 0, []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await connection.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, b"".join(parts)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionFailed("connection closed mid-response")

    async def _post(self, body: bytes) -> Any:
        async with self._limit:
            for attempt in (0, 1):
                reused = bool(self._idle)
                try:
                    connection = self._idle.pop() if reused else _AsyncConnection(
                        await trio.open_tcp_stream(self.host, self.port))
                except OSError as exc:
                    raise ConnectionFailed(f"{self.url}: {exc}") from exc
                try:
                    with trio.fail_after(self.timeout):
                        status, data = await self._exchange(connection, body)
                except (OSError, h11.ProtocolError, trio.BrokenResourceError, ConnectionFailed, trio.TooSlowError) as exc:
                    await connection.stream.aclose()
                    if attempt or not reused:
                        raise ConnectionFailed(f"{self.url}: {exc!r}") from exc
                    continue
                except BaseException:
                    await trio.aclose_forcefully(connection.stream)
                    raise
                if connection.conn.our_state is h11.DONE and connection.conn.their_state is h11.DONE:
                    connection.conn.start_next_cycle()
                    self._idle.append(connection)
                else:
                    await connection.stream.aclose()
                if status == 204 or not data:
                    return None
                try:
                    return json.loads(data)
                except ValueError as exc:
                    raise ConnectionFailed(f"{self.url}: HTTP {status}, not JSON") from exc
        raise ConnectionFailed(self.url)

    async def call(self, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        for attempt in range(self.overload_retries + 1):
            try:
                return _result(await self._post(body.encode()))
            except RPCClientError as exc:
                wait = retry_hint_s(exc)
                if wait is None or attempt == self.overload_retries:
                    raise
                await trio.sleep(min(wait, MAX_RETRY_WAIT_S))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Several calls in one request; each entry is a result or an RPCClientError instance."""
        requests = _batch_requests(calls, self._ids)
        return _batch_results(requests, await self._post(json.dumps(requests).encode()))

    async def broadcast_tx_sync(self, tx: bytes) -> Any:
        return await self.call("broadcast_tx_sync", tx=_b64(tx))

    async def broadcast_tx_async(self, tx: bytes) -> Any:
        return await self.call("broadcast_tx_async", tx=_b64(tx))

    async def broadcast_tx_commit(self, tx: bytes) -> Any:
        return await self.call("broadcast_tx_commit", tx=_b64(tx))

    async def latest_height(self) -> int:
        return int((await self.call("status"))["sync_info"]["latest_block_height"])

    @asynccontextmanager
    async def subscribe(self, query: str, queue: int = 1024) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        """Subscribe over a dedicated WebSocket; yields a channel of event ``result`` objects
        (``{"query", "data", "events"}``). A server-side error (e.g. too slow) raises
        RPCClientError from ``receive``; the server closing ends the channel."""
        send, receive = trio.open_memory_channel[Any](queue)
        async with await WebSocket.connect(self.host, self.port) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                      "params": {"query": query}}))
            _result(json.loads(await ws.receive()))

            async def pump() -> None:
                async with send:
                    while True:
                        text = await ws.receive()
                        if text is None:
                            return
                        reply = json.loads(text)
                        try:
                            await send.send(_result(reply))
                        except RPCClientError as exc:
                            await send.send(exc)
                            return

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump)
                try:
                    yield receive
                finally:
                    nursery.cancel_scope.cancel()


class WebSocket:
    """A minimal trio WebSocket client (text messages) on wsproto, closing its socket reliably.

    ``receive`` returns the next text message, or None once the connection is closed.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self._pending: list[str] = []
        self._parts: list[str] = []
        self.close_code: int | None = None
        self.close_reason: str = ""

    @classmethod
    async def connect(cls, host: str, port: int, path: str = "/websocket") -> WebSocket:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ConnectionFailed(f"ws://{host}:{port}{path}: {exc}") from exc
        self = cls(stream)
        try:
            await stream.send_all(self.ws.send(wsproto.events.Request(host=f"{host}:{port}", target=path)))
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise ConnectionFailed("connection closed during the WebSocket handshake")
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, wsproto.events.AcceptConnection):
                        return self
                    if isinstance(event, wsproto.events.RejectConnection):
                        raise ConnectionFailed(f"WebSocket rejected: HTTP {event.status_code}")
                    self._handle(event)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise

    def _handle(self, event: Any) -> bytes:
        if isinstance(event, wsproto.events.TextMessage):
            self._parts.append(event.data)
            if event.message_finished:
                self._pending.append("".join(self._parts))
                self._parts = []
        elif isinstance(event, wsproto.events.Ping):
            return self.ws.send(event.response())
        elif isinstance(event, wsproto.events.CloseConnection):
            self.close_code, self.close_reason = event.code, event.reason or ""
            if self.ws.state is wsproto.connection.ConnectionState.REMOTE_CLOSING:
                return self.ws.send(event.response())
        return b""

    async def send(self, text: str) -> None:
        if self.close_code is not None:
            raise ConnectionFailed(f"WebSocket closed ({self.close_code} {self.close_reason})")
        await self.stream.send_all(self.ws.send(wsproto.events.TextMessage(data=text)))

    async def send_bytes(self, data: bytes) -> None:
        await self.stream.send_all(self.ws.send(wsproto.events.BytesMessage(data=data)))

    async def receive(self) -> str | None:
        while not self._pending:
            if self.close_code is not None:
                return None
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.close_code = self.close_code or 1006
                return None
            self.ws.receive_data(data)
            for event in self.ws.events():
                reply = self._handle(event)
                if reply:
                    try:
                        await self.stream.send_all(reply)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
        return self._pending.pop(0)

    async def aclose(self) -> None:
        try:
            if self.ws.state is wsproto.connection.ConnectionState.OPEN:
                with trio.move_on_after(1):
                    await self.stream.send_all(self.ws.send(wsproto.events.CloseConnection(code=1000)))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await self.stream.aclose()

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port (scripts starting nodes)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ConnectionFailed(f"nothing listening on {host}:{port} after {timeout} s") from None
            time.sleep(0.05)
