"""Tx gossip: a tx is pushed whole by the node a client gave it to, and relayed by hash.

Flooding every admitted tx to every peer makes each node of a full mesh receive every tx once
from the node a client sent it to and once more from each other peer that relays it: on a
4-validator testnet two of every three tx bodies a node received were copies, each paid for in
Noise, yamux, framing and hashing. So, as Celestia's content-addressed mempool does:

- a tx admitted from a client (RPC) is pushed whole to every peer;
- a tx admitted from a peer is announced by its sha256 (``have``) to the peers not known to
  hold it;
- a peer that lacks an announced tx asks for it (``want``) and gets it whole, once.

In a full mesh every peer already has the tx from its first node, so a relay costs 32 bytes; in
any other topology a tx still reaches every node, one round trip later per relaying hop.
Messages on :data:`TX_HASHES_PROTOCOL` are ``["have" | "want", [32-byte hashes]]`` in the
canonical encoding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio

from primitives.codec import CodecError, decode, encode
from node.mempool import Mempool, MempoolResult
from node.p2p.network import MEMPOOL_PROTOCOL, Network, PeerMisbehaviour, PeerUnavailable
from state.codes import Code

log = logging.getLogger("clearchain.mempool")

TX_HASHES_PROTOCOL = "/clearchain/mempool-hashes/1"
GOSSIP_BATCH_WINDOW = 0.025
"""Seconds new txs wait to be sent together (one frame per peer instead of one per tx).
Under load a frame costs more than the txs in it (yamux and Noise in Python, two syscalls a
side): 25 ms instead of 5 ms gave 4% more committed trades and half the latency at an
offered 1,000 txs/s on a 4-validator testnet (bench/e2e.py, A/B alternating, two rounds)."""
MAX_HASHES_PER_MESSAGE = 1024
"""Hashes in one have or want message (33 KB); longer lists go in several."""
WANT_AGAIN_AFTER = 1.0
"""Seconds before a tx announced by several peers is asked for again (from whichever announces
it next): the first answer is usually on its way."""
MAX_WANTED = 100_000
"""Outstanding wants remembered; past this the oldest are forgotten (asked again if announced)."""
MISBEHAVIOUR_CODES = frozenset({Code.DECODE_ERROR, Code.BAD_SIGNATURE, Code.WRONG_CHAIN,
                                Code.UNKNOWN_KIND})
"""check_tx verdicts on a gossiped tx that only a broken or malicious peer would send."""

Admit = Callable[[bytes, str | None], Awaitable[MempoolResult]]


class TxGossip:
    """The mempool's two protocols: whole txs on ``MEMPOOL_PROTOCOL``, hashes beside them."""

    def __init__(self, mempool: Mempool, network: Network, admit: Admit) -> None:
        self.mempool = mempool
        self.network = network
        self.admit = admit
        self._wanted: dict[bytes, float] = {}  # tx hash -> when we asked a peer for it

    def install(self) -> None:
        self.network.set_handler(MEMPOOL_PROTOCOL, self.on_tx)
        self.network.set_handler(TX_HASHES_PROTOCOL, self.on_hashes)
        self.network.on_peer_connected(self.send_mempool)

    async def run(self) -> None:
        """Every batch window: push new client txs to every peer, announce new peer txs."""
        while True:
            await self.mempool.wait_gossip()
            await trio.sleep(GOSSIP_BATCH_WINDOW)
            batch = self.mempool.take_gossip()
            for peer in self.network.peers():
                bodies = [item.tx for item in batch if not item.relayed and peer not in item.holders]
                hashes = [item.hash for item in batch if item.relayed and peer not in item.holders]
                try:
                    if bodies:
                        await self.network.send_many(peer, MEMPOOL_PROTOCOL, bodies)
                    if hashes:
                        await self._send_hashes(peer, "have", hashes)
                except PeerUnavailable:
                    continue

    async def on_tx(self, peer: str, tx: bytes) -> None:
        if self.mempool.note_known(tx, peer):
            return  # a copy of a tx we hold or committed: no admission turn needed
        result = await self.admit(tx, peer)
        if result.app_result is not None and result.code in MISBEHAVIOUR_CODES:
            raise PeerMisbehaviour(f"gossiped a tx that fails check_tx with code {result.code}: "
                                   f"{result.log}")

    async def on_hashes(self, peer: str, message: bytes) -> None:
        kind, hashes = parse_hashes(message)
        if kind == "have":
            wanted = self._to_want(peer, hashes)
            if wanted:
                await self._send_hashes(peer, "want", wanted)
        else:
            handed = (self.mempool.hand_over(tx_hash, peer) for tx_hash in hashes)
            bodies = [tx for tx in handed if tx is not None]
            if bodies:
                await self.network.send_many(peer, MEMPOOL_PROTOCOL, bodies)

    async def send_mempool(self, peer: str) -> None:
        """A newly connected peer gets every pending tx whole."""
        try:
            await self.network.send_many(peer, MEMPOOL_PROTOCOL, self.mempool.txs())
        except PeerUnavailable:
            pass

    def _to_want(self, peer: str, hashes: list[bytes]) -> list[bytes]:
        """The announced txs we lack and have not just asked another peer for."""
        now = time.monotonic()
        while self._wanted:  # forget wants old enough to be asked again
            oldest = next(iter(self._wanted))
            if now - self._wanted[oldest] < WANT_AGAIN_AFTER:
                break
            del self._wanted[oldest]
        wanted = []
        for tx_hash in hashes:
            if self.mempool.note_known_hash(tx_hash, peer):
                continue
            if tx_hash in self._wanted:
                continue  # asked less than WANT_AGAIN_AFTER ago (older wants were forgotten above)
            self._wanted[tx_hash] = now  # appended: the dict stays in time order
            wanted.append(tx_hash)
        while len(self._wanted) > MAX_WANTED:
            del self._wanted[next(iter(self._wanted))]
        return wanted

    async def _send_hashes(self, peer: str, kind: str, hashes: list[bytes]) -> None:
        step = MAX_HASHES_PER_MESSAGE
        await self.network.send_many(
            peer, TX_HASHES_PROTOCOL, [encode([kind, hashes[i:i + step]]) for i in range(0, len(hashes), step)])


def parse_hashes(message: bytes) -> tuple[str, list[bytes]]:
    """``(kind, hashes)`` of a have/want message; PeerMisbehaviour for anything else."""
    try:
        value = decode(message, max_bytes=64 + 35 * MAX_HASHES_PER_MESSAGE)
    except CodecError as exc:
        raise PeerMisbehaviour(f"undecodable tx hash message: {exc}") from None
    if (not isinstance(value, list) or len(value) != 2 or value[0] not in ("have", "want")
            or not isinstance(value[1], list) or len(value[1]) > MAX_HASHES_PER_MESSAGE
            or not all(isinstance(h, bytes) and len(h) == 32 for h in value[1])):
        raise PeerMisbehaviour("a tx hash message is not [\"have\" | \"want\", [32-byte hashes]]")
    return value[0], value[1]
