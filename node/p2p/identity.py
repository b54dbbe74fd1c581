"""The node's p2p identity: the Ed25519 seed of ``node_key.json`` as a libp2p key pair.

The peer id (``12D3KooW...``) is derived from the public key, so it is stable across restarts
and can be written into other nodes' ``persistent_peers`` before this node ever runs.
"""

from __future__ import annotations

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from primitives.crypto import PrivateKey


def libp2p_keypair(key: PrivateKey) -> KeyPair:
    return create_new_key_pair(key.seed)


def peer_id_of(key: PrivateKey) -> ID:
    return ID.from_pubkey(libp2p_keypair(key).public_key)


def peer_multiaddr(key: PrivateKey, host: str, port: int) -> str:
    """The address other nodes put in ``persistent_peers`` to reach this node."""
    return f"/ip4/{host}/tcp/{port}/p2p/{peer_id_of(key).to_base58()}"
