"""Batch-invariant `auto`: only invariant plans, one per model shape whatever the batch, chosen by the
model's mean regret over the grid; the balanced plan's max_splits cuts each sequence by its own length.

The grid is shrunk here (3 batches x 3 contexts) so that a shape scores in well under a second; the
rules tested do not depend on its size."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnsim.errors import InputError
from attnsim.planner import candidates as cand, invariant
from attnsim.planner.choose import make_plan
from attnsim.planner.search import search
from attnsim.plans.spec import plan_spec
from attnsim.profiles import resolve_gpu
from attnsim.simulator.engine import simulate
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation import planner_invariant

H200 = resolve_gpu("h200")
INVARIANT = PlanConfig(batch_invariant=1)
SHAPES = ((32, 8, 128), (8, 1, 64))  # (q_heads, kv_heads, head_dim)


@pytest.fixture(autouse=True)
def small_grid(monkeypatch):
    monkeypatch.setattr(invariant, "GRID_BATCHES", (1, 8, 64))
    monkeypatch.setattr(invariant, "GRID_CONTEXTS", (1024, 16384, 131072))
    monkeypatch.setattr(invariant, "_CHOICES", {})


def is_invariant(strategy: str, options: dict) -> bool:
    """The plan's splits follow each sequence's own length and fixed values (planner/invariant.py)."""
    if strategy == "fa2":
        return not options.keys() - {"kv_tile_tokens", "num_warps", "num_stages"}
    if strategy == "balanced":
        return "chunk_tokens" in options and "grid" not in options
    if strategy == "splitkv" and "chunk_tokens" in options:  # balanced's chunks in one launch
        return "splits" not in options
    return strategy in ("flashdecoding", "splitkv") and "splits" in options


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(SHAPES), lengths=st.lists(st.integers(1, 300_000), min_size=1, max_size=12))
def test_planner_returns_only_invariant_plans_and_the_same_one_for_every_batch(shape, lengths):
    """Property over random (ragged) batches: the choice is invariant, and it is the shape's one plan."""
    workload = DecodeWorkload.build(len(lengths), *shape, lengths if len(lengths) > 1 else lengths[0])
    result = search(workload, H200, INVARIANT)
    chosen = result.chosen
    assert is_invariant(chosen.strategy, dict(chosen.options)), chosen.spec
    alone = search(DecodeWorkload.build(1, *shape, 777), H200, INVARIANT).chosen
    assert chosen.spec == alone.spec
    assert make_plan("auto", workload, H200, INVARIANT).spec == chosen.spec
    assert result.fastest in result.ranked  # (a capped chunk, outside the unconstrained pool, may beat it)


def test_choice_has_the_least_mean_regret_within_the_tie_and_is_the_simplest_there():
    workload = DecodeWorkload.build(2, 32, 8, 128, [3000, 90000])
    fixed = search(workload, H200, INVARIANT).why
    choice = invariant._CHOICES[next(iter(invariant._CHOICES))]
    means = [s.mean_pct for s in choice.scored]
    assert means == sorted(means) and len(choice.scored) > 20
    assert choice.chosen.mean_pct <= means[0] + invariant.TIE_PP
    tied = [s for s in choice.scored if s.mean_pct <= means[0] + invariant.TIE_PP]
    assert invariant.simplicity(choice.chosen) == min(invariant.simplicity(s) for s in tied)
    assert choice.chosen.spec in fixed and "mean" in fixed and f"{choice.points} batch x context points" in fixed
    assert choice.points == len(invariant.grid_points(workload)) == 6  # b64 x 16k, 128k: over the KV cap


def test_regret_is_measured_against_the_unconstrained_search():
    """A plan's grid regret is its time over the fastest plan at each point, of the unconstrained search
    and of the fixed plans themselves (recomputed here)."""
    shape = DecodeWorkload.build(1, 8, 1, 64, 512)
    entries = ("fa2", "balanced")
    choice = invariant.score(shape, H200, PlanConfig(), entries,
                             lambda w: search(w, H200, PlanConfig(), entries).fastest.time_us)
    fa2 = next(s for s in choice.scored if s.strategy == "fa2")
    regrets = []
    for w in invariant.grid_points(shape):
        fixed = [invariant.predicted_us(n, o, w, H200, PlanConfig())[0]
                 for n in entries for o in invariant.fixed_options(n, 128)]  # 128-token tiles at d 64 (16 KB)
        best = min(search(w, H200, PlanConfig(), entries).fastest.time_us, *fixed)
        regrets.append(100 * (fixed[0] / best - 1))  # fixed[0]: fa2
    assert fa2.mean_pct == pytest.approx(np.mean(regrets), rel=1e-9)
    assert fa2.max_pct == pytest.approx(max(regrets), rel=1e-9) and fa2.max_pct > 50  # fa2 at b1 128k: one CTA/head


