"""The light client's shell: light blocks over RPC, a verified-header store, proved answers.

- :class:`RPCProvider` reads a node's ``commit`` (its ``raw`` canonical signed header) and
  ``validators`` (every page) into :class:`consensus.light.LightBlock` (CometBFT's
  ``light/provider/http``).
- :class:`LightClient` holds the verified headers: it starts from an operator's trusted height
  and hash, verifies forward by bisection (or every header, ``sequential=True``) with
  :mod:`consensus.light`, backwards by the hash chain (``last_block_id``), and cross-checks each
  new header with its witnesses (:func:`consensus.light.detect_attack`; an attack raises
  :class:`AttackDetected` with the evidence, a lying witness is dropped).
- :class:`AnswerProver` is the ``rpc.client.AnswerVerifier`` of a verifying ``Client``: headers,
  blocks and validator sets against verified headers; ``query`` and ``account`` by the store's
  Merkle proof against the app hash of the height, which header h + 1 carries. Anything else
  is refused (:class:`rpc.client.UnverifiableAnswer`).

It lives in ``node`` because it joins ``rpc`` (the client), ``consensus`` (verification) and
``state`` (the proof format and account encoding), which may not import each other.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from consensus.commit import CommitError, verify_commit
from consensus.light import (
    FaultyWitnessError,
    InvalidHeaderError,
    LightBlock,
    LightClientAttackEvidence,
    LightClientError,
    Options,
    detect_attack,
    verify_sequential,
    verify_skipping,
)
from consensus.types import Commit, Header, MessageError, txs_hash
from consensus.validators import ValidatorSet, ValidatorSetError
from node.clock import now_ms as wall_clock_ms
from primitives.codec import CodecError, decode
from primitives.crypto import AddressError, parse_address
from rpc.client import RPCClientError, UnverifiableAnswer
from state.model import Account, account_key
from state.store.proof import decode_proof, verify_proof

log = logging.getLogger(__name__)

Call = Callable[..., Any]
DEFAULT_TRUSTING_PERIOD_MS = 14 * 24 * 3600 * 1000
"""Two weeks, under any unbonding period a clearing chain would run (CometBFT's example is
two thirds of the unbonding period)."""
VALIDATORS_PER_PAGE = 100


class BadAnswer(InvalidHeaderError):
    """A node's answer that is malformed or does not match what it claims to be."""


class ProofFailed(UnverifiableAnswer):
    """A node's answer contradicts a verified header or fails its Merkle proof: it lies."""


class AttackDetected(LightClientError):
    """A witness holds a conflicting header that verifies: the chain was attacked."""

    def __init__(self, evidence: LightClientAttackEvidence) -> None:
        super().__init__(f"{evidence.kind} attack at height {evidence.conflicting_block.height}"
                         f" (common height {evidence.common_height})")
        self.evidence = evidence


def _b64(value: Any) -> bytes:
    return base64.b64decode(value, validate=True)


class RPCProvider:
    """Light blocks of one node; ``call(method, **params)`` is an unverified RPC call."""

    def __init__(self, call: Call, name: str = "primary") -> None:
        self.call = call
        self.name = name

    def chain_id(self) -> str:
        return str(self.call("status")["node_info"]["network"])

    def latest_height(self) -> int:
        return int(self.call("status")["sync_info"]["latest_block_height"])

    def signed_header(self, height: int) -> tuple[Header, Commit]:
        try:
            answer = self.call("commit", height=height)
            obj = decode(_b64(answer["raw"]))
            return Header.from_obj(obj["header"]), Commit.from_obj(obj["commit"])
        except (KeyError, TypeError, ValueError, CodecError, MessageError) as exc:
            raise BadAnswer(f"{self.name}: malformed commit of height {height}: {exc}") from exc

    def validator_set(self, height: int) -> ValidatorSet:
        members: list[dict[str, Any]] = []
        page = 1
        try:
            while True:
                answer = self.call("validators", height=height, page=page,
                                   per_page=VALIDATORS_PER_PAGE)
                for v in answer["validators"]:
                    members.append({"address": bytes.fromhex(v["address"]),
                                    "pub_key": _b64(v["pub_key"]["value"]),
                                    "power": int(v["voting_power"]),
                                    "priority": int(v["proposer_priority"])})
                if len(members) >= int(answer["total"]) or not answer["validators"]:
                    break
                page += 1
            return ValidatorSet.from_obj({"validators": members, "proposer": None})
        except (KeyError, TypeError, ValueError, ValidatorSetError) as exc:
            raise BadAnswer(f"{self.name}: malformed validators of height {height}: {exc}") from exc

    def light_block(self, height: int) -> LightBlock:
        header, commit = self.signed_header(height)
        if header.height != height:
            raise BadAnswer(f"{self.name}: asked for height {height}, got {header.height}")
        return LightBlock(header, commit, self.validator_set(height))


