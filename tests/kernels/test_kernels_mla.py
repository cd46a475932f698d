"""The MLA decode kernels (kernels/mla_decode.py) against the float64 reference, driven by the same
plans the model simulates: every strategy with an MLA kernel (FA2-style, FlashDecoding, stream-K,
hybrid, balanced, FlashMLA's schedule), contiguous and paged latent caches, verify blocks, one and
two q-blocks, ragged batches with NaN past every context, reduced latent widths (the kernel takes
LORA and the rope width as constexprs) and the full 512 + 64. CPU interpreter or GPU; small shapes.
"""

import pytest
import torch

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.kernels.kv_cache import paged
from attnsim.kernels.launch import TORCH_DTYPES, launcher_for
from attnsim.kernels.plan_tables import combine_slots
from attnsim.kernels.reference import gather_pages, max_relative_error, mla_reference
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE
from plan_helpers import plan_for
from test_plan_contract import _same_schedule

MLA_STRATEGIES = strategies.ours_mla()
SM_SCALE = 0.1  # MLA engines pass their own (1 / sqrt(192) x YaRN's mscale for DeepSeek-V3)

# name: (batch, q_heads, contexts, q_len, page_size, kv_lora_rank, rope dims, kv tile, splits, grid)
CASES = {
    "ragged-16heads": (3, 16, (37, 100, 5), 1, 0, 32, 16, 16, 3, 5),
    "paged16-tile16": (2, 8, (150, 64), 1, 16, 64, 16, 16, 4, 6),
    "paged64-tile32": (3, 16, (97, 33, 200), 1, 64, 32, 32, 32, 2, 4),
    "two-qblocks-128heads": (2, 128, (90, 41), 1, 0, 32, 16, 16, 3, 6),
    "verify-qlen2": (2, 8, (40, 17), 2, 0, 32, 16, 16, 3, 4),
    "verify-qlen4-paged": (2, 16, (51, 35), 4, 16, 64, 16, 16, 4, 6),
    "full-512+64": (2, 16, (150, 77), 1, 64, 512, 64, 32, 2, 4),
}


def case(name: str):
    batch, heads, contexts, q_len, page, rank, rope, tile, splits, grid = CASES[name]
    workload = DecodeWorkload.build(batch, heads, 1, rank + rope, list(contexts), q_len, "bfloat16", page,
                                    kv_lora_rank=rank)
    return workload, tile, splits, grid


