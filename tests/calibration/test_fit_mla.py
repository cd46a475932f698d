"""Issue 23: the MLA kernels' cost families (fa2-mla, flashdecoding-mla (+ -combine), streamk-mla) are fitted
from a cal-mla bench CSV through `calibrate --from-data ... --add-points`: synthetic rows timed by the model
itself at known, perturbed costs are fitted back to them, and the K/V-head families fitted beside them keep
exactly the values they get without MLA rows (the MLA rows are fitted apart, strategies.mla_families)."""

import copy
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from attnsim import strategies
from attnsim.bench.results import base_row, spec_columns
from attnsim.bench.sweep import sweep
from attnsim.planner.choose import make_plan
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import from_name
from attnsim.simulator.hardware import CostParams
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.fit import MLA_TIES, starting_costs
from cli_helpers import run_cli

ROOT = Path(__file__).parent.parent.parent
H200_DATA = json.loads((ROOT / "results" / "h200" / "calibration_data.json").read_text())
DATA = H200_DATA["calibration_data"]
KV_POINTS = [p for p in DATA["points"] if p["strategy"] == "fa2" and p["status"] == "ok"][:10]
MLA_STRATEGIES = ("fa2", "flashdecoding", "streamk", "flashmla")  # flashmla's rows fit flashdecoding's families


def _truth():
    """The spec calibrate builds from DATA, its MLA families moved off their starting values."""
    start, _ = starting_costs(pd.DataFrame(DATA["bandwidth"]), DATA["launch_overhead_us"])
    moved = dict(cta_stream_gbps_per_warp=1.3, launch_overhead_us=1.3, cta_fixed_us=2.0, hbm_scale=0.92)
    truth = {f: dataclasses.replace(start[f], mma_flop_per_sm_clock=2400.0,
                                    **{k: getattr(start[f], k) * v for k, v in moved.items()})
             for f in strategies.mla_families() if not f.endswith("-combine")}
    for combine in ("flashdecoding-mla-combine", "flashdecoding-mla64-combine"):
        truth[combine] = dataclasses.replace(start[combine], cta_fixed_us=0.8, segment_fixed_us=0.08)
    peak = round(max(r["read_gbps"] for r in DATA["bandwidth"]), 1)
    return dataclasses.replace(from_name("h200"), hbm_read_gbps=peak, kernels=dict(DATA["kernels"]),
                               cost={**start, **truth}), truth


def _mla_rows(spec) -> pd.DataFrame:
    """Bench rows of half the cal-mla points (28) x MLA_STRATEGIES, timed by the model on `spec`."""
    config = SimpleNamespace(device_name=H200_DATA["device"]["name"], gpu=spec, peak_read_gbps=spec.hbm_read_gbps,
                             timer=SimpleNamespace(name="synthetic", warmup_ms=0.0, rep_ms=0.0))
    rows = []
    for workload in sweep("cal-mla")[::2]:
        for name in MLA_STRATEGIES:
            plan, row = make_plan(name, workload, spec), base_row(name, workload, config)
            strategy, options = spec_columns(plan.spec)
            res = plan.resources
            row.update(strategy=strategy, options=options, status="ok", time_us=simulate(plan.schedule, spec).total_us,
                       grid=plan.schedule.grid, splits=plan.schedule.splits, num_warps=res.threads // 32,
                       registers=res.regs_per_thread, smem_bytes=res.smem_bytes)
            rows.append(row)
    return pd.DataFrame(rows)


def _calibrate(tmp_path, name: str, add_points: bool, capsys) -> dict:
    data = copy.deepcopy(H200_DATA)
    data["calibration_data"]["points"] = KV_POINTS
    (tmp_path / "d.json").write_text(json.dumps(data))
    extra = ["--add-points", str(tmp_path / "mla.csv")] if add_points else []
    code, _, err = run_cli(["calibrate", "--gpu", "h200", "--from-data", str(tmp_path / "d.json"), *extra,
                            "--out", str(tmp_path / name)], capsys)
    assert code == 0, err
    return json.loads((tmp_path / name).read_text())


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mla")
    spec, truth = _truth()
    _mla_rows(spec).to_csv(tmp / "mla.csv", index=False)
    capsys = SimpleNamespace(readouterr=lambda: SimpleNamespace(out="", err=""))
    return _calibrate(tmp, "with.json", True, capsys), _calibrate(tmp, "without.json", False, capsys), truth


def _cost(doc):
    return doc["gpu"]["cost"]


@pytest.mark.parametrize("family", ["fa2-mla", "streamk-mla"])
def test_the_mla_families_are_recovered(fitted, family):
    """16-row kernels: rates and bandwidth share (their tiles' math keeps up with ~8x the HBM: no point moves
    with it); stream-K's are fa2's, tied (fit.MLA_TIES). Stream-K's fixed costs trade off (cta_fixed_us vs
    fixup_fixed_us)."""
    with_mla, _, truth = fitted
    for name in ("cta_stream_gbps_per_warp", "hbm_scale"):
        assert _cost(with_mla)[family][name] == pytest.approx(getattr(truth[family], name), rel=0.02), name
    assert {k: _cost(with_mla)["streamk-mla"][k] for k in MLA_TIES["streamk-mla"][1]} == \
        {k: _cost(with_mla)["fa2-mla"][k] for k in MLA_TIES["streamk-mla"][1]}


@pytest.mark.parametrize("strategy", ["fa2", "streamk", "flashmla"])
def test_the_64_row_kernels_predict_as_the_truth_off_the_fitted_points(fitted, strategy):
    """64-row kernels (64 and 128 heads): with one CTA per SM their stream rate and their tile math are both
    per-CTA caps proportional to tokens, so the fit may trade one for the other; what it must get is their
    time, here on workloads of no fitted point (batch 3 / 24, 128 heads)."""
    with_mla, _, _ = fitted
    truth_spec, _ = _truth()
    fitted_spec = dataclasses.replace(truth_spec, cost={**truth_spec.cost, **{f: CostParams(**c) for f, c in
                                                                            _cost(with_mla).items() if "mla" in f}})
    for batch, context in ((3, 20_000), (24, 5_000)):
        workload = DecodeWorkload.build(batch, 128, 1, 576, [context] * batch, kv_lora_rank=512, page_size=64)
        want, got = (simulate(make_plan(strategy, workload, s).schedule, s).total_us for s in (truth_spec, fitted_spec))
        assert got == pytest.approx(want, rel=0.03), (batch, context)


def test_flashdecodings_mla_family_is_recovered_where_its_points_pin_it(fitted):
    """Its split plans stream at the same rates; launch overheads of attention and combine trade off."""
    with_mla, _, truth = fitted
    for name in ("cta_stream_gbps_per_warp", "hbm_scale"):
        assert _cost(with_mla)["flashdecoding-mla"][name] == pytest.approx(getattr(truth["flashdecoding-mla"], name),
                                                                          rel=0.03), name


def test_every_mla_fit_reproduces_its_points(fitted):
    report = fitted[0]["fit"]
    assert {"fa2-mla", "flashdecoding-mla", "streamk-mla"} <= set(report)
    assert all(report[key]["mape_pct"] < 0.5 for key in ("fa2-mla", "flashdecoding-mla", "streamk-mla"))


def test_the_kv_head_families_are_untouched(fitted):
    with_mla, without, _ = fitted
    kv = strategies.all_families()
    assert {f: c for f, c in _cost(with_mla).items() if f in kv} == {f: c for f, c in _cost(without).items() if f in kv}
    assert not set(strategies.mla_families()) & set(_cost(without))  # no MLA rows: cost_for's fallback
