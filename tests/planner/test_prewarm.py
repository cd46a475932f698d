"""bench/prewarm.py: a study's batch-invariant choices made in worker processes are the ones serial planning
makes (same plans timed), one per model shape, and only for specs that need them."""

from __future__ import annotations

import pytest

from attnsim.bench.prewarm import needs_invariant_choice, prewarm_invariant
from attnsim.planner import invariant
from attnsim.planner.choose import tuning_specs
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")
POINTS = [DecodeWorkload.build(2, 16, 2, 64, 3000), DecodeWorkload.build(7, 16, 2, 64, 900),  # one shape
          DecodeWorkload.build(3, 32, 8, 128, 5000)]  # another


@pytest.fixture
def small_grid(monkeypatch):
    monkeypatch.setattr(invariant, "GRID_BATCHES", (1, 8))
    monkeypatch.setattr(invariant, "GRID_CONTEXTS", (1024, 16384))
    monkeypatch.setattr(invariant, "_CHOICES", {})


def specs_for(w):
    return ["auto", "auto:batch_invariant=1"] if w.head_dim == 64 else ["fa2", "auto:tune=2"]


def test_which_specs_need_the_shapes_invariant_choice():
    assert needs_invariant_choice("auto:batch_invariant=1") and needs_invariant_choice("auto:tune=3")
    assert not needs_invariant_choice("auto") and not needs_invariant_choice("splitkv:splits=4")


def test_choices_made_in_workers_are_the_serial_ones(small_grid):
    assert prewarm_invariant(POINTS, H200, specs_for, jobs=2) == 2  # one workload per shape
    parallel = dict(invariant._CHOICES)
    assert len(parallel) == 2
    invariant._CHOICES.clear()
    for w in POINTS:
        for spec in specs_for(w):
            tuning_specs(spec, w, H200)
    assert invariant._CHOICES == parallel  # the same keys (the timing loop hits them) and the same plans


def test_nothing_to_do_without_invariant_specs_or_a_second_process(small_grid):
    assert prewarm_invariant(POINTS, H200, lambda w: ["auto", "fa2"], jobs=4) == 0
    assert prewarm_invariant(POINTS, H200, specs_for, jobs=1) == 0
    assert invariant._CHOICES == {}


def broken_worker(item, gpu):
    raise RuntimeError("worker died")


def test_a_failing_worker_costs_the_study_nothing(small_grid, monkeypatch):
    """The workers' error (or a timeout) leaves the cache as it was: the timing loop plans the shapes itself."""
    import attnsim.bench.prewarm as prewarm

    monkeypatch.setattr(prewarm, "plan_shape", broken_worker)
    assert prewarm_invariant(POINTS, H200, specs_for, jobs=2) == 0
    assert invariant._CHOICES == {}


def test_a_sweep_prewarms_only_the_rows_it_still_has_to_run(monkeypatch):
    """harness.run_sweep hands the prewarm its pending rows: a resumed sweep's done rows are not planned again."""
    import attnsim.bench.prewarm as prewarm
    from attnsim.bench import harness
    from attnsim.bench.results import point_key
    from attnsim.kernels.reference import attention_reference

    seen = {}
    monkeypatch.setattr(prewarm, "prewarm_invariant", lambda points, gpu, specs_for: seen.update(
        {w: specs_for(w) for w in points}) or 0)

    class Reference:  # the float64 reference as a launcher: every row checks ok
        meta = {"plan": "fa2"}

        def __init__(self, w):
            self.w = w

        def run(self, q, k, v, out=None):
            out[...] = attention_reference(q, k, v, self.w.contexts).to(q.dtype)
            return out
    monkeypatch.setattr(harness.measure, "time_us", lambda fn, config: 1.0)
    monkeypatch.setattr(harness.measure, "replayable", lambda fn: fn)
    small = [DecodeWorkload.build(1, 4, 2, 64, 200), DecodeWorkload.build(2, 4, 2, 64, 300)]
    specs = ("fa2", "auto:batch_invariant=1")
    config = harness.BenchConfig(specs, H200, "fake-gpu", 4500.0, device="cpu")
    done = {point_key(s, small[0]) for s in specs} | {point_key("fa2", small[1])}
    harness.run_sweep(small, config, done=done, prepare=lambda s, w, c: Reference(w), reference=attention_reference)
    assert seen == {small[1]: ["auto:batch_invariant=1"]}
