"""One Linux network namespace per validator: separate hosts on one machine.

Each node ``i`` gets a namespace ``<prefix>-n<i>`` holding one end of a veth pair (``eth0``,
address ``10.231.<subnet>.<10+i>/24``) and its own loopback; the other end (``<prefix>-v<i>``)
sits on a bridge ``<prefix>-br`` in the root namespace, which holds ``10.231.<subnet>.1``. The
nodes see each other exactly as machines on one LAN do: their own addresses, the same default
ports, and a link that can go down (``ip link set <prefix>-v<i> down``). Processes run inside a
namespace through ``ip netns exec``.

Creating namespaces needs root and the ``ip`` tool (iproute2); :func:`unavailable` says why
they cannot be used, and callers fall back to loopback. Everything is named by the prefix, so
:func:`cleanup` removes what a crashed run left behind and is safe to call any number of times.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass

DEFAULT_PREFIX = "ccnet"
MAX_PREFIX = 8
CLEANUP_WAIT_S = 5.0
"""How long cleanup waits for the kernel to finish removing a prefix's links."""
"""Interface names are at most 15 bytes: ``<prefix>-v<i>`` must fit with room for i < 100."""
FIRST_HOST = 10
"""Node i's address ends in ``FIRST_HOST + i``; .1 is the bridge (the root namespace)."""


class HostsError(RuntimeError):
    """A namespace command failed; the message holds the command and its error output."""


@dataclass(frozen=True)
class HostNet:
    """The names and addresses of one namespaced network (nothing is created by this object)."""

    count: int
    prefix: str = DEFAULT_PREFIX
    subnet: int = 231
    """Third octet of 10.231.<subnet>.0/24, so two networks on one machine do not clash."""

    def __post_init__(self) -> None:
        if not (1 <= len(self.prefix) <= MAX_PREFIX and self.prefix.replace("-", "").isalnum()):
            raise ValueError(f"namespace prefix must be 1-{MAX_PREFIX} letters/digits, got {self.prefix!r}")
        if not (1 <= self.count <= 240 - FIRST_HOST and 0 <= self.subnet <= 255):
            raise ValueError("count must be 1..230 and subnet 0..255")

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge (where link proxies listen)."""
        return f"10.231.{self.subnet}.1"

    def namespace(self, i: int) -> str:
        return f"{self.prefix}-n{i}"

    def veth(self, i: int) -> str:
        """The root-namespace end of node i's link: down is node i cut off from everyone."""
        return f"{self.prefix}-v{i}"

    def address(self, i: int) -> str:
        return f"10.231.{self.subnet}.{FIRST_HOST + i}"

    def wrap(self, i: int, argv: list[str]) -> list[str]:
        """``argv`` run inside node i's namespace."""
        return ["ip", "netns", "exec", self.namespace(i), *argv]


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


def create(net: HostNet) -> None:
    """The bridge, a namespace and a veth pair per node, every link up. Leftovers of the same
    prefix (a crashed run) are removed first; on a failure half-way everything is removed."""
    cleanup(net.prefix)
    try:
        _ip("link", "add", net.bridge, "type", "bridge")
        _ip("addr", "add", f"{net.gateway}/24", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
        for i in range(net.count):
            ns, outside = net.namespace(i), net.veth(i)
            _ip("netns", "add", ns)
            _ip("link", "add", outside, "type", "veth", "peer", "name", f"{net.prefix}-e{i}")
            _ip("link", "set", f"{net.prefix}-e{i}", "netns", ns)
            _ip("-n", ns, "link", "set", f"{net.prefix}-e{i}", "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{net.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "set", outside, "master", net.bridge)
            _ip("link", "set", outside, "up")
    except BaseException:
        cleanup(net.prefix)
        raise


def set_link(net: HostNet, i: int, up: bool) -> None:
    """Take node i's link down (it hears and reaches nobody, its sockets stay open) or up."""
    _ip("link", "set", net.veth(i), "up" if up else "down")


def leftovers(prefix: str) -> tuple[list[str], list[str]]:
    """Namespaces and root-namespace links named ``<prefix>-...``, each sorted by name."""
    spaces = [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line.strip()]
    links = [line.split(":")[1].strip().split("@")[0]
             for line in _ip("-o", "link", "show", check=False).stdout.splitlines() if line.count(":") >= 2]
    return (sorted(s for s in spaces if s.startswith(prefix + "-")),  # `ip netns list`: any order
            sorted(name for name in links if name.startswith(prefix + "-")))


def cleanup(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Remove every namespace and link of ``prefix`` (processes still inside a namespace are
    not killed: the namespace goes when they exit). Returns what was removed; idempotent."""
    if unavailable() is not None:
        return []
    spaces, links = leftovers(prefix)
    for ns in spaces:
        _ip("netns", "delete", ns, check=False)
    for link in sorted(links, key=lambda name: name.endswith("-br")):  # veths first, bridge last
        _ip("link", "delete", link, check=False)
    # the kernel tears a deleted namespace's veth pair down asynchronously: wait (bounded) until
    # no name of the prefix is left, so that a create right after does not meet "File exists"
    deadline = time.monotonic() + CLEANUP_WAIT_S
    while time.monotonic() < deadline:
        still_spaces, still_links = leftovers(prefix)
        if not still_spaces and not still_links:
            break
        for link in still_links:
            _ip("link", "delete", link, check=False)
        time.sleep(0.05)
    return spaces + links
