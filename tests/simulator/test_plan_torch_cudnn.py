"""The torch-cudnn plan against what cuDNN launched on the H200 (results/h200/cudnn_kernels.csv,
torch.profiler, cuDNN 9.19), and the rule's edges written out.

Where cuDNN's launch geometry changes with the workload (split thresholds), the plan must change at
the same points: every captured workload's launches (count, 3-D grid, threads, registers, shared
memory) are the plan's.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attnsim.errors import InputError
from plan_helpers import plan, plan_for
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.partition import torch_cudnn
from attnsim.simulator.partition.common import PlanConfig
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

from sim_helpers import assert_common_invariants

NAME = "torch-cudnn"
H200 = PRESETS["h200"]
CAPTURE = Path(__file__).parents[2] / "results" / "h200" / "cudnn_kernels.csv"
KEYS = ["batch", "q_heads", "kv_heads", "head_dim", "context", "dtype"]


def _captured() -> list[tuple[tuple, pd.DataFrame]]:
    frame = pd.read_csv(CAPTURE)
    frame = frame[(frame["backend"] == NAME) & frame["status"].str.startswith("ok")]
    return [(key, calls.sort_values("kernel_index")) for key, calls in frame.groupby(KEYS)]


CAPTURED = _captured()


def _grid_3d(sched, launch) -> tuple[int, int, int]:
    """The plan's launch as cuDNN's grid: attention (splits, kv_heads x q-blocks, batch), the
    reduction (1, q_heads, batch)."""
    batch = sched.workload.batch
    if launch.name == "attention":
        return sched.splits, launch.grid // (sched.splits * batch), batch
    return 1, launch.grid // batch, batch


def test_the_capture_covers_the_split_edges():
    """356 workloads, split and unsplit, both head dims and dtypes (the test below is not vacuous)."""
    splits = {int(calls["grid_x"].iloc[0]) for _, calls in CAPTURED}
    assert len(CAPTURED) == 356 and splits == {1, 8, 16, 32, 64}
    assert {key[3] for key, _ in CAPTURED} == {64, 128} and {key[5] for key, _ in CAPTURED} == {"float16", "bfloat16"}


@pytest.mark.parametrize("key, calls", CAPTURED, ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else "")
def test_the_plan_launches_what_cudnn_launched(key, calls):
    batch, q_heads, kv_heads, head_dim, context, dtype = key
    sched = plan_for(NAME, DecodeWorkload.build(batch, q_heads, kv_heads, head_dim, context, dtype=dtype), H200)
    assert len(sched.launches) == len(calls)
    for launch, (_, rec) in zip(sched.launches, calls.iterrows()):
        assert _grid_3d(sched, launch) == (rec["grid_x"], rec["grid_y"], rec["grid_z"]) and launch.grid == (
            rec["grid_x"] * rec["grid_y"] * rec["grid_z"])
        res = launch.resources
        assert (res.threads, res.regs_per_thread, res.smem_bytes) == (rec["block_x"], rec["regs"], rec["smem_total"])


@pytest.mark.parametrize("bh, n_blocks, expected", [
    (2, 16, 16), (2, 1024, 64), (8, 64, 32), (32, 1024, 8),  # captured: capped by n_blocks, by 64, by 2 x SMs
    (1, 4, 1), (1, 5, 4), (3, 10000, 64), (5, 10000, 32), (33, 10000, 8),  # uncaptured: the hypothesis
    (64, 10000, 4), (65, 10000, 4), (66, 10000, 1), (96, 10000, 1), (128, 10000, 1)])
def test_split_rule(bh, n_blocks, expected):
    assert torch_cudnn.cudnn_splits(bh, n_blocks, 132) == expected


def test_gqa_groups_over_16_rows_take_several_q_blocks_and_reduce_per_q_head():
    sched = plan(NAME, DecodeWorkload.build(2, 48, 1, 128, 8192), H200, PlanConfig())  # 48 rows: 3 q-blocks
    attention, reduction = sched.launches
    assert sched.splits == 32 and attention.grid == 2 * 3 * 32 and reduction.grid == 2 * 48
    assert set(attention.segments.q_block.tolist()) == {0, 1, 2}
    # each reduction CTA reads the 32 partials of one q-head row (fp32 O + LSE) and writes one row of O
    assert reduction.cta_read_bytes[0] == 32 * (128 + 1) * 4 and reduction.cta_write_bytes[0] == 128 * 2
    assert_common_invariants(sched)


def test_splits_override_and_estimated_head_dims():
    w = DecodeWorkload.build(1, 32, 8, 96, 65536)
    sched = plan(NAME, w, H200, PlanConfig(splits=4))
    assert sched.splits == 4 and sched.notes["rule_splits"] == 32 and sched.notes["resources"] == "estimated"
    assert sched.attention.resources.regs_per_thread == 152  # between d 64's 120 and d 128's 183
    assert sched.attention.family == "torch-cudnn-d128"  # the d 128 kernel's costs


def test_head_dims_over_128_are_refused_as_pytorch_refuses_them():
    from attnsim import strategies
    from attnsim.kernels.torch_baselines import unsupported_reason

    w = DecodeWorkload.build(1, 32, 8, 256, 4096)
    with pytest.raises(InputError) as err:
        plan(NAME, w, H200, PlanConfig())
    assert err.value.field == "head_dim"
    assert not strategies.get(NAME).takes(256) and strategies.get(NAME).takes(128)
    assert "head_dim <= 128" in unsupported_reason(NAME, w)  # the bench records it, does not run it


@pytest.mark.parametrize("gpu", ["h200", "h100"])
def test_calibrated_predictions_stay_under_the_bandwidth_and_grow_with_context(gpu):
    """On the shipped profiles: never above the HBM bandwidth; longer is never faster, except at the
    rule's switch from one split to several (measured too: see test_predict_physics)."""
    spec = resolve_gpu(gpu)
    for (q_heads, kv_heads), head_dim, batch in itertools.product(((32, 32), (32, 8), (32, 1)), (64, 128), (1, 4, 32)):
        results = [simulate(plan_for(NAME, DecodeWorkload.build(batch, q_heads, kv_heads, head_dim, 512 * 2**i), spec), spec)
                   for i in range(11)]
        assert all(r.bw_fraction <= 1 + 1e-9 for r in results)
        for short, long in zip(results, results[1:]):
            assert short.total_us <= long.total_us or short.schedule.splits == 1 < long.schedule.splits


