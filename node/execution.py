"""Block execution off the trio thread, and readers that never see a block half executed.

A block of thousands of fills takes the executing validator hundreds of milliseconds. Run on
the trio thread, that is hundreds of milliseconds in which no p2p frame is read, no vote
verified, no ping answered and no RPC served: under load, peers' votes and proposals for the
next height queued behind it and rounds timed out one after another. :class:`ExecutionGate`
runs ``Chain.execute`` (begin_block, the txs, end_block, the state commit and the synced write)
in a worker thread (``trio.to_thread``) while the event loop goes on.

What stays true:

- **Order.** The consensus driver awaits the execution before it feeds ``BlockExecuted`` to the
  core, so height h + 1 starts only once block h is stored; one execution runs at a time, in
  the order they were asked for.
- **No torn reads.** Everything that reads the application or the chain's latest height on the
  trio thread (RPC reads, ``check_tx`` and the mempool recheck, metric scrapes) first awaits
  :meth:`ExecutionGate.idle`, then reads without awaiting in between: trio switches tasks only
  at an await, and an execution starts only from the driver's task, so such a read sees the
  state before a block or after it, never during. ``idle`` returns at once (after a checkpoint)
  when nothing executes.
- **An execution is never abandoned.** Cancelling the waiting task (shutdown) waits for the
  thread to finish: the block's one write batch is written whole or not at all either way.

Peers' messages for the next height keep arriving meanwhile and wait in the driver's bounded
inbox (``INBOX_SIZE``); handlers that only read the block store and validator sets (LevelDB
reads, thread-safe) are not gated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


class ExecutionGate:
    """One block execution at a time in a worker thread; :meth:`idle` for readers."""

    def __init__(self) -> None:
        self._running = False
        self._done = trio.Event()
        self._turn = trio.Lock()  # FIFO: executions run in the order they were asked for
        self.executions = 0
        """Executions finished (tests, logs)."""

    @property
    def running(self) -> bool:
        return self._running

    async def execute(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a worker thread; readers wait until it returns (or raises)."""
        async with self._turn:
            self._running = True
            try:
                return await trio.to_thread.run_sync(work, abandon_on_cancel=False)
            finally:
                self._running = False
                self.executions += 1
                done, self._done = self._done, trio.Event()
                done.set()

    async def idle(self) -> None:
        """Return once no execution runs (a checkpoint if none does). Read right after it,
        without awaiting, to see one committed state."""
        await trio.lowlevel.checkpoint()
        while self._running:
            await self._done.wait()
