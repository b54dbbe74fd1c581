"""``rpc/static.py`` behind the server: the dashboard's files, their types, caching and CSP."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rpc.static import Dashboard
from tests.rpc.conftest import http_exchange

FOLDER = Path(__file__).resolve().parents[2] / "rpc" / "dashboard"


async def fetch(port: int, target: str, method: str = "GET",
                headers: list[tuple[str, str]] | None = None) -> tuple[int, dict[str, str], bytes]:
    return await http_exchange(port, method, target, headers=headers)


def csp_directives(value: str) -> dict[str, str]:
    return {part.split()[0]: part.strip()[len(part.split()[0]):].strip()
            for part in value.split(";") if part.strip()}


async def test_the_page_and_every_file_it_loads_come_with_their_type_and_a_strict_policy(served):
    status, headers, body = await fetch(served.port, "/dashboard")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (FOLDER / "index.html").read_bytes()
    csp = csp_directives(headers["content-security-policy"])
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "unsafe-eval" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and csp["frame-ancestors"] == "'none'"
    # every script and stylesheet the page names is served, with the right type
    html = body.decode()
    assert "<script>" not in html and re.search(r"\son[a-z]+\s*=", html) is None  # no inline script
    assert re.search(r"\sstyle\s*=|<style", html) is None  # no inline style
    named = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', html)
    assert len(named) >= 4
    for target in named:
        status, headers, data = await fetch(served.port, target)
        assert status == 200, target
        kind = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}[Path(target).suffix]
        assert headers["content-type"].startswith(kind), (target, headers)
        assert data == (FOLDER / Path(target).name).read_bytes()
        assert "content-security-policy" in headers


async def test_app_files_revalidate_and_the_versioned_library_is_immutable(served):
    _, page, _ = await fetch(served.port, "/dashboard/app.js")
    assert page["cache-control"] == "no-cache" and page["etag"]
    status, again, body = await fetch(served.port, "/dashboard/app.js", headers=[("If-None-Match", page["etag"])])
    assert status == 304 and body == b"" and again["etag"] == page["etag"]
    status, _, body = await fetch(served.port, "/dashboard/app.js", headers=[("If-None-Match", '"other"')])
    assert status == 200 and body
    _, lib, _ = await fetch(served.port, "/dashboard/uPlot-1.6.32.iife.min.js")
    assert "immutable" in lib["cache-control"]
    status, head, body = await fetch(served.port, "/dashboard/style.css", method="HEAD")
    assert status == 200 and body == b"" and int(head["content-length"]) == (FOLDER / "style.css").stat().st_size


async def test_nothing_outside_the_folder_is_reachable(served):
    for target in ["/dashboard/../server.py", "/dashboard/%2e%2e/server.py", "/dashboard/nope.js",
                   "/dashboard//etc/passwd", "/dashboard/dashboard/app.js", "/dashboard/__init__.py"]:
        status, headers, body = await fetch(served.port, target)
        assert status == 404, target
        assert b"import" not in body and "content-security-policy" in headers


async def test_root_links_the_dashboard_for_a_browser_and_stays_json_for_clients(served):
    status, headers, body = await fetch(served.port, "/", headers=[("Accept", "text/html,application/xhtml+xml")])
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'href="/dashboard"' in body and b"<li><code>status</code></li>" in body
    for accept in [None, "application/json", "*/*"]:
        status, headers, body = await fetch(served.port, "/", headers=[("Accept", accept)] if accept else [])
        assert headers["content-type"] == "application/json"
        assert "status" in [m["name"] for m in json.loads(body)["result"]["methods"]]


def test_the_license_of_the_vendored_library_ships_beside_it():
    files = Dashboard().files
    assert "uPlot-1.6.32.iife.min.js" in files
    assert b"MIT License" in files["uPlot-1.6.32-LICENSE.txt"].body
    assert files["uPlot-1.6.32.iife.min.js"].body.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32)")
