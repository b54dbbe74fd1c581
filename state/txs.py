"""Transaction types of the clearing application and their ONE decoding path.

Wire format (canonical msgpack, ``primitives.codec``): a signed envelope ``{"body": bytes,
"sig": bytes}`` whose ``body`` is the canonical encoding of the unsigned map

    {"chain_id", "kind", "signer" (Ed25519 public key), "fee", "expiry" (last valid height),
     "nonce" (any integer the client picks), "msg" (the kind's fields)}

The signature covers ``primitives.crypto.sign_bytes("clearchain/tx", chain_id, body)``. Orders
inside a trade are signed envelopes of their own (tag ``clearchain/order``), so a venue can pair
orders its clients signed. Keeping the signed bytes as bytes means the sign bytes never have to be
re-encoded, and a decoded body is checked canonical once.

Replay protection without nonce ordering: a tx is valid only up to its ``expiry`` height (at
most ``replay_window_blocks`` ahead) and its hash is remembered until then, so one account can
have thousands of txs in flight at once; ``nonce`` only makes otherwise equal txs distinct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from primitives.codec import CodecError, canonical_key_order, decode
from primitives.crypto import address_of, sign_bytes_of_encoded, verify
from primitives.hashing import sha256
from state.codes import Code, TxRejected

MAX_TX_BYTES = 64 * 1024
TX_TAG = "clearchain/tx"
ORDER_TAG = "clearchain/order"
MAX_AMOUNT = 2**62
MAX_FILLS = 128  # fills per ``fills`` tx: ~55 KB of orders, under MAX_TX_BYTES
MAX_ID = 2**63 - 1
BUY, SELL = 1, -1
SIDES = {"buy": BUY, "sell": SELL}
SIDE_NAMES = {BUY: "buy", SELL: "sell"}
PROPOSAL_KINDS = ("set_risk", "set_market", "set_validator", "set_min_fee", "resume_market")


# --- messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """An order signed by its account; a trade pairs two of them."""

    account_key: bytes  # the owner's public key
    account: bytes  # derived address
    market: str
    side: int  # BUY (+1) or SELL (-1)
    size: int  # in the market's size units, a multiple of its lot size
    price: int  # limit price in the market's price units
    order_id: int  # unique per account while the order lives
    expiry: int  # last height at which it may fill
    signature: bytes
    sign_message: bytes  # what the signature covers
    hash: bytes  # identity of the order: sha256 of its signed body


@dataclass(frozen=True, slots=True)
class Transfer:
    to: bytes
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class Deposit:
    """A bridge operator's attestation that ``amount`` of ``asset`` arrived for ``account``."""

    external_id: str
    account: bytes
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    asset: str
    amount: int
    destination: str


@dataclass(frozen=True, slots=True)
class Trade:
    """A fill of ``size`` at ``price`` between a maker and a taker order, submitted by a venue."""

    maker: Order
    taker: Order
    size: int
    price: int


@dataclass(frozen=True, slots=True)
class Fills:
    """A venue's batch of trades under one tx signature.

    Each fill still pairs two orders their accounts signed and clears, or is refused, on its
    own, exactly as a ``trade`` tx would; the batch saves one signature and one tx's overhead
    per fill. The fee is per fill (``min_tx_fee`` x fills at least).
    """

    fills: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class Cancel:
    """Ends an order. With ``order`` (the signed order itself) the chain reads the order's real
    expiry; without it, the cancellation is remembered until ``order_expiry`` or for the
    longest order lifetime, whichever is later."""

    order_id: int
    order_expiry: int
    order: Order | None = None


@dataclass(frozen=True, slots=True)
class OracleReport:
    prices: tuple[tuple[str, int], ...]  # (market, price), sorted by market, unique


@dataclass(frozen=True, slots=True)
class BackstopRegistration:
    """Liquidity to take over liquidated positions at oracle minus ``discount_ppm``."""

    market: str
    max_size: int  # 0 withdraws the registration
    discount_ppm: int


@dataclass(frozen=True, slots=True)
class GovernanceVote:
    """A validator's approval of a proposal; applied when > 2/3 of power approves it."""

    proposal: dict[str, Any]
    proposal_hash: bytes


