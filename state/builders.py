"""Client-side builders: signed tx bytes for every tx kind (RPC client, CLI, load generator).

Each ``build_<kind>_tx(signer, chain_id, ..., fee=, expiry=)`` returns the canonical bytes that
:func:`state.txs.decode_tx` accepts. ``expiry`` is the last height at which the tx may execute
(current height + a few blocks is typical; at most the genesis ``replay_window_blocks`` ahead);
``nonce`` defaults to a random 63-bit integer so that equal txs stay distinct.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from primitives.codec import encode
from primitives.crypto import Signer, sign_bytes
from state.txs import ORDER_TAG, SIDE_NAMES, TX_TAG

Envelope = dict[str, bytes]


def _signed(signer: Signer, tag: str, chain_id: str, body: dict[str, Any]) -> Envelope:
    body_bytes = encode(body)
    return {"body": body_bytes, "sig": signer.sign(sign_bytes(tag, chain_id, body_bytes))}


def build_tx(signer: Signer, chain_id: str, kind: str, msg: dict[str, Any], *, fee: int, expiry: int,
             nonce: int | None = None) -> bytes:
    """The generic builder the kind-specific ones call."""
    body = {
        "chain_id": chain_id, "kind": kind, "signer": signer.public_key, "fee": fee,
        "expiry": expiry, "nonce": secrets.randbits(63) if nonce is None else nonce, "msg": msg,
    }
    return encode(_signed(signer, TX_TAG, chain_id, body))


def build_order(signer: Signer, chain_id: str, *, market: str, side: str | int, size: int, price: int,
                order_id: int, expiry: int) -> Envelope:
    """A signed order (``side`` ``"buy"``/``"sell"`` or +1/-1) to hand to a venue."""
    side_name = SIDE_NAMES[side] if isinstance(side, int) else side
    body = {"chain_id": chain_id, "account": signer.public_key, "market": market, "side": side_name,
            "size": size, "price": price, "order_id": order_id, "expiry": expiry}
    return _signed(signer, ORDER_TAG, chain_id, body)


def build_trade_tx(signer: Signer, chain_id: str, maker: Envelope, taker: Envelope, size: int, price: int,
                   *, fee: int, expiry: int, nonce: int | None = None) -> bytes:
    """A venue's fill of ``size`` at ``price`` between two signed orders."""
    msg = {"maker": maker, "taker": taker, "size": size, "price": price}
    return build_tx(signer, chain_id, "trade", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_fills_tx(signer: Signer, chain_id: str, fills: Sequence[tuple[Envelope, Envelope, int, int]],
                   *, fee: int, expiry: int, nonce: int | None = None) -> bytes:
    """A venue's batch of ``(maker, taker, size, price)`` fills under one signature.

    Each fill clears or is refused on its own (one ``trade`` or ``fill_rejected`` event per
    fill, in order); ``fee`` must be at least the minimum tx fee times the number of fills.
    """
    msg = {"fills": [{"maker": m, "taker": t, "size": size, "price": price} for m, t, size, price in fills]}
    return build_tx(signer, chain_id, "fills", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_transfer_tx(signer: Signer, chain_id: str, to: bytes, asset: str, amount: int, *, fee: int,
                      expiry: int, nonce: int | None = None) -> bytes:
    msg = {"to": to, "asset": asset, "amount": amount}
    return build_tx(signer, chain_id, "transfer", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_deposit_tx(signer: Signer, chain_id: str, external_id: str, account: bytes, asset: str, amount: int,
                     *, fee: int, expiry: int, nonce: int | None = None) -> bytes:
    """A bridge operator's attestation of an external deposit."""
    msg = {"external_id": external_id, "account": account, "asset": asset, "amount": amount}
    return build_tx(signer, chain_id, "deposit", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_withdraw_tx(signer: Signer, chain_id: str, asset: str, amount: int, destination: str, *, fee: int,
                      expiry: int, nonce: int | None = None) -> bytes:
    msg = {"asset": asset, "amount": amount, "destination": destination}
    return build_tx(signer, chain_id, "withdraw", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_cancel_tx(signer: Signer, chain_id: str, order_id: int, order_expiry: int, *, fee: int, expiry: int,
                    nonce: int | None = None, order: Envelope | None = None) -> bytes:
    """Cancel an order by id; pass the signed ``order`` too so the chain uses its real expiry."""
    msg: dict[str, Any] = {"order_id": order_id, "order_expiry": order_expiry}
    if order is not None:
        msg["order"] = order
    return build_tx(signer, chain_id, "cancel", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_oracle_tx(signer: Signer, chain_id: str, prices: dict[str, int], *, fee: int, expiry: int,
                    nonce: int | None = None) -> bytes:
    """A feeder's price report: ``{market: price}`` in each market's price units."""
    msg = {"prices": [[market, prices[market]] for market in sorted(prices)]}
    return build_tx(signer, chain_id, "oracle", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_backstop_tx(signer: Signer, chain_id: str, market: str, max_size: int, discount_ppm: int, *,
                      fee: int, expiry: int, nonce: int | None = None) -> bytes:
    msg = {"market": market, "max_size": max_size, "discount_ppm": discount_ppm}
    return build_tx(signer, chain_id, "backstop", msg, fee=fee, expiry=expiry, nonce=nonce)


def build_vote_tx(signer: Signer, chain_id: str, proposal: dict[str, Any], *, fee: int, expiry: int,
                  nonce: int | None = None) -> bytes:
    """A validator's vote for a proposal (see ``state.governance`` for the kinds)."""
    return build_tx(signer, chain_id, "vote", {"proposal": proposal}, fee=fee, expiry=expiry, nonce=nonce)


def risk_proposal(title: str, **params: int) -> dict[str, Any]:
    """Change risk parameters (fields of ``genesis.RiskParams``)."""
    return {"kind": "set_risk", "title": title, "params": params}


def market_proposal(title: str, market: dict[str, Any]) -> dict[str, Any]:
    """Add a market or replace a market's parameters (a full genesis market entry)."""
    return {"kind": "set_market", "title": title, "market": market}


def validator_proposal(title: str, pub_key: bytes, power: int, name: str = "") -> dict[str, Any]:
    """Add a validator, change its power, or remove it (power 0)."""
    return {"kind": "set_validator", "title": title, "pub_key": pub_key, "power": power, "name": name}


def min_fee_proposal(title: str, min_tx_fee: int) -> dict[str, Any]:
    return {"kind": "set_min_fee", "title": title, "min_tx_fee": min_tx_fee}
