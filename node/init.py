"""Creating a node home: config, node and validator keys, genesis (``clearchain init``).

As with CometBFT, a fresh home is a runnable single-validator chain: unless ``--genesis`` is
given, the genesis is the repository's default one with this node's validator key added as the
only validator. The testnet command builds on :func:`init_home` and then rewrites the genesis
with every validator (:func:`write_genesis`; entries by :func:`state.genesis.validator_entry`) and the peers (:func:`node.config.replace`).

Keys are never overwritten: ``init`` on an existing home keeps the first keys and fails.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from primitives.crypto import PrivateKey
from primitives.keyfile import save_key
from node.config import Config, ConfigError, replace, save_config
from node.home import Home
from state.genesis import GenesisError, load_genesis, parse_genesis, validator_entry

DEFAULT_VALIDATOR_POWER = 10


class InitError(RuntimeError):
    """A home that cannot be initialised (already initialised, bad genesis, ...)."""


def default_genesis_path() -> Path:
    """The repository's ``genesis.json`` (or the copy shipped inside the package)."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "genesis.json", package_dir / "default_genesis.json"):
        if candidate.exists():
            return candidate
    raise InitError("no default genesis.json found; pass --genesis FILE")


def validate_genesis(document: dict[str, Any]) -> None:
    """Every field checked by the state machine's loader; the error names the field."""
    try:
        parse_genesis(document)
    except GenesisError as exc:
        raise InitError(f"invalid genesis: {exc}") from exc


def write_genesis(home: Home, document: dict[str, Any]) -> None:
    validate_genesis(document)
    home.config_dir.mkdir(parents=True, exist_ok=True)
    temporary = home.genesis_file.with_name(home.genesis_file.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, home.genesis_file)


@dataclass(frozen=True)
class InitResult:
    home: Home
    node_key: PrivateKey
    validator_key: PrivateKey
    genesis: dict[str, Any]


def init_home(
    home: Home,
    *,
    moniker: str | None = None,
    chain_id: str | None = None,
    genesis: dict[str, Any] | None = None,
    add_self_as_validator: bool | None = None,
    config: Config | None = None,
) -> InitResult:
    """Create config, node key, validator key and genesis in ``home``; never overwrite keys.

    ``genesis`` None means the default genesis with this node as the single validator;
    a given genesis is used as is (``add_self_as_validator`` forces either behaviour).
    """
    existing = [path for path in (*home.key_files(), home.config_file, home.genesis_file)
                if path.exists()]
    if existing:
        raise InitError(
            f"{home.root} is already initialised ({existing[0]} exists); keeping the existing "
            "keys and files. Use another --home, or delete the directory to start over "
            "(deleting a validator key is irreversible)."
        )
    if genesis is None:
        try:
            document = load_genesis(default_genesis_path()).to_dict()
        except GenesisError as exc:
            raise InitError(f"invalid default genesis: {exc}") from exc
        add_self = True if add_self_as_validator is None else add_self_as_validator
    else:
        document = json.loads(json.dumps(genesis))  # a private copy
        add_self = bool(add_self_as_validator)
    if chain_id is not None:
        if not chain_id.strip():
            raise InitError("--chain-id must not be empty")
        document["chain_id"] = chain_id
    moniker = moniker or home.root.name or "node"
    config = config or Config()
    try:
        config = replace(config, node={"moniker": moniker})
    except ConfigError as exc:
        raise InitError(str(exc)) from exc

    node_key = PrivateKey.generate()
    validator_key = PrivateKey.generate()
    if add_self:
        document["validators"] = [validator_entry(moniker, validator_key.public_key, DEFAULT_VALIDATOR_POWER)]
    validate_genesis(document)

    home.root.mkdir(parents=True, exist_ok=True)
    home.data_dir.mkdir(parents=True, exist_ok=True)
    save_key(node_key, home.node_key_file, name=f"{moniker} node key")
    save_key(validator_key, home.validator_key_file, name=f"{moniker} validator key")
    save_config(config, home.config_file)
    write_genesis(home, document)
    return InitResult(home, node_key, validator_key, document)
