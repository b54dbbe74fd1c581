"""node/storage_failure.py: a write the node needs fails (a full disk) -> it stops, says where
and why, leaves nothing half written, signs nothing it could not store, and a restart goes on."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import plyvel
import pytest
import trio

from consensus import wal as wal_module
from consensus.events import ProposalSigned, VoteSigned
from consensus.privval import FilePrivvalStore
from consensus.wal import read_wal
from localnet.synthetic import append_block
from node.blockstore import BlockStore, open_db
from node.chain import Chain
from node.node import Node
from node.storage_failure import DISK_FULL, StorageFailure, is_disk_full
from tests.fault import disk
from tests.node.test_chain import SIGNERS, T0, genesis, transfer
from tests.node.test_node_inprocess import make_node, wait_for

STOP_WITHIN_S = 10.0
"""The node must be gone this soon after its write failed (no hang, no spinning)."""


def test_a_full_disk_is_recognised_by_errno_and_by_leveldbs_text() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert is_disk_full(plyvel.IOError(b"IO error: /d/store/000005.log: No space left on device"))
    cause = OSError(errno.ENOSPC, "full")
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = cause
    assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(errno.EIO, os.strerror(errno.EIO)))


def test_the_message_names_the_path_the_height_and_what_to_do() -> None:
    full = StorageFailure("appending to the consensus WAL", "/h/data/cs.wal/wal", 7,
                          OSError(errno.ENOSPC, "No space left on device"))
    assert str(full) == ("STORAGE FAILURE at height 7: appending to the consensus WAL "
                         f"/h/data/cs.wal/wal failed: {DISK_FULL}")
    broken = StorageFailure("opening the store", "/h/data/store", None,
                            OSError(errno.EIO, "Input/output error"))
    assert not broken.disk_full
    assert str(broken) == ("STORAGE FAILURE at start: opening the store /h/data/store failed: "
                           "[Errno 5] Input/output error: check the disk and restart")


class NoRoom:
    """``os`` for the WAL module on a full disk: every write fails with ENOSPC."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fill_privval(node: Node, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    temporary = node.home.validator_state_file.with_name("priv_validator_state.json.tmp")
    temporary.symlink_to("/dev/full")  # the next last-signed state meets a full disk
    return lambda: temporary.unlink(missing_ok=True)


def _fill_wal(node: Node, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    monkeypatch.setattr(wal_module, "os", NoRoom())
    return lambda: monkeypatch.setattr(wal_module, "os", os)


def _fill_store(node: Node, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    def write_block(self: BlockStore, pending: object, app_hash: bytes) -> bytes:
        raise plyvel.IOError(f"IO error: {node.home.store_dir}/000005.log: "
                             "No space left on device".encode())

    monkeypatch.setattr(BlockStore, "write_block", write_block)
    return monkeypatch.undo


async def _run_until_it_fails(node: Node, fill: Callable[[], Callable[[], None]]
                              ) -> tuple[StorageFailure, Callable[[], None], int]:
    """Run ``node`` to height 3, fill its disk; the StorageFailure it stops with, the undo of
    the fill, and the height it had stored when the disk filled."""
    failure: StorageFailure | None = None
    free: Callable[[], None] = lambda: None  # noqa: E731
    stored = -1
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await wait_for(lambda: node.chain.height >= 3)
            stored = node.chain.height
            free = fill()
            with trio.fail_after(STOP_WITHIN_S):
                await trio.sleep_forever()
    except* StorageFailure as group:
        leaves = list(_leaves(group))
        assert len(leaves) == 1, leaves
        failure = leaves[0]
    assert failure is not None
    return failure, free, stored


def _leaves(group: BaseExceptionGroup) -> list[StorageFailure]:
    found: list[StorageFailure] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            assert isinstance(exc, StorageFailure)
            found.append(exc)
    return found


@pytest.mark.parametrize(("fill", "action", "where"), [
    (_fill_privval, "storing the last-signed state in", "priv_validator_state.json"),
    (_fill_wal, "appending to the consensus WAL", "cs.wal/wal"),
    (_fill_store, "and its state to", "store"),
], ids=["privval", "wal", "store"])
async def test_a_full_disk_stops_the_node_with_nothing_unstored_signed_and_a_restart_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fill: Callable[..., Callable[[], None]],
        action: str, where: str) -> None:
    node = make_node(tmp_path)
    failure, free, stored = await _run_until_it_fails(node, lambda: fill(node, monkeypatch))
    assert failure.disk_full and action in str(failure) and failure.path.endswith(where)
    assert str(failure).endswith(DISK_FULL)
    assert failure.height is not None and failure.height >= stored
    # what left (every signed message is in the WAL before it is sent) is covered by the
    # durable last-signed state: nothing was signed that a restart would not know of
    last = FilePrivvalStore(node.home.validator_state_file).load()
    assert last is not None
    signed = [ev for ev in read_wal(node.home.wal_dir / "wal")
              if isinstance(ev, (VoteSigned, ProposalSigned))]
    assert signed
    for ev in signed:
        message = ev.vote if isinstance(ev, VoteSigned) else ev.message.proposal
        assert (message.height, message.round) <= (last.height, last.round)
    free()  # space freed: a restart recovers from the store and the WAL and goes on
    restarted = make_node_again(node)
    async with trio.open_nursery() as nursery:
        await nursery.start(restarted.run)
        assert restarted.chain.height >= failure.height - 1
        await wait_for(lambda: restarted.chain.height >= failure.height + 2)
        nursery.cancel_scope.cancel()


def make_node_again(node: Node) -> Node:
    """The same home, a new process's view of it."""
    return Node(node.home)


def test_leveldb_on_a_full_tmpfs_fails_the_block_whole_and_reopens_at_the_last_stored(
        tmp_path: Path) -> None:
    reason = disk.available()
    if reason is not None:
        pytest.skip(f"needs a small tmpfs: {reason}")
    data_dir = tmp_path / "data"
    disk.mount_small_disk(data_dir, 4)
    try:
        store_path = str(data_dir / "store")
        db = open_db(store_path, write_buffer_mb=32)
        chain = Chain(db, genesis(), store_path=store_path)
        append_block(chain, SIGNERS, [transfer(1, 1)], T0)
        disk.fill(data_dir)
        with pytest.raises(StorageFailure) as info:
            for height in range(2, 40):  # the log's last page may take a block or two
                append_block(chain, SIGNERS, [transfer(i, height) for i in range(20)], T0 + height)
        stored, stored_hash = chain.height, chain.blocks.latest().app_hash
        assert info.value.disk_full and info.value.height == stored + 1
        assert str(info.value).startswith(f"STORAGE FAILURE at height {stored + 1}: writing "
                                          f"block {stored + 1} and its state to {store_path}")
        db.close()
        (data_dir / disk.FILLER_NAME).unlink()
        reopened = Chain(open_db(store_path), genesis(), store_path=store_path)
        try:
            assert (reopened.height, reopened.app_hash) == (stored, stored_hash)
            append_block(reopened, SIGNERS, [transfer(99, stored + 1)], T0 + 100)
        finally:
            reopened.close()
    finally:
        disk.unmount(data_dir)
