"""What is predicted is what runs: for every preset GPU x dtype x head_dim x strategy with a kernel, the
Schedule the model simulates (attnsim.resolve.plan_for) is the Schedule the launcher uploads.

Under the CPU interpreter nothing compiles, so the launcher plans with the resolver's resources; on a
GPU (test_kernels_gpu) the compiled resources are checked against the same tables."""

from __future__ import annotations

import numpy as np
import pytest

from attnsim import strategies
from attnsim.kernels.launch import interpreting, prepare
from attnsim.resolve import plan_for, resolve
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

WORKLOADS = {  # ragged GQA, MQA with a long context, MHA at a batch that fills the GPU
    "gqa-ragged": (3, 32, 8, [5000, 70000, 1]),
    "mqa": (1, 32, 1, 200000),
    "mha-batch": (16, 16, 16, 4096),
}


def _same_schedule(a, b) -> None:
    assert (a.strategy, a.grid, a.splits, a.kv_tile_tokens) == (b.strategy, b.grid, b.splits, b.kv_tile_tokens)
    assert [(l.name, l.family, l.grid, l.resources) for l in a.launches] == \
           [(l.name, l.family, l.grid, l.resources) for l in b.launches]
    for field in ("cta", "seq", "kv_head", "q_block", "first_tile", "n_tiles", "role"):
        assert np.array_equal(getattr(a.attention.segments, field), getattr(b.attention.segments, field)), field
    assert np.array_equal(a.reductions.peer_cta, b.reductions.peer_cta)
    assert np.array_equal(a.reductions.host_cta, b.reductions.host_cta)


@pytest.mark.parametrize("shape", WORKLOADS)
@pytest.mark.parametrize("head_dim", [64, 128, 256])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("gpu", sorted(PRESETS))
@pytest.mark.parametrize("strategy", strategies.ours())
def test_model_plans_what_the_launcher_uploads(strategy, gpu, dtype, head_dim, shape):
    if not interpreting():
        pytest.skip("CPU contract test (the GPU test compares compiled resources)")
    batch, hq, hkv, contexts = WORKLOADS[shape]
    workload = DecodeWorkload.build(batch, hq, hkv, head_dim, contexts, dtype=dtype)
    for spec in {resolve_gpu(gpu), resolve_gpu(gpu, "none")}:  # shipped profile and datasheet
        launcher = prepare(strategy, workload, spec, device="cpu")
        _same_schedule(plan_for(strategy, workload, spec), launcher.schedule)
        assert launcher.config == resolve(strategy, workload, spec).config


def test_bf16_plans_the_kernels_grid_on_the_h100_profile():
    """Issue 8's case: bf16 used to plan stream-K with datasheet resources (grid 396) while the bf16
    kernel runs 264 CTAs (2 per SM at 256 threads x 128 registers)."""
    w = DecodeWorkload.build(1, 32, 8, 128, 16384, dtype="bfloat16")
    for spec in (resolve_gpu("h100"), resolve_gpu("h100", "none"), resolve_gpu("h200")):
        assert plan_for("streamk", w, spec).grid == 264, spec.source
