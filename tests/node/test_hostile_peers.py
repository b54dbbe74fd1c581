"""Messages a hostile peer can send without any valid signature must not stall the node."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from consensus.events import ProposalMessage
from consensus.types import Proposal
from node.messages import encode_consensus

from tests.node.test_node_inprocess import make_node, wait_for


@pytest.mark.timeout(60)  # the unfixed walk blocks the loop, where trio cannot cancel it
async def test_unsigned_proposal_with_a_huge_round_is_ignored_at_once(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        await wait_for(lambda: node.chain.height >= 1)
        block = node.chain.block(1)
        height = node.driver.state.height
        for huge_round in (10**9, 2**63 - 1):
            forged = Proposal(height, huge_round, -1, block.block_id(), 1, b"\x00" * 64)
            # Finding the proposer of round r walks r priority steps: unbounded, this would
            # block the event loop for hours.
            with trio.fail_after(10):
                await node.driver.on_message(node.network.peer_id, encode_consensus(
                    ProposalMessage(forged, block)))
        await wait_for(lambda: node.chain.height >= height + 1)  # consensus goes on
        nursery.cancel_scope.cancel()
