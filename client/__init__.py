"""The typed Python client of a clearchain node: ``Client`` (blocking) and ``AsyncClient``
(trio). See ``client/README.md``."""

from client.api import AsyncClient, ChainParams, Client
from client.errors import ConnectionFailed, RPCClientError, TxFailed
from client.txs import (
    Backstop,
    Cancel,
    Deposit,
    Fills,
    OracleReport,
    Trade,
    Transfer,
    Vote,
    Withdraw,
    sign_order,
)

__all__ = ["AsyncClient", "Backstop", "Cancel", "ChainParams", "Client", "ConnectionFailed", "Deposit",
           "Fills", "OracleReport", "RPCClientError", "Trade", "Transfer", "TxFailed", "Vote", "Withdraw",
           "sign_order"]
