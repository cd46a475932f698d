"""What is predicted is what runs: for every preset GPU x dtype x head_dim x strategy with a kernel, the
Schedule the model simulates (attnsim.planner.make_plan) is the Schedule the launcher uploads.

Under the CPU interpreter nothing compiles, so the launcher plans with the resolver's resources; on a
GPU (test_kernels_gpu) the compiled resources are checked against the same tables."""

from __future__ import annotations

import numpy as np
import pytest

from attnsim import strategies
from attnsim.kernels.launch import interpreting, launcher_for
from plan_helpers import plan_for
from attnsim.planner.choose import make_plan
from attnsim.simulator.hardware import PRESETS
from attnsim.profiles import resolve_gpu
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
        launcher = launcher_for(strategy, workload, spec, device="cpu")
        _same_schedule(plan_for(strategy, workload, spec), launcher.schedule)
        assert launcher.config == make_plan(strategy, workload, spec).config


def test_bf16_plans_the_kernels_grid_on_the_h100_profile():
    """Issue 8's case: bf16 used to plan stream-K with datasheet resources (grid 396) while the bf16
    kernel runs 264 CTAs (2 per SM at 256 threads x 128 registers)."""
    w = DecodeWorkload.build(1, 32, 8, 128, 16384, dtype="bfloat16")
    for spec in (resolve_gpu("h100"), resolve_gpu("h100", "none"), resolve_gpu("h200")):
        assert plan_for("streamk", w, spec).grid == 264, spec.source


# ---- issue 17: one plan over the serving space ------------------------------------------------
CONTRACT_GPUS = ("h100", "h200", "l40s")  # sm_90 shipped profiles, and a datasheet sm_89 (fp8, 100 KB)
HEADS = ((32, 8), (32, 32), (64, 8), (16, 2), (128, 1), (8, 1), (28, 4))
CONTEXTS = (777, 4096, 33333, 45302, 220326, (1000, 50000, 3000), (131072, 17, 9000, 600))


def contract_workloads(count: int = 520) -> list[tuple[str, DecodeWorkload]]:
    """(gpu, workload) spanning dtype x kv dtype (fp8 too) x page size x q_len x heads x contexts x
    head dim, drawn without repeats from the full product (seeded), plus issue 17's own failures."""
    import itertools
    import random

    axes = itertools.product(("float16", "bfloat16"), ("", "fp8"), (0, 16, 32, 64, 128, 256), (1, 2, 4, 8, 16),
                             HEADS, CONTEXTS, (64, 128))
    picked = random.Random(17).sample(list(axes), count)
    found = [("h200", DecodeWorkload.build(5, 16, 2, 128, 220326, dtype="bfloat16", kv_dtype="fp8", page_size=32)),
             ("h200", DecodeWorkload.build(6, 16, 2, 128, 45302, dtype="bfloat16", kv_dtype="fp8", page_size=32)),
             ("h200", DecodeWorkload.build(1, 32, 8, 64, 33333, page_size=16)),
             ("h100", DecodeWorkload.build(8, 32, 8, 128, 65536, dtype="bfloat16", kv_dtype="fp8", page_size=32))]
    for i, (dtype, kv, page, q_len, (hq, hkv), ctx, d) in enumerate(picked):
        batch = len(ctx) if isinstance(ctx, tuple) else 1 + i % 8
        contexts = [max(c, q_len) for c in ctx] if isinstance(ctx, tuple) else max(ctx, q_len)  # >= q_len tokens
        found.append((CONTRACT_GPUS[i % len(CONTRACT_GPUS)],
                      DecodeWorkload.build(batch, hq, hkv, d, contexts, dtype=dtype, kv_dtype=kv, page_size=page,
                                           q_len=q_len)))
    return found


