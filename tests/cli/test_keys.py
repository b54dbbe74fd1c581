"""``clearchain keys`` through the real CLI entry point."""

import json
import stat

from click.testing import CliRunner

from primitives.crypto import parse_address
from cli.main import main


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_and_version() -> None:
    result = run("--help")
    assert result.exit_code == 0 and "keys" in result.output
    assert run("--version").output.strip().endswith("0.1.0")
    for sub in ("new", "list", "show"):
        help_text = run("keys", sub, "--help").output
        assert "--keyring-dir" in help_text


def test_new_list_show(tmp_path) -> None:
    ring = str(tmp_path / "ring")
    created = run("keys", "new", "alice", "--keyring-dir", ring, "--json")
    assert created.exit_code == 0
    alice = json.loads(created.output)
    assert parse_address(alice["address"])
    assert stat.S_IMODE((tmp_path / "ring" / "alice.json").stat().st_mode) == 0o600
    run("keys", "new", "bob", "--keyring-dir", ring)
    listed = json.loads(run("keys", "list", "--keyring-dir", ring, "--json").output)
    assert [entry["name"] for entry in listed] == ["alice", "bob"]
    shown = json.loads(run("keys", "show", "alice", "--keyring-dir", ring, "--json").output)
    assert shown["address"] == alice["address"]
    assert run("keys", "show", "alice", "--keyring-dir", ring, "--address").output == alice["address"] + "\n"


def test_existing_key_is_never_overwritten(tmp_path) -> None:
    ring = str(tmp_path)
    first = json.loads(run("keys", "new", "alice", "--keyring-dir", ring, "--json").output)
    again = run("keys", "new", "alice", "--keyring-dir", ring)
    assert again.exit_code != 0 and "already exists" in again.output
    shown = json.loads(run("keys", "show", "alice", "--keyring-dir", ring, "--json").output)
    assert shown["address"] == first["address"]


def test_bad_names_and_missing_keys_fail_clearly(tmp_path) -> None:
    ring = str(tmp_path)
    bad = run("keys", "new", "../evil", "--keyring-dir", ring)
    assert bad.exit_code != 0 and "invalid key name" in bad.output
    missing = run("keys", "show", "nobody", "--keyring-dir", ring)
    assert missing.exit_code != 0 and "no key named 'nobody'" in missing.output
    empty = run("keys", "list", "--keyring-dir", str(tmp_path / "none"))
    assert empty.exit_code == 0 and "no keys" in empty.output
