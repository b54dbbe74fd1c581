"""The dashboard's static files (``rpc/dashboard/``), as the RPC server sends them.

The files are package data, read once when the server starts (about 70 kB), and answered from
memory: ``GET /dashboard`` is ``index.html``, ``GET /dashboard/<name>`` one of the files by
its exact name (no path is ever joined from a URL, so nothing outside the folder is reachable).

Every answer carries a strict Content-Security-Policy: scripts and styles from this origin
only (no inline script or style, no eval), no frames, no forms, connections to this origin
only (the page's WebSocket). Caching: the vendored library carries its version in its name and
is ``immutable``; the page's own files are revalidated each load (``no-cache`` with an ETag, a
304 when unchanged), so a node upgrade shows at once.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from importlib import resources

ROUTE = "/dashboard"
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".txt": b"text/plain; charset=utf-8",
    ".png": b"image/png",
    ".svg": b"image/svg+xml",
}

CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""'self' in connect-src covers ws:// to the same host and port (CSP level 3)."""

SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)

_VERSIONED = re.compile(r"-\d+\.\d+\.\d+[.-]")
"""A name carrying a version (``uPlot-1.6.32.iife.min.js``): its content never changes."""
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"


@dataclass(frozen=True)
class StaticFile:
    name: str
    body: bytes
    content_type: bytes
    etag: bytes

    @property
    def cache_control(self) -> bytes:
        return IMMUTABLE if _VERSIONED.search(self.name) else REVALIDATE

    def validators(self) -> list[tuple[bytes, bytes]]:
        """What a 304 repeats (RFC 9110 15.4.5): caching and the ETag, with the policy."""
        return [(b"cache-control", self.cache_control), (b"etag", self.etag), *SECURITY_HEADERS]

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", self.content_type), *self.validators()]


def load_files() -> dict[str, StaticFile]:
    """Every file of ``rpc/dashboard/`` with a known type, by name."""
    folder = resources.files("rpc") / "dashboard"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        files[entry.name] = StaticFile(entry.name, body, CONTENT_TYPES[suffix], etag)
    return files


class Dashboard:
    """The dashboard's files, looked up by request path."""

    def __init__(self, files: dict[str, StaticFile] | None = None) -> None:
        self.files = load_files() if files is None else files

    def serves(self, path: str) -> bool:
        """Whether a path is the dashboard's (its files, or a 404 of its own)."""
        return path == ROUTE or path.startswith(ROUTE + "/")

    def find(self, path: str) -> StaticFile | None:
        """The file a path names under :data:`ROUTE` (the page for the route itself), or None."""
        if path in (ROUTE, ROUTE + "/"):
            return self.files.get(INDEX)
        if not path.startswith(ROUTE + "/"):
            return None
        return self.files.get(path[len(ROUTE) + 1:])


def wants_html(accept: bytes) -> bool:
    """A browser's ``Accept`` puts text/html first; JSON clients and curl do not ask for it."""
    return accept.split(b",", 1)[0].strip().lower().startswith(b"text/html")


def root_page(method_names: list[str]) -> bytes:
    """``GET /`` for a browser: where the dashboard is, and the method names."""
    items = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in method_names)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>clearchain RPC</title>"
        f"</head><body><h1>clearchain RPC</h1><p><a href=\"{ROUTE}\">Live dashboard</a></p>"
        "<p>JSON-RPC 2.0: <code>POST /</code>, <code>GET /&lt;method&gt;?param=value</code>, "
        "<code>GET /websocket</code>. The same list as JSON: <code>GET /</code> with "
        f"<code>Accept: application/json</code>.</p><ul>{items}</ul></body></html>"
    ).encode()