def test_measured_rows_plan_from_the_plan_not_from_recorded_columns():
    """A baseline row's grid/splits columns are the model's guess when the row was written."""
    from attnsim.validation.measurements import measured_points

    row = {"gpu": "NVIDIA H200", "strategy": NAME, "batch": 1, "q_heads": 32, "kv_heads": 8, "head_dim": 128,
           "context": 65536, "dtype": "float16", "time_us": 100.0, "splits": 3, "grid": 24, "num_warps": 8,
           "registers": 64, "smem_bytes": 1024}
    (point,) = measured_points(pd.DataFrame([row]), H200)
    sched = point.plan.schedule
    assert sched.splits == 32 and sched.attention.resources == torch_cudnn.MEASURED_RESOURCES[128]
    assert np.isclose(sched.attention.cta_tiles.sum(), 8 * 512)


def test_the_planner_weighs_cudnn_and_leaves_it_out_where_pytorch_refuses_the_shape():
    from attnsim.reports.plan_report import baseline_verdict
    from attnsim.planner.search import search

    gpu = resolve_gpu("h200")
    result = search(DecodeWorkload.build(1, 32, 8, 128, 1024), gpu)  # measured: cuDNN 11.3 us, stream-K 14.9 us
    (cudnn,) = [b for b in result.baselines if b.name == NAME]
    assert baseline_verdict(result, cudnn.plan).startswith(f"{NAME} is predicted")
    wide = search(DecodeWorkload.build(1, 32, 8, 256, 8192), gpu)
    assert NAME not in {b.name for b in wide.baselines} and wide.baselines  # torch-flash still compared
