"""Named errors of the authenticated store: each says what was asked and why it cannot be served."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class PrunedVersionError(StoreError):
    """A read or proof asked for a version older than the oldest one still kept."""

    def __init__(self, version: int, oldest: int, latest: int, keep: int) -> None:
        self.version = version
        self.oldest = oldest
        self.latest = latest
        super().__init__(
            f"state version {version} has been pruned: this store keeps the last {keep} "
            f"versions ({oldest}..{latest})"
        )


class UnknownVersionError(StoreError):
    """A read or proof asked for a version that was never committed (negative or in the future)."""

    def __init__(self, version: int, latest: int) -> None:
        self.version = version
        self.latest = latest
        super().__init__(f"state version {version} does not exist (latest committed is {latest})")


class StoreCorruptionError(StoreError):
    """A record the tree refers to is missing or malformed: the database is damaged."""
