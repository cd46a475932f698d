"""The `cal-chunks` sweep and scripts/cal_chunks_study.py: the batch-invariant planner's fixed chunk
plans timed on points that no scoring or validation sweep has (the oracle and invariant studies, the
standard sweep), one spec per concrete plan."""

from __future__ import annotations

import pytest

from attnsim.bench import sweep
from attnsim.planner.choose import planned_name
from attnsim.plans.spec import parse_plan_spec
from attnsim.profiles import resolve_gpu
from attnsim.validation.planner_oracle import fingerprint, identity, oracle_workloads
from script_helpers import load_script


@pytest.fixture(scope="module")
def points():
    return sweep.sweep("cal-chunks", max_kv_gb=sweep.CAL_CHUNKS_MAX_KV_GB)


def test_cal_chunks_shares_no_point_with_the_scoring_or_validation_sweeps(points):
    # (it may share points with the other fitting sets: calibration, cal-search)
    others = sweep.standard_sweep() + oracle_workloads()
    assert points and not {identity(w) for w in points} & {identity(w) for w in others}
    assert all(sweep.padded_kv_bytes(w) <= sweep.CAL_CHUNKS_MAX_KV_GB * 1e9 for w in points)


def test_each_shape_spans_small_and_large_batches_short_and_long_contexts_and_a_ragged_batch(points):
    for q_heads, kv_heads, head_dim in sweep.CAL_CHUNKS_SHAPES:
        mine = [w for w in points if (w.q_heads, w.kv_heads, w.head_dim) == (q_heads, kv_heads, head_dim)]
        uniform = [w for w in mine if len(set(w.contexts)) == 1]
        assert min(w.batch for w in uniform) == 1 and max(w.batch for w in uniform) >= 24
        assert min(w.max_context for w in uniform) <= 3000 and max(w.max_context for w in uniform) >= 20000
        assert len(uniform) >= 5 and len(mine) - len(uniform) <= 1
    assert sum(len(set(w.contexts)) > 1 for w in points) >= 4


def test_study_times_each_concrete_chunk_plan_once_after_the_two_auto_rows(points):
    study = load_script("cal_chunks_study")
    gpu = resolve_gpu("h200")
    w = next(p for p in points if p.batch == 3 and p.q_heads == 16)
    specs = study.study_specs(w, gpu)
    auto = planned_name()
    assert specs[:2] == [auto, f"{auto}:batch_invariant=1"]
    keys = [fingerprint(s, w, gpu) for s in specs[2:]]
    assert len(keys) == len(set(keys)) >= 10
    chunks = {parse_plan_spec(s)[1].set().get("chunk_tokens") for s in specs[2:] if s.startswith("splitkv:")}
    assert len(chunks - {None}) >= 3
