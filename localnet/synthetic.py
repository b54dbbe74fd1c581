"""Signed chains built without consensus, for benchmarks and tests of the execution pipeline.

:func:`append_block` makes the block a proposer would (``make_block`` over the chain's own
state), signs a commit with the validators' keys as if consensus had decided it, and runs it
through :meth:`node.chain.Chain.execute`. Block sync, the app-hash checks and the stores then
see exactly what a live network produces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from consensus.blocks import make_block
from consensus.commit import commit_from_votes
from primitives.crypto import Signer
from consensus.types import Block, BlockID, Commit, Vote, VoteType
from consensus.validators import ValidatorSet
from node.chain import Chain, ExecutedBlock


def sign_commit(chain_id: str, validators: ValidatorSet, signers: Mapping[bytes, Signer],
                height: int, block_id: BlockID, time_ms: int) -> Commit:
    """A commit with a precommit from every validator whose key is in ``signers``."""
    votes: dict[int, Vote] = {}
    for index, validator in enumerate(validators.validators):
        signer = signers.get(validator.address)
        if signer is None:
            continue
        vote = Vote(VoteType.PRECOMMIT, height, 0, block_id, time_ms, validator.address, index)
        votes[index] = Vote(VoteType.PRECOMMIT, height, 0, block_id, time_ms, validator.address,
                            index, signer.sign(vote.sign_bytes(chain_id)))
    return commit_from_votes(validators, height, 0, block_id, votes)


def next_block(chain: Chain, txs: Sequence[bytes], time_ms: int,
               app_hash: bytes | None = None) -> Block:
    """The block a proposer would build on top of ``chain`` (``app_hash`` to forge a bad one)."""
    height = chain.height + 1
    validators = chain.validators(height)
    following = chain.validators(height + 1)
    if validators is None or following is None:
        raise ValueError(f"validator sets of {height} and {height + 1} are needed")
    last = chain.block(height - 1) if height > 1 else None
    return make_block(
        chain_id=chain.chain_id, height=height, time_ms=time_ms,
        last_block_id=last.block_id() if last else None,
        last_commit=chain.commit(height - 1) if height > 1 else None,
        txs=list(txs), evidence=[], validators=validators, next_validators=following,
        app_hash=chain.app_hash if app_hash is None else app_hash,
        last_results_hash=chain.results_hash(height - 1),
        proposer_address=validators.proposer_for_round(0).address,
    )


def append_block(chain: Chain, signers: Mapping[bytes, Signer], txs: Sequence[bytes],
                 time_ms: int) -> ExecutedBlock:
    block = next_block(chain, txs, time_ms)
    validators = chain.validators(block.height)
    assert validators is not None
    commit = sign_commit(chain.chain_id, validators, signers, block.height, block.block_id(), time_ms)
    return chain.execute(block, commit)
