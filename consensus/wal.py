"""Write-ahead log of the events the consensus core consumes.

Record layout: ``crc32(body)`` (4 bytes, big endian) | ``len(body)`` (4 bytes, big endian) |
``body``, where ``body`` is the canonical encoding of ``["event", event_to_obj(e)]`` or
``["end_height", h]``. The shell appends every event before stepping the core, with
``sync=True`` for our own signed messages (they must be durable before they can leave), and an
end-of-height marker (always synced) once block ``h`` is stored.

Reading: a last record that is cut short (a crash in the middle of a write) or whose checksum
fails is a torn write: it is dropped, and :meth:`WAL.open` truncates it away before appending.
Any other damage (a bad checksum or undecodable body before the last record, an absurd length)
raises :class:`WALCorruptError`: replaying past it could make us sign something conflicting, so
the node must stop and a human must look.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from primitives.codec import CodecError, decode, encode
from primitives.durable import replace_file
from consensus.events import Event, event_from_obj, event_to_obj
from consensus.types import MessageError

HEADER = struct.Struct(">II")
MAX_RECORD_BYTES = 64 * 1024 * 1024

log = logging.getLogger(__name__)


class WALCorruptError(Exception):
    """The WAL is damaged somewhere other than a torn last record."""


@dataclass(frozen=True)
class EndHeight:
    height: int


Record = Event | EndHeight


def encode_record(record: Record) -> bytes:
    if isinstance(record, EndHeight):
        body = encode(["end_height", record.height])
    else:
        body = encode(["event", event_to_obj(record)])
    return HEADER.pack(zlib.crc32(body), len(body)) + body


def decode_records(data: bytes, source: str = "WAL") -> tuple[list[Record], int]:
    """All records in ``data`` and the length of the good prefix (less than ``len(data)``
    iff a torn last record was dropped)."""
    records: list[Record] = []
    offset = 0
    size = len(data)
    while offset < size:
        if size - offset < HEADER.size:
            log.warning("%s: dropping torn header at offset %d", source, offset)
            return records, offset
        crc, length = HEADER.unpack_from(data, offset)
        if length > MAX_RECORD_BYTES:
            raise WALCorruptError(f"{source}: record at offset {offset} claims {length} bytes")
        end = offset + HEADER.size + length
        if end > size:
            log.warning("%s: dropping torn record at offset %d", source, offset)
            return records, offset
        body = data[offset + HEADER.size : end]
        if zlib.crc32(body) != crc:
            if end == size:
                log.warning("%s: dropping last record (bad checksum) at offset %d", source, offset)
                return records, offset
            raise WALCorruptError(f"{source}: checksum mismatch in record at offset {offset}")
        records.append(_decode_body(body, source, offset))
        offset = end
    return records, offset


def _decode_body(body: bytes, source: str, offset: int) -> Record:
    try:
        kind, payload = decode(body)
        if kind == "end_height" and type(payload) is int:
            return EndHeight(payload)
        if kind == "event":
            return event_from_obj(payload)
    except (CodecError, MessageError, ValueError, TypeError) as exc:
        raise WALCorruptError(f"{source}: undecodable record at offset {offset}: {exc}") from exc
    raise WALCorruptError(f"{source}: unknown record at offset {offset}")


def events_after_height(records: list[Record], height: int) -> list[Event]:
    """Events after the end-of-height marker of ``height`` (the last stored block).

    Without that marker (a crash between storing the block and writing it), the events after
    the latest earlier marker: the core ignores those of heights it has already passed.
    """
    start = 0
    for i, record in enumerate(records):
        if isinstance(record, EndHeight) and record.height <= height:
            start = i + 1
    return [r for r in records[start:] if not isinstance(r, EndHeight)]


class WAL:
    """An append-only WAL file. Use :meth:`open`; close it (or use ``with``) when done."""

    def __init__(self, path: Path, fd: int, records: list[Record], end: int) -> None:
        self.path = path
        self._fd = fd
        self._end = end
        """Offset just past the last whole record (where the next append starts)."""
        self.records_at_open = records

    @classmethod
    def open(cls, path: Path) -> WAL:
        """Open (creating) the WAL, drop a torn tail, and position for appending."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if created:  # the new directory entry must be durable too
                dir_fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            data = _read_all(fd)
            records, good = decode_records(data, str(path))
            if good < len(data):
                os.ftruncate(fd, good)
                os.fsync(fd)
            os.lseek(fd, good, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, records, good)

    def append(self, record: Record, sync: bool = False) -> None:
        """Append ``record`` (and fsync with ``sync``); the OSError of a failed write.

        A write that fails part-way (a full disk) is cut off again before the error is
        raised, so the file still ends on a whole record: a torn record left in the middle
        would make every later one unreadable (:class:`WALCorruptError` at the next open). A
        failed fsync leaves the record in place: it may or may not be on disk, as a crash
        right after a write would; the caller must stop either way.
        """
        data = encode_record(record)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError:
            self._cut_back()
            raise
        self._end += len(data)
        if sync:
            os.fsync(self._fd)

    def _cut_back(self) -> None:
        """Truncate to the last whole record (needs no free space); best effort, as the
        torn tail is dropped at the next open anyway."""
        try:
            os.ftruncate(self._fd, self._end)
            os.lseek(self._fd, self._end, os.SEEK_SET)
        except OSError as exc:
            log.warning("%s: could not cut a torn record off at offset %d: %s", self.path,
                        self._end, exc)

    def end_height(self, height: int) -> None:
        """Mark ``height`` as stored (synced)."""
        self.append(EndHeight(height), sync=True)

    def sync(self) -> None:
        os.fsync(self._fd)

    def compact(self, height: int) -> None:
        """Drop everything before the end-of-height marker of ``height`` (the WAL would grow
        forever otherwise). Atomic: write a new file, fsync, rename over, fsync the directory."""
        os.fsync(self._fd)
        records = read_wal(self.path)
        start = 0
        for i, record in enumerate(records):
            if isinstance(record, EndHeight) and record.height <= height:
                start = i
        replace_file(self.path, b"".join(encode_record(r) for r in records[start:]),
                     temporary_suffix=".compact")
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR)
        self._end = os.lseek(self._fd, 0, os.SEEK_END)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_wal(path: Path) -> list[Record]:
    """All records of a WAL file (torn tail dropped), without modifying it."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return decode_records(data, str(path))[0]


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
