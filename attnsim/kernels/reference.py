"""Float64 reference for decode attention, and the error measure the kernel tests hold it to."""

from __future__ import annotations

import math

import torch


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths, sm_scale: float | None = None,
                        ) -> torch.Tensor:
    """softmax(q·Kᵀ·scale)·V in float64, one sequence at a time (so a long cache needs little memory).

    q [batch, q_heads, d]; k, v [batch, kv_heads, max_context, d]; lengths: tokens per sequence.
    q-head h attends kv-head h // (q_heads // kv_heads) (GQA; MQA when kv_heads = 1).
    Returns float64 [batch, q_heads, d] on q's device.
    """
    batch, q_heads, d = q.shape
    group = q_heads // k.shape[1]
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(d)
    out = torch.empty(batch, q_heads, d, dtype=torch.float64, device=q.device)
    for i, n in enumerate(int(x) for x in lengths):
        qi = q[i].double().view(k.shape[1], group, d)  # [kv_heads, group, d]
        ki, vi = k[i, :, :n].double(), v[i, :, :n].double()  # [kv_heads, n, d]
        p = torch.softmax(qi @ ki.transpose(1, 2) * scale, dim=-1)  # [kv_heads, group, n]
        out[i] = (p @ vi).reshape(q_heads, d)
    return out


def max_relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / max |ref| (NaN anywhere -> inf): one number per output tensor."""
    diff = (out.double() - ref.double()).abs()
    if not torch.isfinite(diff).all():
        return math.inf
    return float(diff.max() / ref.abs().max().clamp_min(1e-30))
