"""`attnsim calibrate --budget`: the plan it measures, its record and its progress, with the GPU's
measurements replaced by fakes (CPU only; a small calibration set keeps the plan fast)."""

import json
import math

import pytest

from attnsim.bench import calibration as cal
from attnsim.simulator.workload import DecodeWorkload
from cli_helpers import run_cli

SMALL_SET = [DecodeWorkload.build(1, 32, 8, 128, 12000), DecodeWorkload.build(3, 8, 1, 64, 768),
             DecodeWorkload.build(12, 32, 32, 128, 48000)]


@pytest.fixture
def fake_gpu(monkeypatch):
    """No GPU: the device, bandwidth curve, empty kernel and kernel points answered by fakes that
    record what calibrate asked for."""
    asked = {}
    monkeypatch.setattr(cal, "calibration_sweep", lambda dtype="float16": SMALL_SET)
    monkeypatch.setattr("attnsim.cli.calibrate.require_cuda", lambda command, option: None)
    monkeypatch.setattr(cal, "device_info", lambda: {"name": "NVIDIA H200", "sm_count": 132})

    def curve(timer, progress=None):
        for _ in range(len(cal.BANDWIDTH_CTAS) * len(cal.BANDWIDTH_WARPS)):
            progress()
        return [{"num_ctas": n, "num_warps": w, "read_gbps": min(16.0 * w * n, 4500.0)}
                for w in cal.BANDWIDTH_WARPS for n in cal.BANDWIDTH_CTAS]

    def kernel_points(gpu, plan, device_name, peak, progress=None):
        asked["plan"] = plan
        for w, spec, timer in plan:
            progress(spec)
        return [], {}, []

    monkeypatch.setattr(cal, "measure_bandwidth_curve", curve)
    def floors(progress=None):  # a pure read's floor, as a GPU would give it (simulator/floor.py's shape)
        for _ in cal.FLOOR_BYTES:
            progress()
        return [{"read_bytes": b, "floor_us": 5.0 + b / 4.5e6 + 11.0 * (1 - math.exp(-b / 6e7))}
                for b in cal.FLOOR_BYTES]

    monkeypatch.setattr(cal, "measure_launch_overhead_us", lambda timer: 5.0)
    monkeypatch.setattr(cal, "measure_floors", floors)
    monkeypatch.setattr(cal, "measure_kernel_points", kernel_points)
    return asked


def test_the_budget_decides_what_is_measured_and_the_plan_is_recorded(fake_gpu, tmp_path, capsys):
    out = tmp_path / "p.json"
    code, _, err = run_cli(["calibrate", "--gpu", "h200", "--budget", "12", "--measure-only", "--out", str(out)],
                           capsys)
    assert code == 0, err
    data = json.loads(out.with_suffix(".data.json").read_text())["calibration_data"]
    plan = fake_gpu["plan"]
    assert [(r["spec"], r["rep_ms"]) for r in data["plan"]] == [(spec, timer.rep_ms) for _, spec, timer in plan]
    assert data["budget_s"] == 12.0 and sum(r["cost_s"] for r in data["plan"]) <= 12.0
    asked = {(w, spec) for w in SMALL_SET for spec in cal.calibration_specs(w)}
    assert {(w, spec) for w, spec, _ in plan} <= asked  # timed as the calibration set asks, not re-planned
    steps = len(plan) + len(cal.BANDWIDTH_CTAS) * len(cal.BANDWIDTH_WARPS) + len(cal.FLOOR_BYTES)  # curve, floors
    assert [r["read_bytes"] for r in data["floors"]] == list(cal.FLOOR_BYTES)  # kept for a refit
    lines = [line for line in err.splitlines() if line.startswith("calibrating ")]
    assert err.startswith("calibration plan:") and 5 <= len(lines) <= 12  # a line per tenth in a log
    assert lines[-1] == f"calibrating {steps}/{steps} points, ~0 s left"
    # more budget buys more points of the same set
    code, _, err = run_cli(["calibrate", "--gpu", "h200", "--budget", "40", "--measure-only", "--out",
                            str(tmp_path / "q.json")], capsys)
    assert code == 0, err and len(fake_gpu["plan"]) > len(plan)


def test_plan_only_prints_the_plan_and_writes_nothing(fake_gpu, tmp_path, capsys):
    out = tmp_path / "p.json"
    code, text, err = run_cli(["calibrate", "--gpu", "h200", "--budget", "20", "--plan-only", "--out", str(out)],
                              capsys)
    assert code == 0, err
    assert text.startswith("calibration plan:") and "budget 20 s" in text
    assert not out.exists() and not out.with_suffix(".data.json").exists() and "plan" not in fake_gpu
