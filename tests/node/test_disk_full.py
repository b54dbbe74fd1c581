"""A full disk under one validator (issue 17's fault list): `clearchain start` processes.

- One node whose last-signed state meets a full disk (its temporary file is /dev/full, no root
  needed): the process exits with EXIT_STORAGE_FAILURE and one CRITICAL line, no traceback.
- Four validators, node 3's data directory on an 8 MiB tmpfs (root only), filled while the
  chain runs: node 3 stops within a bound with the CRITICAL line naming its data directory, the
  height and "disk full (ENOSPC): free space and restart", the other three keep committing;
  restarted on the still-full disk it stops again at once; once space is freed and it is
  restarted, it catches up and holds the same blocks and app hashes as the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from node.config import Config, replace
from node.home import Home
from node.init import init_home
from node.storage_failure import DISK_FULL, EXIT_STORAGE_FAILURE
from tests.fault import disk
from tests.node.conftest import REPO, Cluster, free_port

pytestmark = pytest.mark.slow

STOP_WITHIN_S = 20.0
"""A node must be gone this soon after its disk filled (it stops at its next write: the next
vote, WAL record or block, well under a second at 50 ms blocks; the rest is a loaded machine)."""
CATCH_UP_S = 30.0


def critical_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " CRITICAL " in line]


def wait_exit(alive: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``alive()`` turned false; fails after ``timeout``."""
    started = time.monotonic()
    while alive():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"the node still runs {timeout}s after its disk filled")
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_validator_that_cannot_store_its_signature_state_exits_74_with_one_critical_line(
        tmp_path: Path) -> None:
    home = Home.at(tmp_path / "solo")
    config = replace(Config(), node={"moniker": "solo", "log_level": "info"},
                     p2p={"listen_address": f"/ip4/127.0.0.1/tcp/{free_port()}"},
                     rpc={"listen_address": f"127.0.0.1:{free_port()}"})
    init_home(home, moniker="solo", config=config)
    home.data_dir.mkdir(parents=True, exist_ok=True)
    (home.data_dir / "priv_validator_state.json.tmp").symlink_to("/dev/full")  # ENOSPC
    done = subprocess.run([sys.executable, "-m", "cli", "start", "--home", str(home.root)],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
    log = done.stdout + done.stderr
    assert done.returncode == EXIT_STORAGE_FAILURE, log
    (line,) = critical_lines(log)
    assert f"storing the last-signed state in {home.validator_state_file} failed" in line
    assert "at height 1" in line and line.endswith(DISK_FULL)
    assert "Traceback" not in log
    assert not (home.data_dir / "priv_validator_state.json.tmp").exists()  # nothing half written


def test_a_validator_on_a_full_disk_stops_the_others_go_on_and_it_catches_up_once_freed(
        cluster_factory: Callable[..., Cluster]) -> None:
    reason = disk.available()
    if reason is not None:
        pytest.skip(f"needs a small tmpfs: {reason}")
    cluster = cluster_factory()
    data_dir = cluster.homes[3].data_dir
    disk.mount_small_disk(data_dir, 8)
    try:
        cluster.start_all()
        cluster.wait_height([0, 1, 2, 3], 3)
        filler = disk.fill(data_dir)
        took = wait_exit(lambda: cluster.alive(3), STOP_WITHIN_S)
        proc = cluster.procs[3]
        assert proc is not None and proc.returncode == EXIT_STORAGE_FAILURE, \
            cluster.log_text(3)[-3000:]
        cluster.procs[3] = None
        log = cluster.log_text(3)
        (line,) = critical_lines(log)
        assert f" {data_dir}/" in line and " at height " in line and line.endswith(DISK_FULL), line
        assert "Traceback" not in log
        print(f"\nnode3 stopped {took:.1f}s after its disk filled: {line}")

        others = max(cluster.heights([0, 1, 2]))
        cluster.wait_height([0, 1, 2], others + 3, timeout=CATCH_UP_S)  # 3 of 4 are +2/3

        cluster.start(3)  # still full: it stops again, at once, saying so
        wait_exit(lambda: cluster.alive(3), STOP_WITHIN_S)
        proc = cluster.procs[3]
        assert proc is not None and proc.returncode == EXIT_STORAGE_FAILURE
        cluster.procs[3] = None
        lines = critical_lines(cluster.log_text(3))
        assert len(lines) == 2 and lines[1].endswith(DISK_FULL), lines

        disk.free(filler)
        cluster.start(3)
        target = max(cluster.heights([0, 1, 2])) + 2
        cluster.wait_height([3], target, timeout=CATCH_UP_S)
        with cluster.client(3) as three, cluster.client(0) as zero:
            for height in (target - 1, target):
                ours = three.call("commit", height=height)["signed_header"]
                theirs = zero.call("commit", height=height)["signed_header"]
                assert ours["header"]["app_hash"] == theirs["header"]["app_hash"], height
                assert ours["commit"]["block_id"] == theirs["commit"]["block_id"], height
    finally:
        cluster.close()
        disk.unmount(data_dir)
