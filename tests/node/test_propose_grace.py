"""After a slow block the propose timeout waits that much longer: the proposer must execute the
same block before it can propose, and on shared cores it often finishes after us."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from consensus.events import ScheduleTimeout, Step, TimeoutFired
from consensus.wal import WAL
from node import consensus_driver
from node.chain import Chain
from node.config import Config
from node.consensus_driver import MAX_PROPOSE_GRACE_MS, ConsensusDriver
from node.mempool import Mempool
from localnet.synthetic import next_block, sign_commit
from state.store import MemoryDB

from tests.node.test_block_time import _QuietNetwork
from tests.node.test_chain import SIGNERS, T0, genesis


def _driver(tmp_path: Path) -> ConsensusDriver:
    chain = Chain(MemoryDB(), genesis())
    return ConsensusDriver(chain, _QuietNetwork(), Mempool(chain.app, Config().mempool), None,
                           tmp_path / "wal", params=None)  # type: ignore[arg-type]


async def _fired_after(driver: ConsensusDriver, step: Step, duration_ms: int) -> float:
    start = trio.current_time()
    await driver._timer(ScheduleTimeout(5, 0, step, duration_ms))
    fired = driver._inbox.receive_nowait()
    assert fired == TimeoutFired(5, 0, step)
    return (trio.current_time() - start) * 1000


async def test_only_the_propose_timeout_gets_the_last_execution_time(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    driver = _driver(tmp_path)
    assert round(await _fired_after(driver, Step.PROPOSE, 100)) == 100  # no block executed yet
    driver._propose_grace_ms = 450.0
    assert round(await _fired_after(driver, Step.PROPOSE, 100)) == 550
    assert round(await _fired_after(driver, Step.PREVOTE, 50)) == 50
    assert round(await _fired_after(driver, Step.PRECOMMIT, 50)) == 50
    assert round(await _fired_after(driver, Step.NEW_HEIGHT, 50)) == 50


async def test_commit_sets_the_grace_to_the_execution_time_within_the_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = _driver(tmp_path)
    driver.wal = WAL.open(tmp_path / "wal")
    clock = [1000.0]
    monkeypatch.setattr(consensus_driver.time, "monotonic", lambda: clock[0])
    execute = driver.chain.execute

    def slow_execute(block, commit, seconds=[0.3, 60.0]):  # type: ignore[no-untyped-def]
        clock[0] += seconds.pop(0)
        return execute(block, commit)

    monkeypatch.setattr(driver.chain, "execute", slow_execute)
    for expected in (300.0, MAX_PROPOSE_GRACE_MS):
        block = next_block(driver.chain, [], T0 + driver.chain.height)
        validators = driver.chain.validators(block.height)
        commit = sign_commit(driver.chain.chain_id, validators, SIGNERS, block.height,
                             block.block_id(), T0)
        await driver._commit(block, commit)
        assert driver._propose_grace_ms == pytest.approx(expected)
    driver.wal.close()
    assert MAX_PROPOSE_GRACE_MS <= 5_000  # a dead proposer must still cost little
