"""Ed25519 keys, domain-separated sign bytes, the one signature verifier, and addresses.

Signing and verification go through libsodium (PyNaCl): it verifies about 2.5x faster than
OpenSSL on this machine (docs/architecture.md), and every node must accept exactly the same
signatures, so :func:`verify` is the only verifier any layer may call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.exceptions
import nacl.signing

from primitives.bech32 import Bech32Error, bech32_decode, bech32_encode
from primitives.codec import encode
from primitives.hashing import sha256

ADDRESS_PREFIX = "clr"
ADDRESS_SIZE = 20
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_TYPE = "ed25519"


class KeyFileError(ValueError):
    """A key file or key material that cannot be used."""


class AddressError(ValueError):
    """A string that is not a valid clearchain address."""


def sign_bytes(type_tag: str, chain_id: str, body: Any) -> bytes:
    """Bytes to sign for a message: a type tag and the chain id bind the body to one use.

    A vote can never be replayed as a transaction, nor a testnet tx on another chain.
    """
    return encode([type_tag, chain_id, body])


_SIGN_PREFIXES: dict[tuple[str, str], bytes] = {}


def sign_bytes_of_encoded(type_tag: str, chain_id: str, body_bytes: bytes) -> bytes:
    """``sign_bytes(type_tag, chain_id, body_bytes)`` for a body already encoded to bytes, fast:
    the encoding of ``[type_tag, chain_id, <bin>]`` up to the bin's header is computed once per
    (tag, chain) and the bin appended (what signed txs and orders cover, per tx and per order)."""
    prefix = _SIGN_PREFIXES.get((type_tag, chain_id))
    if prefix is None:
        prefix = sign_bytes(type_tag, chain_id, b"")[:-2]  # drop the empty bin's 2-byte header
        if len(_SIGN_PREFIXES) < 64:
            _SIGN_PREFIXES[(type_tag, chain_id)] = prefix
    return prefix + msgpack.packb(body_bytes, use_bin_type=True)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.signing.VerifyKey(bytes(public_key)).verify(bytes(message), bytes(signature))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True


def address_of(public_key: bytes) -> bytes:
    """The 20-byte account address: the first 20 bytes of SHA-256 of the public key."""
    return sha256(bytes(public_key))[:ADDRESS_SIZE]


def format_address(address: bytes) -> str:
    """Human-readable bech32 form with prefix ``clr`` and a checksum."""
    if len(address) != ADDRESS_SIZE:
        raise AddressError(f"address must be {ADDRESS_SIZE} bytes, got {len(address)}")
    return bech32_encode(ADDRESS_PREFIX, address)


def parse_address(text: str) -> bytes:
    try:
        address = bech32_decode(text, ADDRESS_PREFIX)
    except Bech32Error as exc:
        raise AddressError(f"invalid address {text!r}: {exc}") from exc
    if len(address) != ADDRESS_SIZE:
        raise AddressError(f"invalid address {text!r}: {len(address)} bytes, expected {ADDRESS_SIZE}")
    return address


@dataclass(frozen=True)
class PrivateKey:
    """An Ed25519 signing key (the 32-byte seed)."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise KeyFileError("an Ed25519 seed is 32 bytes")

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def _signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self._signing_key.verify_key)

    @property
    def address(self) -> bytes:
        return address_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message).signature

    def __repr__(self) -> str:  # never print secret material
        return f"PrivateKey(address={format_address(self.address)})"


class Signer:
    """A private key with its derived public key and address cached (signing hot paths)."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self._signing_key = nacl.signing.SigningKey(key.seed)
        self.public_key = bytes(self._signing_key.verify_key)
        self.address = address_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message).signature