def config_for(strategy: str, workload: DecodeWorkload, tile: int, splits: int, grid: int) -> PlanConfig:
    """Explicit options, so short contexts still split: FlashMLA's grid is parts x q-block pairs."""
    pairs = -(-workload.q_len * workload.group // 64)
    return PlanConfig(kv_tile_tokens=tile, splits=splits, grid=grid * pairs if strategy == "flashmla" else grid)


def mla_inputs(workload: DecodeWorkload, seed: int, pad_tokens: int = 3):
    """(q [batch, q_heads, q_len, D], latent cache, run kwargs, float64 reference): a latent cache
    [batch, 1, max_context + pad, D] with NaN past every context, paged into a shuffled pool (NaN in
    every unused row and behind every unused block-table entry) when the workload is paged."""
    w, gen = workload, torch.Generator().manual_seed(seed)
    dtype = TORCH_DTYPES[w.dtype]
    q = torch.randn(w.batch, w.q_heads, w.q_len, w.head_dim, generator=gen).to(dtype)
    latent = torch.randn(w.batch, 1, w.max_context + pad_tokens, w.head_dim, generator=gen)
    for i, n in enumerate(w.contexts):
        latent[i, :, n:] = float("nan")
    latent = latent.to(dtype)
    kwargs = {}
    if w.paged:
        latent, kwargs["block_table"] = paged(latent, w.contexts, w.page_size, seed)
        reference_cache = gather_pages(latent, kwargs["block_table"], w.max_context)
    else:
        reference_cache = latent
    return q, latent, kwargs, mla_reference(q, reference_cache, w.contexts, w.kv_lora_rank, SM_SCALE)


def run_mla(strategy: str, workload: DecodeWorkload, config: PlanConfig, device, seed: int, h100, runs: int = 1):
    launcher = launcher_for(strategy, workload, h100, config, device=device, sm_scale=SM_SCALE)
    q, latent, kwargs, ref = mla_inputs(workload, seed)
    q, latent = q.to(device), latent.to(device)
    kwargs = {k: t.to(device) for k, t in kwargs.items()}
    worst = 0.0
    for _ in range(runs):
        out = torch.full((*q.shape[:-1], workload.kv_lora_rank), float("nan"), dtype=q.dtype, device=device)
        launcher.run(q, latent, None, out, **kwargs)
        worst = max(worst, max_relative_error(out, ref.to(device)))
    return launcher, worst


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("strategy", MLA_STRATEGIES)
def test_matches_reference(strategy, name, device, h100):
    workload, tile, splits, grid = case(name)
    config = config_for(strategy, workload, tile, splits, grid)
    launcher, err = run_mla(strategy, workload, config, device, sum(map(ord, name + strategy)), h100)
    assert err <= TOLERANCE
    _same_schedule(plan_for(strategy, workload, h100, config), launcher.schedule)  # the model's plan ran


@pytest.mark.parametrize("strategy", ["streamk", "hybrid"])
def test_in_kernel_merges_leave_every_flag_down(strategy, device, h100):
    """Stream-K over 128 heads: outputs straddle programs and merge in-kernel along the merge tree;
    every flag is taken again, so a second launch (CUDA-graph replay) runs on the same tables."""
    workload, tile, splits, _ = case("two-qblocks-128heads")
    launcher, err = run_mla(strategy, workload, PlanConfig(kv_tile_tokens=tile, grid=9), device, 3, h100, runs=2)
    assert err <= TOLERANCE
    assert len(launcher.schedule.reductions) and int(launcher.tables.flags.abs().sum()) == 0


def test_flashmla_slots_follow_the_peer_lists_not_the_cta_order(device, h100):
    """FlashMLA's grid puts every q-block on the same parts (CTA = pair x parts + part), so the
    peers of an output are not the peer segments in CTA order: the launcher maps each peer segment
    to its Reductions slot, one to one, and the combine reads each output's slots contiguously."""
    workload = DecodeWorkload.build(2, 128, 1, 48, [640, 600], dtype="bfloat16", kv_lora_rank=32)
    launcher, err = run_mla("flashmla", workload, PlanConfig(kv_tile_tokens=16, grid=8), device, 5, h100)
    assert err <= TOLERANCE
    segs, red = launcher.schedule.attention.segments, launcher.schedule.reductions
    is_peer = segs.role == ROLE_PEER
    slots = combine_slots(segs, red, is_peer)
    assert sorted(slots.tolist()) == list(range(len(red.peer_cta)))
    assert (red.peer_cta[slots] == segs.cta[is_peer]).all()
    assert not (red.peer_cta == segs.cta[is_peer]).all()  # the case the mapping exists for


def test_launcher_checks_mla_inputs(device, h100):
    workload, tile, _, _ = case("paged16-tile16")
    launcher = launcher_for("fa2", workload, h100, PlanConfig(kv_tile_tokens=tile), device=device)
    q, latent, kwargs, _ = mla_inputs(workload, seed=1)
    q, latent, kwargs = q.to(device), latent.to(device), {k: t.to(device) for k, t in kwargs.items()}
    with pytest.raises(InputError) as info:
        launcher.run(q, latent, latent.clone(), **kwargs)  # V must be the latent cache itself
    assert info.value.field == "v_cache"
    with pytest.raises(InputError) as info:
        launcher.run(q, latent, out=torch.empty(q.shape, dtype=q.dtype, device=device), **kwargs)  # o is kv_lora_rank wide
    assert info.value.field == "out"
    out = launcher.run(q, latent, **kwargs)
    assert out.shape == (*q.shape[:-1], workload.kv_lora_rank)


def test_strategies_without_an_mla_kernel_are_refused(h100):
    workload, *_ = case("ragged-16heads")
    with pytest.raises(InputError) as info:
        launcher_for("splitkv", workload, h100, device="cpu")
    assert info.value.field == "strategy" and "MLA" in info.value.message
