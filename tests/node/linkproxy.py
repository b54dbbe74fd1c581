"""A TCP proxy per p2p link, on 127.0.0.1, for the partition tests: each link forwards, refuses,
or black-holes, and its live connections can be reset.

- forward: connections accepted and relayed to the link's target;
- refuse: live connections reset (RST), the listening socket closed: dials are refused
  (ECONNREFUSED), as by a firewall's reject or a closed port;
- blackhole: the listener stays, nothing flows either way (accepted connections wait, as a
  dialler's SYN-ACKed handshake would), live connections stall until the link forwards again;
- reset: live connections reset, new ones still accepted;
- delay and loss (``impair``), in any mode: every chunk read is written ``delay_ms`` later, and
  with probability ``loss`` a further ``LOSS_RTO_MS`` later, holding back the chunks behind it,
  which is what a lost segment does to a TCP stream (its retransmission timeout); the bytes
  themselves always arrive, in order. Seeded per link.

The proxy runs its own trio loop in a thread, so the synchronous cluster tests drive it
(``proxy.refuse("0->3")``) between their RPC polls. Every loop ends on EOF, on a closed socket or
when the proxy closes.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from dataclasses import dataclass, field

import trio

FORWARD, REFUSE, BLACKHOLE = "forward", "refuse", "blackhole"
CHUNK = 64 * 1024
IN_FLIGHT = 64
"""Chunks read and not yet written per direction (a delayed link's bandwidth-delay product)."""
LOSS_RTO_MS = 200
"""Extra delay of a "lost" chunk: Linux's minimum TCP retransmission timeout."""


@dataclass(eq=False)
class _Relay:
    client: trio.SocketStream
    upstream: trio.SocketStream | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


@dataclass(eq=False)
class Link:
    name: str
    port: int
    """Where the proxy listens: the port the dialling node has configured."""
    target: int
    """Where it forwards: the dialled node's p2p port."""
    target_host: str = "127.0.0.1"
    mode: str = FORWARD
    delay_ms: int = 0
    loss: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    accepted: int = 0
    """Connections accepted and forwarded (a reconnection shows here)."""
    changed: trio.Event = field(default_factory=trio.Event)
    listen_scope: trio.CancelScope | None = None
    not_listening: trio.Event = field(default_factory=trio.Event)
    relays: set[_Relay] = field(default_factory=set)

    async def wait_flowing(self) -> None:
        while self.mode == BLACKHOLE:
            await self.changed.wait()

    def chunk_delay_s(self) -> float:
        lost = self.loss > 0 and self.rng.random() < self.loss
        return (self.delay_ms + (LOSS_RTO_MS if lost else 0)) / 1000


class LinkProxy:
    """Links listening on ``host`` (127.0.0.1; a namespaced cluster's bridge address)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.links: dict[str, Link] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def add(self, name: str, port: int, target: int, target_host: str = "127.0.0.1", seed: int = 0) -> Link:
        """A link listening on ``port`` (before ``start``)."""
        assert self._thread is None
        self.links[name] = Link(name, port, target, target_host, rng=random.Random(f"{seed}/{name}"))
        return self.links[name]

    # --- the test thread's side -----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="linkproxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"link proxy did not start: {self._error!r}")
        if self._error is not None:
            raise RuntimeError("link proxy did not start") from self._error

    def close(self) -> None:
        if self._thread is None or self._token is None or self._stop is None:
            return
        try:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        except trio.RunFinishedError:
            pass
        self._thread.join(10)

    def refuse(self, *names: str) -> None:
        trio.from_thread.run(self._set, names, REFUSE, trio_token=self._token)

    def forward(self, *names: str) -> None:
        trio.from_thread.run(self._set, names, FORWARD, trio_token=self._token)

    def blackhole(self, *names: str) -> None:
        trio.from_thread.run(self._set, names, BLACKHOLE, trio_token=self._token)

    def impair(self, *names: str, delay_ms: int = 0, loss: float = 0.0) -> None:
        """Delay and loss on these links from now on, live connections included (0, 0: none)."""
        def apply() -> None:
            for name in names:
                self.links[name].delay_ms, self.links[name].loss = delay_ms, loss
        trio.from_thread.run_sync(apply, trio_token=self._token)

    def reset(self, *names: str) -> None:
        trio.from_thread.run_sync(self._reset_all, names, trio_token=self._token)

    def links_of(self, node: int) -> list[str]:
        """Both directions of every link of one node (``i->j`` is what node i dials to reach j)."""
        return [name for name in self.links
                if str(node) in name.split("->")]

    # --- the proxy's trio loop ------------------------------------------------------------

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported by start() or lost at close
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for link in self.links.values():
                await nursery.start(self._serve, link)
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    async def _set(self, names: tuple[str, ...], mode: str) -> None:
        assert self._nursery is not None
        for name in names:
            link = self.links[name]
            if mode == REFUSE:
                self._reset_all((name,))
                if link.listen_scope is not None:
                    link.listen_scope.cancel()
                    link.listen_scope = None
                    await link.not_listening.wait()  # closed: dials are refused from now on
            elif link.listen_scope is None:
                await self._nursery.start(self._serve, link)
            link.mode = mode
            link.changed.set()
            link.changed = trio.Event()

    def _reset_all(self, names: tuple[str, ...]) -> None:
        for name in names:
            for relay in list(self.links[name].relays):
                for stream in (relay.client, relay.upstream):
                    if stream is not None:
                        _abort_on_close(stream)
                relay.scope.cancel()

    async def _serve(self, link: Link, *,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(link.port, host=self.host)
        link.not_listening = trio.Event()
        try:
            with trio.CancelScope() as scope:
                link.listen_scope = scope
                task_status.started()
                async with listeners[0] as listener:
                    while True:
                        stream = await listener.accept()
                        assert self._nursery is not None
                        self._nursery.start_soon(self._relay, link, stream)
        finally:
            link.not_listening.set()

    async def _relay(self, link: Link, client: trio.SocketStream) -> None:
        relay = _Relay(client)
        link.relays.add(relay)
        try:
            with relay.scope:
                await link.wait_flowing()
                relay.upstream = await trio.open_tcp_stream(link.target_host, link.target)
                link.accepted += 1
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pump, link, client, relay.upstream, nursery.cancel_scope)
                    nursery.start_soon(_pump, link, relay.upstream, client, nursery.cancel_scope)
        except OSError:
            _abort_on_close(client)  # the target is down: the dialler sees its dial reset
        finally:
            link.relays.discard(relay)
            with trio.CancelScope(shield=True):
                for stream in (client, relay.upstream):
                    if stream is not None:
                        await stream.aclose()


async def _pump(link: Link, source: trio.SocketStream, sink: trio.SocketStream,
                both: trio.CancelScope) -> None:
    """Copy one direction until EOF or an error, then end the relay (both directions). A reader
    stamps each chunk with when it may leave (the link's delay, loss); a writer waits for that."""
    send, receive = trio.open_memory_channel[tuple[float, bytes]](IN_FLIGHT)

    async def read() -> None:
        async with send:
            while True:
                await link.wait_flowing()
                data = await source.receive_some(CHUNK)
                if not data:
                    return
                await send.send((trio.current_time() + link.chunk_delay_s(), data))

    async def write() -> None:
        async with receive:
            async for due, data in receive:
                await trio.sleep_until(due)
                await link.wait_flowing()
                await sink.send_all(data)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            nursery.start_soon(write)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    except BaseExceptionGroup as group:  # the reader and the writer failing together
        _, rest = group.split((trio.BrokenResourceError, trio.ClosedResourceError, OSError))
        if rest is not None:
            raise rest from None
    finally:
        both.cancel()


def _abort_on_close(stream: trio.SocketStream) -> None:
    """Make closing send a TCP RST instead of a FIN (a reset, as a middlebox would)."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
