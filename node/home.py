"""A node home directory: where every file of one node lives, and the lock that owns it.

::

    <home>/
      config/config.toml              operator settings (node.config)
      config/genesis.json             the chain's genesis, identical on every node
      config/node_key.json            p2p identity (Ed25519 seed -> libp2p peer id), mode 0600
      config/priv_validator_key.json  consensus signing key, mode 0600
      data/store/                     LevelDB: blocks, commits, tx index, state (one DB)
      data/cs.wal/                    consensus write-ahead log
      data/priv_validator_state.json  last signed (height, round, step): the double-sign guard
      clearchain.lock                 held (flock) by the running node

Two processes running on one home would sign conflicting votes from the same key and corrupt
the store, so :class:`HomeLock` refuses a second one with a message naming the pid that holds it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from primitives.crypto import PrivateKey
from primitives.keyfile import load_key


class HomeError(RuntimeError):
    """A home directory that is missing, incomplete or already in use."""


class HomeLockedError(HomeError):
    """Another process holds the home's lock."""


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> Home:
        return cls(Path(path).expanduser().resolve())

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def genesis_file(self) -> Path:
        return self.config_dir / "genesis.json"

    @property
    def node_key_file(self) -> Path:
        return self.config_dir / "node_key.json"

    @property
    def validator_key_file(self) -> Path:
        return self.config_dir / "priv_validator_key.json"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "cs.wal"

    @property
    def validator_state_file(self) -> Path:
        return self.data_dir / "priv_validator_state.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "clearchain.lock"

    def key_files(self) -> tuple[Path, Path]:
        return (self.node_key_file, self.validator_key_file)

    def check_initialised(self) -> None:
        """Raise :class:`HomeError` naming the first missing file of an initialised home."""
        for path in (self.config_file, self.genesis_file, self.node_key_file,
                     self.validator_key_file):
            if not path.exists():
                raise HomeError(
                    f"{path} is missing: {self.root} is not an initialised node home "
                    f"(run `clearchain init --home {self.root}`)"
                )

    def node_key(self) -> PrivateKey:
        return load_key(self.node_key_file)

    def validator_key(self) -> PrivateKey:
        return load_key(self.validator_key_file)

    def lock(self) -> HomeLock:
        return HomeLock(self.lock_file)


class HomeLock:
    """An exclusive, non-blocking ``flock`` on the home's lock file, released on exit.

    The kernel drops a flock when its process dies, so a SIGKILLed node never leaves a stale
    lock behind (unlike a pid file checked by existence).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise HomeLockedError(
                    f"another clearchain node (pid {holder}) is already running on home "
                    f"{self.path.parent}; stop it first (lock file {self.path})"
                ) from exc
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> HomeLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