class LightClient:
    """Verified headers of one chain, from a trusted (height, hash) on (see the module doc)."""

    def __init__(
        self,
        primary: RPCProvider,
        *,
        chain_id: str,
        trusted_height: int,
        trusted_hash: bytes,
        options: Options | None = None,
        witnesses: Sequence[RPCProvider] = (),
        sequential: bool = False,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.primary = primary
        self.chain_id = chain_id
        self.options = options or Options(trusting_period_ms=DEFAULT_TRUSTING_PERIOD_MS)
        self.witnesses = list(witnesses)
        self.sequential = sequential
        self.now_ms = now_ms
        self.verified: dict[int, LightBlock] = {}
        self._initialize(trusted_height, trusted_hash)

    def _initialize(self, height: int, trusted_hash: bytes) -> None:
        """CometBFT ``initializeWithTrustOptions``: the block of the trusted hash, its own
        +2/3 commit, and not expired."""
        block = self.primary.light_block(height)
        if block.hash() != trusted_hash:
            raise InvalidHeaderError(
                f"header {height} has hash {block.hash().hex().upper()}, "
                f"trusted {trusted_hash.hex().upper()}")
        block.validate_basic(self.chain_id)
        try:
            verify_commit(self.chain_id, block.validators, block.header.block_id(), height,
                          block.commit)
        except CommitError as exc:
            raise InvalidHeaderError(f"trusted header's commit: {exc}") from exc
        if block.time_ms + self.options.trusting_period_ms <= self.now_ms():
            raise LightClientError(f"trusted header {height} is already past the trusting period")
        self.verified[height] = block

    @property
    def latest(self) -> LightBlock:
        return self.verified[max(self.verified)]

    def update(self) -> LightBlock:
        """Verify the primary's latest header."""
        return self.verify_height(self.primary.latest_height())

    def verify_height(self, height: int) -> LightBlock:
        """The verified light block of ``height`` (fetched and verified if new)."""
        found = self.verified.get(height)
        if found is not None:
            return found
        if height > max(self.verified):
            return self._verify_forward(height)
        return self._verify_backward(height)

    def _verify_forward(self, height: int) -> LightBlock:
        trusted = self.latest
        fetch = self.primary.light_block
        now = self.now_ms()
        if self.sequential:
            trace = verify_sequential(self.chain_id, trusted, height, fetch, now, self.options)
        else:
            trace = verify_skipping(self.chain_id, trusted, height, fetch, now, self.options)
        self._cross_check([trusted, *trace], now)
        for block in trace:
            self.verified[block.height] = block
        return trace[-1]

    def _cross_check(self, trace: list[LightBlock], now: int) -> None:
        for witness in list(self.witnesses):
            try:
                evidence = detect_attack(self.chain_id, trace, witness.light_block, now,
                                         self.options)
            except (FaultyWitnessError, BadAnswer, RPCClientError) as exc:
                log.warning("dropping witness %s: %s", witness.name, exc)
                self.witnesses.remove(witness)
                continue
            if evidence is not None:
                raise AttackDetected(evidence)

    def _verify_backward(self, height: int) -> LightBlock:
        """Below the trusted block: each header is the one its successor names."""
        above = self.verified[min(h for h in self.verified if h > height)]
        while above.height > height:
            block = self.primary.light_block(above.height - 1)
            block.validate_basic(self.chain_id)
            if above.header.last_block_id != block.header.block_id():
                raise InvalidHeaderError(
                    f"header {block.height} is not the one header {above.height} follows")
            self.verified[block.height] = block
            above = block
        return above

    def app_hash_after(self, height: int, wait_s: float = 10.0) -> bytes:
        """The verified app hash after block ``height`` (in header ``height + 1``); waits up to
        ``wait_s`` for that header to exist."""
        deadline = time.monotonic() + wait_s
        while height + 1 not in self.verified and self.primary.latest_height() < height + 1:
            if time.monotonic() > deadline:
                raise UnverifiableAnswer(
                    f"header {height + 1} (with the app hash after {height}) is not there yet")
            time.sleep(0.05)
        return self.verify_height(height + 1).header.app_hash


class AnswerProver:
    """Proves RPC answers with a :class:`LightClient` (``rpc.client.Client(url, verify=...)``)."""

    def __init__(self, light: LightClient, wait_s: float = 10.0) -> None:
        self.light = light
        self.wait_s = wait_s
        self._provers: dict[str, Callable[[Call, dict[str, Any], Any], Any]] = {
            "commit": self._commit, "block": self._block, "validators": self._validators,
            "query": self._query, "abci_query": self._query, "account": self._account,
        }

    def check(self, call: Call, method: str, params: dict[str, Any], answer: Any) -> Any:
        prover = self._provers.get(method)
        if prover is None:
            raise UnverifiableAnswer(
                f"{method}: a verifying client cannot prove this answer "
                f"(provable: {', '.join(sorted(self._provers))})")
        try:
            return prover(call, params, answer)
        except AttackDetected:
            raise
        except (KeyError, TypeError, ValueError, CodecError) as exc:
            if isinstance(exc, LightClientError):
                raise ProofFailed(f"{method}: {exc}") from exc
            raise ProofFailed(f"{method}: malformed answer: {exc!r}") from exc

    # --- headers and blocks ------------------------------------------------------------------

    def _commit(self, call: Call, params: dict[str, Any], answer: Any) -> Any:
        obj = decode(_b64(answer["raw"]))
        header = Header.from_obj(obj["header"])
        if header.hash() != self.light.verify_height(header.height).hash():
            raise ProofFailed(f"commit: header {header.height} is not the verified one")
        if bytes.fromhex(answer["signed_header"]["commit"]["block_id"]["hash"]) != header.hash():
            raise ProofFailed("commit: the commit's block_id is not the header's hash")
        return answer

    def _block(self, call: Call, params: dict[str, Any], answer: Any) -> Any:
        height = int(answer["block"]["header"]["height"])
        verified = self.light.verify_height(height)
        if bytes.fromhex(answer["block_id"]["hash"]) != verified.hash():
            raise ProofFailed(f"block: {height} is not the verified block")
        txs = [_b64(tx) for tx in answer["block"]["data"]["txs"]]
        if txs_hash(txs) != verified.header.data_hash:
            raise ProofFailed(f"block: the txs of {height} are not those the header commits to")
        return answer

    def _validators(self, call: Call, params: dict[str, Any], answer: Any) -> Any:
        height = int(answer["block_height"])
        if int(answer["count"]) != int(answer["total"]):
            raise UnverifiableAnswer("validators: only a whole set can be proved (one page)")
        members = [{"address": bytes.fromhex(v["address"]), "pub_key": _b64(v["pub_key"]["value"]),
                    "power": int(v["voting_power"]), "priority": int(v["proposer_priority"])}
                   for v in answer["validators"]]
        valset = ValidatorSet.from_obj({"validators": members, "proposer": None})
        if valset.hash() != self.light.verify_height(height).header.validators_hash:
            raise ProofFailed(f"validators: not the set header {height} commits to")
        return answer

    # --- state ---------------------------------------------------------------------------------

    def _proved_value(self, call: Call, key: bytes, height: int | None) -> tuple[int, bytes | None]:
        """The store value of ``key`` at ``height`` (latest: None), proved; (height, value)."""
        params: dict[str, Any] = {"path": "/store", "data": key.hex(), "prove": True}
        if height is not None:
            params["height"] = height
        response = call("query", **params)["response"]
        if response["code"] != 0:
            raise UnverifiableAnswer(f"query: the node did not prove the key: {response['log']}")
        at = int(response["height"])
        value = None if response["value"] is None else _b64(response["value"])
        ops = response["proofOps"]["ops"]
        proof = decode_proof(_b64(ops[0]["data"]))
        app_hash = self.light.app_hash_after(at, self.wait_s)
        if not verify_proof(app_hash, key, value, proof):
            raise ProofFailed(f"query: the proof of key {key.hex()} at height {at} does not "
                              f"match the verified app hash {app_hash.hex().upper()}")
        return at, value

    def _query(self, call: Call, params: dict[str, Any], answer: Any) -> Any:
        response = answer["response"]
        if response["code"] != 0:
            raise UnverifiableAnswer(f"query: error answers are not proved: {response['log']}")
        key = _b64(response["key"])
        at, value = self._proved_value(call, key, int(response["height"]))
        claimed = None if response["value"] is None else _b64(response["value"])
        if claimed != value:
            raise ProofFailed(f"query: the value of {key.hex()} at {at} is not the proved one")
        return answer

    def _account(self, call: Call, params: dict[str, Any], answer: Any) -> Any:
        try:
            address = parse_address(answer["address"])
        except AddressError as exc:
            raise ProofFailed(f"account: bad address in answer: {exc}") from exc
        if params.get("address") not in (None, answer["address"]):
            raise ProofFailed("account: the answer is for another address")
        height = int(answer["replay"]["next_height"]) - 1
        at, value = self._proved_value(call, account_key(address), height)
        if value is None:
            raise ProofFailed(f"account: the store proves no account at height {at}")
        account = Account.decode(value)
        claimed_collateral = {k: int(v) for k, v in answer["collateral"].items()}
        if int(answer["quote"]) != account.quote or claimed_collateral != account.collateral:
            raise ProofFailed(f"account: balances differ from the proved state at height {at}")
        claimed_sizes = {p["market"]: int(p["size"]) for p in answer["positions"]}
        if claimed_sizes != {m: p[0] for m, p in account.positions.items()}:
            raise ProofFailed(f"account: positions differ from the proved state at height {at}")
        return answer
