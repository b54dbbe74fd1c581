"""The node's p2p network on py-libp2p: Noise-secured TCP, one stream per peer and protocol.

Why direct streams and not gossipsub: gossipsub as shipped rate-limits topics to 10 msg/s and
drops bursts over 32 queued messages with only a debug log. Consensus
needs every message delivered or the loss made visible, so:

- each connected peer gets, per protocol, a bounded send queue and a sender task that packs all
  queued messages into one length-prefixed frame per write (:mod:`node.p2p.frames`);
- a full queue makes the sender wait (backpressure); a peer whose queue stays full for
  ``stall_timeout`` is disconnected with a warning (its queued messages are discarded *loudly*,
  and the reactors re-send what matters when it reconnects: ``on_peer_connected``);
- inbound frames are handed message by message to the protocol's handler, which may wait
  (backpressure reaches the peer through yamux flow control) or raise :class:`PeerMisbehaviour`
  to have the peer disconnected and the reason logged;
- persistent peers are dialled at start and re-dialled on the node's own backoff, always at
  their configured address (:mod:`node.p2p.redial`): not through the library's ``connect``,
  whose swarm refuses for 60 s a peer whose addresses all failed once (its negative peer cache)
  and dials the address identify learnt instead of the configured one.

Security is Noise only: py-libp2p offers plaintext, TLS and secio as well unless ``sec_opt`` is
given, and we never want a plaintext connection.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import multiaddr
import trio
from libp2p import create_yamux_muxer_option, new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

from node.clock import now_ms
from node.config import P2PSection
from node.p2p.frames import (
    HEADER_SIZE,
    MAX_MESSAGES_PER_FRAME,
    FrameError,
    FrameReader,
    message_cost,
    pack_frame,
)
from node.p2p.identity import libp2p_keypair
from node.p2p.redial import STABLE_CONNECTION_S, Backoff, PeerState
from primitives.crypto import PrivateKey

log = logging.getLogger("clearchain.p2p")

CONSENSUS_PROTOCOL = "/clearchain/consensus/1"
MEMPOOL_PROTOCOL = "/clearchain/mempool/1"
BLOCKSYNC_PROTOCOL = "/clearchain/blocksync/1"
WATCH_INTERVAL_S = 0.1
"""How often a persistent peer's dialler looks whether its peer is (still) connected."""

MessageHandler = Callable[[str, bytes], Awaitable[None]]
PeerCallback = Callable[[str], Awaitable[None]]


class PeerMisbehaviour(Exception):
    """Raised by a message handler: the peer sent undecodable or badly signed data."""


class PeerUnavailable(Exception):
    """The peer is not connected (or was disconnected while we waited to send)."""


@dataclass
class _PeerSession:
    peer_id: ID
    queues: dict[str, tuple[trio.MemorySendChannel[bytes], trio.MemoryReceiveChannel[bytes]]]
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    closed: bool = False
    host: str = ""
    """The IP address the peer connected from (``p2p.max_peers_per_address``)."""


class _Notifee(INotifee):
    def __init__(self, network: Network) -> None:
        self._network = network

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._network._on_connected(conn.muxed_conn.peer_id, _remote_host(conn))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._network._on_disconnected(conn.muxed_conn.peer_id)

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


def _disable_auto_dial(swarm: object) -> None:
    """py-libp2p 0.8.1 keeps an auto-connector dialling every peer of its peerstore toward
    (low + high watermark) / 2 connections, whatever ``low_watermark`` says; that would re-dial
    peers we dropped for misbehaviour. We dial our persistent peers ourselves, so it does nothing
    here (the one library workaround of this module)."""
    connector = getattr(swarm, "auto_connector", None)
    if connector is None:
        return

    async def no_auto_dial() -> None:
        return None

    connector.maybe_connect = no_auto_dial  # type: ignore[attr-defined]


