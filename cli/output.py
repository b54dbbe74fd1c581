"""Shared pieces of the ``clearchain tx`` and ``clearchain query`` commands: the ``--node`` and
``--output``/``--json`` options, error reporting, printing ``rich`` tables at most 100 columns
wide (the tables themselves are :mod:`cli.views`)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console, RenderableType

from cli.views import MAX_WIDTH
from client import Client
from client.errors import ConnectionFailed, RPCClientError
from rpc.client import DEFAULT_URL

NODE_ENV = "CLEARCHAIN_NODE"
_open_clients: list[Client] = []


def node_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--node", "node_url", default=lambda: os.environ.get(NODE_ENV, DEFAULT_URL), show_default=DEFAULT_URL,
        help=f"RPC URL of a node (or ${NODE_ENV})",
    )(function)


def json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--output table|json`` (default table) and ``--json``, its alias; the command gets ``as_json``."""

    @functools.wraps(function)
    def wrapper(*args: Any, output: str, json_alias: bool, **kwargs: Any) -> Any:
        return function(*args, as_json=json_alias or output == "json", **kwargs)

    wrapper = click.option("--json", "json_alias", is_flag=True, help="same as --output json")(wrapper)
    return click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True,
                        help="readable tables, or every raw field as JSON for scripts")(wrapper)


def console() -> Console:
    """A console for the current stdout, at most :data:`MAX_WIDTH` columns wide."""
    width = min(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MAX_WIDTH)
    return Console(file=sys.stdout, width=width, highlight=False, soft_wrap=False)


def show(*renderables: RenderableType) -> None:
    console().print(*renderables)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def reports_rpc_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn client errors into one readable line and exit status 1 (no traceback)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except RPCClientError as exc:
            detail = exc.data if not isinstance(exc.data, (dict, list)) else json.dumps(exc.data)
            raise click.ClickException(f"{exc.message} ({exc.code}): {detail}") from None
        except ConnectionFailed as exc:
            raise click.ClickException(f"cannot reach the node: {exc}") from None
        finally:
            while _open_clients:
                _open_clients.pop().close()

    return wrapper


def client_for(node_url: str) -> Client:
    """A client closed when the command ends (by :func:`reports_rpc_errors`)."""
    client = Client(node_url, timeout=60)
    _open_clients.append(client)
    return client
