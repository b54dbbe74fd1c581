"""Length-prefixed frames, each carrying a batch of messages.

A stream write costs about half a millisecond however small (measured; docs/architecture.md), so a sender
packs every message waiting in its queue into one frame and writes it at once::

    frame   = u32 body_length || body
    body    = message*            (at least one)
    message = u32 length || bytes

Messages are opaque here; the protocol handlers (consensus, mempool, block sync) decode them.
A frame longer than the configured limit, or a body whose message lengths do not add up, is a
protocol violation by the peer (:class:`FrameError`), and the peer is disconnected.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Protocol

import trio

_U32 = struct.Struct(">I")
HEADER_SIZE = _U32.size
MAX_MESSAGES_PER_FRAME = 65_536
"""Senders stop a batch here; a frame holding more is a violation. Without it a peer could
pack an 8 MiB frame with two million tiny messages, each a Python object and a handler call."""
FRAME_BODY_TIMEOUT = 30.0
"""Seconds a peer has to deliver a frame's body once its header promised it: a peer that
announces big frames and never finishes them would otherwise pin that memory forever."""


class FrameError(ValueError):
    """Bytes from a peer that are not a well-formed frame within the limits."""


class ReadableStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...


def pack_frame(messages: Iterable[bytes]) -> bytes:
    """One frame holding ``messages`` in order."""
    parts: list[bytes] = []
    for message in messages:
        parts.append(_U32.pack(len(message)))
        parts.append(message)
    if not parts:
        raise FrameError("a frame carries at least one message")
    body = b"".join(parts)
    return _U32.pack(len(body)) + body


def message_cost(message: bytes) -> int:
    """Bytes a message adds to a frame body."""
    return HEADER_SIZE + len(message)


def unpack_body(body: bytes) -> list[bytes]:
    """The messages of a frame body; :class:`FrameError` if the lengths do not add up."""
    messages: list[bytes] = []
    view = memoryview(body)
    offset = 0
    while offset < len(body):
        if offset + HEADER_SIZE > len(body):
            raise FrameError("truncated message header in frame")
        (length,) = _U32.unpack_from(view, offset)
        offset += HEADER_SIZE
        if offset + length > len(body):
            raise FrameError(f"message of {length} bytes overruns its frame")
        if length == 0:
            raise FrameError("empty message in frame")  # no protocol sends one
        if len(messages) == MAX_MESSAGES_PER_FRAME:
            raise FrameError(f"frame holds more than {MAX_MESSAGES_PER_FRAME} messages")
        messages.append(bytes(view[offset:offset + length]))
        offset += length
    if not messages:
        raise FrameError("empty frame")
    return messages


class FrameReader:
    """Reads whole frames from a libp2p stream (whose ``read`` returns what has arrived)."""

    def __init__(self, stream: ReadableStream, max_frame_bytes: int) -> None:
        self._stream = stream
        self._max = max_frame_bytes
        self._buffer = bytearray()

    async def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = await self._stream.read(max(size - len(self._buffer), 64 * 1024))
            if not chunk:
                return False
            self._buffer += chunk
        return True

    async def read_frame(self) -> list[bytes] | None:
        """The next frame's messages, or None at a clean end of stream."""
        if not await self._fill(HEADER_SIZE):
            if self._buffer:
                raise FrameError("stream ended inside a frame header")
            return None
        (length,) = _U32.unpack_from(self._buffer, 0)
        if length > self._max:
            raise FrameError(f"frame of {length} bytes exceeds the limit of {self._max}")
        with trio.move_on_after(FRAME_BODY_TIMEOUT) as deadline:
            complete = await self._fill(HEADER_SIZE + length)
        if deadline.cancelled_caught:
            raise FrameError(f"frame of {length} bytes not completed within {FRAME_BODY_TIMEOUT:.0f} s")
        if not complete:
            raise FrameError("stream ended inside a frame")
        body = bytes(self._buffer[HEADER_SIZE:HEADER_SIZE + length])
        del self._buffer[:HEADER_SIZE + length]
        return unpack_body(body)
