"""The partition tests' link proxy (tests/node/linkproxy.py) on its own: forward, refuse,
black-hole, reset."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.node.conftest import free_port
from tests.node.linkproxy import LinkProxy


@pytest.fixture
def echo_port():  # type: ignore[no-untyped-def]
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(4096):
                conn.sendall(data)
        except OSError:
            pass


def _round_trip(conn: socket.socket, data: bytes) -> bytes:
    conn.sendall(data)
    return conn.recv(4096)


def test_links_forward_refuse_blackhole_and_reset(echo_port: int) -> None:
    proxy = LinkProxy()
    link = proxy.add("0->1", free_port(), echo_port)
    proxy.start()
    try:
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as conn:
            assert _round_trip(conn, b"ping") == b"ping"
            proxy.blackhole("0->1")
            conn.settimeout(0.3)
            with pytest.raises(TimeoutError):
                _round_trip(conn, b"held")
            proxy.forward("0->1")  # what was held flows, as after TCP retransmission
            conn.settimeout(5)
            assert conn.recv(4096) == b"held"
            proxy.reset("0->1")
            with pytest.raises(ConnectionResetError):
                for _ in range(50):  # the RST arrives within a few ms
                    _round_trip(conn, b"x")
                    time.sleep(0.02)
        proxy.refuse("0->1")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", link.port), timeout=5).close()
        proxy.forward("0->1")
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as conn:
            assert _round_trip(conn, b"again") == b"again"
        assert link.accepted == 2
    finally:
        proxy.close()


def test_impaired_links_delay_and_hold_back_lost_chunks_but_deliver_every_byte_in_order(echo_port: int) -> None:
    proxy = LinkProxy()
    link = proxy.add("0->1", free_port(), echo_port, seed=7)
    proxy.start()
    try:
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as conn:
            proxy.impair("0->1", delay_ms=300)
            started = time.monotonic()
            assert _round_trip(conn, b"slow") == b"slow"
            assert time.monotonic() - started >= 0.6  # 300 ms each way
            proxy.impair("0->1", loss=1.0)  # every chunk "lost" once: one RTO each way
            started = time.monotonic()
            assert _round_trip(conn, b"lossy") == b"lossy"
            assert time.monotonic() - started >= 0.4
            proxy.impair("0->1", loss=0.5)
            sent = b"".join(b"%04d" % i for i in range(40))
            for i in range(40):
                conn.sendall(b"%04d" % i)
            echoed = b""
            while len(echoed) < len(sent):
                echoed += conn.recv(4096)
            assert echoed == sent
            proxy.impair("0->1")
            started = time.monotonic()
            assert _round_trip(conn, b"healed") == b"healed"
            assert time.monotonic() - started < 0.4  # no delay left on the live connection
    finally:
        proxy.close()
