"""The clearing application (see state/README.md).

Entry points: ``state.app.ClearingApp`` (driven by consensus), ``state.genesis.load_genesis``,
``state.builders.build_<kind>_tx`` (clients), ``state.queries`` (RPC) and
``state.queries.invariants`` (tests, audits).
"""
