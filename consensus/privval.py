"""The private validator: the last line of defence against double signing.

Before a signature leaves :class:`PrivValidator`, the (height, round, step, sign bytes,
signature) it covers is durably stored (file backend: write a temporary file, fsync it, rename
it over the state file, fsync the directory). A request is then judged against that record:

- a lower (height, round, step) than the last signed: refused (going backwards);
- the same (height, round, step) with the same sign bytes: the stored signature again;
- the same (height, round, step), sign bytes differing only in the timestamp: the stored
  signature with the stored timestamp (the caller's message is rewritten; CometBFT does this
  so a restart that re-requests its vote gets the identical vote);
- the same (height, round, step) with any other difference: refused;
- a higher one: signed and recorded.

Steps: 1 proposal, 2 prevote, 3 precommit (a proposal and our prevote of one round never
conflict: they are different steps).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from primitives.codec import CodecError, decode, encode
from primitives.crypto import PrivateKey, Signer
from primitives.durable import replace_file
from consensus.types import Proposal, Vote, VoteType

STEP_PROPOSE = 1
STEP_PREVOTE = 2
STEP_PRECOMMIT = 3
_TIMESTAMP_INDEX = 4  # position of timestamp_ms in both Vote and Proposal sign bodies


class DoubleSignError(Exception):
    """The request conflicts with something already signed; nothing was signed."""


class PrivvalStateError(Exception):
    """The private validator's state file cannot be read: refuse to run rather than guess."""


class PrivvalWriteError(Exception):
    """The last-signed state could not be made durable (a full disk): nothing was signed.

    The signature it would have covered is dropped, and the stored state is the one before
    (the file is replaced atomically), so a restart judges requests against what did leave.
    The caller should stop: every later signature needs the same write.
    """

    def __init__(self, path: Path, height: int, cause: OSError) -> None:
        self.path = path
        self.height = height
        super().__init__(
            f"cannot store the last-signed state in {path} at height {height}: {cause}")


@dataclass(frozen=True)
class LastSignState:
    height: int
    round: int
    step: int
    sign_bytes: bytes
    signature: bytes

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step)

    def to_obj(self) -> dict:
        return {
            "height": self.height,
            "round": self.round,
            "step": self.step,
            "sign_bytes": self.sign_bytes,
            "signature": self.signature,
        }

    @classmethod
    def from_obj(cls, obj: object) -> LastSignState:
        if not isinstance(obj, dict):
            raise PrivvalStateError("privval state must be a map")
        try:
            state = cls(
                obj["height"], obj["round"], obj["step"], obj["sign_bytes"], obj["signature"]
            )
        except KeyError as exc:
            raise PrivvalStateError(f"privval state lacks {exc}") from exc
        if not all(type(x) is int for x in state.hrs) or not isinstance(state.sign_bytes, bytes):
            raise PrivvalStateError("privval state has wrong field types")
        return state


class PrivvalStore(Protocol):
    def load(self) -> LastSignState | None: ...

    def save(self, state: LastSignState) -> None:
        """Return only once ``state`` is durable."""


class MemoryPrivvalStore:
    """In-memory store (simulation, tests): survives a simulated crash, not a real one."""

    def __init__(self) -> None:
        self.state: LastSignState | None = None
        self.history: list[LastSignState] = []

    def load(self) -> LastSignState | None:
        return self.state

    def save(self, state: LastSignState) -> None:
        self.state = state
        self.history.append(state)


class FilePrivvalStore:
    """The state file ``priv_validator_state`` of a node home (msgpack)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> LastSignState | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PrivvalStateError(f"cannot read {self.path}: {exc}") from exc
        try:
            return LastSignState.from_obj(decode(data))
        except CodecError as exc:
            raise PrivvalStateError(f"{self.path} is corrupt: {exc}") from exc

    def save(self, state: LastSignState) -> None:
        """Replace the file atomically; :class:`PrivvalWriteError` if that fails."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(self.path, encode(state.to_obj()))
        except OSError as exc:
            raise PrivvalWriteError(self.path, state.height, exc) from exc


class PrivValidator:
    def __init__(self, key: PrivateKey | Signer, store: PrivvalStore) -> None:
        self.signer = key if isinstance(key, Signer) else Signer(key)
        self.store = store
        self.last = store.load()

    @property
    def address(self) -> bytes:
        return self.signer.address

    @property
    def public_key(self) -> bytes:
        return self.signer.public_key

    def sign_vote(self, chain_id: str, vote: Vote) -> Vote:
        """The vote signed (possibly with the stored timestamp).

        Raises :class:`DoubleSignError` (a conflict) or :class:`PrivvalWriteError` (the state
        could not be stored); either way no signature is returned.
        """
        step = STEP_PREVOTE if vote.type == VoteType.PREVOTE else STEP_PRECOMMIT
        timestamp, signature = self._sign(
            vote.height, vote.round, step, vote.sign_body(), chain_id, vote
        )
        return replace(vote, timestamp_ms=timestamp, signature=signature)

    def sign_proposal(self, chain_id: str, proposal: Proposal) -> Proposal:
        """The proposal signed; raises as :meth:`sign_vote`."""
        timestamp, signature = self._sign(
            proposal.height, proposal.round, STEP_PROPOSE, proposal.sign_body(), chain_id, proposal
        )
        return replace(proposal, timestamp_ms=timestamp, signature=signature)

    def _sign(
        self, height: int, round_: int, step: int, body: list, chain_id: str, msg: Vote | Proposal
    ) -> tuple[int, bytes]:
        sign_bytes = msg.sign_bytes(chain_id)
        hrs = (height, round_, step)
        last = self.last
        if last is not None:
            if hrs < last.hrs:
                raise DoubleSignError(f"refusing to sign {hrs}: already signed {last.hrs}")
            if hrs == last.hrs:
                if sign_bytes == last.sign_bytes:
                    return body[_TIMESTAMP_INDEX], last.signature
                stored = _without_timestamp(last.sign_bytes)
                if stored is not None and stored[0] == _without_timestamp(sign_bytes)[0]:  # type: ignore[index]
                    return stored[1], last.signature
                raise DoubleSignError(f"refusing to sign conflicting data at {hrs}")
        signature = self.signer.sign(sign_bytes)
        record = LastSignState(height, round_, step, sign_bytes, signature)
        self.store.save(record)  # durable before the signature is released
        self.last = record
        return body[_TIMESTAMP_INDEX], signature


def _without_timestamp(sign_bytes: bytes) -> tuple[bytes, int] | None:
    """(sign bytes with the timestamp zeroed, the timestamp), or None if undecodable."""
    try:
        tag, chain_id, body = decode(sign_bytes)
        timestamp = body[_TIMESTAMP_INDEX]
        body = list(body)
        body[_TIMESTAMP_INDEX] = 0
        return encode([tag, chain_id, body]), timestamp
    except (CodecError, ValueError, TypeError, IndexError):
        return None
