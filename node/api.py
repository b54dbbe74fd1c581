"""The node as the RPC layer sees it: :class:`rpc.api.NodeAPI` over the chain, mempool and p2p.

Reads come from the block store and the application at the latest committed state, never
during a block's execution (each awaits ``ExecutionGate.idle`` first); ``query``
and the clearing queries are :class:`node.queries.ClearingQueries`'s, shared with the dev node.
After each commit :meth:`NodeView.publish` turns the executed block into the views the RPC
layer renders and hands them to the event bus (subscribers, ``broadcast_tx_commit``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from node import __version__
from primitives.codec import decode, encode
from primitives.crypto import PrivateKey
from node.chain import Chain, ExecutedBlock, result_to_obj
from node.config import Config
from node.mempool import Mempool, MempoolResult
from node.p2p.network import Network
from node.execution import ExecutionGate
from node.overload import Refusal
from node.queries import ClearingQueries
from rpc.views import (
    RoundStateView,
    BlockResults,
    BlockView,
    CommitView,
    LiquidationPage,
    MempoolInfo,
    NetInfo,
    NodeStatus,
    PeerView,
    PersistentPeerView,
    QueryResult,
    TxRecord,
    TxResultView,
    ValidatorView,
)
from rpc.errors import overloaded, unavailable
from rpc.events import EventBus, publish_block

if TYPE_CHECKING:
    from consensus.round_state import ConsensusState
    from consensus.types import Block


def _tx_result(obj: Mapping[str, Any]) -> TxResultView:
    code = int(obj["code"])
    return TxResultView(code=code, log=obj.get("log", ""), codespace="clearing" if code else "",
                        events=tuple(obj.get("events", ())), kind=obj.get("kind", ""),
                        sender=obj.get("sender", b""))


def accounts_of(events: Sequence[Mapping[str, Any]], sender: bytes) -> tuple[bytes, ...]:
    """Addresses a tx touched: its sender and any 20-byte account attribute of its events."""
    found = [sender] if sender else []
    for event in events:
        for value in (event.get("attrs") or {}).values():
            if isinstance(value, bytes) and len(value) == 20 and value not in found:
                found.append(value)
    return tuple(found)


def block_view(block: Block) -> BlockView:
    header = block.header.to_obj()
    header["time"] = block.header.time_ms * 1_000_000
    return BlockView(
        height=block.height, hash=block.hash(), header=header, txs=block.txs,
        last_commit=None if block.last_commit is None else block.last_commit.to_obj(),
        evidence=tuple(e.to_obj() for e in block.evidence), size=len(block.encode()),
    )


def round_state_view(state: ConsensusState) -> RoundStateView:
    """The consensus core's state as ``consensus_state`` shows it."""
    proposal = state.first_proposal.get(state.round)
    return RoundStateView(
        height=state.height, round=state.round, step=_STEP_NAMES.get(state.step.name, state.step.name),
        proposal_block_hash=proposal.hash if proposal else b"",
        locked_block_hash=state.locked_block.hash if state.locked_block else b"",
        locked_round=state.locked_round,
        valid_block_hash=state.valid_block.hash if state.valid_block else b"",
        valid_round=state.valid_round,
    )


_STEP_NAMES = {"NEW_HEIGHT": "NewHeight", "PROPOSE": "Propose", "PREVOTE": "Prevote",
               "PRECOMMIT": "Precommit", "COMMIT": "Commit"}


