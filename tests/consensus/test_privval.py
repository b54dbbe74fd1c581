"""Private validator: durable before release, refuses conflicts, idempotent on repeats."""

from __future__ import annotations

import errno
from dataclasses import replace
from pathlib import Path

import pytest
from consensus_helpers import CHAIN, block_id

from primitives.crypto import PrivateKey, verify
from primitives.hashing import sha256
from consensus.privval import (
    DoubleSignError,
    FilePrivvalStore,
    LastSignState,
    MemoryPrivvalStore,
    PrivValidator,
    PrivvalStateError,
    PrivvalWriteError,
)
from consensus.types import Proposal, Vote, VoteType

KEY = PrivateKey(sha256(b"privval-test"))


def vote(kind: VoteType, height: int, round_: int, tag: bytes | None, ts: int = 10) -> Vote:
    bid = None if tag is None else block_id(tag)
    return Vote(kind, height, round_, bid, ts, KEY.address, 0)


def test_signs_and_persists_before_returning(tmp_path: Path) -> None:
    path = tmp_path / "priv_validator_state"
    pv = PrivValidator(KEY, FilePrivvalStore(path))
    signed = pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 0, b"a"))
    assert verify(KEY.public_key, signed.sign_bytes(CHAIN), signed.signature)
    stored = FilePrivvalStore(path).load()
    assert stored is not None and stored.hrs == (5, 0, 2) and stored.signature == signed.signature
    assert not (tmp_path / "priv_validator_state.tmp").exists()


def test_nothing_is_released_when_persisting_fails() -> None:
    class FailingStore(MemoryPrivvalStore):
        def save(self, state: LastSignState) -> None:
            raise OSError("disk full")

    pv = PrivValidator(KEY, FailingStore())
    with pytest.raises(OSError):
        pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 0, b"a"))
    assert pv.last is None


def test_same_request_returns_the_stored_signature(tmp_path: Path) -> None:
    path = tmp_path / "state"
    first = PrivValidator(KEY, FilePrivvalStore(path)).sign_vote(
        CHAIN, vote(VoteType.PRECOMMIT, 5, 1, b"a")
    )
    again = PrivValidator(KEY, FilePrivvalStore(path))  # after a restart
    assert again.sign_vote(CHAIN, vote(VoteType.PRECOMMIT, 5, 1, b"a")) == first
    # only the timestamp differs: the stored vote (stored timestamp) comes back
    later = again.sign_vote(CHAIN, vote(VoteType.PRECOMMIT, 5, 1, b"a", ts=99))
    assert later == first and later.timestamp_ms == 10


def test_conflicting_requests_are_refused(tmp_path: Path) -> None:
    pv = PrivValidator(KEY, FilePrivvalStore(tmp_path / "state"))
    pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 1, b"a"))
    with pytest.raises(DoubleSignError):
        pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 1, b"b"))  # same HRS, other block
    with pytest.raises(DoubleSignError):
        pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 1, None))  # same HRS, nil
    with pytest.raises(DoubleSignError):
        pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 0, b"a"))  # earlier round
    with pytest.raises(DoubleSignError):
        pv.sign_vote(CHAIN, vote(VoteType.PRECOMMIT, 4, 9, b"a"))  # earlier height
    with pytest.raises(DoubleSignError):
        pv.sign_proposal(CHAIN, Proposal(5, 1, -1, block_id(b"a"), 10))  # propose < prevote step
    with pytest.raises(DoubleSignError):
        pv.sign_vote("other-chain", vote(VoteType.PREVOTE, 5, 1, b"a"))  # other sign bytes
    # the refusals survive a restart, and moving forward still works
    pv2 = PrivValidator(KEY, FilePrivvalStore(tmp_path / "state"))
    with pytest.raises(DoubleSignError):
        pv2.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 1, b"b"))
    pv2.sign_vote(CHAIN, vote(VoteType.PRECOMMIT, 5, 1, None))
    pv2.sign_proposal(CHAIN, Proposal(5, 2, 1, block_id(b"a"), 10))


def test_proposal_then_votes_of_one_round() -> None:
    pv = PrivValidator(KEY, MemoryPrivvalStore())
    p = pv.sign_proposal(CHAIN, Proposal(3, 0, -1, block_id(b"a"), 10))
    assert verify(KEY.public_key, p.sign_bytes(CHAIN), p.signature)
    assert pv.sign_proposal(CHAIN, replace(p, signature=b"", timestamp_ms=50)) == p
    pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 3, 0, b"a"))
    pv.sign_vote(CHAIN, vote(VoteType.PRECOMMIT, 3, 0, b"a"))
    with pytest.raises(DoubleSignError):
        pv.sign_proposal(CHAIN, Proposal(3, 0, -1, block_id(b"b"), 10))


def test_corrupt_state_file_stops_the_validator(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(PrivvalStateError):
        PrivValidator(KEY, FilePrivvalStore(path))


def test_a_full_disk_releases_no_signature_and_keeps_the_last_signed_state(tmp_path: Path) -> None:
    path = tmp_path / "priv_validator_state.json"
    pv = PrivValidator(KEY, FilePrivvalStore(path))
    first = pv.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 0, b"a"))
    before = path.read_bytes()
    temporary = tmp_path / "priv_validator_state.json.tmp"
    temporary.symlink_to("/dev/full")  # the state's next write meets a full disk (ENOSPC)
    with pytest.raises(PrivvalWriteError) as info:
        pv.sign_vote(CHAIN, vote(VoteType.PRECOMMIT, 5, 0, b"a"))
    assert info.value.path == path and info.value.height == 5
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert pv.last is not None and pv.last.signature == first.signature
    assert path.read_bytes() == before and not temporary.exists(), "no half write left behind"
    # after a restart the precommit is signed once there is room, and the prevote is not again
    again = PrivValidator(KEY, FilePrivvalStore(path))
    again.sign_vote(CHAIN, vote(VoteType.PRECOMMIT, 5, 0, b"a"))
    with pytest.raises(DoubleSignError):
        again.sign_vote(CHAIN, vote(VoteType.PREVOTE, 5, 0, b"b"))
