"""``clearchain keys``: create and inspect signing keys in the local keyring."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from cli.keyring import KEYRING_ENV, Keyring, KeyringError

keyring_option = click.option(
    "--keyring-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Directory of key files (default: ${KEYRING_ENV} or ~/.clearchain/keys).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _print(entries, as_json: bool) -> None:
    if as_json:
        documents = [{**asdict(e), "path": str(e.path)} for e in entries]
        click.echo(json.dumps(documents if len(documents) != 1 else documents[0], indent=2))
        return
    for entry in entries:
        click.echo(f"{entry.name:<16} {entry.address}  pub {entry.public_key_hex}")


@click.group("keys")
def command() -> None:
    """Create, list and show Ed25519 signing keys (files with mode 0600)."""


@command.command("new")
@click.argument("name")
@keyring_option
@json_option
def new(name: str, keyring_dir: Path | None, as_json: bool) -> None:
    """Create a new key called NAME. Never overwrites an existing key."""
    try:
        entry = Keyring(keyring_dir).create(name)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from exc
    _print([entry], as_json)
    if not as_json:
        click.echo(f"saved to {entry.path} (mode 0600); back it up: it cannot be recovered")


@command.command("list")
@keyring_option
@json_option
def list_keys(keyring_dir: Path | None, as_json: bool) -> None:
    """List the keys in the keyring with their addresses."""
    entries = Keyring(keyring_dir).list()
    if as_json:
        click.echo(json.dumps([{**asdict(e), "path": str(e.path)} for e in entries], indent=2))
    elif not entries:
        click.echo(f"no keys in {Keyring(keyring_dir).directory} (create one: clearchain keys new NAME)")
    else:
        _print(entries, False)


@command.command("show")
@click.argument("name")
@keyring_option
@json_option
@click.option("--address", "address_only", is_flag=True, help="Print the address alone (for scripts).")
def show(name: str, keyring_dir: Path | None, as_json: bool, address_only: bool) -> None:
    """Show the address and public key of key NAME."""
    try:
        entry = Keyring(keyring_dir).show(name)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from exc
    if address_only:
        click.echo(entry.address)
        return
    _print([entry], as_json)
