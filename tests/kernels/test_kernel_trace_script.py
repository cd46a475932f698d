"""scripts/kernel_trace.py: its sets are the plans it says (fa2 at fixed bytes across 1-2 waves; split-KV's
small grids; the sweep's ragged d 64 batch), and one plan goes through the whole path (planned, checked against
float64, timed, traced) and comes back as one row and one trace row per CTA a repetition (interpreter, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnsim.simulator.workload import DecodeWorkload
from script_helpers import load_script

kt = load_script("kernel_trace")


def test_the_fa2_grids_hold_the_same_bytes_across_one_to_two_waves():
    plans = kt.fa2_grid(132)
    grids = [w.batch for _, w in plans]
    assert grids[:4] == [132, 264, 396, 400] and grids[-1] == 2 * 396 + 4
    kv = [w.kv_bytes() for _, w in plans]
    assert max(kv) / min(kv) < 1.001 and abs(kv[0] - (1 << 30)) / (1 << 30) < 1e-3
    assert {(w.q_heads, w.kv_heads, w.head_dim, w.dtype) for _, w in plans} == {(1, 1, 128, "bfloat16")}


def test_the_ragged_set_is_the_sweeps_point_at_both_head_dims():
    plans = kt.ragged_d64()
    assert {w.head_dim for _, w in plans} == {64, 128}
    assert all(w.contexts == kt.RAGGED_D64 and w.batch == 32 for _, w in plans)


def test_one_plan_is_planned_checked_timed_and_traced(h100):
    if not kt.interpreting():
        pytest.skip("the interpreter path (CPU); on a GPU the script itself runs")
    w = DecodeWorkload.build(3, 4, 2, 64, [40, 90, 17])
    flush = torch.empty(64, dtype=torch.int8)
    row, runs = kt.trace_plan("splitkv:splits=3", w, h100, 2, flush, device="cpu", time_us=lambda fn: 1.5)
    assert row["plan"].startswith("splitkv") and row["grid"] == 3 * w.batch * w.kv_heads
    assert row["max_rel_err"] <= kt.REL_TOL and row["traced_max_rel_err"] <= kt.REL_TOL
    assert row["time_us"] == 1.5 and row["slots"] > 0
    assert runs.shape == (2, row["grid"], 3) and np.array_equal(runs[0, :, 0], np.arange(row["grid"]))


def test_the_lone_and_tail_sets_plan_the_grids_they_say(h100):
    from attnsim.planner.choose import make_plan

    assert [w.batch for _, w in kt.fa2_lone(132)] == [1, 2, 8, 33, 66, 132]
    grids = {spec: make_plan(spec, w, h100).schedule.grid for spec, w in kt.split_tails()}
    assert grids == {"flashdecoding:splits=3": 384, "flashdecoding:splits=4": 512, "splitkv:splits=3": 384,
                     "splitkv:splits=4": 512}


def test_the_share_set_leaves_a_third_of_the_sms_lightly_loaded():
    one, two = kt.sm_share(132)
    for (_, w), short in ((one, 88), (two, 44)):  # a third of the residues keep 1 (2) of their 3 CTAs long
        assert w.batch == 396 and sum(c == 64 for c in w.contexts) == short
        assert all(w.contexts[i] == 64 for i in range(396) if i % 132 < 44 and i // 132 >= (1 if short == 88 else 2))


def test_the_alone_set_keeps_long_ctas_on_a_sixth_of_the_sms_only():
    for keep, (_, w) in enumerate(kt.sm_alone(132), start=1):
        assert sum(c > 64 for c in w.contexts) == 22 * keep
