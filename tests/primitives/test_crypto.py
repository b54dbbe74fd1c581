"""Ed25519 through the project's one verifier, sign bytes, addresses and key files."""

import json
import logging
import os
import stat

import pytest

from primitives.bech32 import Bech32Error, bech32_decode, bech32_encode
from primitives.crypto import (
    AddressError,
    KeyFileError,
    PrivateKey,
    Signer,
    address_of,
    format_address,
    parse_address,
    sign_bytes,
    verify,
)
from primitives.keyfile import load_key, save_key

# RFC 8032 section 7.1, tests 1-3: (secret key, public key, message, signature)
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def _flip_bit(data: bytes, bit: int) -> bytes:
    mutable = bytearray(data)
    mutable[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutable)


@pytest.mark.parametrize("secret,public,message,signature", RFC8032_VECTORS)
def test_rfc8032_vectors(secret: str, public: str, message: str, signature: str) -> None:
    key = PrivateKey(bytes.fromhex(secret))
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert key.public_key == pub
    assert key.sign(msg) == sig
    assert Signer(key).sign(msg) == sig
    assert verify(pub, msg, sig)


@pytest.mark.parametrize("secret,public,message,signature", RFC8032_VECTORS)
def test_rfc8032_any_flipped_bit_fails(secret: str, public: str, message: str, signature: str) -> None:
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    for bit in range(0, len(sig) * 8, 7):
        assert not verify(pub, msg, _flip_bit(sig, bit))
    for bit in range(0, len(pub) * 8, 5):
        assert not verify(_flip_bit(pub, bit), msg, sig)
    for bit in range(len(msg) * 8):
        assert not verify(pub, _flip_bit(msg, bit), sig)
    assert not verify(pub, msg + b"\x00", sig)


def test_verify_rejects_wrong_lengths_without_raising() -> None:
    key = PrivateKey.generate()
    sig = key.sign(b"m")
    assert not verify(key.public_key[:31], b"m", sig)
    assert not verify(key.public_key, b"m", sig[:63])
    assert not verify(b"", b"m", b"")


def test_sign_bytes_are_domain_separated() -> None:
    body = {"amount": 5}
    assert sign_bytes("tx", "chain-a", body) != sign_bytes("tx", "chain-b", body)
    assert sign_bytes("tx", "chain-a", body) != sign_bytes("vote", "chain-a", body)
    key = PrivateKey.generate()
    sig = key.sign(sign_bytes("tx", "chain-a", body))
    assert not verify(key.public_key, sign_bytes("tx", "chain-b", body), sig)


def test_address_round_trip_and_checksum() -> None:
    key = PrivateKey.generate()
    address = key.address
    assert address == address_of(key.public_key) and len(address) == 20
    text = format_address(address)
    assert text.startswith("clr1")
    assert parse_address(text) == address
    assert parse_address(text.upper()) == address
    corrupted = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(AddressError, match="checksum"):
        parse_address(corrupted)
    with pytest.raises(AddressError, match="prefix"):
        parse_address(bech32_encode("cosmos", address))
    with pytest.raises(AddressError):
        parse_address(bech32_encode("clr", address[:19]))


def test_bech32_bip173_valid_and_invalid_strings() -> None:
    assert bech32_decode("a12uel5l", "a") == b""
    with pytest.raises(Bech32Error):
        bech32_decode("A1G7SGD8", "a")  # BIP 173: checksum calculated with uppercase HRP
    with pytest.raises(Bech32Error):
        bech32_decode("a12UEL5L", "a")  # mixed case


def test_key_file_is_private_and_round_trips(tmp_path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "keys" / "alice.json"
    save_key(key, path, name="alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == key
    document = json.loads(path.read_text())
    assert document["address"] == format_address(key.address)
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        save_key(PrivateKey.generate(), path)
    assert load_key(path) == key


def test_loading_a_readable_key_warns_loudly(tmp_path, caplog) -> None:
    path = tmp_path / "k.json"
    save_key(PrivateKey.generate(), path)
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        load_key(path)
    assert "ACCESSIBLE BY OTHER USERS" in caplog.text


def test_corrupt_key_files_fail_clearly(tmp_path) -> None:
    path = tmp_path / "k.json"
    path.write_text("{not json")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key(path)
    path.write_text(json.dumps({"type": "secp256k1", "priv_key": "AA=="}))
    with pytest.raises(KeyFileError, match="type"):
        load_key(path)
    other = PrivateKey.generate()
    save_key(PrivateKey.generate(), tmp_path / "m.json")
    document = json.loads((tmp_path / "m.json").read_text())
    import base64

    document["pub_key"] = base64.b64encode(other.public_key).decode()
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="does not match"):
        load_key(path)
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "missing.json")


def test_sign_bytes_of_an_encoded_body_are_the_sign_bytes_of_that_body() -> None:
    from primitives.crypto import sign_bytes_of_encoded

    for tag, chain, body in [("clearchain/tx", "c", b""), ("t", "chain-1", b"x" * 300), ("t", "c", b"y" * 70_000)]:
        assert sign_bytes_of_encoded(tag, chain, body) == sign_bytes(tag, chain, body)
        assert sign_bytes_of_encoded(tag, chain, body) == sign_bytes(tag, chain, body)  # cached prefix
