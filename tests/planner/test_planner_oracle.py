"""The oracle study: its workload set meets issue 9's terms, its candidates include the planner's
and every heuristic's choice, and the regret table recomputes from a (synthetic) bench CSV."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from attnsim import strategies
from attnsim.bench.results import COLUMNS
from attnsim.bench.calibration import calibration_sweep
from attnsim.bench.sweep import standard_sweep
from attnsim.validation import planner_oracle as oracle, planner_regret as regret
from attnsim.planner.search import search
from attnsim.plans.spec import spec_strategy
from attnsim.planner.choose import make_plan
from attnsim.predict import predict_one, predict_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")


def test_the_workload_set_is_fresh_and_covers_the_ranges():
    points = oracle.oracle_workloads()
    uniform, ragged = [w for w in points if not w.is_ragged], [w for w in points if w.is_ragged]
    assert len(uniform) >= 100 and len(ragged) >= 20 and len(points) >= 120
    taken = {oracle.identity(w) for w in calibration_sweep() + standard_sweep()}
    assert not {oracle.identity(w) for w in points} & taken
    assert {w.head_dim for w in points} == {64, 128} and 1 in {w.kv_heads for w in points}
    assert {w.group for w in points if w.kv_heads > 1} == set(range(1, 9))
    assert min(w.batch for w in uniform) == 1 and max(w.batch for w in uniform) <= 64
    assert min(w.max_context for w in uniform) >= 512 and max(w.max_context for w in uniform) <= 524288
    assert len({oracle.identity(w) for w in points}) == len(points)


SMALL = (DecodeWorkload.build(1, 32, 8, 128, 4096), DecodeWorkload.build(6, 16, 2, 64, [300, 90000, 1200, 700, 5000, 40]),
         DecodeWorkload.build(24, 32, 32, 128, 3000))


def test_candidates_hold_auto_the_defaults_and_every_heuristic():
    w = SMALL[1]
    specs = oracle.oracle_candidates(w, H200)
    result = search(w, H200)
    assert specs[:2] == ["auto", "auto:batch_invariant=1"]
    assert set(strategies.default_names()) <= set(specs)
    names = {spec_strategy(s) for s in specs}
    assert {"hybrid", "balanced", "torch-flash"} <= names
    timed = {round(predicted(s, w), 9) for s in specs[2:] if strategies.get(spec_strategy(s)).predictable}
    assert all(round(h.plan.time_us, 9) in timed for h in result.heuristics)  # the same plan, under some spec


def predicted(spec: str, w: DecodeWorkload) -> float:
    return predict_one(spec, w, H200).total_us


def synthetic_csv(workloads, faster: dict | None = None) -> pd.DataFrame:
    """Rows as the study writes them, `time_us` = the model's prediction (x 0.5 for specs in `faster`)."""
    rows = []
    for w in workloads:
        for spec in oracle.oracle_candidates(w, H200):
            if not strategies.get(spec_strategy(spec)).predictable:
                continue
            plan = make_plan(spec, w, H200)  # a row records the concrete plan that ran and what it asked for
            t = predict_plan(plan).total_us * (0.5 if spec in (faster or {}).get(w, ()) else 1.0)
            strategy, _, opts = plan.spec.partition(":")
            rows.append({**dict.fromkeys(COLUMNS), "strategy": strategy, "options": opts, "requested": spec,
                         "batch": w.batch,
                         "q_heads": w.q_heads, "kv_heads": w.kv_heads, "head_dim": w.head_dim,
                         "contexts": w.context_label, "dtype": w.dtype, "time_us": t, "status": "ok"})
    return pd.DataFrame(rows, columns=COLUMNS)


def test_regret_table_from_a_synthetic_csv(tmp_path):
    """Measured = predicted: the planner's regret is what its canonical choice costs over the fastest
    prediction (within the tie band; the fastest is timed too), every heuristic its predicted regret
    against the fastest; a plan measured 2x faster than predicted becomes the oracle."""
    table = regret.per_workload(synthetic_csv(SMALL), H200)
    summary = regret.regret_summary(table).set_index("method")
    searched = [search(w, H200) for w in SMALL]
    costs = [100 * (s.chosen.time_us / s.fastest.time_us - 1) for s in searched]
    assert summary.loc["planner (auto)", "max_pct"] == pytest.approx(max(costs), abs=0.01)
    assert summary.loc["planner (auto)", "workloads"] == 3
    assert all(c <= s.tie_band_pct for c, s in zip(costs, searched))
    for h in (h for h in strategies.HEURISTICS if not h.mla_only):  # SMALL: K/V-head layers
        expected = [100 * (next(x.plan for x in s.heuristics if x.name == h.name).time_us / s.fastest.time_us - 1)
                    for s in searched]
        assert summary.loc[h.name, "mean_pct"] == pytest.approx(sum(expected) / 3, abs=0.01)
    checks = regret.acceptance(table)
    assert checks["workloads where auto is slower than the best default beyond the tie band"] == 0
    assert checks["ragged geomean speedup vs flashdecoding"] >= 1.0 and checks["ragged workloads"] == 1

    w = SMALL[0]
    table = regret.per_workload(synthetic_csv(SMALL, {w: {"streamk"}}), H200)
    first = table.iloc[0]
    assert first["oracle_spec"] == "streamk" and first["oracle_us"] == pytest.approx(0.5 * predict_one("streamk", w, H200).total_us)
    assert 100 * (first["planner (auto)"] / first["oracle_us"] - 1) > 0
    doc = tmp_path / "planner.md"
    doc.write_text(f"# x\n{regret.TABLE_BEGIN}\nold\n{regret.TABLE_END}\nafter\n")
    text = regret.markdown(regret.regret_summary(table), regret.acceptance(table))
    doc.write_text(regret.replace_table(doc.read_text(), text))
    body = doc.read_text()
    assert "old" not in body and "| planner (auto) | 3 |" in body and body.endswith("after\n")
    assert not math.isnan(table["fa2-rule"].iloc[0])


def test_the_tuned_auto_is_a_method_and_left_out_where_never_timed():
    """The study times auto:tune=3 beside auto (its rows: the model's choice when no GPU tunes it); a CSV from
    before it has no such rows, and its table has no such line."""
    autos = oracle.oracle_candidates(SMALL[0], H200)[:4]
    assert f"auto:tune={oracle.TUNED}" in autos and f"auto:batch_invariant=1,tune={oracle.TUNED}" in autos
    rows = synthetic_csv(SMALL)
    summary = regret.regret_summary(regret.per_workload(rows, H200)).set_index("method")
    tuned = f"tuned auto (auto:tune={oracle.TUNED})"
    assert summary.loc[tuned, "workloads"] == 3
    assert summary.loc[tuned, "mean_pct"] == summary.loc["planner (auto)", "mean_pct"]
    older = rows[rows["requested"] != f"auto:tune={oracle.TUNED}"]
    assert tuned not in set(regret.regret_summary(regret.per_workload(older, H200))["method"])
