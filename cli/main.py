"""The ``clearchain`` command line: one group, and the table of its commands.

Each command lives in the module of this package named after it; :data:`COMMANDS` lists them
all with plain imports, so a command that fails to import fails the whole CLI loudly.
"""

from __future__ import annotations

import logging

import click

from cli import genesis, init, keys, light, query, start, status, testnet, tx
from node import __version__

COMMANDS: tuple[click.Command, ...] = (
    keys.command,
    init.command,
    genesis.command,
    start.command,
    testnet.command,
    tx.command,
    query.command,
    status.command,
    light.command,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="clearchain")
def main() -> None:
    """clearchain: a BFT blockchain node that clears perpetual futures.

    \b
    Typical use:
      clearchain keys new alice                    create a signing key
      clearchain init --home ~/.clearchain         create a node home
      clearchain start --home ~/.clearchain        run a validator
      clearchain testnet --validators 4 --demo     run a local testnet with demo load
      clearchain status --node URL                 sync progress: %, ETA
      clearchain query markets --node URL          read the chain (tables; -o json)
      clearchain light --node URL --trusted-height H --trusted-hash X   verify it
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
