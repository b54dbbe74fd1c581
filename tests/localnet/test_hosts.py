"""Network namespaces per node (``localnet/hosts.py``) and homes for separate machines
(``clearchain testnet --hostnames``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from localnet import hosts
from localnet.hosts import HostNet
from node.config import load_config
from localnet.testnet import read_manifest

needs_namespaces = pytest.mark.skipif(hosts.unavailable() is not None,
                                      reason=f"no network namespaces: {hosts.unavailable()}")


def _net(count: int) -> HostNet:
    """A network of this test process alone (prefix and subnet from the pid)."""
    return HostNet(count, prefix=f"cch{os.getpid() % 10000}", subnet=100 + os.getpid() % 100)


def _connect_from(net: HostNet, i: int, host: str, port: int) -> subprocess.CompletedProcess[str]:
    script = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1.5).close()"
    return subprocess.run(net.wrap(i, [sys.executable, "-c", script]), capture_output=True, text=True, timeout=20)


@needs_namespaces
def test_nodes_reach_each_other_by_address_and_a_downed_link_cuts_one_off():
    net = _net(3)
    hosts.create(net)
    try:
        listener = subprocess.Popen(net.wrap(2, [sys.executable, "-c", (
            "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
            f"s.bind(({net.address(2)!r}, 7000)); s.listen(8); time.sleep(20)")]))
        try:
            for _ in range(50):  # until the listener is up
                if _connect_from(net, 0, net.address(2), 7000).returncode == 0:
                    break
            assert _connect_from(net, 1, net.address(2), 7000).returncode == 0
            # the root namespace reaches the nodes through the bridge, as a client would
            with socket.create_connection((net.address(2), 7000), timeout=2):
                pass
            # node 2's own loopback is its own: 127.0.0.1:7000 is not node 2's listener
            assert _connect_from(net, 0, "127.0.0.1", 7000).returncode != 0
            hosts.set_link(net, 2, up=False)
            assert _connect_from(net, 0, net.address(2), 7000).returncode != 0
            hosts.set_link(net, 2, up=True)
            assert _connect_from(net, 0, net.address(2), 7000).returncode == 0
        finally:
            listener.kill()
            listener.wait()
    finally:
        hosts.cleanup(net.prefix)
    assert hosts.leftovers(net.prefix) == ([], [])


@needs_namespaces
def test_cleanup_removes_a_crashed_runs_leftovers_and_is_idempotent():
    net = _net(2)
    # a longer prefix is not ours; its own subnet (two bridges with one address clash)
    other = HostNet(1, prefix=net.prefix + "x", subnet=(net.subnet + 100) % 250 + 1)
    try:
        hosts.create(net)
        hosts.create(net)  # over its own leftovers: no "File exists"
        spaces, links = hosts.leftovers(net.prefix)
        assert spaces == [net.namespace(0), net.namespace(1)]
        assert set(links) == {net.bridge, net.veth(0), net.veth(1)}
        hosts.create(other)
        removed = hosts.cleanup(net.prefix)
        assert set(removed) == set(spaces) | set(links)
        assert hosts.leftovers(net.prefix) == ([], [])
        assert hosts.cleanup(net.prefix) == []
        assert hosts.leftovers(other.prefix) != ([], [])
    finally:
        hosts.cleanup(net.prefix)  # whatever failed above leaves nothing behind
        hosts.cleanup(other.prefix)


def test_host_net_refuses_names_that_would_not_fit_an_interface():
    with pytest.raises(ValueError):
        HostNet(4, prefix="much-too-long")
    with pytest.raises(ValueError):
        HostNet(0)
    assert HostNet(4, prefix="ab", subnet=7).address(3) == "10.231.7.13"


def test_hostnames_writes_homes_that_dial_each_other_by_name(tmp_path: Path):
    out = tmp_path / "four"
    result = CliRunner().invoke(main, ["testnet", "--hostnames", "alpha.example,10.0.0.2,gamma,delta",
                                       "--dir", str(out)])
    assert result.exit_code == 0, result.output
    entries = read_manifest(out)
    assert [e.rpc_url for e in entries] == ["http://alpha.example:26657", "http://10.0.0.2:26657",
                                            "http://gamma:26657", "http://delta:26657"]
    for i, entry in enumerate(entries):
        config = load_config(Path(entry.home) / "config" / "config.toml")
        assert config.p2p.listen_address == "/ip4/0.0.0.0/tcp/26656"
        assert config.p2p.external_address == entry.p2p_address.split("/p2p/")[0]
        assert set(config.p2p.persistent_peers) == {e.p2p_address for j, e in enumerate(entries) if j != i}
    assert entries[1].p2p_address.startswith("/ip4/10.0.0.2/tcp/26656/p2p/")
    assert entries[0].p2p_address.startswith("/dns4/alpha.example/tcp/26656/p2p/")
    again = CliRunner().invoke(main, ["testnet", "--hostnames", "a,b", "--dir", str(out)])
    assert again.exit_code != 0 and "already holds" in again.output
    duplicate = CliRunner().invoke(main, ["testnet", "--hostnames", "a,a", "--dir", str(tmp_path / "dup")])
    assert duplicate.exit_code != 0 and "distinct" in duplicate.output


def _fake_run(seen: list):
    async def run_testnet(root, entries, demo, duration, progress, demo_seconds, net):  # noqa: ANN001, ANN202
        seen.append(net)
        return 0
    return run_testnet


def test_testnet_hosts_falls_back_to_loopback_and_a_namespaced_one_will_not_resume_without(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import cli.testnet as command

    seen: list = []
    monkeypatch.setattr(command, "run_testnet", _fake_run(seen))
    monkeypatch.setattr(command.hosts, "unavailable", lambda: "creating network namespaces needs root")
    base = str(27000 + os.getpid() % 300 * 12)
    result = CliRunner().invoke(main, ["testnet", "--hosts", "--dir", str(tmp_path / "lo"), "--base-port", base])
    assert result.exit_code == 0, result.output
    assert "needs root; running every node on 127.0.0.1 instead" in result.output
    assert seen == [None] and not (tmp_path / "lo" / "hosts.json").exists()
    assert all(e.rpc_url.startswith("http://127.0.0.1:") for e in read_manifest(tmp_path / "lo"))

    monkeypatch.setattr(command.hosts, "unavailable", lambda: None)
    result = CliRunner().invoke(main, ["testnet", "--hosts", "--dir", str(tmp_path / "ns")])
    assert result.exit_code == 0, result.output
    assert isinstance(seen[-1], HostNet) and seen[-1].count == 4
    assert [e.rpc_url for e in read_manifest(tmp_path / "ns")] == [
        f"http://10.231.231.{10 + i}:26657" for i in range(4)]
    config = load_config(Path(read_manifest(tmp_path / "ns")[1].home) / "config" / "config.toml")
    assert config.p2p.listen_address == "/ip4/10.231.231.11/tcp/26656"

    monkeypatch.setattr(command.hosts, "unavailable", lambda: "the `ip` command (iproute2) is not installed")
    result = CliRunner().invoke(main, ["testnet", "--dir", str(tmp_path / "ns")])
    assert result.exit_code != 0 and "runs its nodes in network namespaces" in result.output
