"""`attnsim calibrate` says how long its fit took, next to how long it measured (issue 21: a user
waiting for a "3 minute" calibration waits for both)."""

from __future__ import annotations

import pytest

from attnsim.cli.calibrate import _fitted_line


@pytest.mark.parametrize("cpus, processes", [(1, "1 process"), (2, "2 processes"), (64, "3 processes")])
def test_the_fit_line_counts_families_strategies_and_processes(monkeypatch, cpus, processes):
    monkeypatch.setattr("os.cpu_count", lambda: cpus)
    # fa2: 1 family; flashdecoding: attention + combine; torch-flash: split, combine, no-split
    report = {"fa2": {}, "flashdecoding": {}, "torch-flash": {}, "bandwidth_fit": {}, "fit_s": 41.26}
    assert _fitted_line(report) == f"fitted 6 families (3 fits, {processes}) in 41.3 s"
