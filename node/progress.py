"""How far a long piece of work has come, for people: percent done, rate and time left.

Block sync logs it (``block sync: height 1,200 of 5,000 (24.0%), 310 blocks/s, ETA 12s``) and
``clearchain status`` prints it. Display only: floats are fine here, nothing here feeds state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` items after ``elapsed_s`` seconds, counting from ``start``."""

    done: int
    total: int
    start: int = 0
    elapsed_s: float = 0.0

    @property
    def percent(self) -> float:
        """Share of ``total`` reached (100 when there is nothing to do)."""
        if self.total <= 0:
            return 100.0
        return max(0.0, min(100.0, 100.0 * self.done / self.total))

    @property
    def rate(self) -> float | None:
        """Items per second since ``start``; None before any item or time has passed."""
        if self.elapsed_s <= 0 or self.done <= self.start:
            return None
        return (self.done - self.start) / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate (0 when done, None when the rate is unknown)."""
        if self.done >= self.total:
            return 0.0
        rate = self.rate
        return None if rate is None else (self.total - self.done) / rate

    def describe(self, what: str, unit: str) -> str:
        """``{what} 1,200 of 5,000 (24.0%), 310 {unit}/s, ETA 12s``."""
        rate = self.rate
        speed = f", {rate:,.0f} {unit}/s" if rate is not None else ""
        return f"{what} {self.done:,} of {self.total:,} ({self.percent:.1f}%){speed}, ETA {format_eta(self.eta_s)}"


def format_eta(seconds: float | None) -> str:
    """``12s``, ``3m05s``, ``2h07m``; ``unknown`` without a rate."""
    if seconds is None:
        return "unknown"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