class NodeView:
    """Implements :class:`rpc.api.NodeAPI` over the parts of a running node.

    Built from what it reads: the chain, the mempool, the network and config (for ``status``
    and ``net_info``), the validator key, the node's admission (``admit``, the one way a tx
    enters the mempool), whether the node is still catching up, and ``shed`` (a client tx's
    refusal for load, before any work: :class:`node.overload.LoadShedder`) and the
    :class:`node.execution.ExecutionGate` whose running block every read waits for.
    """

    def __init__(self, chain: Chain, mempool: Mempool, network: Network, config: Config, *,
                 validator_key: PrivateKey, admit: Callable[[bytes], Awaitable[MempoolResult]],
                 catching_up: Callable[[], bool],
                 round_state: Callable[[], ConsensusState | None] = lambda: None,
                 shed: Callable[[bytes], Refusal | None] = lambda tx: None,
                 gate: ExecutionGate | None = None) -> None:
        self.chain = chain
        self.pool = mempool
        self.network = network
        self.config = config
        self.validator_address = validator_key.address
        self.validator_public_key = validator_key.public_key
        self.admit = admit
        self.catching_up = catching_up
        self.round_state = round_state
        self.shed = shed
        self.gate = gate or ExecutionGate()
        """Every read of the chain or the app first awaits ``gate.idle()`` (no torn reads)."""
        self.events = EventBus()
        self.queries = ClearingQueries(chain.app, chain.store)

    # --- publishing -----------------------------------------------------------------------

    def publish(self, executed: ExecutedBlock) -> None:
        block = executed.block
        height = block.height
        results = [_tx_result(result_to_obj(r)) for r in executed.results]
        records = [
            TxRecord(tx_hash, height, index, tx, result, outcome.kind,
                     accounts_of(outcome.events, outcome.sender))
            for index, (tx_hash, tx, result, outcome) in enumerate(
                zip(executed.tx_hashes, block.txs, results, executed.results))
        ]
        block_results = BlockResults(
            height, tuple(results), tuple(executed.begin_events), tuple(executed.end.events),
            tuple({"pub_key": u.pub_key, "power": u.power} for u in executed.end.validator_updates),
            executed.app_hash)
        publish_block(self.events, block_view(block), block_results, records)

    # --- chain ----------------------------------------------------------------------------

    async def status(self) -> NodeStatus:
        await self.gate.idle()
        chain, network, config = self.chain, self.network, self.config
        height = chain.height
        block = chain.block(height) if height else None
        validators = chain.validators(height + 1)
        me = validators.get(self.validator_address) if validators is not None else None
        return NodeStatus(
            node_id=network.peer_id, moniker=config.node.moniker, chain_id=chain.chain_id,
            version=__version__, listen_addr=", ".join(network.listen_addrs()),
            rpc_addr=config.rpc.listen_address, latest_block_height=height,
            latest_block_hash=block.hash() if block else b"", latest_app_hash=chain.app_hash,
            latest_block_time_ns=block.header.time_ms * 1_000_000 if block else 0,
            earliest_block_height=chain.earliest_height, catching_up=self.catching_up(),
            validator_address=self.validator_address, validator_pub_key=self.validator_public_key,
            validator_voting_power=me.voting_power if me is not None else 0,
        )

    async def consensus_state(self) -> RoundStateView:
        await self.gate.idle()
        state = self.round_state()
        if state is None:  # consensus not started (block sync, state sync)
            return RoundStateView(self.chain.height + 1, 0, "NewHeight")
        return round_state_view(state)

    async def net_info(self) -> NetInfo:
        network = self.network
        return NetInfo(True, network.listen_addrs(), [PeerView(p, "") for p in network.peers()],
                       [PersistentPeerView(s.peer_id, s.address, s.connected, s.since_ms, s.dials,
                                           s.next_dial_ms, s.last_error)
                        for s in network.persistent_peers.values()])

    async def genesis(self) -> Mapping[str, Any]:
        return self.chain.genesis.to_dict()

    async def validators(self, height: int | None) -> tuple[int, Sequence[ValidatorView]]:
        await self.gate.idle()
        at = self.chain.height + 1 if height is None else height
        validators = self.chain.validators(at)
        if validators is None:
            raise unavailable(f"no validator set known for height {at}")
        return at, [ValidatorView(v.address, v.public_key, v.voting_power, v.proposer_priority)
                    for v in validators.validators]

    def _at(self, height: int | None) -> int | None:
        """The height asked for if stored; None if it is not committed yet (or <= 0).

        Raises UNAVAILABLE for a height pruned away (``storage.keep_blocks``), naming the
        lowest height this node still has, as CometBFT does."""
        latest = self.chain.height
        if height is None:
            return latest or None
        if not 1 <= height <= latest:
            return None
        earliest = self.chain.earliest_height
        if height < earliest:
            raise unavailable(f"height {height} is not available, lowest height is {earliest} "
                              "(this node prunes blocks: storage.keep_blocks)")
        return height

    async def block(self, height: int | None) -> BlockView | None:
        await self.gate.idle()
        at = self._at(height)
        block = self.chain.block(at) if at else None
        return None if block is None else block_view(block)

    async def block_by_hash(self, block_hash: bytes) -> BlockView | None:
        await self.gate.idle()
        height = self.chain.blocks.height_of(block_hash)
        return None if height is None else await self.block(height)

    async def block_results(self, height: int | None) -> BlockResults | None:
        await self.gate.idle()
        at = self._at(height)
        if at is None:
            return None
        meta = self.chain.block_meta(at)
        results = self.chain.tx_results(at)
        if meta is None or results is None:
            return None
        following = self.chain.block(at + 1)
        app_hash = following.header.app_hash if following else (
            self.chain.app_hash if at == self.chain.height else b"")
        return BlockResults(at, tuple(_tx_result(r) for r in results), tuple(meta["begin"]),
                            tuple(meta["end"]), tuple(meta["updates"]), app_hash)

    async def commit(self, height: int | None) -> CommitView | None:
        await self.gate.idle()
        at = self._at(height)
        if at is None:
            return None
        block, commit = self.chain.block(at), self.chain.commit(at)
        if block is None or commit is None:
            return None
        raw = encode({"header": block.header.to_obj(), "commit": commit.to_obj()})
        return CommitView(at, block_view(block).header, commit.to_obj(), block.hash(), raw=raw)

    async def tx(self, tx_hash: bytes) -> TxRecord | None:
        await self.gate.idle()
        location = self.chain.blocks.tx(tx_hash)
        if location is None:
            return None
        block = self.chain.block(location.height)
        if block is None:
            return None
        obj = decode(location.result)
        return TxRecord(tx_hash, location.height, location.index, block.txs[location.index],
                        _tx_result(obj), obj.get("kind", ""),
                        accounts_of(obj.get("events", ()), obj.get("sender", b"")))

    # --- mempool --------------------------------------------------------------------------

    async def check_tx(self, tx: bytes) -> TxResultView:
        await self.gate.idle()
        result = self.chain.app.check_tx(tx)
        return TxResultView(int(result.code), result.log, "clearing" if result.code else "")

    async def broadcast_tx(self, tx: bytes) -> TxResultView:
        """Raises -32002 with ``data.retry_after_ms`` when the node sheds load (node.overload)."""
        refusal = self.shed(tx)
        if refusal is not None:
            raise overloaded(refusal.reason, refusal.retry_after_ms)
        result = await self.admit(tx)
        return TxResultView(result.code, result.log, result.codespace)

    async def mempool(self, limit: int) -> MempoolInfo:
        pool = self.pool
        return MempoolInfo(len(pool), pool.total_bytes, tuple(pool.txs(limit)))

    # --- state ----------------------------------------------------------------------------

    async def query(self, path: str, data: bytes, height: int | None, prove: bool) -> QueryResult:
        await self.gate.idle()
        return await self.queries.query(path, data, height, prove)

    async def account(self, address: bytes, height: int | None) -> Any:
        await self.gate.idle()
        return await self.queries.account(address, height)

    async def positions(self, address: bytes, height: int | None) -> Any:
        await self.gate.idle()
        return await self.queries.positions(address, height)

    async def assets(self) -> Any:
        return await self.queries.assets()

    async def markets(self, height: int | None) -> Any:
        await self.gate.idle()
        return await self.queries.markets(height)

    async def market(self, market_id: str, height: int | None) -> Any:
        await self.gate.idle()
        return await self.queries.market(market_id, height)

    async def prices(self, height: int | None) -> Any:
        await self.gate.idle()
        return await self.queries.prices(height)

    async def insurance_fund(self, height: int | None) -> Any:
        await self.gate.idle()
        return await self.queries.insurance_fund(height)

    async def liquidations(self, min_height: int, max_height: int, offset: int,
                           limit: int) -> LiquidationPage:
        """A page of the waterfall event log through the chain's index: O(page), exact total."""
        await self.gate.idle()
        items, total = self.chain.event_log.page(min_height, max_height, offset, limit)
        return LiquidationPage(tuple(items), total, True)

    async def accounts_at_risk(self, offset: int, limit: int) -> Any:
        await self.gate.idle()  # the liquidation index is the app's, updated by execution
        return await self.queries.accounts_at_risk(offset, limit)

    async def account_health(self, address: bytes, height: int | None) -> Any:
        await self.gate.idle()
        return await self.queries.account_health(address, height)

    async def check_margin(self, address: bytes, order: Mapping[str, Any]) -> Any:
        await self.gate.idle()
        return await self.queries.check_margin(address, order)
