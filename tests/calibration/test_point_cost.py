"""GPU seconds of calibration points, their timers, and the ETA (validation/point_cost.py,
validation/calibration_plan.remaining_s)."""

import numpy as np
import pandas as pd
import pytest

from attnsim.kernels.timing import TimerConfig
from attnsim.validation.calibration_plan import remaining_s
from attnsim.validation.point_cost import PointCosts, estimate_row_costs, point_timer, standard_timer


def _calls(kernel_us: float, timer: TimerConfig, flush_us: float = 100.0) -> int:
    """Timed calls do_bench makes at `timer` (max(1, rep / (t + flush)))."""
    return max(1, int(timer.rep_ms * 1e3 / (kernel_us + flush_us)))


@pytest.mark.parametrize("kernel_us", [8.0, 40.0, 300.0, 2000.0, 9000.0])
def test_a_point_timer_never_costs_more_than_the_standard_one_for_short_kernels(kernel_us):
    costs, timer = PointCosts(), point_timer(kernel_us)
    assert _calls(kernel_us, timer) >= 5  # enough samples for a median
    if kernel_us < 1000:
        assert costs.timing_s(kernel_us, timer) < costs.timing_s(kernel_us, standard_timer())


def test_a_point_timer_stays_under_the_rep_it_is_capped_by():
    assert point_timer(500.0, TimerConfig(rep_ms=2.0)).rep_ms <= 5 * 0.6 + 1e-9  # 5 samples of 600 µs at most
    assert point_timer(10.0, TimerConfig(rep_ms=2.0)).rep_ms == pytest.approx(2.0)


def test_timing_grows_with_the_kernel_time():
    costs, timer = PointCosts(), standard_timer()
    times = [costs.row_s(t, timer) for t in (10, 100, 1000, 5000, 20000)]
    assert times == sorted(times) and times[-1] > 2 * times[0]


def test_row_costs_are_recovered_from_measured_rows():
    # rows built from known constants: each row's wall = overhead + do_bench; a kernel's first row
    # adds a compile, a cuDNN row a graph build
    truth, costs = {"overhead": 0.006, "compile": 0.9, "graph": 0.05}, PointCosts()
    rng = np.random.default_rng(0)
    records = []
    for strategy in ("fa2", "streamk", "torch-cudnn"):
        for head_dim in (64, 128):
            for i in range(40):
                t = float(rng.uniform(10, 3000))
                wall = truth["overhead"] + costs.timing_s(t, standard_timer()) + rng.normal(0, 1e-4)
                wall += truth["compile"] * (i == 0) + truth["graph"] * (strategy == "torch-cudnn")
                records.append({"strategy": strategy, "head_dim": head_dim, "time_us": t, "wall_ms": wall * 1e3,
                                "warmup_ms": 25.0, "rep_ms": 20.0, "status": "ok"})
    found = estimate_row_costs(pd.DataFrame(records))
    assert found["row_overhead_s"] == pytest.approx(truth["overhead"], abs=3e-4)
    assert found["compile_s"] == pytest.approx(truth["compile"], rel=0.1)
    assert found["library_first_call_s"] == pytest.approx(truth["graph"], abs=1e-3)


def test_the_eta_is_the_estimate_until_the_run_shows_its_pace():
    costs = [1.0, 2.0, 3.0, 4.0]
    assert remaining_s(costs, 0, 0.0) == pytest.approx(10.0)
    assert remaining_s(costs, 2, 3.0) == pytest.approx(7.0)  # on time
    assert remaining_s(costs, 2, 6.0) == pytest.approx(14.0)  # twice as slow as estimated
    assert remaining_s(costs, 4, 20.0) == 0.0
