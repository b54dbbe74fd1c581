"""Config validation, the home lock, and ``clearchain init``."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from primitives.keyfile import load_key
from cli.main import main
from node.config import Config, ConfigError, from_dict, load_config, replace, save_config, to_dict
from node.home import Home, HomeLockedError



def test_config_round_trips_through_toml(tmp_path: Path) -> None:
    config = replace(Config(), node={"moniker": "val3"},
                     p2p={"persistent_peers": ("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",)})
    save_config(config, tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == config


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"p2p": {"max_frame_bytes": 10}}, "p2p.max_frame_bytes must be at least 1024"),
        ({"p2p": {"persistent_peers": ["/ip4/1.2.3.4/tcp/5"]}}, "p2p.persistent_peers[0] must end with /p2p/"),
        ({"p2p": {"listen_address": "nonsense"}}, "p2p.listen_address is not a valid multiaddr"),
        ({"rpc": {"unsafe": 1}}, "rpc.unsafe must be true or false"),
        ({"rpc": {"listen_address": "localhost"}}, "rpc.listen_address must be host:port"),
        ({"rpc": {"max_open_connections": 0}}, "rpc.max_open_connections must be an integer of at least 1"),
        ({"rpc": {"max_tx_bytes": 5}}, "unknown setting rpc.max_tx_bytes"),
        ({"mempool": {"max_txs": True}}, "mempool.max_txs must be an integer"),
        ({"mempool": {"max_txs": 0}}, "mempool.max_txs must be at least 1"),
        ({"node": {"log_level": "loud"}}, "node.log_level must be one of"),
        ({"node": {"colour": "red"}}, "unknown setting node.colour"),
        ({"wallet": {}}, "unknown section [wallet]"),
        ({"consensus": {"timeout_commit_ms": -1}}, "consensus.timeout_commit_ms must not be negative"),
    ],
)
def test_bad_config_names_the_field(document: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(document)
    assert message in str(info.value)


def test_defaults_are_valid_and_rpc_is_local_and_safe() -> None:
    config = from_dict(to_dict(Config()))
    assert config.rpc.listen_address.startswith("127.0.0.1:")
    assert config.rpc.unsafe is False


def test_rpc_limits_are_read_from_config_toml_under_their_own_names(tmp_path: Path) -> None:
    config = replace(Config(), rpc={"max_open_connections": 7, "websocket_pong_timeout_ms": 500})
    save_config(config, tmp_path / "config.toml")
    text = (tmp_path / "config.toml").read_text()
    assert "max_open_connections = 7" in text and "max_commit_waiters = 100" in text
    loaded = load_config(tmp_path / "config.toml")
    assert loaded.rpc.limits.max_open_connections == 7
    assert loaded.rpc.limits.websocket_pong_timeout_ms == 500
    assert loaded == config


def _hold_lock(path: str, ready, release) -> None:  # type: ignore[no-untyped-def]
    with Home.at(path).lock():
        ready.set()
        release.wait(10)


def test_second_process_on_same_home_is_refused(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(20)
        with pytest.raises(HomeLockedError) as info:
            Home.at(tmp_path).lock().acquire()
        assert f"pid {holder.pid}" in str(info.value)
    finally:
        release.set()
        holder.join(10)
    with Home.at(tmp_path).lock():  # released when the holder exits
        pass


def test_lock_is_exclusive_within_a_process_too(tmp_path: Path) -> None:
    with Home.at(tmp_path).lock(), pytest.raises(HomeLockedError):
        Home.at(tmp_path).lock().acquire()


def _genesis_file(tmp_path: Path, **changes: object) -> Path:
    from node.init import default_genesis_path

    document = json.loads(default_genesis_path().read_text())
    document.update({"chain_id": "test-chain"}, **changes)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(document))
    return path


def test_init_with_a_bad_genesis_names_the_field(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "n0")
    bad = _genesis_file(tmp_path, initial_height="one")
    result = CliRunner().invoke(main, ["init", "--home", str(home.root), "--genesis", str(bad)])
    assert result.exit_code != 0
    assert "initial_height" in result.output
    assert not home.validator_key_file.exists()  # nothing half-created


def test_init_creates_home_with_private_keys(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "n0")
    result = CliRunner().invoke(main, ["init", "--home", str(home.root), "--moniker", "val0",
                                       "--genesis", str(_genesis_file(tmp_path))])
    assert result.exit_code == 0, result.output
    home.check_initialised()
    for key_file in home.key_files():
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_config(home.config_file).node.moniker == "val0"
    assert json.loads(home.genesis_file.read_text())["chain_id"] == "test-chain"
    assert "node id (libp2p):  12D3KooW" in result.output


def test_init_twice_keeps_first_keys_and_fails(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "n0")
    args = ["init", "--home", str(home.root), "--genesis", str(_genesis_file(tmp_path))]
    assert CliRunner().invoke(main, args).exit_code == 0
    first = [load_key(p) for p in home.key_files()]
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0
    assert "already initialised" in again.output
    assert [load_key(p) for p in home.key_files()] == first


def test_init_chain_id_override(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "n0")
    result = CliRunner().invoke(main, ["init", "--home", str(home.root), "--chain-id", "other-1",
                                       "--genesis", str(_genesis_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert json.loads(home.genesis_file.read_text())["chain_id"] == "other-1"


def test_default_genesis_gets_this_node_as_single_validator(tmp_path: Path) -> None:
    from node.init import InitError, default_genesis_path

    try:
        default_genesis_path()
    except InitError:
        pytest.skip("the repository genesis.json is not there yet")
    home = Home.at(tmp_path / "n0")
    result = CliRunner().invoke(main, ["init", "--home", str(home.root)])
    assert result.exit_code == 0, result.output
    validators = json.loads(home.genesis_file.read_text())["validators"]
    assert len(validators) == 1
    from primitives.crypto import format_address
    assert validators[0]["address"] == format_address(home.validator_key().address)
