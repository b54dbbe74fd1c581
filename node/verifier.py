"""The one signature verifier, with a memory of successes.

The shell checks a peer's vote or proposal signature to decide whether to drop the peer, and
the core checks the same signature again; commits carry the precommits already seen as votes.
With this cache in front of :func:`primitives.crypto.verify`, libsodium runs once per signature.
Only successes are cached, keyed by (public key, signature, message): a hit is the same check.
"""

from __future__ import annotations

from collections import OrderedDict

from primitives.crypto import verify


class CachedVerifier:
    def __init__(self, size: int = 50_000) -> None:
        self._good: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()
        self._size = size

    def __call__(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, signature, message)
        if key in self._good:
            return True
        if not verify(public_key, message, signature):
            return False
        self._good[key] = None
        if len(self._good) > self._size:
            self._good.popitem(last=False)
        return True
