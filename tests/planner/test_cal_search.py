"""The `cal-search` sweep and scripts/cal_search_study.py: points in the three regimes where the oracle
study's rank errors sit, none shared with the sweeps that validate or score the model, each timed at
stream-K grids between 1 and 2 CTAs per SM as distinct concrete plans."""

from __future__ import annotations

import pytest

from attnsim.bench import sweep
from attnsim.bench.calibration import calibration_sweep
from attnsim.planner.choose import planned_name
from attnsim.plans.spec import spec_strategy
from attnsim.profiles import resolve_gpu
from attnsim.validation.planner_oracle import fingerprint, identity, oracle_workloads
from script_helpers import load_script



@pytest.fixture(scope="module")
def study():
    return load_script("cal_search_study")


@pytest.fixture(scope="module")
def points():
    return sweep.sweep("cal-search")


def test_cal_search_shares_no_point_with_the_scoring_or_validation_sweeps(points):
    others = {identity(w) for w in sweep.standard_sweep() + calibration_sweep() + oracle_workloads()}
    assert points and not {identity(w) for w in points} & others
    assert all(sweep.padded_kv_bytes(w) <= sweep.DEFAULT_MAX_KV_GB * 1e9 for w in points)


def test_cal_search_covers_each_regime_of_the_oracle_misses(points):
    few_outputs_long = [w for w in points if w.batch * w.kv_heads <= 16 and w.max_context >= 20000]
    wide_groups = [w for w in points if w.q_heads // w.kv_heads > 16]
    short_many = [w for w in points if w.max_context < 2048 and w.batch * w.q_heads >= 128]
    assert len(few_outputs_long) >= 6 and len(wide_groups) >= 6 and len(short_many) >= 6


def test_study_times_distinct_grids_between_one_and_two_ctas_per_sm(study, points):
    gpu = resolve_gpu("h200")
    w = next(p for p in points if p.q_heads == 28 and p.batch == 1)
    specs = study.candidates(w, gpu)
    grids = {int(s.split("grid=")[1]) for s in specs if s.startswith("streamk:grid=")}
    assert len({g for g in grids if gpu.sm_count < g < 2 * gpu.sm_count}) >= 5
    keys = [fingerprint(s, w, gpu) for s in specs if spec_strategy(s) != planned_name()]
    assert len(keys) == len(set(keys))
