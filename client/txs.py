"""What a client can send: one dataclass per tx kind, each building its signed bytes through
:mod:`state.builders` (the one encoder of txs) once the client knows the chain id, the fee and
the expiry height.

    client.send(alice, Transfer(to=bob.address, asset="USDC", amount=5_000_000))

Orders are not txs: :func:`sign_order` signs one for a venue, which pairs two in a
:class:`Trade` or a :class:`Fills` batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from primitives.crypto import Signer
from state import builders
from state.builders import Envelope


class TxMessage(Protocol):
    kind: ClassVar[str]

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        """The signed tx bytes."""
        ...

    def fee_units(self) -> int:
        """How many minimum fees the tx owes (one per fill in a batch, else one)."""
        ...


@dataclass(frozen=True)
class _One:
    def fee_units(self) -> int:
        return 1


@dataclass(frozen=True)
class Transfer(_One):
    """Move collateral to another account."""

    kind: ClassVar[str] = "transfer"
    to: bytes
    asset: str
    amount: int

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_transfer_tx(signer, chain_id, self.to, self.asset, self.amount, fee=fee, expiry=expiry)


@dataclass(frozen=True)
class Deposit(_One):
    """A bridge operator's attestation of an external deposit to ``account``."""

    kind: ClassVar[str] = "deposit"
    external_id: str
    account: bytes
    asset: str
    amount: int

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_deposit_tx(signer, chain_id, self.external_id, self.account, self.asset,
                                         self.amount, fee=fee, expiry=expiry)


@dataclass(frozen=True)
class Withdraw(_One):
    kind: ClassVar[str] = "withdraw"
    asset: str
    amount: int
    destination: str

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_withdraw_tx(signer, chain_id, self.asset, self.amount, self.destination,
                                          fee=fee, expiry=expiry)


@dataclass(frozen=True)
class Trade(_One):
    """A venue's fill of ``size`` at ``price`` between two signed orders."""

    kind: ClassVar[str] = "trade"
    maker: Envelope
    taker: Envelope
    size: int
    price: int

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_trade_tx(signer, chain_id, self.maker, self.taker, self.size, self.price,
                                       fee=fee, expiry=expiry)


@dataclass(frozen=True)
class Fills:
    """A venue's batch of ``(maker, taker, size, price)`` fills under one signature."""

    kind: ClassVar[str] = "fills"
    fills: Sequence[tuple[Envelope, Envelope, int, int]]

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_fills_tx(signer, chain_id, self.fills, fee=fee, expiry=expiry)

    def fee_units(self) -> int:
        return len(self.fills)


@dataclass(frozen=True)
class Cancel(_One):
    """End one of the signer's orders; with ``order`` the chain reads its real expiry."""

    kind: ClassVar[str] = "cancel"
    order_id: int
    order_expiry: int
    order: Envelope | None = None

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_cancel_tx(signer, chain_id, self.order_id, self.order_expiry, fee=fee,
                                        expiry=expiry, order=self.order)


@dataclass(frozen=True)
class OracleReport(_One):
    """A feeder's prices, ``{market: price}`` in each market's price units."""

    kind: ClassVar[str] = "oracle"
    prices: dict[str, int]

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_oracle_tx(signer, chain_id, self.prices, fee=fee, expiry=expiry)


@dataclass(frozen=True)
class Backstop(_One):
    """Offer to take over liquidated positions of ``market`` up to ``max_size`` (0 withdraws)."""

    kind: ClassVar[str] = "backstop"
    market: str
    max_size: int
    discount_ppm: int

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_backstop_tx(signer, chain_id, self.market, self.max_size, self.discount_ppm,
                                          fee=fee, expiry=expiry)


@dataclass(frozen=True)
class Vote(_One):
    """A validator's vote for a governance proposal (``state.builders.*_proposal``)."""

    kind: ClassVar[str] = "vote"
    proposal: dict[str, Any]

    def build(self, signer: Signer, chain_id: str, *, fee: int, expiry: int) -> bytes:
        return builders.build_vote_tx(signer, chain_id, self.proposal, fee=fee, expiry=expiry)


KINDS: dict[str, type[TxMessage]] = {cls.kind: cls for cls in (
    Transfer, Deposit, Withdraw, Trade, Fills, Cancel, OracleReport, Backstop, Vote)}
"""Every tx kind the client builds (``tests/client`` holds it to ``state.execute.HANDLERS``)."""


def sign_order(signer: Signer, chain_id: str, *, market: str, side: str | int, size: int, price: int,
               order_id: int, expiry: int) -> Envelope:
    """A signed order to hand to a venue (not a tx)."""
    return builders.build_order(signer, chain_id, market=market, side=side, size=size, price=price,
                                order_id=order_id, expiry=expiry)
