"""The fp8 tile loop's fp16 dots (issue 18): bf16 queries scaled per row by exact powers of two into
fp16 (tiles.fp16_query), so the fp8 kernels take any bf16 q, not only fp16's range; and the
register cap the stream-K kernel compiles with at 16 query rows (strategies.KernelSpec)."""

import pytest
import torch
import triton
import triton.language as tl

from attnsim import strategies
from attnsim.kernels.launch import kernel_shape, launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.kernels.tiles import fp16_query
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, serving_inputs


@triton.jit
def _fp16_query_kernel(q_ptr, q16_ptr, unscale_ptr, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    offs = tl.arange(0, BLOCK_M)[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    q16, unscale = fp16_query(tl.load(q_ptr + offs), BLOCK_M)
    tl.store(q16_ptr + offs, q16)
    tl.store(unscale_ptr + tl.arange(0, BLOCK_M), unscale)


def _fp16_query(q: torch.Tensor):
    q16 = torch.empty(q.shape, dtype=torch.float16, device=q.device)
    unscale = torch.empty(q.shape[0], dtype=torch.float32, device=q.device)
    _fp16_query_kernel[(1,)](q, q16, unscale, BLOCK_M=q.shape[0], HEAD_DIM=q.shape[1])
    return q16, unscale


def test_fp16_query_is_exact_for_bf16_rows_of_any_magnitude(device):
    """Rows from 2^-100 to 2^100 (far outside fp16), a zero row: q16 * unscale is q exactly, each
    row's largest |value| lands in [2^13, 2^14) and unscale is a power of two."""
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(16, 64, generator=gen).to(torch.bfloat16).float()
    exponents = torch.tensor([-100, -60, -30, -14, -1, 0, 1, 8, 15, 16, 17, 30, 60, 100, 5, 0])
    q = q * torch.pow(2.0, exponents.float())[:, None]
    q[-1] = 0.0
    if device == "cpu":  # the interpreter's bf16 q arrives as fp32 (launch.py): the same values
        q_in = q.clone()
    else:
        q_in = q.to(torch.bfloat16)
    q16, unscale = _fp16_query(q_in.to(device))
    q16, unscale = q16.cpu().double(), unscale.cpu().double()
    assert torch.equal(q16 * unscale[:, None], q.double())
    amax = q16[:-1].abs().amax(1)
    assert ((amax >= 2**13) & (amax < 2**14)).all()
    assert torch.equal(torch.log2(unscale), torch.log2(unscale).round())


@pytest.mark.parametrize("strategy", ["fa2", "streamk", "splitkv"])
def test_fp8_kernels_take_bf16_queries_beyond_fp16_range(strategy, device, h100):
    """q times 2^20 (|q| up to ~5e6, fp16 overflows at 65504) with the softmax scale divided by as
    much: the same attention, within the usual bound of the float64 reference."""
    w = DecodeWorkload.build(2, 8, 2, 64, [70, 33], 1, "bfloat16", 0, "fp8")
    q, k, v, kwargs, _ = serving_inputs(w, device, seed=11)
    q = (q.float() * 2.0**20).to(torch.bfloat16)
    sm_scale = 2.0**-20 / 8.0
    launcher = launcher_for(strategy, w, h100, PlanConfig(kv_tile_tokens=16, splits=2, grid=3), device=device,
                            sm_scale=sm_scale)
    out = launcher.run(q, k, v, **kwargs)
    ref = attention_reference(q.cpu(), k.cpu(), v.cpu(), w.contexts, sm_scale=sm_scale,
                              k_scale=kwargs["k_scale"].cpu(), v_scale=kwargs["v_scale"].cpu())
    assert torch.isfinite(out).all()
    assert max_relative_error(out.cpu(), ref) <= TOLERANCE


@pytest.mark.parametrize("group, q_len, capped", [(8, 1, True), (4, 4, True), (32, 1, False), (8, 4, False)])
def test_stream_k_caps_registers_at_16_query_rows(group, q_len, capped):
    """At 16 query rows lean_decode compiles with maxnreg 128 (two 8-warp CTAs per SM); larger query
    tiles (and the other kernels) keep ptxas's own choice, as their device-recorded entries were."""
    w = DecodeWorkload.build(1, group, 1, 128, 4096, q_len, "bfloat16", 16, "fp8")
    config = PlanConfig(kv_tile_tokens=64, num_warps=8, num_stages=5)
    shape = kernel_shape(w, config, strategies.get("streamk").kernel_for(w))
    assert shape.constexprs().get("maxnreg") == (128 if capped else None)
    for name in ("fa2", "flashdecoding", "splitkv"):
        assert "maxnreg" not in kernel_shape(w, config, strategies.get(name).kernel_for(w)).constexprs()
