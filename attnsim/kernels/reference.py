"""Float64 reference for decode attention, and the error measure the kernel tests hold it to.

It covers every input the kernels take, computed the plain way so it shares no indexing with them:
- q [batch, q_heads, d] (decode) or [batch, q_heads, q_len, d] (speculative verify, causal within
  the block: position i of a sequence with context L attends tokens [0, L - q_len + 1 + i));
- K/V contiguous [batch, kv_heads, max_context, d]; a paged pool is first gathered back into that
  layout by `gather_pages` (plain tensor indexing through the block table);
- an fp8 cache: the stored e4m3 values times their per-kv-head scales, in float64 (the kernels must
  match the dequantised cache; the quantisation error itself is not theirs);
- MLA (`mla_reference`): K the whole latent cache, V its first kv_lora_rank elements, as two
  plain tensors (the reference shares no storage trick with the kernel).
"""

from __future__ import annotations

import math

import torch


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths, sm_scale: float | None = None,
                        k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q·Kᵀ·scale)·V in float64, one sequence at a time (so a long cache needs little memory).

    q [batch, q_heads, d] or [batch, q_heads, q_len, d]; k [batch, kv_heads, max_context, d], v the
    same with its own width dv (d unless MLA);
    lengths: tokens per sequence (including the q_len new ones); k_scale, v_scale: per-kv-head
    scales of an fp8 cache [kv_heads]. q-head h attends kv-head h // (q_heads // kv_heads) (GQA;
    MQA when kv_heads = 1). Returns float64 of q's shape (last dimension dv) on q's device.
    """
    q4 = q if q.dim() == 4 else q.unsqueeze(2)
    batch, q_heads, q_len, d = q4.shape
    kv_heads, dv = k.shape[1], v.shape[-1]
    group = q_heads // kv_heads
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(d)
    ks, vs = (torch.ones(kv_heads, dtype=torch.float64, device=k.device) if s is None else s.double()
              for s in (k_scale, v_scale))
    out = torch.empty(batch, q_heads, q_len, dv, dtype=torch.float64, device=q.device)
    for i, n in enumerate(int(x) for x in lengths):
        qi = q4[i].double().reshape(kv_heads, group * q_len, d)  # [kv_heads, group x q_len, d], head-major
        ki = k[i, :, :n].double() * ks[:, None, None]  # [kv_heads, n, d]
        vi = v[i, :, :n].double() * vs[:, None, None]
        s = (qi @ ki.transpose(1, 2) * scale).view(kv_heads, group, q_len, n)
        limit = n - q_len + 1 + torch.arange(q_len, device=k.device)  # causal within the verify block
        s = s.masked_fill(torch.arange(n, device=k.device)[None, :] >= limit[:, None], float("-inf"))
        p = torch.softmax(s, dim=-1).view(kv_heads, group * q_len, n)
        out[i] = (p @ vi).reshape(q_heads, q_len, dv)
    return out if q.dim() == 4 else out.squeeze(2)


def mla_reference(q: torch.Tensor, latent: torch.Tensor, lengths, kv_lora_rank: int,
                  sm_scale: float | None = None) -> torch.Tensor:
    """MLA decode with absorbed projections in float64: q [batch, q_heads, (q_len,) D] against a
    contiguous latent cache [batch, 1, max_context, D] as K, its first kv_lora_rank elements as V.
    Returns float64 [batch, q_heads, (q_len,) kv_lora_rank]."""
    values = latent[..., :kv_lora_rank].contiguous()  # a copy: V as its own tensor
    return attention_reference(q, latent, values, lengths, sm_scale)


def gather_pages(pool: torch.Tensor, block_table: torch.Tensor, max_context: int) -> torch.Tensor:
    """A page pool [num_pages, page_size, kv_heads, d] read through block_table [batch, pages] back
    into a contiguous cache [batch, kv_heads, max_context, d] (what the reference takes)."""
    pages = -(-max_context // pool.shape[1])
    gathered = pool[block_table[:, :pages].long()]  # [batch, pages, page_size, kv_heads, d]
    batch, _, page_size, kv_heads, d = gathered.shape
    return gathered.reshape(batch, pages * page_size, kv_heads, d).transpose(1, 2)[:, :, :max_context]


def max_relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / max |ref| (NaN anywhere -> inf): one number per output tensor."""
    diff = (out.double() - ref.double()).abs()
    if not torch.isfinite(diff).all():
        return math.inf
    return float(diff.max() / ref.abs().max().clamp_min(1e-30))
