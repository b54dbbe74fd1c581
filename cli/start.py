"""``clearchain start``: run a node from its home until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import click
import trio

from node.chain import ChainHalted
from node.config import LOG_LEVELS, ConfigError
from node.home import Home, HomeError
from node.logs import setup_logging
from node.storage_failure import EXIT_STORAGE_FAILURE, StorageFailure

log = logging.getLogger("clearchain.node")

EXIT_HALTED = 2
"""The chain halted (a consensus failure, an unusable store): a restart halts again."""


async def run_until_signal(home: Home) -> None:
    from node.node import Node

    node = Node(home)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    log.info("received %s: stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(watch)
            await node.run()
            nursery.cancel_scope.cancel()
    log.info("node stopped cleanly")


@click.command("start")
@click.option("--home", "home_dir", required=True, type=click.Path(file_okay=False),
              help="The node home created by `clearchain init`.")
@click.option("--log-level", default=None, type=click.Choice(list(LOG_LEVELS)),
              help="Override node.log_level of config.toml (debug: every consensus step, timeout and "
                   "proposal arrival; trace: py-libp2p's debug logs too).")
def command(home_dir: str, log_level: str | None) -> None:
    """Run a node: p2p, block sync, consensus, mempool and RPC until SIGINT/SIGTERM.

    \b
    Reads HOME/config/config.toml and HOME/config/genesis.json, opens HOME/data, replays the
    consensus WAL and joins the network. A second node on the same home refuses to start.
      clearchain start --home ~/.clearchain

    \b
    Exit status: 0 stopped by a signal; 1 a home or config error; 2 the chain halted (a
    consensus failure); 74 a write to HOME/data failed (disk full: free space and restart).
    """
    from node.config import load_config

    home = Home.at(home_dir)
    try:
        home.check_initialised()
        config = load_config(home.config_file)
    except (HomeError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    setup_logging(log_level or config.node.log_level, config.node.moniker)
    try:
        trio.run(run_until_signal, home)
    except HomeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except StorageFailure as exc:
        log.critical("%s", exc)
        sys.exit(EXIT_STORAGE_FAILURE)
    except ChainHalted as exc:
        log.critical("%s", exc)
        sys.exit(EXIT_HALTED)
    except BaseExceptionGroup as group:
        failed = _first(group, StorageFailure)
        if failed is not None:  # a write failed (a full disk): free space or mend, restart
            log.critical("%s", failed)
            sys.exit(EXIT_STORAGE_FAILURE)
        halted, home_error = _first(group, ChainHalted), _first(group, HomeError)
        if halted is not None:
            log.critical("%s", halted)
            sys.exit(EXIT_HALTED)
        if home_error is not None:
            click.echo(f"error: {home_error}", err=True)
            sys.exit(1)
        from state.store import StoreError

        store_error = _first(group, StoreError)
        if store_error is not None:
            log.critical("the store in %s is unusable: %s", home.data_dir, store_error)
            sys.exit(EXIT_HALTED)
        raise


def _first(group: BaseExceptionGroup, kind: type[BaseException]) -> BaseException | None:
    """The first leaf exception of ``kind`` inside nested exception groups."""
    for exc in group.exceptions:
        if isinstance(exc, kind):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first(exc, kind)
            if found is not None:
                return found
    return None
