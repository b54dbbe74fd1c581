"""last_results_hash covers what a tx did (its code), never interpreter-dependent log text."""

from node.chain import results_hash
from state.app import TxResult


def test_logs_do_not_change_the_results_hash_but_codes_do() -> None:
    a = [TxResult(0, ""), TxResult(3, "malformed msgpack: ")]
    b = [TxResult(0, ""), TxResult(3, "malformed msgpack: Unknown header: 0xc1")]
    assert results_hash(a) == results_hash(b)
    assert results_hash(a) != results_hash([TxResult(0, ""), TxResult(4, "malformed msgpack: ")])
    assert results_hash(a) != results_hash(a[:1])
