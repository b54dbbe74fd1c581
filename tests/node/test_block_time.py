"""A proposal whose time runs ahead of this node's clock is not validated (prevoted nil)."""

from __future__ import annotations

from pathlib import Path

from node.chain import Chain
from node.clock import now_ms
from node.consensus_driver import MAX_FUTURE_BLOCK_TIME_MS, ConsensusDriver
from node.mempool import Mempool
from node.config import Config
from localnet.synthetic import next_block
from state.store import MemoryDB

from tests.node.test_chain import genesis


class _QuietNetwork:
    def set_handler(self, *_args) -> None: ...

    def on_peer_connected(self, *_args) -> None: ...

    def on_peer_disconnected(self, *_args) -> None: ...

    def peers(self) -> list:
        return []


def test_block_time_far_ahead_of_the_local_clock_is_refused(tmp_path: Path) -> None:
    chain = Chain(MemoryDB(), genesis())
    driver = ConsensusDriver(chain, _QuietNetwork(), Mempool(chain.app, Config().mempool), None,
                             tmp_path / "wal", params=None)  # type: ignore[arg-type]
    now = now_ms()
    assert driver._validate(next_block(chain, [], now))
    assert driver._validate(next_block(chain, [], now + MAX_FUTURE_BLOCK_TIME_MS // 2))
    assert not driver._validate(next_block(chain, [], now + 24 * 3600 * 1000))