Message = (Transfer | Deposit | Withdraw | Trade | Fills | Cancel | OracleReport | BackstopRegistration
           | GovernanceVote)


@dataclass(frozen=True, slots=True)
class Tx:
    kind: str
    chain_id: str
    signer: bytes  # public key
    sender: bytes  # address of the signer; pays the fee
    fee: int
    expiry: int
    nonce: int
    msg: Message
    signature: bytes
    sign_message: bytes
    hash: bytes  # sha256 of the whole tx bytes

    def orders(self) -> tuple[Order, ...]:
        msg = self.msg
        if isinstance(msg, Trade):
            return (msg.maker, msg.taker)
        if isinstance(msg, Fills):
            return tuple(order for fill in msg.fills for order in (fill.maker, fill.taker))
        return ()

    def weight(self) -> int:
        """How many txs' worth of work this is, for the minimum fee: its fills, else 1."""
        return len(self.msg.fills) if isinstance(self.msg, Fills) else 1


# --- field checks --------------------------------------------------------------------------


def _bad(message: str) -> TxRejected:
    return TxRejected(Code.INVALID_FIELD, message)


def _map(value: Any, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if type(value) is not dict:
        raise _bad(f"{what} must be a map")
    if tuple(value) == canonical_key_order(keys):  # a dict keeps wire order: these keys, in canonical order
        return value
    if len(value) != len(keys) or any(k not in value for k in keys):
        raise _bad(f"{what} must have exactly the fields {', '.join(sorted(keys))}")
    raise _NotCanonical  # right fields, wrong order: only the fast path can get here


def _uint(value: Any, what: str, low: int = 0, high: int = MAX_AMOUNT) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _bad(f"{what} must be an integer in [{low}, {high}]")
    return value


def _text(value: Any, what: str, max_len: int = 64) -> str:
    # ASCII only: str.isprintable() beyond ASCII follows the interpreter's Unicode version,
    # and two nodes on different Pythons must accept exactly the same txs.
    if (type(value) is not str or not 0 < len(value) <= max_len
            or not value.isascii() or not value.isprintable()):
        raise _bad(f"{what} must be a printable ASCII string of 1..{max_len} characters")
    return value


def _bytes(value: Any, what: str, size: int) -> bytes:
    if type(value) is not bytes or len(value) != size:
        raise _bad(f"{what} must be {size} bytes")
    return value


def _envelope(data: Any, what: str) -> tuple[bytes, bytes]:
    env = _map(data, what, ("body", "sig"))
    if type(env["body"]) is not bytes:
        raise _bad(f"{what}.body must be bytes")
    return env["body"], _bytes(env["sig"], f"{what}.sig", 64)


class _NotCanonical(Exception):
    """The fast path cannot accept these bytes; the checked path gives the verdict."""


def _refuse_ext(code: int, payload: bytes) -> Any:
    raise _NotCanonical


def _decode(data: bytes, what: str, fast: bool, max_bytes: int = MAX_TX_BYTES) -> Any:
    """Canonical decoding of a tx part.

    ``fast``: msgpack's C decoder with no per-container hooks, then a re-pack that must give
    back the input bytes (minimal ints and strings, no duplicate keys, nothing trailing);
    ``_map`` checks each map's key order against its schema. Anything else (floats, unknown
    shapes, free-form maps such as vote proposals) raises ``_NotCanonical`` and ``decode_tx``
    decodes again on the checked path, whose verdict and error are the authoritative ones.
    """
    if fast:
        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_refuse_ext)
            same = msgpack.packb(value, use_bin_type=True) == data
        except Exception:  # noqa: BLE001 - msgpack raises many types on hostile bytes
            raise _NotCanonical from None
        if not same:
            raise _NotCanonical
        return value
    try:
        return decode(data, max_bytes=max_bytes)
    except CodecError as exc:
        raise TxRejected(Code.DECODE_ERROR, f"{what}: {exc}") from exc


def _sign_bytes(tag: str, chain_id: str, body_bytes: bytes) -> bytes:
    return sign_bytes_of_encoded(tag, chain_id, body_bytes)


