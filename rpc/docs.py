"""docs/rpc.md, generated from the method table: ``python -m rpc.docs > docs/rpc.md``.

Every method in :data:`rpc.methods.METHODS` with its description, parameters and one example
request; ``tests/rpc/test_docs.py`` fails when a method has no example or docs/rpc.md is stale.
"""

from __future__ import annotations

import json
from typing import Any

from rpc.comet.shapes import COMET_DIALECT
from rpc.methods import METHODS

ADDRESS = "clr1l9ja4qkprdy6muhwtm9aljk7pnwtx2l32kqawm"
HASH = "0BD528C33F41C9A0B7A1CFB9D5A2D93E6F0E8E1E0A1F2B8D8A5D3D91A80C1D2E"
TX = "gqRib2R5xAA..."
EXAMPLES: dict[str, dict[str, Any]] = {
    "health": {}, "status": {}, "net_info": {}, "genesis": {}, "abci_info": {},
    "consensus_state": {}, "num_unconfirmed_txs": {}, "unsubscribe_all": {},
    "validators": {"height": "5", "page": "1", "per_page": "30"},
    "block": {"height": "5"}, "block_by_hash": {"hash": HASH}, "header": {"height": "5"},
    "header_by_hash": {"hash": HASH}, "blockchain": {"minHeight": "1", "maxHeight": "20"},
    "block_results": {"height": "5"}, "commit": {"height": "5"},
    "broadcast_tx_async": {"tx": TX}, "broadcast_tx_sync": {"tx": TX},
    "broadcast_tx_commit": {"tx": TX}, "check_tx": {"tx": TX},
    "tx": {"hash": HASH}, "unconfirmed_txs": {"limit": "30"},
    "tx_search": {"query": f"message.sender='{ADDRESS}' AND tx.height>=5", "page": "1", "per_page": "30",
                  "order_by": "desc"},
    "block_search": {"query": "block.height>=5 AND liquidation.market='BTC-PERP'"},
    "abci_query": {"path": f"/clearing/account/{ADDRESS}"},
    "query": {"path": "/store", "data": "672f", "prove": True},
    "consensus_params": {"height": "5"},
    "account": {"address": ADDRESS}, "positions": {"address": ADDRESS}, "markets": {},
    "market": {"market": "BTC-PERP"}, "prices": {}, "insurance_fund": {},
    "liquidations": {"min_height": "1", "max_height": "100", "page": "1", "per_page": "30"},
    "account_health": {"address": ADDRESS}, "assets": {}, "accounts_at_risk": {"page": "1", "per_page": "20"},
    "check_margin": {"address": ADDRESS, "market": "BTC-PERP", "side": "buy", "size": "1000"},
    "subscribe": {"query": "tm.event='Tx' AND message.sender='" + ADDRESS + "'"},
    "unsubscribe": {"query": "tm.event='NewBlock'"},
}


def render_docs() -> str:
    lines = [
        "# RPC methods",
        "",
        "Generated from `rpc/methods.py` by `python -m rpc.docs > docs/rpc.md`; do not edit by hand",
        "(`tests/rpc/test_docs.py` fails when this page is stale).",
        "",
        f"CometBFT methods answer in CometBFT v{COMET_DIALECT}'s JSON shapes (the shape table:",
        "`rpc/comet/README.md`); the clearing methods keep their own names and shapes. Params go by",
        "name (object) or by position (array, in the order listed); `GET /<method>?param=value`",
        "works too. `subscribe`/`unsubscribe`/`unsubscribe_all` only over `/websocket`.",
        "",
    ]
    for name in sorted(METHODS):
        method = METHODS[name]
        lines += [f"## `{name}`", "", method.doc, ""]
        if method.params:
            lines += ["| param | required | description |", "| --- | --- | --- |"]
            lines += [f"| `{p.name}` | {'yes' if p.required else 'no'} | {p.doc} |" for p in method.params]
            lines.append("")
        request = {"jsonrpc": "2.0", "id": 1, "method": name, "params": EXAMPLES[name]}
        where = "ws://127.0.0.1:26657/websocket" if method.websocket_only else "http://127.0.0.1:26657"
        lines += [f"Example ({where}):", "", "```json", json.dumps(request), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_docs(), end="")
