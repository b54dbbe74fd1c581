"""The local keyring: one key file per name in a directory (default ``~/.clearchain/keys``).

Key names are file names, so they are restricted to a safe alphabet; files are written by
:func:`primitives.keyfile.save_key` with mode 0600.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from primitives.crypto import KeyFileError, PrivateKey, format_address
from primitives.keyfile import load_key, save_key

KEYRING_ENV = "CLEARCHAIN_KEYRING"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeyringError(Exception):
    """A keyring operation that cannot be done; the message says why."""


def valid_key_name(name: str) -> bool:
    """Key names are file names: 1-64 letters, digits, '_', '.' or '-', not starting with a symbol."""
    return _NAME.match(name) is not None


def default_keyring_dir() -> Path:
    return Path(os.environ.get(KEYRING_ENV) or Path.home() / ".clearchain" / "keys")


@dataclass(frozen=True)
class KeyEntry:
    name: str
    address: str
    public_key_hex: str
    path: Path


class Keyring:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_keyring_dir()

    def path_of(self, name: str) -> Path:
        if not valid_key_name(name):
            raise KeyringError(
                f"invalid key name {name!r}: use 1-64 letters, digits, '_', '.' or '-'"
            )
        return self.directory / f"{name}.json"

    def create(self, name: str) -> KeyEntry:
        path = self.path_of(name)
        if path.exists():
            raise KeyringError(f"a key named {name!r} already exists at {path}")
        key = PrivateKey.generate()
        save_key(key, path, name=name)
        return self._entry(name, key, path)

    def load(self, name: str) -> PrivateKey:
        path = self.path_of(name)
        if not path.exists():
            raise KeyringError(f"no key named {name!r} in {self.directory} (see: clearchain keys list)")
        try:
            return load_key(path)
        except KeyFileError as exc:
            raise KeyringError(str(exc)) from exc

    def show(self, name: str) -> KeyEntry:
        return self._entry(name, self.load(name), self.path_of(name))

    def list(self) -> list[KeyEntry]:
        if not self.directory.is_dir():
            return []
        entries = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                entries.append(self._entry(path.stem, load_key(path), path))
            except KeyFileError:
                continue  # not a key file of ours; `keys show` on it explains why
        return entries

    @staticmethod
    def _entry(name: str, key: PrivateKey, path: Path) -> KeyEntry:
        return KeyEntry(name, format_address(key.address), key.public_key.hex(), path)