# --- decoding ------------------------------------------------------------------------------


def decode_order(envelope: Any, chain_id: str, what: str, fast: bool = False) -> Order:
    body_bytes, sig = _envelope(envelope, what)
    body = _map(_decode(body_bytes, what, fast), what,
                ("chain_id", "account", "market", "side", "size", "price", "order_id", "expiry"))
    if body["chain_id"] != chain_id:
        raise TxRejected(Code.WRONG_CHAIN, f"{what} is for chain {body['chain_id']!r}")
    key = _bytes(body["account"], f"{what}.account", 32)
    side = body["side"]
    if type(side) is not str or side not in SIDES:
        raise _bad(f"{what}.side must be 'buy' or 'sell'")
    return Order(
        account_key=key, account=address_of(key), market=_text(body["market"], f"{what}.market", 32),
        side=SIDES[side], size=_uint(body["size"], f"{what}.size", 1),
        price=_uint(body["price"], f"{what}.price", 1), order_id=_uint(body["order_id"], f"{what}.order_id", 0, MAX_ID),
        expiry=_uint(body["expiry"], f"{what}.expiry", 1, MAX_ID), signature=sig,
        sign_message=_sign_bytes(ORDER_TAG, chain_id, body_bytes), hash=sha256(body_bytes),
    )


def _decode_trade(msg: Any, chain_id: str, what: str, fast: bool) -> Trade:
    """A trade's fields: in a ``trade`` tx (``what`` empty) or as one of a ``fills`` tx's fills."""
    m = _map(msg, what.rstrip(".") or "msg", ("maker", "taker", "size", "price"))
    return Trade(decode_order(m["maker"], chain_id, what + "maker", fast),
                 decode_order(m["taker"], chain_id, what + "taker", fast),
                 _uint(m["size"], what + "size", 1), _uint(m["price"], what + "price", 1))


def _decode_msg(kind: str, msg: Any, chain_id: str, fast: bool) -> Message:
    if kind == "trade":
        return _decode_trade(msg, chain_id, "", fast)
    if kind == "fills":
        fills = _map(msg, "msg", ("fills",))["fills"]
        if type(fills) is not list or not 0 < len(fills) <= MAX_FILLS:
            raise _bad(f"fills must be a list of 1..{MAX_FILLS} trades")
        return Fills(tuple(_decode_trade(fill, chain_id, f"fills[{i}].", fast) for i, fill in enumerate(fills)))
    if kind == "transfer":
        m = _map(msg, "msg", ("to", "asset", "amount"))
        return Transfer(_bytes(m["to"], "to", 20), _text(m["asset"], "asset", 16), _uint(m["amount"], "amount", 1))
    if kind == "deposit":
        m = _map(msg, "msg", ("external_id", "account", "asset", "amount"))
        return Deposit(_text(m["external_id"], "external_id", 128), _bytes(m["account"], "account", 20),
                       _text(m["asset"], "asset", 16), _uint(m["amount"], "amount", 1))
    if kind == "withdraw":
        m = _map(msg, "msg", ("asset", "amount", "destination"))
        return Withdraw(_text(m["asset"], "asset", 16), _uint(m["amount"], "amount", 1),
                        _text(m["destination"], "destination", 128))
    if kind == "cancel":
        with_order = type(msg) is dict and "order" in msg
        m = _map(msg, "msg", ("order_id", "order_expiry", "order") if with_order else ("order_id", "order_expiry"))
        order = decode_order(m["order"], chain_id, "order", fast) if with_order else None
        return Cancel(_uint(m["order_id"], "order_id", 0, MAX_ID), _uint(m["order_expiry"], "order_expiry", 1, MAX_ID),
                      order)
    if kind == "oracle":
        m = _map(msg, "msg", ("prices",))
        prices = m["prices"]
        if type(prices) is not list or not 0 < len(prices) <= 256:
            raise _bad("prices must be a list of 1..256 [market, price] pairs")
        pairs = []
        for i, pair in enumerate(prices):
            if type(pair) is not list or len(pair) != 2:
                raise _bad(f"prices[{i}] must be a [market, price] pair")
            pairs.append((_text(pair[0], f"prices[{i}].market", 32), _uint(pair[1], f"prices[{i}].price", 1)))
        if [p[0] for p in pairs] != sorted({p[0] for p in pairs}):
            raise _bad("prices must be sorted by market without repeats")
        return OracleReport(tuple(pairs))
    if kind == "backstop":
        m = _map(msg, "msg", ("market", "max_size", "discount_ppm"))
        return BackstopRegistration(_text(m["market"], "market", 32), _uint(m["max_size"], "max_size"),
                                    _uint(m["discount_ppm"], "discount_ppm", 0, 500_000))
    if kind == "vote":
        if fast:
            raise _NotCanonical  # a free-form map: only the checked path checks its key order
        m = _map(msg, "msg", ("proposal",))
        proposal = m["proposal"]
        if type(proposal) is not dict or proposal.get("kind") not in PROPOSAL_KINDS:
            raise _bad(f"proposal must be a map whose kind is one of {', '.join(PROPOSAL_KINDS)}")
        from primitives.codec import encode

        try:
            proposal_hash = sha256(encode(proposal))
        except CodecError as exc:
            raise _bad(f"proposal has no canonical encoding: {exc}") from exc
        return GovernanceVote(proposal, proposal_hash)
    raise TxRejected(Code.UNKNOWN_KIND, f"unknown tx kind {kind!r}")


