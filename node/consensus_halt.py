"""What the node does when the consensus core halts on conflicting quorums.

Two blocks with +2/3 precommits at one height mean more than a third of the voting power
signed both: the chain's safety assumption is broken, and the core decided neither
(:class:`consensus.events.Halt`). The shell keeps the proof and stops: the evidence (both
commits, canonical encoding of :class:`consensus.types.ConflictingCommits`) is written
durably to ``data/cs.wal/halt_evidence`` before anything else, the conflict is logged at
CRITICAL, and :class:`ConsensusHalted` (a :class:`node.chain.ChainHalted`) ends the node
(``clearchain start`` exits with its halted status). A restart replays the same WAL and halts
again: an operator must look at the evidence first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from consensus.types import ConflictingCommits
from node.chain import ChainHalted
from primitives.codec import encode
from primitives.durable import replace_file

log = logging.getLogger("clearchain.consensus")

EVIDENCE_FILE = "halt_evidence"
"""Beside the WAL: the conflict belongs to the consensus state of that height."""


class ConsensusHalted(ChainHalted):
    def __init__(self, evidence: ConflictingCommits, path: Path) -> None:
        self.evidence, self.path = evidence, path
        a, b = evidence.commit_a, evidence.commit_b
        super().__init__(
            f"CONSENSUS HALTED at height {evidence.height}: block {a.block_id.hash.hex()} "
            f"(round {a.round}) and block {b.block_id.hash.hex()} (round {b.round}) both hold "
            f"+2/3 precommits; more than a third of the voting power signed both; neither is "
            f"committed; evidence in {path}"
        )


def record_halt(wal_path: Path, evidence: ConflictingCommits) -> ConsensusHalted:
    """Persist ``evidence`` beside the WAL at ``wal_path`` (synced), log it, and return the
    exception that stops the node."""
    path = Path(wal_path).with_name(EVIDENCE_FILE)
    replace_file(path, encode(evidence.to_obj()))
    signers = ", ".join(a.hex() for a in evidence.double_signers()) or "none in one round"
    halted = ConsensusHalted(evidence, path)
    log.critical("%s; validators that precommitted both: %s", halted, signers)
    return halted
