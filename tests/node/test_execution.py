"""Block execution off the trio thread: the loop runs on meanwhile, executions keep their order
and are never abandoned, and readers that await ``idle`` never see a block half executed —
in the gate alone and in a running node (consensus, RPC reads, check_tx)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import trio

from node.execution import ExecutionGate
from primitives.crypto import PrivateKey, Signer
from state.builders import build_transfer_tx
from tests.node.test_node_inprocess import make_node, wait_for


class TwoStepState:
    """A stand-in for the app: a block writes ``a`` then, a while later, ``b``."""

    def __init__(self) -> None:
        self.a = self.b = 0

    def execute(self, height: int) -> int:
        self.a = height
        time.sleep(0.05)  # the GIL is released: the loop runs in between
        self.b = height
        return height


async def test_work_runs_in_another_thread_while_the_loop_goes_on() -> None:
    gate = ExecutionGate()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.005)

    def work() -> int:
        assert threading.current_thread() is not threading.main_thread()
        before = ticks
        time.sleep(0.3)
        return ticks - before

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.sleep(0.01)
        ticks_during = await gate.execute(work)
        nursery.cancel_scope.cancel()
    assert ticks_during >= 10  # on the trio thread this would be 0


async def test_a_reader_after_idle_never_sees_a_half_executed_block() -> None:
    gate, state = ExecutionGate(), TwoStepState()
    seen: list[tuple[int, int]] = []

    async def reader() -> None:
        while True:
            await gate.idle()
            seen.append((state.a, state.b))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(0.01)
        for height in range(1, 6):
            await gate.execute(lambda h=height: state.execute(h))
        await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert seen and all(a == b for a, b in seen), [s for s in seen if s[0] != s[1]]
    assert {a for a, _ in seen} >= {0, 5}  # it read before and after the blocks


async def test_without_the_gate_the_same_reader_does_see_torn_state() -> None:
    """The check above can fail: a reader that only checkpoints sees ``a`` without ``b``."""
    gate, state = ExecutionGate(), TwoStepState()
    seen: list[tuple[int, int]] = []

    async def reader() -> None:
        while True:
            await trio.sleep(0.001)
            seen.append((state.a, state.b))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        for height in range(1, 6):
            await gate.execute(lambda h=height: state.execute(h))
        nursery.cancel_scope.cancel()
    assert any(a != b for a, b in seen)


async def test_executions_run_one_at_a_time_in_the_order_asked() -> None:
    gate = ExecutionGate()
    order: list[int] = []
    running = 0
    overlapped = False

    def work(n: int) -> None:
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        time.sleep(0.02)
        order.append(n)
        running -= 1

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(gate.execute, lambda n=n: work(n))
            await trio.sleep(0)  # each asks in turn
    assert order == [0, 1, 2, 3, 4]
    assert not overlapped and gate.executions == 5


async def test_cancelling_the_caller_waits_for_the_execution_to_finish() -> None:
    gate, state = ExecutionGate(), TwoStepState()
    with trio.move_on_after(0.01):
        await gate.execute(lambda: state.execute(7))
    assert (state.a, state.b) == (7, 7)  # not abandoned half way
    assert not gate.running


async def test_an_error_in_the_work_reaches_the_caller_and_frees_the_gate() -> None:
    gate = ExecutionGate()

    def fail() -> None:
        raise RuntimeError("app hash mismatch")

    with pytest.raises(RuntimeError, match="mismatch"):
        await gate.execute(fail)
    assert not gate.running
    with trio.fail_after(1):
        await gate.idle()


async def test_a_node_executes_off_its_loop_and_rpc_reads_never_tear(tmp_path: Path) -> None:
    """A solo validator under a stream of txs: every status read shows the chain's height and
    the app's as one (the app moves at begin_block, the chain at the block's write), check_tx
    answers between blocks, and blocks ran in the gate's thread."""
    node = make_node(tmp_path)
    torn: list[tuple[int, int]] = []
    reads = 0

    async def reader() -> None:
        nonlocal reads
        while True:
            status = await node.view.status()  # awaits the gate inside
            app = node.chain.app
            if status.latest_block_height != app.height or app.env is not None:
                torn.append((status.latest_block_height, app.height))
            reads += 1
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        nursery.start_soon(reader)
        signer = Signer(node.validator_key)
        to = PrivateKey(b"\x09" * 32).address
        start = node.gate.executions
        for n in range(40):
            tx = build_transfer_tx(signer, node.chain.chain_id, to, "USDC", 1 + n, fee=1000,
                                   expiry=node.chain.height + 50)
            assert (await node.view.broadcast_tx(tx)).code == 0
            await trio.sleep(0.005)
        await wait_for(lambda: len(node.mempool) == 0 and node.gate.executions >= start + 3)
        nursery.cancel_scope.cancel()
    assert reads > 20 and torn == []


async def test_the_driver_tells_the_core_only_after_the_block_is_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The consensus driver's commit: the block executes in the gate's thread while the loop
    runs (a task sees the old height and the gate busy), and the BlockExecuted that starts the
    next height comes back only after, carrying the new app hash; on_commit runs after too."""
    from consensus.events import BlockExecuted
    from consensus.wal import WAL
    from localnet.synthetic import next_block, sign_commit
    from node.chain import Chain
    from node.config import Config
    from node.consensus_driver import ConsensusDriver
    from node.mempool import Mempool
    from state.store import MemoryDB
    from tests.node.test_block_time import _QuietNetwork
    from tests.node.test_chain import SIGNERS, T0, genesis

    chain = Chain(MemoryDB(), genesis())
    committed: list[int] = []
    driver = ConsensusDriver(chain, _QuietNetwork(), Mempool(chain.app, Config().mempool), None,  # type: ignore[arg-type]
                             tmp_path / "wal", params=None,  # type: ignore[arg-type]
                             on_commit=lambda executed: committed.append(executed.height))
    driver.wal = WAL.open(tmp_path / "wal")
    execute, threads = chain.execute, []

    def slow_execute(block, commit):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        time.sleep(0.2)
        return execute(block, commit)

    monkeypatch.setattr(chain, "execute", slow_execute)
    block = next_block(chain, [], T0 + 1)
    commit = sign_commit(chain.chain_id, chain.validators(1), SIGNERS, 1, block.block_id(), T0)
    seen_during: list[tuple[int, bool, list[int]]] = []

    async def watcher() -> None:
        await trio.sleep(0.05)
        seen_during.append((chain.height, driver.gate.running, list(committed)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watcher)
        answer = await driver._commit(block, commit)
    assert threads and threads[0] is not threading.main_thread()
    assert seen_during == [(0, True, [])]  # mid-execution: old height, gate busy, no on_commit
    assert isinstance(answer, BlockExecuted) and answer.height == 1
    assert answer.app_hash == chain.app_hash and chain.height == 1 and committed == [1]
    driver.wal.close()
