"""Ed25519 keys, domain-separated sign bytes, the one signature verifier, and addresses.

Signing and verification go through libsodium (PyNaCl): it verifies about 2.5x faster than
OpenSSL on this machine (DESIGN.md section 10), and every node must accept exactly the same
signatures, so :func:`verify` is the only verifier any layer may call.
"""

from __future__ import annotations

import base64
import json
import logging
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

from consensus.bech32 import Bech32Error, bech32_decode, bech32_encode
from consensus.codec import encode
from consensus.durable import replace_file
from consensus.hashing import sha256

ADDRESS_PREFIX = "clr"
ADDRESS_SIZE = 20
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_TYPE = "ed25519"

log = logging.getLogger(__name__)


class KeyFileError(ValueError):
    """A key file or key material that cannot be used."""


class AddressError(ValueError):
    """A string that is not a valid clearchain address."""


def sign_bytes(type_tag: str, chain_id: str, body: Any) -> bytes:
    """Bytes to sign for a message: a type tag and the chain id bind the body to one use.

    A vote can never be replayed as a transaction, nor a testnet tx on another chain.
    """
    return encode([type_tag, chain_id, body])


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


# --- key files -----------------------------------------------------------------------------


def save_key(key: PrivateKey, path: Path, name: str = "") -> None:
    """Write a key file readable by the owner only (mode 0600), atomically.

    Refuses to overwrite an existing file: losing a validator key is not recoverable.
    """
    path = Path(path)
    if path.exists():
        raise KeyFileError(f"refusing to overwrite existing key file {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "name": name,
        "type": KEY_TYPE,
        "address": format_address(key.address),
        "pub_key": base64.b64encode(key.public_key).decode(),
        "priv_key": base64.b64encode(key.seed).decode(),
    }
    replace_file(path, (json.dumps(document, indent=2) + "\n").encode(), mode=0o600)


def load_key(path: Path) -> PrivateKey:
    """Read a key file; warn loudly when group or others can read it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        document = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "PRIVATE KEY FILE %s IS ACCESSIBLE BY OTHER USERS (mode %o); run: chmod 600 %s",
            path, stat.S_IMODE(mode), path,
        )
    if not isinstance(document, dict) or document.get("type") != KEY_TYPE:
        raise KeyFileError(f"key file {path}: type must be {KEY_TYPE!r}")
    try:
        seed = base64.b64decode(document["priv_key"], validate=True)
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyFileError(f"key file {path}: priv_key is missing or not base64") from exc
    key = PrivateKey(seed)
    stated = document.get("pub_key")
    if stated is not None and stated != base64.b64encode(key.public_key).decode():
        raise KeyFileError(f"key file {path}: pub_key does not match priv_key")
    return key
