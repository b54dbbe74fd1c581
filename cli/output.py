"""Shared pieces of the ``clearchain tx`` and ``clearchain query`` commands: the ``--node`` and
``--output``/``--json`` options, error reporting, printing ``rich`` tables at most 100 columns
wide, and readable tables for arbitrary JSON answers."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import shutil
import sys

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


def emit(value: Any, as_json: bool, title: str | None = None) -> None:
    if as_json:
        emit_json(value)
        return
    if title:
        click.secho(title, bold=True)
    click.echo(render_text(value))


def render_text(value: Any, indent: int = 0) -> str:
    """A readable form: lists of flat objects become tables, objects become key: value lines."""
    pad = " " * indent
    if isinstance(value, list):
        if not value:
            return pad + "(none)"
        if all(isinstance(item, Mapping) for item in value) and all(_is_flat(item) for item in value):
            return table(value, indent)
        return "\n".join(render_text(item, indent) for item in value)
    if isinstance(value, Mapping):
        if not value:
            return pad + "(empty)"
        width = max(len(str(k)) for k in value)
        lines = []
        for key, item in value.items():
            if isinstance(item, (Mapping, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(render_text(item, indent + 2))
            else:
                lines.append(f"{pad}{str(key).ljust(width)}  {_cell(item)}")
        return "\n".join(lines)
    return pad + _cell(value)


def table(rows: Sequence[Mapping[str, Any]], indent: int = 0, columns: Sequence[str] | None = None) -> str:
    if columns is None:
        columns = []
        for row in rows:
            for key in row:
                if key not in columns:
                    columns.append(key)
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    pad = " " * indent

    def line(items: Sequence[str]) -> str:
        return pad + "  ".join(item.rjust(w) if _numeric(item) else item.ljust(w) for item, w in zip(items, widths)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _is_flat(row: Mapping[str, Any]) -> bool:
    return all(not isinstance(v, (Mapping, list)) or not v for v in row.values())


def _numeric(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (Mapping, list)):
        return json.dumps(value) if value else "-"
    return str(value)