def test_plans_that_cut_a_point_alike_are_simulated_once_and_priced_as_each_alone():
    """PointPlans simulates one concrete plan per point (a cap that does not bind is the uncapped plan):
    every fixed plan's grid regret is what simulating each plan on its own gives."""
    shape, entries = DecodeWorkload.build(1, 16, 2, 128, 512), ("balanced", "splitkv")
    fastest = {}

    def fastest_us(w):
        fastest[w] = search(w, H200, PlanConfig(), entries).fastest.time_us
        return fastest[w]

    choice = invariant.score(shape, H200, PlanConfig(), entries, fastest_us)
    points, simulated, concrete = invariant.grid_points(shape), 0, 0
    tile = {name: cand.context_for(name, points[0], H200, PlanConfig()).tile for name in entries}
    alone = {}  # plan spec -> µs [points], each plan simulated on its own
    for w in points:
        at_point = invariant.PointPlans(w, H200, PlanConfig())
        for name in entries:
            for options in invariant.fixed_options(name, tile[name]):
                ctx = cand.context_for(name, w, H200, PlanConfig(), options)
                t = simulate(ctx.strategy.partition(w, H200, replace(ctx.config, **options)), H200).total_us
                assert at_point.predict(name, options)[0] == t
                alone.setdefault(plan_spec(name, options), []).append(t)
                simulated += 1
        concrete += len(at_point.seen)
    assert concrete < simulated / 2  # most fixed plans cut a point as another does
    best = np.minimum([fastest[w] for w in points], np.min(list(alone.values()), axis=0))
    for s in choice.scored:
        assert s.mean_pct == pytest.approx(np.mean(100 * (np.array(alone[s.spec]) / best - 1)), rel=1e-12)


def test_persistent_plans_are_never_invariant_candidates():
    assert invariant.invariant_entries(("streamk", "hybrid", "fa2", "balanced", "splitkv", "flashdecoding")) == \
        ["fa2", "balanced", "splitkv", "flashdecoding"]
    with pytest.raises(InputError, match="batch_invariant"):
        search(DecodeWorkload.build(1, 32, 8, 128, 4096), H200, INVARIANT, names=("streamk",))


def test_grid_stays_under_the_kv_cap_and_keeps_the_model_shape():
    shape = DecodeWorkload.build(3, 64, 8, 128, [10, 20, 30], dtype="bfloat16")
    points = invariant.grid_points(shape)
    assert points and all(w.kv_bytes() <= invariant.GRID_MAX_KV_BYTES for w in points)
    assert {(w.q_heads, w.kv_heads, w.head_dim, w.dtype) for w in points} == {(64, 8, 128, "bfloat16")}
    assert len(points) < len(invariant.GRID_BATCHES) * len(invariant.GRID_CONTEXTS)  # b64 x 128k is 34 GB


