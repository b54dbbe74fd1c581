"""The ``clearchain`` command line.

Each command group lives in the module that owns its subject; this file only assembles them,
so adding a command never means editing someone else's module.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

import click

from node import __version__

# Modules exporting a click command or group named ``command``; a module not yet written is
# skipped, while any error inside an existing module is raised (never hidden).
COMMAND_MODULES = (
    "node.cli_keys",
    "node.cli_init",
    "node.cli_genesis",
    "node.cli_start",
    "node.testnet",
    "rpc.cli_tx",
    "rpc.cli_query",
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
      clearchain query status --node URL           read the chain
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _register_commands() -> None:
    for module_name in COMMAND_MODULES:
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        main.add_command(module.command)


_register_commands()

if __name__ == "__main__":
    main()
