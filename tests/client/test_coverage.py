"""The client keeps up with the node: a method in the server's table without a client method,
or a tx kind the application executes without a client message, fails here."""

from __future__ import annotations

import inspect

import pytest

from client import calls
from client.api import AsyncClient, Client
from client.txs import KINDS
from rpc.methods import METHODS
from state.execute import HANDLERS

SERVED = sorted(name for name, method in METHODS.items() if not method.websocket_only)


@pytest.mark.parametrize("name", SERVED)
def test_every_method_of_the_server_has_a_typed_call_in_both_clients(name):
    assert inspect.isfunction(getattr(calls, name, None)), f"client.calls has no {name}()"
    assert inspect.isfunction(getattr(Client, name, None)), f"Client has no {name}()"
    assert inspect.iscoroutinefunction(getattr(AsyncClient, name, None)), f"AsyncClient has no async {name}()"
    assert getattr(calls, name).__name__ == name


@pytest.mark.parametrize("name", SERVED)
def test_each_call_names_its_own_method_and_only_params_the_method_takes(name):
    function = getattr(calls, name)
    required = [p for p in inspect.signature(function).parameters.values() if p.default is inspect.Parameter.empty]
    samples = {"tx": b"\x01", "tx_hash": b"\x00" * 32, "block_hash": b"\x00" * 32, "address": b"\x00" * 20,
               "market": "BTC-PERP", "market_id": "BTC-PERP", "side": "buy", "size": 1,
               "query": "tx.height=1"}
    call = function(**{p.name: samples[p.name] for p in required})
    assert call.method == name
    assert set(call.params) <= {p.name for p in METHODS[name].params}


def test_websocket_methods_are_reached_through_subscribe():
    websocket_only = {name for name, method in METHODS.items() if method.websocket_only}
    assert websocket_only == {"subscribe", "unsubscribe", "unsubscribe_all"}
    assert callable(Client.subscribe) and callable(AsyncClient.subscribe)


def test_every_tx_kind_the_application_executes_has_a_client_message():
    assert set(KINDS) == set(HANDLERS)
    for kind, message in KINDS.items():
        assert message.kind == kind
