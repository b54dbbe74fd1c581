"""Fixtures: the CLI's tx and query commands run against the RPC tests' served fake node."""

from tests.rpc.conftest import served  # noqa: F401 - a fixture, found by name