class Network:
    """A libp2p host plus per-peer framed, batched, bounded protocol channels."""

    def __init__(self, key: PrivateKey, config: P2PSection, *, protocols: Sequence[str],
                 stall_timeout: float = 3.0, dial_timeout: float = 5.0) -> None:
        self.config = config
        self.protocols = tuple(protocols)
        self.stall_timeout = stall_timeout
        self.dial_timeout = dial_timeout
        self._keypair = libp2p_keypair(key)
        self._handlers: dict[str, MessageHandler] = {}
        self._inbound: dict[tuple[str, str], INetStream] = {}
        """The live inbound stream per (peer, protocol): a newer one replaces (resets) the older,
        so a peer cannot hold buffers on many parallel streams."""
        self._on_connected_callbacks: list[PeerCallback] = []
        self._on_disconnected_callbacks: list[PeerCallback] = []
        self._sessions: dict[ID, _PeerSession] = {}
        self._nursery: trio.Nursery | None = None
        self.frames_sent = 0
        """Stream writes made (each carries a batch of messages)."""
        self.messages_sent = 0
        self.counters: dict[str, dict[str, int]] = {
            "bytes_sent": dict.fromkeys(protocols, 0), "bytes_received": dict.fromkeys(protocols, 0),
            "dropped_messages": dict.fromkeys(protocols, 0)}
        """Per protocol, since start: frame bytes written, message bytes read, queued messages
        discarded (the ``p2p_*`` metrics; plain ints, one add per frame)."""
        self.host = new_host(
            key_pair=self._keypair,
            sec_opt={NOISE_PROTOCOL_ID: NoiseTransport(
                self._keypair, noise_privkey=create_x25519_key_pair().private_key)},
            muxer_opt=create_yamux_muxer_option(),
            listen_addrs=[multiaddr.Multiaddr(config.listen_address)],
            announce_addrs=([multiaddr.Multiaddr(config.external_address)]
                            if config.external_address else None),
            # We dial exactly our persistent peers; the library's auto-connector would dial
            # everyone in the peerstore to reach 100 connections (and leak half-dialled
            # sockets when cancelled at shutdown).
            connection_config=ConnectionConfig(
                min_connections=0, low_watermark=0, dial_timeout=dial_timeout,
                max_connections_per_peer=2),
        )
        self.peer_id = self.host.get_id().to_base58()
        swarm = self.host.get_network()
        _disable_auto_dial(swarm)
        # One attempt per dial: the retries are ours (``_keep_dialling``), on our backoff. The
        # swarm retries each address 3 times over 0.7 s by default, and ``new_host`` takes no
        # retry_config, so it is set on the swarm it made.
        swarm.retry_config = RetryConfig(max_retries=0)  # type: ignore[attr-defined]
        self.backoff = Backoff(config.dial_backoff_min_ms / 1000, config.dial_backoff_max_ms / 1000)
        self._rng = random.Random()
        self.persistent_peers: dict[ID, PeerState] = {}
        """What the dialler knows of each persistent peer (``net_info``)."""
        for address in config.persistent_peers:
            peer_id = info_from_p2p_addr(multiaddr.Multiaddr(address)).peer_id
            self.persistent_peers[peer_id] = PeerState(peer_id.to_base58(), address)
        self._persistent: frozenset[ID] = frozenset(self.persistent_peers)
        self.refused_peers = 0
        """Connections closed because ``max_peers`` other peers (or ``max_peers_per_address``
        from the same address) were already connected."""
        self.refused_by_address = 0
        """Of those, the ones refused for ``max_peers_per_address``."""

    # --- registration (before run) ------------------------------------------------------------

    def set_handler(self, protocol: str, handler: MessageHandler) -> None:
        if protocol not in self.protocols:
            raise ValueError(f"protocol {protocol} was not declared")
        self._handlers[protocol] = handler

    def on_peer_connected(self, callback: PeerCallback) -> None:
        self._on_connected_callbacks.append(callback)

    def on_peer_disconnected(self, callback: PeerCallback) -> None:
        self._on_disconnected_callbacks.append(callback)

    # --- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, dial persistent peers, and serve until cancelled."""
        for protocol in self.protocols:
            self.host.set_stream_handler(protocol, self._make_stream_handler(protocol))
        self.host.get_network().register_notifee(_Notifee(self))
        stop = trio.Event()
        async with trio.open_nursery() as outer:
            await outer.start(self._run_host, stop)
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    log.info("p2p listening on %s as %s", ", ".join(self.listen_addrs()),
                             self.peer_id)
                    for peer_id in list(self.host.get_network().connections):
                        self._on_connected(peer_id)  # arrived before we could take them
                    for state in self.persistent_peers.values():
                        nursery.start_soon(self._keep_dialling, state)
                    task_status.started()
                    await trio.sleep_forever()
            finally:
                self._nursery = None
                for session in list(self._sessions.values()):
                    self._end_session(session, stopping=True)
                stop.set()

    async def _run_host(self, stop: trio.Event, *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The libp2p host, shielded so that it closes its connections before its tasks die.

        Cancelling the library's tasks first (the plain nursery way) leaves half-closed
        connections and unclosed sockets behind; here the node's shutdown sets ``stop``.
        """
        with trio.CancelScope(shield=True):
            async with self.host.run([multiaddr.Multiaddr(self.config.listen_address)]):
                task_status.started()
                await stop.wait()
                with trio.move_on_after(3):
                    await self._close_all()

    async def _close_all(self) -> None:
        network = self.host.get_network()
        for peer_id in list(network.connections):
            try:
                await network.close_peer(peer_id)
            except Exception as exc:
                log.debug("closing %s: %r", peer_id, exc)
        await self.host.close()

    def listen_addrs(self) -> list[str]:
        return [str(addr) for addr in self.host.get_addrs()]

    def peers(self) -> list[str]:
        return sorted(p.to_base58() for p, s in self._sessions.items() if not s.closed)

    # --- sending ------------------------------------------------------------------------------

    async def send(self, peer: str, protocol: str, message: bytes) -> None:
        """Queue one message for a peer, waiting while its queue is full (backpressure).

        A peer that cannot take a message within ``stall_timeout`` is disconnected and
        :class:`PeerUnavailable` raised, so one stuck peer never halts the node.
        """
        session = self._sessions.get(ID.from_base58(peer))
        if session is None or session.closed:
            raise PeerUnavailable(peer)
        await self._put(session, protocol, message)

    async def send_many(self, peer: str, protocol: str, messages: list[bytes]) -> None:
        """Queue messages for a peer in order: ``send`` for a batch, one session lookup, and a
        wait (with the same stall rule) only when the peer's queue is full."""
        session = self._sessions.get(ID.from_base58(peer))
        if session is None or session.closed:
            raise PeerUnavailable(peer)
        channel = session.queues[protocol][0]
        for message in messages:
            self._check_size(message)
            try:
                channel.send_nowait(message)
            except trio.WouldBlock:
                await self._put(session, protocol, message)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise PeerUnavailable(peer) from None

    async def broadcast(self, protocol: str, message: bytes, *, exclude: str | None = None) -> None:
        """Queue a message for every connected peer; stalled peers are waited for in parallel."""
        waiting: list[_PeerSession] = []
        for peer_id, session in list(self._sessions.items()):
            if session.closed or (exclude is not None and peer_id.to_base58() == exclude):
                continue
            try:
                session.queues[protocol][0].send_nowait(message)
            except trio.WouldBlock:
                waiting.append(session)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass
        if waiting:
            async with trio.open_nursery() as nursery:
                for session in waiting:
                    nursery.start_soon(self._put_quietly, session, protocol, message)

    async def _put_quietly(self, session: _PeerSession, protocol: str, message: bytes) -> None:
        try:
            await self._put(session, protocol, message)
        except PeerUnavailable:
            pass

    def _check_size(self, message: bytes) -> None:
        if message_cost(message) > self.config.max_frame_bytes - HEADER_SIZE:
            raise ValueError(f"message of {len(message)} bytes exceeds p2p.max_frame_bytes")

    async def _put(self, session: _PeerSession, protocol: str, message: bytes) -> None:
        self._check_size(message)
        channel = session.queues[protocol][0]
        try:
            with trio.fail_after(self.stall_timeout):
                await channel.send(message)
        except trio.TooSlowError:
            queued = channel.statistics().current_buffer_used
            self.disconnect(session.peer_id.to_base58(),
                            f"stalled: {queued} {protocol} messages queued for "
                            f"{self.stall_timeout:.1f}s; discarding them")
            raise PeerUnavailable(session.peer_id.to_base58()) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise PeerUnavailable(session.peer_id.to_base58()) from None

    def disconnect(self, peer: str, reason: str) -> None:
        """Close every connection to a peer, logging why (misbehaviour, stall)."""
        log.warning("disconnecting peer %s: %s", peer, reason)
        peer_id = ID.from_base58(peer)
        session = self._sessions.get(peer_id)
        if session is not None:
            self._end_session(session)
        if self._nursery is not None:
            self._nursery.start_soon(self._close_peer, peer_id)

    async def _close_stale(self, session: _PeerSession) -> None:
        current = self._sessions.get(session.peer_id)
        if current is None or current is session or current.closed:
            await self._close_peer(session.peer_id)

    async def _close_peer(self, peer_id: ID) -> None:
        with trio.move_on_after(5):
            try:
                await self.host.disconnect(peer_id)
            except Exception as exc:  # the library raises many types on already-dead conns
                log.debug("closing connection to %s: %r", peer_id, exc)

    # --- sessions -----------------------------------------------------------------------------

    def _on_connected(self, peer_id: ID, host: str = "") -> None:
        existing = self._sessions.get(peer_id)
        if (existing is not None and not existing.closed) or self._nursery is None:
            return
        if peer_id not in self._persistent:
            strangers = [s for p, s in self._sessions.items()
                         if not s.closed and p not in self._persistent]
            cap = self.config.max_peers_per_address
            same_host = sum(1 for s in strangers if host and s.host == host)
            if len(strangers) >= self.config.max_peers:
                self.refused_peers += 1
                log.info("refusing peer %s: %d other peers connected (p2p.max_peers)",
                         peer_id, len(strangers))
                self._nursery.start_soon(self._close_peer, peer_id)
                return
            if cap and same_host >= cap:
                self.refused_peers += 1
                self.refused_by_address += 1
                log.info("refusing peer %s: %d peers connected from %s already "
                         "(p2p.max_peers_per_address)", peer_id, same_host, host)
                self._nursery.start_soon(self._close_peer, peer_id)
                return
        queues = {p: trio.open_memory_channel[bytes](self.config.send_queue_size)
                  for p in self.protocols}
        session = _PeerSession(peer_id, queues, host=host)
        self._sessions[peer_id] = session
        self._nursery.start_soon(self._run_session, session)

    def _on_disconnected(self, peer_id: ID) -> None:
        session = self._sessions.get(peer_id)
        if session is None:
            return
        if self.host.get_network().get_connections(peer_id):
            return  # another connection to the same peer is still up
        self._end_session(session)

    def _end_session(self, session: _PeerSession, *, stopping: bool = False) -> None:
        if session.closed:
            return
        session.closed = True
        dropped = 0
        discarded = self.counters["dropped_messages"]
        for protocol, (send, receive) in session.queues.items():
            queued = send.statistics().current_buffer_used
            dropped += queued
            if not stopping:
                discarded[protocol] = discarded.get(protocol, 0) + queued
            send.close()
            receive.close()
        if dropped and not stopping:
            log.warning("peer %s gone with %d queued messages discarded (re-sent on reconnect)",
                        session.peer_id, dropped)
        session.cancel_scope.cancel()

    async def _run_session(self, session: _PeerSession) -> None:
        peer = session.peer_id.to_base58()
        log.info("peer connected: %s", peer)
        try:
            with session.cancel_scope:
                async with trio.open_nursery() as nursery:
                    for protocol in self.protocols:
                        nursery.start_soon(self._sender, session, protocol)
                    for callback in self._on_connected_callbacks:
                        nursery.start_soon(callback, peer)
        finally:
            self._end_session(session)
            if self._sessions.get(session.peer_id) is session:
                del self._sessions[session.peer_id]
            log.info("peer disconnected: %s", peer)
            shutting_down = trio.current_effective_deadline() == float("-inf")
            if self._nursery is not None and not shutting_down:
                # A session can end on a failed stream while the connection lives on; close it,
                # or no new "connected" notification would ever start a fresh session.
                self._nursery.start_soon(self._close_stale, session)
                for callback in self._on_disconnected_callbacks:
                    self._nursery.start_soon(callback, peer)

    async def _sender(self, session: _PeerSession, protocol: str) -> None:
        """Open our stream to the peer and write queued messages, batched into frames."""
        receive = session.queues[protocol][1]
        if not self.host.get_network().get_connections(session.peer_id):
            # new_stream would dial the peer, at the address identify learnt: the session ends
            # instead, and a persistent peer is re-dialled at its configured address
            session.cancel_scope.cancel()
            return
        try:
            with trio.fail_after(self.dial_timeout):
                stream = await self.host.new_stream(session.peer_id, [protocol])
        except Exception as exc:
            log.info("cannot open %s stream to %s: %r", protocol, session.peer_id, exc)
            session.cancel_scope.cancel()
            return
        limit = self.config.max_batch_bytes
        sent = self.counters["bytes_sent"]
        frame_room = self.config.max_frame_bytes - HEADER_SIZE  # what the peer accepts
        held: bytes | None = None  # a message that would have overfilled the last frame
        try:
            while True:
                first = held if held is not None else await receive.receive()
                held = None
                batch, size = [first], message_cost(first)
                while size < limit and len(batch) < MAX_MESSAGES_PER_FRAME:
                    try:
                        message = receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                    if size + message_cost(message) > frame_room:
                        held = message  # starts the next frame: this one stays within the limit
                        break
                    batch.append(message)
                    size += message_cost(message)
                frame = pack_frame(batch)
                await stream.write(frame)
                sent[protocol] += len(frame)
                self.frames_sent += 1
                self.messages_sent += len(batch)
        except (trio.EndOfChannel, trio.ClosedResourceError):
            pass
        except Exception as exc:
            log.info("writing %s to %s failed: %r", protocol, session.peer_id, exc)
        finally:
            session.cancel_scope.cancel()
            await _reset_quietly(stream)

    def _make_stream_handler(self, protocol: str) -> Callable[[INetStream], Awaitable[None]]:
        async def handle(stream: INetStream) -> None:
            peer = stream.muxed_conn.peer_id.to_base58()
            reader = FrameReader(stream, self.config.max_frame_bytes)
            handlers = self._handlers  # looked up per frame: a state-syncing node sets the
            received = self.counters["bytes_received"]
            previous = self._inbound.get((peer, protocol))
            self._inbound[(peer, protocol)] = stream
            if previous is not None:
                await _reset_quietly(previous)
            try:
                while True:
                    messages = await reader.read_frame()
                    if messages is None:
                        return
                    received[protocol] = received.get(protocol, 0) + sum(map(len, messages))
                    handler = handlers.get(protocol)  # chain's handlers once it has restored
                    if handler is None:
                        continue
                    for message in messages:
                        await handler(peer, message)
            except (FrameError, PeerMisbehaviour) as exc:
                self.disconnect(peer, f"misbehaviour on {protocol}: {exc}")
            except trio.Cancelled:
                raise
            except Exception as exc:  # a broken connection surfaces as many library types
                log.debug("%s stream from %s ended: %r", protocol, peer, exc)
            finally:
                if self._inbound.get((peer, protocol)) is stream:
                    del self._inbound[(peer, protocol)]
                await _reset_quietly(stream)

        return handle

    # --- dialling -----------------------------------------------------------------------------

    async def _keep_dialling(self, state: PeerState) -> None:
        """Keep a persistent peer connected: dial it at its configured address, on the node's
        backoff (:mod:`node.p2p.redial`), and keep ``state`` and the log telling what it does.

        Dials go to ``Swarm.dial_addr``, one attempt at one address, never through
        ``host.connect``: that path consults the swarm's negative peer cache (60 s without a dial
        once every address of a peer failed, whatever our backoff says) and dials the first TCP
        address of the peerstore, which identify replaces with the peer's advertised addresses.
        """
        info = info_from_p2p_addr(multiaddr.Multiaddr(state.address))
        peer_id, address = info.peer_id, info.addrs[0]
        state.since_ms = now_ms()
        up_since: float | None = None  # trio clock
        due = trio.current_time()  # of the next dial
        while True:
            if self._is_connected(peer_id):
                now = trio.current_time()
                if up_since is None:
                    up_since = now
                    self._mark_up(state)
                elif now - up_since >= STABLE_CONNECTION_S:
                    state.dials = 0
                await trio.sleep(WATCH_INTERVAL_S)
                continue
            if up_since is not None:
                up_since = None
                self._mark_down(state)
                if not state.dials:
                    due = trio.current_time()
            wait = due - trio.current_time()
            if wait > 0:
                state.next_dial_ms = now_ms() + int(wait * 1000)
                await trio.sleep(min(WATCH_INTERVAL_S, wait))
                continue  # (the peer may dial us meanwhile)
            state.next_dial_ms = None
            state.dials += 1
            due = trio.current_time() + self.backoff.delay(state.dials, self._rng)
            try:
                with trio.fail_after(self.dial_timeout):
                    await self.host.get_network().dial_addr(address, peer_id)
                state.last_error = ""
                log.debug("dialled %s", state.address)  # connected notifications start the session
            except Exception as exc:
                state.last_error = _reason(exc)
                log.info("persistent peer %s down since %s (%.1fs): dial %d to %s failed (%s); "
                         "next dial in %.1fs", state.peer_id, _iso(state.since_ms),
                         (now_ms() - state.since_ms) / 1000, state.dials, address,
                         state.last_error, max(0.0, due - trio.current_time()))

    def _is_connected(self, peer_id: ID) -> bool:
        session = self._sessions.get(peer_id)
        return session is not None and not session.closed

    def _mark_up(self, state: PeerState) -> None:
        now = now_ms()
        log.info("persistent peer %s connected after %.1fs down (%d dials to %s)",
                 state.peer_id, (now - state.since_ms) / 1000, state.dials, state.address)
        state.connected, state.since_ms, state.next_dial_ms = True, now, None

    def _mark_down(self, state: PeerState) -> None:
        now = now_ms()
        log.warning("persistent peer %s down after %.1fs connected; re-dialling %s",
                    state.peer_id, (now - state.since_ms) / 1000, state.address)
        state.connected, state.since_ms = False, now


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _reason(exc: BaseException) -> str:
    """The innermost cause of a failed dial (the library wraps it in two or three layers, trio
    in a group of one per address tried)."""
    while True:
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        else:
            break
    text = str(exc)
    if isinstance(exc, trio.TooSlowError):
        text = "timed out"
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _remote_host(conn: INetConn) -> str:
    """The IP address a connection comes from ("" if the transport does not say)."""
    try:
        remote = conn.muxed_conn.get_remote_address()
    except Exception:  # transports differ in what they know; the cap then does not apply
        return ""
    return remote[0] if remote else ""


async def _reset_quietly(stream: INetStream) -> None:
    """Reset a stream that may already be broken, within a second, even while cancelled."""
    with trio.CancelScope(shield=True), trio.move_on_after(1):
        try:
            await stream.reset()
        except Exception:  # a dead connection surfaces as many library types
            pass
