"""Result codes of the clearing application: every rejection has its own code and a message.

Codes are part of the protocol (they go into block results and are hashed), so they are never
renumbered; new codes are appended.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    OK = 0
    # decoding and envelope (stateless)
    DECODE_ERROR = 1
    TX_TOO_LARGE = 2
    WRONG_CHAIN = 3
    BAD_SIGNATURE = 4
    UNKNOWN_KIND = 5
    INVALID_FIELD = 6
    # ante checks (cheap stateful)
    TX_EXPIRED = 10
    EXPIRY_TOO_FAR = 11
    DUPLICATE_TX = 12
    FEE_TOO_LOW = 13
    INSUFFICIENT_FEE_FUNDS = 14
    # collateral
    UNKNOWN_ASSET = 20
    INSUFFICIENT_BALANCE = 21
    INSUFFICIENT_MARGIN = 22
    SELF_TRANSFER = 23
    NOT_BRIDGE_OPERATOR = 24
    DEPOSIT_ALREADY_CREDITED = 25
    DEPOSIT_ALREADY_ATTESTED = 26
    AMOUNT_TOO_LARGE = 27
    # trades and orders
    UNKNOWN_MARKET = 30
    MARKET_MISMATCH = 31
    SIDE_MISMATCH = 32
    SAME_ACCOUNT = 33
    ORDER_EXPIRED = 34
    ORDER_CANCELLED = 35
    ORDER_OVERFILL = 36
    ORDER_ID_REUSED = 37
    PRICE_OUTSIDE_LIMIT = 38
    NOT_LOT_MULTIPLE = 39
    NOT_TICK_MULTIPLE = 40
    MARKET_NOT_ACTIVE = 41
    ORDER_LIFETIME_TOO_LONG = 42
    BAD_ORDER_SIGNATURE = 43
    PRICE_OUTSIDE_BAND = 44
    # oracle, backstop, governance
    NOT_FEEDER = 50
    INVALID_PRICE = 51
    NOT_VALIDATOR = 52
    INVALID_PROPOSAL = 53
    ALREADY_VOTED = 54
    INVALID_BACKSTOP = 55


class TxRejected(Exception):
    """A transaction that fails a check; carries its result code."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"TxRejected({self.code.name}, {self.message!r})"