@pytest.mark.parametrize("chunk_tiles,max_splits", [(2, 4), (8, 3), (1, 1)])
def test_max_splits_cuts_each_sequence_by_its_own_length(chunk_tiles, max_splits):
    """Every KV tile covered once; chunks per output = min(ceil(tiles / chunk), max_splits); equal in any batch."""
    lengths = [100, 5000, 70_000, 640]
    workload = DecodeWorkload.build(len(lengths), 8, 2, 128, lengths)
    spec = f"balanced:chunk_tokens={64 * chunk_tiles},max_splits={max_splits}"
    plan = make_plan(spec, workload, H200)
    tile = plan.schedule.kv_tile_tokens
    segs = plan.schedule.launches[0].segments
    for i, n in enumerate(lengths):
        tiles = -(-n // tile)
        mine = segs.seq == i
        per_head = np.sort(segs.first_tile[mine & (segs.kv_head == 0)])
        assert len(per_head) == min(-(-tiles // chunk_tiles), max_splits)
        covered = np.concatenate([np.arange(f, f + c) for f, c in zip(segs.first_tile[mine & (segs.kv_head == 0)],
                                                                       segs.n_tiles[mine & (segs.kv_head == 0)])])
        assert sorted(covered.tolist()) == list(range(tiles))
        alone = make_plan(spec, DecodeWorkload.build(1, 8, 2, 128, n), H200).schedule.launches[0].segments
        assert np.array_equal(np.sort(alone.first_tile[alone.kv_head == 0]), per_head)
    assert plan.spec == spec


def study_rows(workload, specs_times: dict) -> pd.DataFrame:
    """Bench rows of `workload`, one per (plan spec: measured µs); `auto` rows by their options."""
    rows = []
    for spec, t in specs_times.items():
        strategy, _, options = spec.partition(":")
        rows.append({"strategy": strategy, "options": options or None, "batch": workload.batch,
                     "q_heads": workload.q_heads, "kv_heads": workload.kv_heads, "head_dim": workload.head_dim,
                     "contexts": ";".join(map(str, workload.contexts)), "dtype": workload.dtype,
                     "time_us": t, "status": "ok"})
    return pd.DataFrame(rows)


def test_replay_scores_the_invariant_plan_only_where_it_was_measured():
    workload = DecodeWorkload.build(3, 16, 2, 64, [700, 20000, 3000])
    spec = search(workload, H200, INVARIANT).chosen.spec
    timed = {"fa2": 100.0, "streamk": 40.0, "auto": 44.0, "auto:batch_invariant=1": 60.0, spec: 50.0}
    record = planner_invariant.replay(study_rows(workload, timed), H200).iloc[0]
    assert record["invariant_spec"] == spec and record["regime"] == "ragged"
    assert record["measured_pct"] == pytest.approx(25.0)  # 50 over the best of ours, 40
    assert record["study_invariant_pct"] == pytest.approx(50.0) and record["study_auto_pct"] == pytest.approx(10.0)
    assert record["predicted_vs_fastest_pct"] >= record["predicted_pct"] - 1e-9  # the fastest is never slower
    del timed[spec]
    again = planner_invariant.replay(study_rows(workload, timed), H200).iloc[0]
    assert np.isnan(again["measured_pct"])  # not measured: never guessed
    summary = planner_invariant.by_regime(planner_invariant.replay(study_rows(workload, {**timed, spec: 50.0}), H200))
    assert summary.iloc[0]["regime"] == "all" and summary.iloc[0]["measured vs best mean"] == 25.0


def test_regimes_split_by_batch_and_context():
    assert planner_invariant.regime(DecodeWorkload.build(4, 8, 1, 64, 4095)) == "b1-4 <4k"
    assert planner_invariant.regime(DecodeWorkload.build(5, 8, 1, 64, 4096)) == "b5-16 4k-32k"
    assert planner_invariant.regime(DecodeWorkload.build(17, 8, 1, 64, 32768)) == "b17-64 >=32k"


def test_the_plan_size_limit_counts_chunks_after_the_cap():
    """64 x 1M tokens in 64-token chunks is 8M CTAs (refused); capped at 16 chunks, 8,192 CTAs."""
    workload = DecodeWorkload.build(64, 32, 8, 128, 1_000_000)
    assert make_plan("balanced:chunk_tokens=64,max_splits=16", workload, H200).schedule.grid == 64 * 8 * 16
    with pytest.raises(InputError, match="chunk_tokens"):
        make_plan("balanced:chunk_tokens=64", workload, H200)


def test_an_invariant_choices_ties_are_every_plan_within_its_band_whatever_was_pruned():
    # the fixed plan is often slower than the fastest, so the plans around it are ones the search prunes: they are
    # simulated for the report (every unconstrained plan predicted within the band of the choice, either way)
    from attnsim import strategies
    from attnsim.planner.search import Evaluator, distinct

    workload = DecodeWorkload.build(8, 32, 8, 128, 4096)
    result = search(workload, H200, INVARIANT)
    ev = Evaluator(workload, H200, PlanConfig())
    every = distinct([ev.run(c) for n in strategies.candidates(workload) for c in cand.candidates_for(ev.context(n), {})]
                     + [ev.heuristic(h) for h in strategies.heuristics_for(workload)])
    band = result.tie_band_pct / 100
    near = sorted(e.time_us for e in every if abs(e.time_us / result.chosen.time_us - 1) <= band
                  and e.concrete != result.chosen.concrete)
    assert near and sorted(e.time_us for e in result.ties) == near
