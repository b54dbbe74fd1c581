"""docs/rpc.md is generated from the method table and must match it."""

from pathlib import Path

from rpc.docs import EXAMPLES, render_docs
from rpc.methods import METHODS, bind_params

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rpc.md"


def test_every_method_has_an_example_its_params_accept():
    assert set(EXAMPLES) == set(METHODS)
    for name, params in EXAMPLES.items():
        if name in ("broadcast_tx_async", "broadcast_tx_sync", "broadcast_tx_commit", "check_tx"):
            continue  # the tx is parsed inside the handler, against the node's size limit
        bind_params(METHODS[name], params)


def test_docs_rpc_md_is_current():
    assert DOCS.read_text() == render_docs(), "regenerate: python -m rpc.docs > docs/rpc.md"
