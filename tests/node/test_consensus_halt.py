"""node/consensus_halt.py: conflicting +2/3 precommits stop the node with the proof on disk."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from consensus import core
from consensus.commit import verify_conflicting_commits
from consensus.events import Halt, Step, TimeoutFired, VoteReceived
from consensus.types import BlockID, ConflictingCommits, Vote, VoteType
from consensus.wal import WAL, events_after_height
from node.chain import Chain, ChainHalted
from node.config import Config
from node.consensus_driver import ConsensusDriver
from node.consensus_halt import EVIDENCE_FILE, ConsensusHalted
from node.mempool import Mempool
from primitives.codec import decode
from primitives.hashing import sha256
from state.store import MemoryDB
from tests.node.test_chain import SIGNERS, genesis


class _Network:
    """No peers: what the driver sends is only counted."""

    def __init__(self) -> None:
        self.sent = 0

    def set_handler(self, *_args) -> None: ...

    def on_peer_connected(self, *_args) -> None: ...

    def on_peer_disconnected(self, *_args) -> None: ...

    def peers(self) -> list:
        return []

    async def broadcast(self, *_args) -> None:
        self.sent += 1


def _driver(tmp_path: Path) -> ConsensusDriver:
    chain = Chain(MemoryDB(), genesis())
    (tmp_path / "cs.wal").mkdir(exist_ok=True)
    params = core.RoundParams()
    driver = ConsensusDriver(chain, _Network(),  # type: ignore[arg-type]
                              Mempool(chain.app, Config().mempool), None,
                             tmp_path / "cs.wal" / "wal", params)
    driver.wal = WAL.open(driver.wal_path)
    driver.state = driver._fresh_state()
    return driver


async def _start_height(driver: ConsensusDriver) -> None:
    await driver.feed(TimeoutFired(1, 0, Step.NEW_HEIGHT))  # timeout_commit is over
    assert driver.state is not None and driver.state.step == Step.PROPOSE


def _precommit(chain: Chain, index: int, block_id: BlockID) -> Vote:
    validator = chain.validators(1).validators[index]
    vote = Vote(VoteType.PRECOMMIT, 1, 0, block_id, 1_000, validator.address, index)
    return replace(vote, signature=SIGNERS[validator.address].sign(vote.sign_bytes(chain.chain_id)))


async def test_conflicting_quorums_halt_the_driver_with_the_evidence_persisted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    driver = _driver(tmp_path)
    chain = driver.chain
    a, b = BlockID(sha256(b"block a")), BlockID(sha256(b"block b"))
    assert len(chain.validators(1)) == 4  # equal powers: 3 of 4 is +2/3
    await _start_height(driver)
    for index in range(3):
        await driver.feed(VoteReceived(_precommit(chain, index, a)))
    with caplog.at_level(logging.CRITICAL, logger="clearchain.consensus"):
        with pytest.raises(ConsensusHalted) as raised:
            for index in range(3):  # the same three equivocate: a second quorum, for b
                await driver.feed(VoteReceived(_precommit(chain, index, b)))
    assert isinstance(raised.value, ChainHalted)  # `clearchain start` exits "halted"
    path = tmp_path / "cs.wal" / EVIDENCE_FILE
    stored = ConflictingCommits.from_obj(decode(path.read_bytes()))
    assert stored == raised.value.evidence
    verify_conflicting_commits(chain.chain_id, chain.validators(1), stored)
    assert {stored.commit_a.block_id, stored.commit_b.block_id} == {a, b}
    assert len(stored.double_signers()) == 3
    assert chain.height == 0  # neither block committed
    (record,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "CONSENSUS HALTED at height 1" in record.getMessage()
    assert a.hash.hex() in record.getMessage() and b.hash.hex() in record.getMessage()
    driver.wal.close()
    # a restart replays the WAL and halts again
    again = _driver(tmp_path)
    assert again.wal is not None
    state = core.replay(again.state, events_after_height(again.wal.records_at_open, 0))
    _, actions = core.resume(state)
    assert Halt(stored) in actions
    with pytest.raises(ConsensusHalted):
        await again._perform(Halt(stored))
    again.wal.close()


async def test_one_quorum_does_not_halt(tmp_path: Path) -> None:
    driver = _driver(tmp_path)
    a = BlockID(sha256(b"block a"))
    await _start_height(driver)
    for index in range(4):
        await driver.feed(VoteReceived(_precommit(driver.chain, index, a)))
    assert driver.state is not None and driver.state.halted is None
    assert not (tmp_path / "cs.wal" / EVIDENCE_FILE).exists()
    await trio.sleep(0)
    assert driver.wal is not None
    driver.wal.close()