def decode_tx(data: bytes, chain_id: str) -> Tx:
    """Decode and statelessly validate a tx (signatures are checked by :func:`verify_tx`).

    A well-formed tx is accepted by the fast path; anything it refuses is decoded again on
    the checked path, so every rejection (its code and log) comes from one place.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TxRejected(Code.DECODE_ERROR, "a tx must be bytes")
    if len(data) > MAX_TX_BYTES:
        raise TxRejected(Code.TX_TOO_LARGE, f"tx of {len(data)} bytes exceeds {MAX_TX_BYTES}")
    data = bytes(data)
    try:
        return _decode_tx(data, chain_id, fast=True)
    except Exception:  # noqa: BLE001 - any refusal, or a surprise, defers to the checked path
        return _decode_tx(data, chain_id, fast=False)


def _decode_tx(data: bytes, chain_id: str, fast: bool) -> Tx:
    body_bytes, sig = _envelope(_decode(data, "tx", fast), "tx")
    body = _map(_decode(body_bytes, "tx body", fast), "tx body",
                ("chain_id", "kind", "signer", "fee", "expiry", "nonce", "msg"))
    if body["chain_id"] != chain_id:
        raise TxRejected(Code.WRONG_CHAIN, f"tx is for chain {body['chain_id']!r}, this is {chain_id!r}")
    kind = body["kind"]
    if type(kind) is not str:
        raise TxRejected(Code.UNKNOWN_KIND, "kind must be a string")
    signer = _bytes(body["signer"], "signer", 32)
    return Tx(
        kind=kind, chain_id=chain_id, signer=signer, sender=address_of(signer),
        fee=_uint(body["fee"], "fee"), expiry=_uint(body["expiry"], "expiry", 1, MAX_ID),
        nonce=_uint(body["nonce"], "nonce", 0, MAX_ID), msg=_decode_msg(kind, body["msg"], chain_id, fast),
        signature=sig, sign_message=_sign_bytes(TX_TAG, chain_id, body_bytes), hash=sha256(data),
    )


def verify_tx(tx: Tx, verified_orders: set[bytes] | None = None) -> TxRejected | None:
    """Check every signature of ``tx`` with THE verifier; None when all hold.

    ``verified_orders`` (per node) remembers orders already verified, so an order filled by many
    trades is verified once.
    """
    if not verify(tx.signer, tx.sign_message, tx.signature):
        return TxRejected(Code.BAD_SIGNATURE, "tx signature does not verify")
    for order in tx.orders():
        key = order.hash + order.signature
        if verified_orders is not None and key in verified_orders:
            continue
        if not verify(order.account_key, order.sign_message, order.signature):
            return TxRejected(Code.BAD_ORDER_SIGNATURE, f"order {order.order_id} signature does not verify")
        if verified_orders is not None:
            verified_orders.add(key)
    return None
