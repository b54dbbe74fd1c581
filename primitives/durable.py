"""Crash-safe file replacement: the one place that knows the write, fsync, rename, fsync-dir dance.

After :func:`replace_file` returns, a crash at any moment leaves either the old content or
the new, never a mix, and the new name survives a power loss (the directory entry is synced).
The private validator's state, key files and WAL compaction all depend on that.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, mode: int = 0o600, temporary_suffix: str = ".tmp") -> None:
    """Atomically and durably make ``path`` hold exactly ``data`` (created with ``mode``)."""
    path = Path(path)
    temporary = path.with_name(path.name + temporary_suffix)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temporary, mode)  # O_CREAT's mode is filtered by the umask
        os.replace(temporary, path)
    except BaseException:
        # ``path`` is untouched; the part-written temporary would only hold on to space that
        # a full disk needs back (and look like a half write to whoever lists the directory)
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
