"""`auto:batch_invariant=1,tune=K` (bench/tune_invariant.tuned_rule): the shape's fixed rule measured best among
the model's K best on the shape's own grid, the same for every batch of the shape, timed once per shape. CPU:
fake launchers and a fake timer that prices each plan spec per grid point."""

from __future__ import annotations

import pytest

from attnsim.bench import harness as bench, measure, results as bench_results, tune_invariant
from attnsim.kernels.reference import attention_reference
from attnsim.planner.choose import make_plan, tuning_specs
from attnsim.simulator.hardware import from_name
from attnsim.simulator.workload import DecodeWorkload

H200 = from_name("h200")
SPEC = "auto:batch_invariant=1,tune=3"


def layer(batch: int, context: int) -> DecodeWorkload:
    return DecodeWorkload.build(batch, 16, 2, 64, context)


class PricedLauncher:
    """Writes the reference output; the fake timer prices its plan at the workload it ran."""

    last = None

    def __init__(self, plan: str, w: DecodeWorkload, fail: bool = False):
        self.meta, self.w, self.fail = {"plan": plan, "grid": 1}, w, fail

    def run(self, q, k, v, out=None):
        PricedLauncher.last = self
        out[...] = attention_reference(q, k, v, self.w.contexts).to(q.dtype) * (2.0 if self.fail else 1.0)
        return out


@pytest.fixture
def priced(monkeypatch):
    """price(plan, workload) -> µs sets every timing (rows of the rule grid and the bench row alike); returns
    the list of (plan, batch, context) timed."""
    timed, table = [], {}

    def time_us(fn, config):
        fn()
        launcher = PricedLauncher.last
        timed.append((launcher.meta["plan"], launcher.w.batch, launcher.w.max_context))
        return table["price"](launcher.meta["plan"], launcher.w)
    monkeypatch.setattr(measure, "replayable", lambda fn: fn)
    monkeypatch.setattr(measure, "time_us", time_us)
    monkeypatch.setattr(tune_invariant, "_RULES", {})
    return table, timed


def bench_rows(points, failing=()):
    config = bench.BenchConfig((SPEC,), H200, "fake-gpu", 4500.0, device="cpu")
    return bench.run_sweep(points, config, prepare=lambda plan, w, c: PricedLauncher(plan, w, plan in failing),
                           reference=attention_reference, floor=lambda b: None)


def small_grid(monkeypatch):
    monkeypatch.setattr(tune_invariant, "RULE_BATCHES", (1, 4))
    monkeypatch.setattr(tune_invariant, "RULE_CONTEXTS", (512, 2048))


def test_the_rule_measured_best_on_the_shapes_grid_runs_at_every_batch(priced, monkeypatch):
    small_grid(monkeypatch)
    table, timed = priced
    first, second, third = tuning_specs(SPEC, layer(1, 512), H200)
    assert first == make_plan("auto:batch_invariant=1", layer(1, 512), H200).spec  # the model's choice first
    prices = {first: 12.0, second: 10.0, third: 11.0}
    table["price"] = lambda plan, w: prices.get(plan, 9.0)  # `auto` (the grid's reference) fastest
    rows = bench_rows([layer(2, 700), layer(9, 3000)])
    assert list(rows["status"]) == ["ok", "ok"]
    assert {bench_results.spec_label(r) for _, r in rows.iterrows()} == {second}
    grid = tune_invariant.rule_grid(layer(2, 700))
    assert len(grid) == 4 and {w.batch for w in grid} == {1, 4}
    on_grid = [t for t in timed if (t[1], t[2]) in {(w.batch, w.max_context) for w in grid}]
    assert len(on_grid) == 4 * len(grid)  # three candidates and auto per point, once for both rows
    text = rows["tuned"].iloc[0]
    assert text.startswith("rule of the shape measured on 4 points") and f"{second} 11.11%" in text
    assert rows["tuned"].iloc[1] == text


def test_a_measured_tie_keeps_the_models_choice_and_a_failing_candidate_is_never_chosen(priced, monkeypatch):
    small_grid(monkeypatch)
    table, _ = priced
    first, second, third = tuning_specs(SPEC, layer(1, 512), H200)
    table["price"] = lambda plan, w: {first: 10.02, second: 10.0}.get(plan, 30.0)  # within TIE_PP of each other
    assert bench_results.spec_label(bench_rows([layer(3, 900)]).iloc[0]) == first
    monkeypatch.setattr(tune_invariant, "_RULES", {})
    table["price"] = lambda plan, w: {first: 20.0, second: 5.0}.get(plan, 30.0)
    row = bench_rows([layer(3, 900)], failing={second}).iloc[0]  # fastest but wrong on the grid: not measured
    assert row["tuned"].startswith("rule not measured") and bench_results.spec_label(row) == first


def test_without_a_gpu_the_tuned_invariant_entry_plans_the_models_choice():
    w = layer(5, 4000)
    assert make_plan(SPEC, w, H200).spec == make_plan("auto:batch_invariant=1", w, H200).spec
    assert len(set(tuning_specs(SPEC, w, H200))) == 3
    assert tuning_specs(SPEC, w, H200) == tuning_specs(SPEC, layer(40, 300), H200)  # the shape's, not the batch's


def test_the_estimate_counts_the_rule_grid_once_per_shape():
    one, two = [layer(2, 700)], [layer(2, 700), layer(9, 3000)]
    extra = [bench.estimate_seconds(ws, (SPEC,)) - bench.estimate_seconds(ws, ("auto",)) for ws in (one, two)]
    grid_rows = 4 * len(tune_invariant.rule_grid(layer(2, 700)))  # three rules and auto per grid point
    assert extra[0] > grid_rows * 0.01 and extra[1] == pytest.approx(extra[0])
    other_shape = [layer(2, 700), DecodeWorkload.build(2, 32, 8, 128, 700)]
    assert bench.estimate_seconds(other_shape, (SPEC,)) - bench.estimate_seconds(other_shape, ("auto",)) > 1.5 * extra[0]
