"""``clearchain testnet``: a local multi-validator chain in one command, optionally with demo load.

The homes, the node processes, the progress table and the demo are :mod:`localnet.testnet`'s;
this module only parses the command line and resumes or creates the testnet directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import trio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from primitives.crypto import format_address
from localnet import hosts
from localnet.hosts import HostNet
from localnet.testnet import (
    DEFAULT_BASE_PORT,
    MANIFEST,
    TestnetError,
    create_testnet,
    host_placements,
    load_hosts,
    read_manifest,
    run_testnet,
    save_hosts,
)
from localnet.demo import demo_names, demo_signer


@click.command("testnet")
@click.option("--validators", "-n", type=click.IntRange(1, 32), default=4, show_default=True)
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="~/.clearchain/testnet",
              show_default=True,
              help="where the homes live; an existing one is resumed")
@click.option("--demo", is_flag=True, help="drive demo load: trades, oracle prices, a crash, liquidations")
@click.option("--duration", type=click.FloatRange(min=1), default=None, help="stop everything after S seconds")
@click.option("--demo-seconds", type=click.FloatRange(min=10), default=60, show_default=True,
              help="length of the demo (trading, then the crash)")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=DEFAULT_BASE_PORT, show_default=True)
@click.option("--chain-id", default="clearchain-testnet-1", show_default=True)
@click.option("--no-progress", is_flag=True, help="no live table (a line every 5 s instead)")
@click.option("--hosts", "namespaces", is_flag=True,
              help="each node in its own network namespace and address (root; else loopback)")
@click.option("--hostnames", default=None, metavar="A,B,C,D",
              help="only write homes for separate machines, one node per host name or IP, and exit")
@click.option("--cleanup-hosts", is_flag=True,
              help="remove the namespaces a crashed --hosts run left behind, and exit")
def command(validators: int, directory: str, demo: bool, duration: float | None, demo_seconds: float,
            base_port: int, chain_id: str, no_progress: bool, namespaces: bool, hostnames: str | None,
            cleanup_hosts: bool) -> None:
    """Run a local testnet of N validators, each its own process, on 127.0.0.1.

    \b
      clearchain testnet --validators 4 --demo          # trades, a crash, liquidations
      clearchain testnet --dir ./testnet                 # resume the same chain later
      clearchain query status --node http://127.0.0.1:26601
      sudo clearchain testnet --hosts                    # one namespace per node, 10.231.231.10...
      clearchain testnet --hostnames a,b,c,d --dir out   # homes for 4 real machines
    """
    root = Path(directory).expanduser().resolve()
    if cleanup_hosts:
        net = load_hosts(root) if (root / "hosts.json").exists() else None
        removed = hosts.cleanup(net.prefix if net else hosts.DEFAULT_PREFIX)
        click.echo("removed " + (", ".join(removed) if removed else "nothing"))
        return
    if hostnames is not None:
        _write_host_homes(root, [h.strip() for h in hostnames.split(",") if h.strip()], chain_id)
        return
    root.mkdir(parents=True, exist_ok=True)
    net = load_hosts(root)
    if (root / MANIFEST).exists():
        entries = read_manifest(root)
        if len(entries) != validators:
            click.echo(f"{root} holds a testnet of {len(entries)} validators; resuming it as is")
        for entry in entries:
            if entry.pid is not None and _alive(entry.pid):
                raise TestnetError(f"{entry.name} (pid {entry.pid}) from an earlier run is still running; stop it first")
        click.echo(f"resuming the testnet in {root}")
    elif namespaces and (reason := hosts.unavailable()) is not None:
        click.echo(f"--hosts: {reason}; running every node on 127.0.0.1 instead", err=True)
        entries = create_testnet(root, validators, base_port, chain_id)
    else:
        if namespaces:
            net = HostNet(validators)
            save_hosts(root, net)
        placements = host_placements([net.address(i) for i in range(validators)]) if net else None
        with _progress() as progress:
            task = progress.add_task("validator homes and keys", total=validators)
            entries = create_testnet(root, validators, base_port, chain_id, placements,
                                     on_home=lambda name: progress.update(task, advance=1, description=name))
        click.echo(f"created {validators} validator homes in {root} (chain {chain_id})")
        for entry in entries:
            click.echo(f"  {entry.name}: rpc {entry.rpc_url}  p2p {entry.p2p_address}")
        click.echo(f"  demo keys in {root / 'keys'}: " + ", ".join(
            f"{n} {format_address(demo_signer(n).address)[:14]}..." for n in demo_names()[:2]) + ", ...")
    if net is not None and (reason := hosts.unavailable()) is not None:
        raise TestnetError(f"{root} runs its nodes in network namespaces, but {reason}")
    status = trio.run(run_testnet, root, entries, demo, duration, not no_progress, demo_seconds, net)
    sys.exit(status)


def _progress() -> Progress:
    """A bar on stderr that disappears when done (stdout keeps only the summary lines)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def _write_host_homes(root: Path, names: list[str], chain_id: str) -> None:
    """Homes for one node per machine: each listens on every interface at the default ports
    and dials the others by the names given; copy ``nodeI`` to host I and start it there."""
    if len(names) < 1 or len(set(names)) != len(names):
        raise TestnetError("--hostnames needs distinct host names or IPs, comma separated")
    if (root / MANIFEST).exists():
        raise TestnetError(f"{root} already holds a testnet; pick another --dir")
    root.mkdir(parents=True, exist_ok=True)
    entries = create_testnet(root, len(names), DEFAULT_BASE_PORT, chain_id,
                             host_placements(names, listen_host="0.0.0.0"))
    click.echo(f"wrote {len(names)} homes in {root} (chain {chain_id}); on each host:")
    for name, entry in zip(names, entries):
        click.echo(f"  {name}: copy {entry.home} there, then `clearchain start --home <it>`"
                   f"  (p2p {entry.p2p_address.split('/p2p/')[0]}, rpc {entry.rpc_url})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
