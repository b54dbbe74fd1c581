"""WAL: append, replay, torn last record dropped, any other damage refused."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from consensus_helpers import Keys, block_id

from consensus.core import RoundParams, CoreConfig, new_height_state, replay, step
from consensus.events import (
    BlockValidated,
    Step,
    TimeoutFired,
    VoteReceived,
    VoteSigned,
    event_from_obj,
    event_to_obj,
)
from consensus.types import VoteType
from consensus.wal import (
    HEADER,
    WAL,
    EndHeight,
    WALCorruptError,
    decode_records,
    encode_record,
    events_after_height,
    read_wal,
)
from consensus import wal as wal_module


def sample_events(keys: Keys) -> list:
    bid = block_id(b"b")
    return [
        TimeoutFired(1, 0, Step.NEW_HEIGHT),
        VoteReceived(keys.vote(1, VoteType.PREVOTE, 1, 0, bid)),
        VoteSigned(keys.vote(0, VoteType.PREVOTE, 1, 0, None)),
        BlockValidated(bid, True),
        TimeoutFired(1, 0, Step.PROPOSE),
    ]


def test_append_and_read_back(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "cs.wal"
    events = sample_events(keys)
    with WAL.open(path) as wal:
        for i, ev in enumerate(events):
            wal.append(ev, sync=isinstance(ev, VoteSigned))
            if i == 2:
                wal.end_height(1)
    records = read_wal(path)
    assert records[:3] == events[:3] and records[3] == EndHeight(1) and records[4:] == events[3:]
    assert events_after_height(records, 1) == events[3:]
    assert events_after_height(records, 0) == events  # no marker for 0: everything
    assert events_after_height(records, 5) == events[3:]  # latest marker at or below 5
    with WAL.open(path) as wal:  # reopening appends after the existing records
        wal.append(TimeoutFired(2, 0, Step.PROPOSE))
    assert read_wal(path)[-1] == TimeoutFired(2, 0, Step.PROPOSE)


def test_compact_keeps_the_current_height(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "cs.wal"
    events = sample_events(keys)
    with WAL.open(path) as wal:
        wal.append(events[0])
        wal.end_height(1)
        wal.append(events[1])
        wal.end_height(2)
        wal.append(events[2])
        wal.compact(2)
        wal.append(events[3], sync=True)
    assert read_wal(path) == [EndHeight(2), events[2], events[3]]
    assert events_after_height(read_wal(path), 2) == [events[2], events[3]]


class RoomFor:
    """``os`` with a disk that has ``room`` bytes left: a write past them is short, the next
    one fails with ENOSPC (as a filling disk does)."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = os.write(fd, bytes(data[: self.room]))
        self.room -= written
        return written


def test_a_record_cut_short_by_a_full_disk_is_cut_off_so_later_ones_stay_readable(
        tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cs.wal"
    events = sample_events(keys)
    with WAL.open(path) as wal:
        wal.append(events[0])
        wal.end_height(1)
        whole = path.stat().st_size
        monkeypatch.setattr(wal_module, "os", RoomFor(HEADER.size + 3))
        with pytest.raises(OSError) as info:
            wal.append(events[1], sync=True)
        assert info.value.errno == errno.ENOSPC
        assert path.stat().st_size == whole  # the part written is gone again
        monkeypatch.setattr(wal_module, "os", os)  # space freed
        wal.append(events[2])
    assert read_wal(path) == [events[0], EndHeight(1), events[2]]  # no WALCorruptError


def test_every_event_kind_round_trips(keys: Keys) -> None:
    for ev in sample_events(keys):
        assert event_from_obj(event_to_obj(ev)) == ev
        records, _ = decode_records(encode_record(ev))
        assert records == [ev]


@pytest.mark.parametrize("cut", [1, 3, HEADER.size, HEADER.size + 1, -1])
def test_torn_last_record_is_dropped_and_truncated(tmp_path: Path, keys: Keys, cut: int) -> None:
    path = tmp_path / "cs.wal"
    events = sample_events(keys)
    whole = b"".join(encode_record(ev) for ev in events)
    last = encode_record(events[-1])
    keep = len(whole) - len(last) + (cut if cut > 0 else len(last) + cut)
    path.write_bytes(whole[:keep])
    assert read_wal(path) == events[:-1]
    with WAL.open(path) as wal:
        assert wal.records_at_open == events[:-1]
        assert path.stat().st_size == len(whole) - len(last)  # garbage cut away
        wal.append(events[-1], sync=True)
    assert read_wal(path) == events


def test_last_record_with_bad_checksum_is_torn(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "cs.wal"
    events = sample_events(keys)
    data = bytearray(b"".join(encode_record(ev) for ev in events))
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert read_wal(path) == events[:-1]


def test_corruption_before_the_end_is_an_error(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "cs.wal"
    events = sample_events(keys)
    data = bytearray(b"".join(encode_record(ev) for ev in events))
    data[HEADER.size + 2] ^= 0xFF  # inside the first body
    path.write_bytes(bytes(data))
    with pytest.raises(WALCorruptError, match="checksum"):
        read_wal(path)
    with pytest.raises(WALCorruptError):
        WAL.open(path)
    # an absurd length anywhere is corruption, not a torn write
    path.write_bytes(HEADER.pack(0, 1 << 30) + b"x" * 10)
    with pytest.raises(WALCorruptError, match="claims"):
        read_wal(path)


def test_valid_checksum_but_undecodable_body_is_an_error(tmp_path: Path) -> None:
    import zlib

    body = b"\x92\xa5event\xc0"  # ["event", None]
    path = tmp_path / "cs.wal"
    path.write_bytes(HEADER.pack(zlib.crc32(body), len(body)) + body)
    with pytest.raises(WALCorruptError, match="undecodable"):
        read_wal(path)


def test_replay_rebuilds_the_core_state(keys: Keys) -> None:
    """Folding the logged events into a fresh state gives the state the node had."""
    config = CoreConfig("test-chain", RoundParams(), keys.valset.validators[0].address)
    start = new_height_state(config, 1, keys.valset)
    state = start
    logged = []
    events = [TimeoutFired(1, 0, Step.NEW_HEIGHT), TimeoutFired(1, 0, Step.PROPOSE)]
    events += [VoteReceived(keys.vote(i, VoteType.PREVOTE, 1, 0, None)) for i in (1, 2, 3)]
    for ev in events:
        data = encode_record(ev)
        logged.append(data)
        state, _ = step(state, ev)
    records, _ = decode_records(b"".join(logged))
    rebuilt = replay(start, records)
    assert (rebuilt.height, rebuilt.round, rebuilt.step) == (state.height, state.round, state.step)
    assert rebuilt.votes == state.votes and rebuilt.own_requests == state.own_requests
