"""A bench CSV is validate's input: each row records the concrete plan it ran (strategy + options,
`requested` what it asked for), and validate predicts exactly that plan — auto, hybrid and balanced
with their options included (issue 17). Runs the real launchers under the CPU interpreter."""

from __future__ import annotations

import pytest

from attnsim.bench import harness as bench, measure, results as bench_results
from attnsim.kernels.launch import interpreting
from attnsim.kernels.reference import attention_reference
from attnsim.planner.choose import make_plan
from attnsim.predict import predict_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.compare import predict_measurements
from attnsim.validation.measurements import load_measurements
from cli_helpers import run_cli

H100 = resolve_gpu("h100")
POINTS = [DecodeWorkload.build(2, 8, 2, 32, 48), DecodeWorkload.build(3, 4, 4, 64, [20, 170, 33])]
SPECS = ("fa2", "flashdecoding", "streamk", "auto", "streamk:grid=3", "hybrid:grid=4,dp_outputs=4",
         "balanced:chunk_tokens=256", "flashdecoding:splits=2", "auto:batch_invariant=1",
         "streamk:grid=3,epilogue=last", "hybrid:grid=4,dp_outputs=4,epilogue=last")


@pytest.fixture
def bench_csv(tmp_path, monkeypatch):
    if not interpreting():
        pytest.skip("CPU round trip (TRITON_INTERPRET=1)")
    monkeypatch.setattr(measure, "time_us", lambda fn, config: (fn(), 7.5)[1])  # a fixed time: no GPU timer here
    monkeypatch.setattr(measure, "replayable", lambda fn: fn)
    config = bench.BenchConfig(SPECS, H100, "NVIDIA H100 80GB HBM3", 3000.0, device="cpu")
    df = bench.run_sweep(POINTS, config, reference=attention_reference)
    assert (df["status"] == "ok").all(), df[["requested", "status"]]
    path = tmp_path / "bench.csv"
    bench_results.write_csv(df, path)
    return path, df


def test_rows_name_the_plan_that_ran(bench_csv):
    _, df = bench_csv
    assert set(df["requested"]) == set(SPECS)
    for row in df.to_dict("records"):
        w = POINTS[0] if row["batch"] == 2 else POINTS[1]
        plan = make_plan(row["requested"], w, H100)
        assert bench_results.spec_label(row) == plan.spec, row["requested"]
        assert (row["grid"], row["splits"]) == (plan.schedule.grid, plan.schedule.splits)
    auto = df[df["requested"] == "auto"]
    assert not (auto["strategy"] == "auto").any()  # the planner's choice, never the name asked for


def test_validate_predicts_the_concrete_plan_of_every_row(bench_csv):
    path, _ = bench_csv
    rows = predict_measurements(load_measurements(path), H100)
    assert len(rows) == len(SPECS) * len(POINTS)
    for row in rows.to_dict("records"):
        w = POINTS[0] if row["batch"] == 2 else POINTS[1]
        assert row["plan"] == bench_results.spec_label(row)
        assert row["predicted_us"] == predict_plan(make_plan(row["requested"], w, H100)).total_us


def test_validate_cli_reads_bench_output(bench_csv, tmp_path, capsys):
    path, _ = bench_csv
    code, out, err = run_cli(["validate", "--measurements", str(path), "--gpu", "h100", "--out-dir",
                              str(tmp_path / "v"), "--format", "json"], capsys)
    assert code == 0, err
    assert '"auto"' in out and '"hybrid"' in out and '"balanced"' in out  # metrics per strategy asked for
