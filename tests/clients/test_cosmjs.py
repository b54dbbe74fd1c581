"""cosmjs's ``Comet38Client`` (``@cosmjs/tendermint-rpc`` 0.39) against a real 1-validator node.

The node is a ``clearchain start`` process on a fresh home (the demo cast funded); the client
is ``tests/clients/cosmjs_check.js``, which makes every call cosmjs offers plus its three
subscriptions and the raw CometBFT methods cosmjs does not wrap. The npm packages are pinned
by ``tests/clients/package.json`` and ``package-lock.json`` and installed (``npm ci``) into
``.cache/npm`` under the repository (gitignored) whenever the lock there differs; the test is
skipped only where ``node`` is missing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from localnet.demo import demo_signer, patch_genesis
from node.config import Config, replace
from node.home import Home
from node.init import init_home
from primitives.crypto import format_address
from state.builders import build_transfer_tx

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NPM_CACHE = REPO / ".cache" / "npm"
HERE = Path(__file__).parent
SCRIPT = HERE / "cosmjs_check.js"


def cosmjs_modules() -> Path:
    """node_modules holding the pinned cosmjs, (re)installed into the repository's npm cache
    when its lock file differs from ours."""
    modules = NPM_CACHE / "node_modules"
    lock = (HERE / "package-lock.json").read_text()
    installed = NPM_CACHE / "package-lock.json"
    if not (modules / "@cosmjs" / "tendermint-rpc").is_dir() or not installed.exists() \
            or installed.read_text() != lock:
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: apt-get install -y npm"
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "package.json", NPM_CACHE / "package.json")
        installed.write_text(lock)
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NPM_CACHE)],
                       check=True, timeout=300, capture_output=True)
    return modules


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rpc_call(url: str, method: str, **params: object) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


def start_node(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    home = Home.at(tmp_path / "solo")
    port = free_port()
    config = replace(Config(), p2p={"listen_address": "/ip4/127.0.0.1/tcp/0"},
                     rpc={"listen_address": f"127.0.0.1:{port}"})
    init_home(home, moniker="solo", config=config)
    document = json.loads(home.genesis_file.read_text())
    home.genesis_file.write_text(json.dumps(patch_genesis(document)))
    with open(tmp_path / "node.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "cli", "start", "--home", str(home.root)],
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "node.log").read_text()[-2000:]
        try:
            if int(rpc_call(url, "status")["sync_info"]["latest_block_height"]) >= 1:
                return process, url
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the node made no block within 30 s")


def run_cosmjs(url: str, tmp_path: Path) -> list[dict]:
    status = rpc_call(url, "status")
    chain_id = status["node_info"]["network"]
    expiry = int(status["sync_info"]["latest_block_height"]) + 500
    sender, recipient = demo_signer("long-0"), demo_signer("long-1")
    txs = {
        name: base64.b64encode(build_transfer_tx(sender, chain_id, recipient.address, "USDC", 1_000 + i,
                                                 fee=1_000, expiry=expiry)).decode()
        for i, name in enumerate(["sync", "async", "commit", "late"])
    }
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"txs": txs, "sender": format_address(sender.address),
                                  "recipient": format_address(recipient.address)}))
    env = {**os.environ, "COSMJS_MODULES": str(cosmjs_modules())}
    done = subprocess.run(["node", str(SCRIPT), url, str(inputs)], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["calls"]


def table(calls: list[dict]) -> str:
    return "\n".join(f"{'ok  ' if c['ok'] else 'FAIL'} {c['call']}: {c['detail']}" for c in calls)


@pytest.mark.skipif(shutil.which("node") is None, reason="node (Node.js) is not installed")
def test_every_comet38client_call_decodes_and_says_what_the_node_did(tmp_path: Path) -> None:
    process, url = start_node(tmp_path)
    try:
        calls = run_cosmjs(url, tmp_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print(table(calls))
    assert len(calls) >= 30, table(calls)
    assert all(c["ok"] for c in calls), table(calls)
