"""Shared pieces of the kernel tests: random decode inputs and one checked launch."""

from __future__ import annotations

import torch

from attnsim.kernels.launch import TORCH_DTYPES, prepare
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
    launcher = prepare(strategy, workload, gpu, config, device=device)
    q, k, v = decode_inputs(workload, device, seed)
    ref = attention_reference(q, k, v, workload.contexts)
    worst = 0.0
    for _ in range(runs):
        out = torch.full_like(q, float("nan"))
        launcher.run(q, k, v, out)
        worst = max(worst, max_relative_error(out, ref))
    return launcher, worst
