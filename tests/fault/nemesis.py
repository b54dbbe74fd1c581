"""The nemesis: a seeded schedule of faults, each applied to a :class:`Testbed`, held for a
while, healed, and followed by a measured recovery.

A fault kind, what it does, and the bound within which the chain must move on after the heal
(every node ``PROGRESS_BLOCKS`` past the highest height at the heal; on 2 shared cores a node
process takes ~3 s to start, and a round that timed out during the fault costs its timeouts):

==================  =====================================================================  =====
kind                applied as                                                             bound
==================  =====================================================================  =====
partition-minority  one node cut from the other three (proxy: refused or black-holed)       20 s
partition-halves    two against two: no side has +2/3, the chain stops until the heal       30 s
bridge              two groups that reach each other only through one bridge node           20 s
isolate-proposer    the validator that proposes next (round robin: the one N blocks back)   20 s
link-down           one node's veth down (namespaces; else every link refused)              20 s
delay               every link of one node delayed (150-600 ms each way)                    20 s
loss                every link "lossy" (5-20% of chunks held back one RTO, 200 ms)          20 s
kill                kill -9, restarted after the hold                                       30 s
pause               SIGSTOP, SIGCONT after the hold                                         20 s
restart             SIGTERM and start again at once                                         30 s
clock-skew          one validator's clock off by 1-4 s (config, restart), then back         30 s
slow-disk           one node's block writes delayed 100-400 ms (config, restart), then back 30 s
disk-full           one node's data disk filled (a small tmpfs): it must stop with exit 74; 30 s
                    space freed and the node restarted at the heal
burst               32 clients posting fills txs to all nodes, refusals resent at once       30 s
equivocate          one validator double-signs (config, restart) until jailed, then honest  45 s
==================  =====================================================================  =====

``equivocate`` jails the validator for good (there is no unjail), leaving 3 of 4 validators, all
needed for +2/3; a schedule therefore ends with it, never runs it twice.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from rpc.client import ConnectionFailed, RPCClientError
from tests.fault import disk
from tests.fault.checks import Recovery
from tests.fault.testbed import Testbed, burst

PROGRESS_BLOCKS = 2
JAIL_WAIT_S = 60.0
BOUNDS_S = {
    "partition-minority": 20.0, "partition-halves": 30.0, "bridge": 20.0, "isolate-proposer": 20.0,
    "link-down": 20.0, "delay": 20.0, "loss": 20.0, "kill": 30.0, "pause": 20.0, "restart": 30.0,
    "clock-skew": 30.0, "slow-disk": 30.0, "burst": 30.0, "equivocate": 45.0, "disk-full": 30.0,
}
REPEATABLE = tuple(kind for kind in BOUNDS_S if kind != "equivocate")
WITHOUT_SMALL_DISKS = tuple(kind for kind in REPEATABLE if kind != "disk-full")
"""The kinds when data directories cannot be small disks of their own (not root)."""
STOP_WAIT_S = 10.0
"""How long a node on a full disk may take to stop by itself: it writes every block (4 a
second here), so it meets the full disk at once."""


@dataclass(frozen=True)
class Fault:
    kind: str
    node: int
    """The node it targets (the minority, the victim, the bridge, the byzantine validator)."""
    hold_s: float
    """How long the fault lasts before it is healed."""
    amount: int = 0
    """Kind-specific: delay ms, loss per mille, clock offset ms, write delay ms, clients."""
    drop: bool = False
    """Partitions: black-hole at the proxy (True) or refuse connections (False)."""


def schedule(seed: int, nodes: int, kinds: tuple[str, ...] = REPEATABLE,
             hold_s: tuple[float, float] = (4.0, 10.0)) -> Iterator[Fault]:
    """An endless seeded sequence of faults of ``kinds``."""
    rng = random.Random(seed)
    amounts = {"delay": (150, 600), "loss": (50, 200), "clock-skew": (1000, 4000),
               "slow-disk": (100, 400), "burst": (32, 32)}
    while True:
        kind = rng.choice(kinds)
        low, high = amounts.get(kind, (0, 0))
        amount = rng.randint(low, high)
        if kind == "clock-skew" and rng.random() < 0.5:
            amount = -amount
        yield Fault(kind, rng.randrange(nodes), round(rng.uniform(*hold_s), 1), amount, rng.random() < 0.5)


@dataclass
class Applied:
    """A fault as it ran: when it was healed, how long the chain took to move on."""

    fault: Fault
    targets: tuple[int, ...]
    heights_before: list[int]
    heights_at_heal: list[int] = field(default_factory=list)
    recovery: Recovery | None = None
    detail: dict[str, int] = field(default_factory=dict)


class Nemesis:
    def __init__(self, bed: Testbed, seed: int) -> None:
        self.bed = bed
        self.seed = seed
        self.log: list[Applied] = []

    def run(self, fault: Fault) -> Applied:
        bed = self.bed
        applied = Applied(fault, (fault.node,), bed.heights())
        heal = self._apply(fault, applied)
        if fault.kind == "equivocate":
            self._until_jailed(fault)
        elif fault.kind != "burst":  # a burst holds while it runs
            time.sleep(fault.hold_s)
        applied.heights_at_heal = bed.heights()
        heal()
        applied.recovery = self._recovery(fault.kind)
        self.log.append(applied)
        return applied

    def _until_jailed(self, fault: Fault) -> None:
        """Hold an equivocation until another node's validator set drops the validator (or
        ``JAIL_WAIT_S``; the check after the run then says it was never jailed)."""
        address = self.bed.cluster.keys[fault.node].address
        witness = (fault.node + 1) % self.bed.size
        deadline = time.monotonic() + JAIL_WAIT_S
        time.sleep(fault.hold_s)
        while time.monotonic() < deadline:
            try:
                if address not in self.bed.validator_addresses(witness):
                    return
            except (ConnectionFailed, RPCClientError, OSError):
                pass
            time.sleep(0.5)

    def _recovery(self, kind: str) -> Recovery:
        bound = BOUNDS_S[kind]
        started = time.monotonic()
        target = max(self.bed.heights()) + PROGRESS_BLOCKS
        while time.monotonic() - started < 2 * bound:  # waits past the bound to report by how much
            if min(self.bed.heights()) >= target:
                return Recovery(kind, round(time.monotonic() - started, 2), bound)
            time.sleep(0.25)
        return Recovery(kind, None, bound)

    def _cut(self, a: set[int], b: set[int], drop: bool) -> list[str]:
        links = self.bed.links_between(a, b)
        (self.bed.proxy.blackhole if drop else self.bed.proxy.refuse)(*links)
        return links

    def _apply(self, fault: Fault, applied: Applied):  # noqa: ANN202 - returns its healer
        bed, n, i = self.bed, self.bed.size, fault.node
        everyone = set(range(n))
        proxy, cluster = bed.proxy, bed.cluster
        kind = fault.kind

        def heal_links(links: list[str]):  # noqa: ANN202
            return lambda: proxy.forward(*links)

        if kind == "partition-minority":
            return heal_links(self._cut({i}, everyone - {i}, fault.drop))
        if kind == "partition-halves":
            half = {i, (i + 1) % n}
            applied.targets = tuple(sorted(half))
            return heal_links(self._cut(half, everyone - half, fault.drop))
        if kind == "bridge":
            others = sorted(everyone - {i})
            left, right = set(others[: len(others) // 2]), set(others[len(others) // 2:])
            applied.targets = (i,)
            return heal_links(self._cut(left, right, fault.drop))
        if kind == "isolate-proposer":
            top = max(bed.heights())
            victim = bed.proposer_index(max(1, top + 1 - n))
            victim = i if victim is None else victim
            applied.targets = (victim,)
            return heal_links(self._cut({victim}, everyone - {victim}, fault.drop))
        if kind == "link-down":
            if bed.net is not None:
                from localnet import hosts

                hosts.set_link(bed.net, i, up=False)
                return lambda: hosts.set_link(bed.net, i, up=True)  # type: ignore[arg-type]
            return heal_links(self._cut({i}, everyone - {i}, drop=False))
        if kind in ("delay", "loss"):
            links = self.bed.links_between({i}, everyone - {i}) if kind == "delay" else list(proxy.links)
            if kind == "delay":
                proxy.impair(*links, delay_ms=fault.amount)
            else:
                proxy.impair(*links, loss=fault.amount / 1000)
            applied.targets = (i,) if kind == "delay" else tuple(sorted(everyone))
            return lambda: proxy.impair(*links)
        if kind == "kill":
            cluster.kill(i)
            return lambda: cluster.start(i)
        if kind == "pause":
            cluster.signal(i, signal.SIGSTOP)
            return lambda: cluster.signal(i, signal.SIGCONT)
        if kind == "restart":
            bed.restart(i)
            return lambda: None
        if kind in ("clock-skew", "slow-disk", "equivocate"):
            setting = {"clock-skew": {"clock_offset_ms": fault.amount},
                       "slow-disk": {"fsync_delay_ms": fault.amount},
                       "equivocate": {"byzantine_double_sign_UNSAFE": True}}[kind]
            bed.set_faults(i, **setting)
            bed.restart(i)

            def back() -> None:
                bed.set_faults(i)
                bed.restart(i)
            return back
        if kind == "burst":
            applied.detail = burst(bed, i, fault.amount, fault.hold_s, self.seed)
            return lambda: None
        if kind == "disk-full":
            if not bed.disks:
                raise ValueError("disk-full needs the nodes' data on small disks (root, mount)")
            filler = disk.fill(bed.cluster.homes[i].data_dir)
            filled = time.monotonic()
            code = bed.wait_exit(i, STOP_WAIT_S)
            applied.detail = {"exit_code": -1 if code is None else code,
                              "stopped_after_s": round(time.monotonic() - filled, 2)}

            def freed() -> None:
                disk.free(filler)
                if code is None:  # it kept running on a full disk (the check reports it)
                    bed.cluster.stop(i)
                bed.cluster.start(i)
            return freed
        raise ValueError(f"unknown fault kind {kind!r}")
