"""A full disk under one node: its data directory on a small tmpfs, filled and freed on demand.

Issue 17's fault list has "a full disk on one node (a small tmpfs)". What fills up in the field
is the filesystem under ``<home>/data`` (the LevelDB store, the consensus WAL, the private
validator's state, snapshots), so that is what these helpers put on a tmpfs of its own:

    mount_small_disk(home.data_dir, 8)   # before the node starts: contents moved onto the tmpfs
    filler = fill(home.data_dir)         # while it runs: ~0 bytes left, its next write fails
    free(filler)                         # the space back
    unmount(home.data_dir)               # after it stopped: contents copied back to a plain dir

Mounting needs root and ``mount``; :func:`available` says why not otherwise, for a skip. A
mount made before the node starts is seen inside a network namespace too (``ip netns exec``
makes the host's mounts its slaves, so a later unmount reaches it as well); mount before
starting the node, unmount after it stopped (a busy tmpfs refuses to unmount).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

FILLER_NAME = "disk-filler"
"""The file :func:`fill` writes in the data directory (no node file has this name)."""
_ASIDE = ".disk-aside"
"""Suffix of the sibling directory that holds a data directory's contents while it moves."""


class DiskFaultError(RuntimeError):
    """A mount, copy or unmount of the small disk failed (the message says which and where)."""


def available() -> str | None:
    """None when this process can mount a small tmpfs, else the reason it cannot (for a skip)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    for tool in ("mount", "umount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    with tempfile.TemporaryDirectory(prefix="disk-probe-") as probe:
        try:
            _mount(Path(probe), 1)
        except DiskFaultError as exc:
            return str(exc)
        try:
            _umount(Path(probe))
        except DiskFaultError as exc:
            return str(exc)
    return None


def mount_small_disk(data_dir: Path, size_mb: int) -> None:
    """Put ``data_dir`` on a tmpfs of ``size_mb`` MiB, keeping its contents.

    The contents move to a sibling directory, the tmpfs is mounted on the (now empty)
    directory and the contents are copied onto it; if they do not fit, the mount is undone and
    the contents put back before :class:`DiskFaultError` is raised.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(data_dir):
        raise DiskFaultError(f"{data_dir} is a mount point already")
    aside = data_dir.with_name(data_dir.name + _ASIDE)
    if aside.exists():
        raise DiskFaultError(f"{aside} exists: a previous mount_small_disk did not finish")
    mode = data_dir.stat().st_mode & 0o7777
    data_dir.rename(aside)
    data_dir.mkdir(mode)
    try:
        _mount(data_dir, size_mb)
    except DiskFaultError:
        data_dir.rmdir()
        aside.rename(data_dir)
        raise
    try:
        os.chmod(data_dir, mode)  # a fresh tmpfs's root is 1777
        shutil.copytree(aside, data_dir, symlinks=True, dirs_exist_ok=True)
    except OSError as exc:
        _umount(data_dir)
        data_dir.rmdir()
        aside.rename(data_dir)
        raise DiskFaultError(
            f"the contents of {data_dir} do not fit in {size_mb} MiB: {exc}") from exc
    shutil.rmtree(aside)


def fill(data_dir: Path) -> Path:
    """Write zeros to a filler file in ``data_dir`` until the filesystem refuses (ENOSPC).

    Big writes first, then page-sized ones, so ~0 bytes are left (tmpfs allocates whole
    pages). Returns the filler, for :func:`free`. Whatever writes next on that filesystem gets
    ENOSPC, until space is freed (a file removed by its owner frees some too).
    """
    filler = Path(data_dir) / FILLER_NAME
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 12):
            block = bytes(size)
            while True:
                try:
                    if os.write(fd, block) < size:
                        break  # a short write: the next one would fail
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def free(filler: Path) -> None:
    """Remove the filler written by :func:`fill` (its space is available again at once)."""
    Path(filler).unlink(missing_ok=True)


def unmount(data_dir: Path) -> None:
    """Take the tmpfs off ``data_dir``, leaving its contents (without a filler) in a plain
    directory there, so the home stays usable; a no-op when ``data_dir`` is no mount point.

    The contents are copied to a sibling directory first, then the tmpfs is unmounted and
    they move into the directory underneath. A node still running on it makes the unmount
    fail (busy): stop the node first. On failure the copy is left in the sibling and named.
    """
    data_dir = Path(data_dir)
    if not os.path.ismount(data_dir):
        return
    aside = data_dir.with_name(data_dir.name + _ASIDE)
    shutil.rmtree(aside, ignore_errors=True)
    shutil.copytree(data_dir, aside, symlinks=True,
                    ignore=shutil.ignore_patterns(FILLER_NAME))
    try:
        _umount(data_dir)
    except DiskFaultError as exc:
        shutil.rmtree(aside, ignore_errors=True)
        raise DiskFaultError(f"{exc} (is a node still running on it?)") from exc
    for entry in aside.iterdir():
        target = data_dir / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        entry.rename(target)
    aside.rmdir()


def _mount(directory: Path, size_mb: int) -> None:
    _run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(directory)],
         f"mounting a {size_mb} MiB tmpfs on {directory}")


def _umount(directory: Path) -> None:
    _run(["umount", str(directory)], f"unmounting {directory}")


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiskFaultError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise DiskFaultError(f"{what} failed: {detail}")
