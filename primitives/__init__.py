"""The shared primitives every layer uses: the one canonical encoding (``codec``), hashing and
Merkle roots (``hashing``), Ed25519 keys, sign bytes and addresses (``crypto``, ``bech32``),
key files (``keyfile``) and atomic file replacement (``durable``).

They sit below ``consensus``, ``state``, ``rpc`` and ``node`` and import none of them, so the
state machine and the RPC layer can use them without reaching into the consensus package.
"""
