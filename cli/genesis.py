"""``clearchain genesis``: check a genesis file before any node uses it."""

from __future__ import annotations

from pathlib import Path

import click

from state.genesis import GenesisError, load_genesis

REPO_GENESIS = Path(__file__).resolve().parent.parent / "genesis.json"


@click.group("genesis")
def command() -> None:
    """Inspect and validate genesis files."""


@command.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=REPO_GENESIS)
def validate(path: Path) -> None:
    """Validate every field of the genesis file PATH (default: the repo's genesis.json).

    Exits non-zero with a message naming the first bad field and the reason.
    """
    try:
        genesis = load_genesis(path)
    except GenesisError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    markets = ", ".join(m.id for m in genesis.app_state.markets)
    click.echo(
        f"{path}: valid genesis for chain {genesis.chain_id}: "
        f"{len(genesis.validators)} validators, markets {markets}"
    )