def compiled_stand_in(plan) -> "CtaResources":
    """What the device would compile for the plan's variant, as far as the CPU knows: the shipped
    table's exact entry (else the resolver's own answer, which is then a fallback)."""
    from attnsim.plans import resources
    from attnsim.simulator.occupancy import CtaResources

    cfg = plan.config
    key = resources.variant(plan.kernel.name, plan.workload, cfg.kv_tile_tokens, cfg.num_warps,
                            cfg.num_stages).key
    entry = resources.compiled_table((9, 0)).get(key)
    return CtaResources(entry["threads"], entry["regs_per_thread"], entry["smem_bytes"]) if entry else plan.resources


def test_every_plan_over_the_serving_space_launches_as_planned():
    """>= 500 workloads x (auto and every strategy of ours): the planned grid fits the resident
    capacity of the kernel the launcher would compile (co-resident where the plan reduces in-kernel),
    the launcher checks and uploads exactly that plan, and its spec plans the same work again."""
    from attnsim.kernels.launch import check_compiled, kernel_shape
    from attnsim.simulator.occupancy import resident_capacity

    cases = contract_workloads()
    assert len(cases) >= 500
    checked = estimated = 0
    for gpu_name, w in cases:
        gpu = resolve_gpu(gpu_name)
        for name in ("auto", *strategies.candidates()):
            plan = make_plan(name, w, gpu)
            compiled = compiled_stand_in(plan)
            check_compiled(plan, compiled)  # what prepare() asserts on the device
            # sm_90 profiles: every variant compiled, or a compiled sibling of it (never the estimate)
            estimated += plan.resources_source == "estimate" and gpu_name != "l40s"
            if plan.strategy.in_kernel_reduction:
                assert plan.schedule.grid <= resident_capacity(gpu, compiled), (gpu_name, w, plan.spec)
            shape = kernel_shape(w, plan.config, plan.strategy.kernel_for(w, plan.config))
            assert (shape.block_n, shape.num_warps, shape.num_stages) == (
                plan.schedule.kv_tile_tokens, plan.config.num_warps, plan.config.num_stages)
            again = make_plan(plan.spec, w, gpu)
            assert again.spec == plan.spec and again.resources == plan.resources
            _same_schedule(again.schedule, plan.schedule)
            checked += 1
    assert checked >= 500 * 6 and estimated == 0


@pytest.mark.parametrize("spec", ["streamk:epilogue=last", "hybrid:epilogue=last"])
def test_last_arrival_plans_over_the_serving_space_launch_as_planned(spec):
    """Stream-K's last-arrival epilogue (not searched by `auto`, so not above): its kernel (lean_last)
    has a compiled entry or sibling on sm_90 (never the estimate), the compiled CTA runs the plan
    (no co-residency asked: nobody waits), and the spec plans the same Schedule again."""
    from attnsim.kernels.launch import check_compiled

    estimated = 0
    for gpu_name, w in contract_workloads()[:200]:
        gpu = resolve_gpu(gpu_name)
        plan = make_plan(spec, w, gpu)
        assert plan.kernel.name == "lean_last" and not plan.waits_on_peers and "epilogue=last" in plan.spec
        check_compiled(plan, compiled_stand_in(plan))
        estimated += plan.resources_source == "estimate" and gpu_name != "l40s"
        again = make_plan(plan.spec, w, gpu)
        assert again.spec == plan.spec and again.resources == plan.resources
        _same_schedule(again.schedule, plan.schedule)
    assert estimated == 0


@pytest.mark.parametrize("name", ["auto", "streamk", "hybrid", "balanced", "flashdecoding", "fa2"])
def test_the_launcher_uploads_the_plan_it_is_handed(name):
    """prepare(plan) re-plans nothing: the Launcher's schedule is the plan's, object for object."""
    from attnsim.kernels.launch import prepare

    if not interpreting():
        pytest.skip("CPU contract test")
    for gpu_name, w in contract_workloads()[:6]:
        plan = make_plan(name, w, resolve_gpu(gpu_name))
        launcher = prepare(plan, device="cpu")
        assert launcher.schedule is plan.schedule and launcher.meta["plan"] == plan.spec
        assert launcher.meta["requested"] == (name if plan.requested else plan.spec)
