"""A write the node needs has failed (a full disk, an I/O error): stop, and say where and why.

What the node writes on its way to a signature or a commit: the block and its state (one synced
LevelDB batch, ``data/store``), the consensus WAL (``data/cs.wal/wal``) and the private
validator's last-signed state (``data/priv_validator_state.json``). When one of these writes
fails, the node cannot go on, as CometBFT panics on a failed store write:

- the application's memory is one block ahead of the store once ``ClearingApp.commit`` has
  staged a batch that then fails to write, so whatever it served or signed next would rest on
  a state that a restart does not find;
- LevelDB does not promise that its log is usable after a failed append (its writer may have
  counted bytes that never reached the file), so a later write that "succeeds" may still be
  lost on reopen;
- a vote whose last-signed state could not be made durable must not leave (double signing
  after a restart), and one whose WAL record could not be written is not replayed.

So the write's caller raises :class:`StorageFailure`; it ends the node, and ``clearchain start``
logs its message once at CRITICAL and exits with :data:`EXIT_STORAGE_FAILURE`. Everything
written before stays as it was: the failed batch is all or nothing, a torn WAL record is cut
off, the old last-signed state is untouched. After the operator frees space (or mends the
disk) a restart recovers from the store and the WAL, and catches up from its peers.

Writes the node can do without are not here: a snapshot that cannot be written is logged and
skipped (``node/snapshots.py``).
"""

from __future__ import annotations

import errno
from pathlib import Path

EXIT_STORAGE_FAILURE = 74
"""``clearchain start``'s exit status after a failed write (sysexits.h's EX_IOERR), distinct
from 1 (a usage or home error) and 2 (a consensus failure: the chain halted)."""
DISK_FULL = "disk full (ENOSPC): free space and restart"
"""What the CRITICAL line says when the failure was a full disk."""
_ENOSPC_TEXT = "No space left on device"
"""LevelDB reports errno as text only (plyvel's IOError has no errno): this is ENOSPC's."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk: ENOSPC, or LevelDB's text of it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if _ENOSPC_TEXT in str(seen):
            return True
        seen = seen.__cause__
    return False


class StorageFailure(Exception):
    """A write the node needs failed; the node stops (module doc). Raise it ``from`` the
    OSError (or LevelDB error) that says why."""

    def __init__(self, action: str, path: Path | str, height: int | None,
                 cause: BaseException) -> None:
        self.action = action
        """What failed, as a phrase that takes the path after it ("writing block 5 to")."""
        self.path = str(path)
        self.height = height
        """The height the node was at (deciding, signing or storing); None at start."""
        self.disk_full = is_disk_full(cause)
        where = "at start" if height is None else f"at height {height}"
        reason = DISK_FULL if self.disk_full else f"{cause}: check the disk and restart"
        super().__init__(f"STORAGE FAILURE {where}: {action} {self.path} failed: {reason}")
