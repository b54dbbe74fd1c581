"""Proofs: existence and absence verify; any tampering with proof, value, key or root fails."""

from __future__ import annotations

import ast
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives import codec
from state.kv import EMPTY_ROOT
from state.store import MemoryDB, MerkleStore, decode_proof, encode_proof, verify_proof


@pytest.fixture(scope="module")
def populated() -> tuple[MerkleStore, dict[bytes, bytes], bytes]:
    store = MerkleStore(MemoryDB())
    contents = {b"acct/%d" % i: b"balance-%d" % (i * 7) for i in range(3000)}
    for key, value in contents.items():
        store.set(key, value)
    return store, contents, store.commit()


def test_existence_proofs_verify_and_reject_wrong_values(populated):
    store, contents, root = populated
    for key in list(contents)[:200]:
        proof = decode_proof(encode_proof(store.prove(key)))
        assert verify_proof(root, key, contents[key], proof)
        assert not verify_proof(root, key, contents[key] + b"0", proof)
        assert not verify_proof(root, key, None, proof)
        assert not verify_proof(root, key + b"x", contents[key], proof)
        assert not verify_proof(EMPTY_ROOT, key, contents[key], proof)


def test_absence_proofs_verify_and_cannot_hide_a_present_key(populated):
    store, contents, root = populated
    kinds = set()
    for i in range(300):
        key = b"missing/%d" % i
        proof = store.prove(key)
        kinds.add(proof[1] is None)
        assert verify_proof(root, key, None, proof)
        assert not verify_proof(root, key, b"anything", proof)
    assert kinds == {True, False}  # both an empty slot and another key's leaf were exercised
    # An absence proof for a missing key says nothing about a present key on the same path.
    present = next(iter(contents))
    assert not verify_proof(root, present, None, store.prove(b"missing/0"))


def test_every_single_byte_tampering_fails(populated):
    store, contents, root = populated
    key = b"acct/42"
    proof = store.prove(key)
    for level, (bitmap, siblings) in enumerate(proof[0]):
        for index in range(len(siblings)):
            forged = [list(node) for node in proof[0]]
            forged[level] = [bitmap, list(siblings)]
            forged[level][1][index] = bytes([siblings[index][0] ^ 1]) + siblings[index][1:]
            assert not verify_proof(root, key, contents[key], [forged, None])
        width = len(bitmap)
        for bit in range(8 * width):
            forged = [list(node) for node in proof[0]]
            flipped = (int.from_bytes(bitmap, "big") ^ (1 << bit)).to_bytes(width, "big")
            forged[level] = [flipped, siblings]
            assert not verify_proof(root, key, contents[key], [forged, None])
    assert not verify_proof(root, key, contents[key], [proof[0][1:], None])
    assert not verify_proof(root, key, contents[key], [proof[0][:-1], None])
    flipped_root = bytes([root[0] ^ 0x80]) + root[1:]
    assert not verify_proof(flipped_root, key, contents[key], proof)


def test_tampered_absence_leaf_fails(populated):
    store, _, root = populated
    for i in range(300):
        key = b"missing/%d" % i
        nodes, leaf = store.prove(key)
        if leaf is not None:
            break
    other_hk, other_vh = leaf
    assert not verify_proof(root, key, None, [nodes, [other_hk, bytes(32)]])
    assert not verify_proof(root, key, None, [nodes, None])
    assert not verify_proof(root, key, None, [nodes, [other_vh, other_hk]])


def test_proofs_at_old_versions():
    store = MerkleStore(MemoryDB())
    store.set(b"k", b"old")
    old_root = store.commit()
    store.set(b"k", b"new")
    store.set(b"j", b"1")
    new_root = store.commit()
    assert verify_proof(old_root, b"k", b"old", store.prove(b"k", version=0))
    assert verify_proof(old_root, b"j", None, store.prove(b"j", version=0))
    assert verify_proof(new_root, b"k", b"new", store.prove(b"k"))
    assert not verify_proof(new_root, b"k", b"old", store.prove(b"k", version=0))


def test_empty_and_single_key_trees():
    store = MerkleStore(MemoryDB())
    root = store.commit()
    assert verify_proof(root, b"a", None, store.prove(b"a"))
    store.set(b"a", b"1")
    root = store.commit()
    assert store.prove(b"a") == [[], None]
    assert verify_proof(root, b"a", b"1", store.prove(b"a"))
    assert verify_proof(root, b"b", None, store.prove(b"b"))
    assert not verify_proof(root, b"a", None, store.prove(b"b"))


junk = st.recursive(
    st.none() | st.integers(-(2**70), 2**70) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(proof=junk, value=st.none() | st.binary(max_size=4))
def test_garbage_never_raises_and_never_verifies(proof, value):
    assert verify_proof(bytes(32), b"k", value, proof) is False


def test_verifier_imports_nothing_from_the_store():
    source = pathlib.Path(__file__).parents[3] / "state" / "store" / "proof.py"
    tree = ast.parse(source.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "hashlib", "typing", "primitives", "primitives.codec"}


def test_proof_bytes_are_canonical(populated):
    store, _, _ = populated
    data = encode_proof(store.prove(b"acct/1"))
    assert codec.encode(codec.decode(data)) == data
