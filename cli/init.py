"""``clearchain init``: create a node home (config, keys, genesis); see :mod:`node.init`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from primitives.crypto import format_address
from node.home import Home
from node.init import InitError, init_home
from node.p2p.identity import peer_id_of
from state.genesis import GenesisError, load_genesis


@click.command("init")
@click.option("--home", "home_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to create the node home in (config/ and data/).")
@click.option("--chain-id", default=None, help="Override the genesis chain id.")
@click.option("--moniker", default=None, help="Human name of this node (default: the home's name).")
@click.option("--genesis", "genesis_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Use this genesis file as is (default: the repository's genesis.json with "
                   "this node as the single validator).")
def command(home_dir: str, chain_id: str | None, moniker: str | None, genesis_file: str | None) -> None:
    """Create a node home: config.toml, node and validator keys (mode 0600), genesis.

    \b
    Refuses to touch a home that already holds keys or config, so a validator key is never lost:
      clearchain init --home ~/.clearchain --moniker val0
      clearchain start --home ~/.clearchain
    """
    home = Home.at(home_dir)
    try:
        genesis = load_genesis(Path(genesis_file)).to_dict() if genesis_file else None
        result = init_home(home, moniker=moniker, chain_id=chain_id, genesis=genesis)
    except (InitError, GenesisError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"initialised node home {home.root}")
    click.echo(f"  chain id:          {result.genesis.get('chain_id')}")
    click.echo(f"  node id (libp2p):  {peer_id_of(result.node_key).to_base58()}")
    click.echo(f"  validator address: {format_address(result.validator_key.address)}")
    click.echo(f"  config:            {home.config_file}")
    click.echo(f"  genesis:           {home.genesis_file}")
