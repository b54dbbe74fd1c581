"""Progress for people: percent, rate and ETA, written out by hand."""

from __future__ import annotations

import pytest

from node.progress import Progress, format_eta


@pytest.mark.parametrize("progress, percent, eta", [
    (Progress(1_200, 5_000, 200, 10.0), 24.0, 38.0),      # 1,000 blocks in 10 s: 100/s, 3,800 left
    (Progress(5_000, 5_000, 200, 10.0), 100.0, 0.0),
    (Progress(0, 0), 100.0, 0.0),                          # nothing to do
    (Progress(10, 40, 10, 5.0), 25.0, None),               # nothing done yet: no rate, no ETA
    (Progress(50, 40, 0, 5.0), 100.0, 0.0),                # past a target that moved back: capped
])
def test_percent_and_eta(progress: Progress, percent: float, eta: float | None) -> None:
    assert progress.percent == pytest.approx(percent)
    assert progress.eta_s == (None if eta is None else pytest.approx(eta))


def test_describe_reads_as_a_log_line() -> None:
    line = Progress(1_200, 5_000, 200, 10.0).describe("block sync: height", "blocks")
    assert line == "block sync: height 1,200 of 5,000 (24.0%), 100 blocks/s, ETA 38s"
    assert Progress(10, 40).describe("height", "blocks") == "height 10 of 40 (25.0%), ETA unknown"


@pytest.mark.parametrize("seconds, shown", [(None, "unknown"), (0, "0s"), (59.4, "59s"), (185, "3m05s"),
                                            (7_620, "2h07m")])
def test_format_eta(seconds: float | None, shown: str) -> None:
    assert format_eta(seconds) == shown
