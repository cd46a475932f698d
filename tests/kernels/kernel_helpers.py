"""Shared pieces of the kernel tests: random decode inputs and one checked launch."""

from __future__ import annotations

import torch

from attnsim.kernels.launch import TORCH_DTYPES, launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload

TOLERANCE = 2e-2  # max |out - ref| / max |ref| against the float64 reference


def decode_inputs(workload: DecodeWorkload, device, seed: int, pad_tokens: int = 3):
    """q [batch, q_heads, d]; K/V [batch, kv_heads, max_context + pad, d] with NaN past each sequence's
    length, so a kernel that reads beyond `contexts[i]` poisons its output."""
    gen = torch.Generator().manual_seed(seed)
    dtype = TORCH_DTYPES[workload.dtype]
    w = workload
    q = torch.randn(w.batch, w.q_heads, w.head_dim, generator=gen)
    k = torch.randn(w.batch, w.kv_heads, w.max_context + pad_tokens, w.head_dim, generator=gen)
    v = torch.randn(k.shape, generator=gen)
    for i, n in enumerate(w.contexts):
        k[i, :, n:] = float("nan")
        v[i, :, n:] = float("nan")
    return (t.to(dtype).to(device) for t in (q, k, v))


def run_checked(strategy: str, workload: DecodeWorkload, gpu, config: PlanConfig | None, device, seed: int = 0,
                runs: int = 1):
    """Prepare, run `runs` times into a NaN-poisoned output; return (launcher, worst error over runs)."""
    launcher = launcher_for(strategy, workload, gpu, config, device=device)
    q, k, v = decode_inputs(workload, device, seed)
    ref = attention_reference(q, k, v, workload.contexts)
    worst = 0.0
    for _ in range(runs):
        out = torch.full_like(q, float("nan"))
        launcher.run(q, k, v, out)
        worst = max(worst, max_relative_error(out, ref))
    return launcher, worst


def serving_inputs(workload: DecodeWorkload, device, seed: int, pad_tokens: int = 3, q_3d: bool = False):
    """(q, k, v, run kwargs, float64 reference) for any cache layout: fresh random q
    [batch, q_heads, q_len, d] (3-D when q_3d and q_len 1) and K/V NaN past each context, then
    quantised to fp8 (per-kv-head scales) and/or paged into a shuffled pool (kv_cache), as the
    workload says. The reference reads the pages back through the block table (gather_pages) and
    dequantises the same fp8 values in float64."""
    from attnsim.bench.inputs import point_cache
    from attnsim.kernels.reference import gather_pages

    w, gen = workload, torch.Generator().manual_seed(seed)
    q = torch.randn(w.batch, w.q_heads, w.q_len, w.head_dim, generator=gen)
    q = q[:, :, 0] if q_3d and w.q_len == 1 else q
    k = torch.randn(w.batch, w.kv_heads, w.max_context + pad_tokens, w.head_dim, generator=gen)
    v = torch.randn(k.shape, generator=gen)
    for i, n in enumerate(w.contexts):
        k[i, :, n:] = float("nan")
        v[i, :, n:] = float("nan")
    q, k, v = (t.to(TORCH_DTYPES[w.dtype]) for t in (q, k, v))
    cache = point_cache(w, k, v, seed)
    k, v, kwargs = cache.k, cache.v, cache.run_kwargs
    if w.paged:  # the reference reads the pool back through the block table, not the source
        k_ref, v_ref = (gather_pages(t, kwargs["block_table"], w.max_context) for t in (k, v))
    else:
        k_ref, v_ref = k, v
    ref = attention_reference(q, k_ref, v_ref, w.contexts, k_scale=kwargs.get("k_scale"), v_scale=kwargs.get("v_scale"))
    kwargs = {name: t.to(device) for name, t in kwargs.items()}
    return q.to(device), k.to(device), v.to(device), kwargs, ref.to(device)


def run_serving(strategy: str, workload: DecodeWorkload, gpu, config: PlanConfig | None, device, seed: int = 0,
                runs: int = 1, q_3d: bool = False):
    """run_checked for any cache layout (serving_inputs): (launcher, worst error over runs)."""
    launcher = launcher_for(strategy, workload, gpu, config, device=device)
    q, k, v, kwargs, ref = serving_inputs(workload, device, seed, q_3d=q_3d)
    worst = 0.0
    for _ in range(runs):
        out = torch.full_like(q, float("nan"))
        launcher.run(q, k, v, out, **kwargs)
        worst = max(worst, max_relative_error(out, ref))
    return launcher, worst
