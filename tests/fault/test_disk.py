"""tests/fault/disk.py: a data directory onto a small tmpfs and back, filled and freed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.fault import disk


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    reason = disk.available()
    if reason is not None:
        pytest.skip(f"needs a small tmpfs: {reason}")
    directory = tmp_path / "home" / "data"
    (directory / "store").mkdir(parents=True)
    (directory / "store" / "LOG").write_bytes(b"x" * 10_000)
    (directory / "priv_validator_state.json").write_bytes(b"state")
    return directory


def test_the_contents_move_onto_the_tmpfs_fill_it_and_come_back_without_the_filler(
        data_dir: Path) -> None:
    disk.mount_small_disk(data_dir, 2)
    try:
        assert os.path.ismount(data_dir)
        assert (data_dir / "store" / "LOG").read_bytes() == b"x" * 10_000
        assert not data_dir.with_name("data.disk-aside").exists()
        filler = disk.fill(data_dir)
        assert os.statvfs(data_dir).f_bavail == 0
        with pytest.raises(OSError) as info:
            (data_dir / "store" / "000005.log").write_bytes(b"y" * 4096)
        assert info.value.errno == errno.ENOSPC
        disk.free(filler)
        assert not filler.exists()
        (data_dir / "store" / "000005.log").write_bytes(b"y" * 4096)
        disk.fill(data_dir)  # a filler still there at the unmount stays behind on the tmpfs
    finally:
        disk.unmount(data_dir)
    assert not os.path.ismount(data_dir)
    assert sorted(p.name for p in data_dir.iterdir()) == ["priv_validator_state.json", "store"]
    assert (data_dir / "store" / "000005.log").read_bytes() == b"y" * 4096
    assert not data_dir.with_name("data.disk-aside").exists()
    disk.unmount(data_dir)  # not a mount point: nothing to do


def test_contents_too_big_for_the_disk_are_put_back_and_named(data_dir: Path) -> None:
    (data_dir / "big").write_bytes(b"z" * (2 << 20))
    with pytest.raises(disk.DiskFaultError, match="do not fit in 1 MiB"):
        disk.mount_small_disk(data_dir, 1)
    assert not os.path.ismount(data_dir)
    assert (data_dir / "big").stat().st_size == 2 << 20
    assert (data_dir / "priv_validator_state.json").read_bytes() == b"state"
