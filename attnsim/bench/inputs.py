"""Inputs and the correctness check of `attnsim bench`: K/V pool, chunked float64 reference, error.

- K/V: one pair of flat fp16/bf16 buffers of random normal values, sized for the largest point of the
  sweep and allocated once; every point takes contiguous views [batch, kv_heads, max_context,
  head_dim] of their first elements (no reallocation, no slicing strides). For ragged batches the
  padding past each sequence's length is set to NaN during the point, so a kernel that reads past
  a length (and lets it reach the softmax) fails the check; it is refilled afterwards.
- MLA (point_cache): the K view is the latent cache (V is not a tensor of its own: the kernels read
  the latent's first kv_lora_rank elements), the reference reads V as that slice;
- serving layouts (point_cache): an fp8 point quantises the (poisoned) views per kv-head
  (kv_cache.fp8_quantize) and a paged point copies them into a shuffled page pool with NaN in every
  row that holds no token (kv_cache.paged); the reference reads the same values (the fp8 ones
  dequantised in float64), so every output is still checked against the float64 reference.
- q: fresh random normal values per point, seeded by the point's position in the sweep;
  [batch, q_heads, head_dim] for decode, [batch, q_heads, q_len, head_dim] for a verify block.
- reference: `attention_reference` (float64) over chunks of sequences and kv-heads, so the float64
  copies of K/V stay under ~2 GiB however large the KV cache (a 16 GB cache would need 64 GB).
- error: max|o - r| / max|r| over the whole output (reference.max_relative_error, the measure the
  kernel tests use); NaN or inf anywhere -> inf.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from attnsim.simulator.workload import DecodeWorkload

REFERENCE_BUDGET_BYTES = 2 << 30  # float64 K + V per reference call
FLOAT64_BYTES = 8


def torch_dtype(name: str):
    import torch

    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[name]


class KvPool:
    """Two flat random buffers large enough for every point in `points`; views per workload."""

    def __init__(self, points: list[DecodeWorkload], dtype: str, device: str = "cuda", seed: int = 0):
        import torch

        self.dtype = torch_dtype(dtype)
        self.device = device
        elems = max((w.batch * w.kv_heads * w.max_context * w.head_dim for w in points), default=0)
        self._gen = torch.Generator(device=device).manual_seed(seed)
        self.k = torch.randn(elems, dtype=self.dtype, device=device, generator=self._gen)
        self.v = torch.randn(elems, dtype=self.dtype, device=device, generator=self._gen)

    def views(self, w: DecodeWorkload):
        """(k, v), each a contiguous [batch, kv_heads, max_context, head_dim] view of the pool."""
        shape = (w.batch, w.kv_heads, w.max_context, w.head_dim)
        n = w.batch * w.kv_heads * w.max_context * w.head_dim
        return self.k[:n].view(shape), self.v[:n].view(shape)

    @contextmanager
    def poisoned_padding(self, w: DecodeWorkload):
        """Yields (k, v) with NaN past each sequence's length; random values again afterwards."""
        import torch

        k, v = self.views(w)
        tails = [(i, c) for i, c in enumerate(w.contexts) if c < w.max_context]
        for i, c in tails:
            k[i, :, c:].fill_(float("nan"))
            v[i, :, c:].fill_(float("nan"))
        try:
            yield k, v
        finally:
            for i, c in tails:
                for t in (k, v):
                    t[i, :, c:].copy_(torch.randn(t[i, :, c:].shape, dtype=self.dtype, device=self.device,
                                                  generator=self._gen))


@dataclass
class PointCache:
    """One point's K/V as the kernels read them, and as the reference reads them."""

    k: object  # contiguous views [batch, kv_heads, max_context, d], or page pools
    v: object
    ref_k: object  # contiguous [batch, kv_heads, max_context, d] (fp8 values for an fp8 point)
    ref_v: object
    run_kwargs: dict = field(default_factory=dict)  # block_table, k_scale, v_scale (Launcher.run)

    @property
    def scales(self) -> dict:
        return {name: self.run_kwargs[name] for name in ("k_scale", "v_scale") if name in self.run_kwargs}


def point_cache(w: DecodeWorkload, k, v, seed: int = 0) -> PointCache:
    """The point's cache layout from the (poisoned) contiguous views k, v: fp8 and/or paged; for an
    MLA point, k is the latent cache (paged when the point is) and v goes unused."""
    from attnsim.kernels.kv_cache import fp8_quantize, paged, paged_fp8

    if w.is_mla:
        latent, table = paged(k, w.contexts, w.page_size, seed) if w.paged else (k, None)
        return PointCache(latent, latent, k, k[..., :w.kv_lora_rank], {"block_table": table} if w.paged else {})

    if w.paged and w.kv_fp8:
        ref_k, k, table, k_scale = paged_fp8(k, w.contexts, w.page_size, seed)
        ref_v, v, _, v_scale = paged_fp8(v, w.contexts, w.page_size, seed)
        return PointCache(k, v, ref_k, ref_v, dict(block_table=table, k_scale=k_scale, v_scale=v_scale))
    if w.kv_fp8:
        (k, k_scale), (v, v_scale) = fp8_quantize(k), fp8_quantize(v)
        return PointCache(k, v, k, v, dict(k_scale=k_scale, v_scale=v_scale))
    if w.paged:
        (pool_k, table), (pool_v, _) = paged(k, w.contexts, w.page_size, seed), paged(v, w.contexts, w.page_size, seed)
        return PointCache(pool_k, pool_v, k, v, dict(block_table=table))
    return PointCache(k, v, k, v)


def make_query(w: DecodeWorkload, point_index: int, device: str = "cuda", seed: int = 0):
    """q [batch, q_heads, head_dim] (q_len 1) or [batch, q_heads, q_len, head_dim]: fresh random
    normal values for every point."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + point_index)
    shape = (w.batch, w.q_heads, w.head_dim) if w.q_len == 1 else (w.batch, w.q_heads, w.q_len, w.head_dim)
    return torch.randn(*shape, dtype=torch_dtype(w.dtype), device=device, generator=gen)


def reference_chunks(contexts, kv_heads: int, head_dim: int,
                     budget_bytes: int = REFERENCE_BUDGET_BYTES) -> list[tuple[int, int, int, int]]:
    """(b0, b1, h0, h1) blocks of sequences x kv-heads whose float64 K+V (padded to the block's
    longest sequence) fit `budget_bytes`; a sequence too long for the budget is split by heads."""
    per_token_head = 2 * head_dim * FLOAT64_BYTES
    chunks, b0 = [], 0
    while b0 < len(contexts):
        b1, longest = b0 + 1, contexts[b0]
        while b1 < len(contexts) and max(longest, contexts[b1]) * (b1 + 1 - b0) * kv_heads * per_token_head <= budget_bytes:
            longest = max(longest, contexts[b1])
            b1 += 1
        heads_per_chunk = max(1, min(kv_heads, budget_bytes // (longest * (b1 - b0) * per_token_head)))
        chunks += [(b0, b1, h0, min(h0 + heads_per_chunk, kv_heads)) for h0 in range(0, kv_heads, heads_per_chunk)]
        b0 = b1
    return chunks


def reference_output(reference: Callable, q, k, v, contexts, budget_bytes: int = REFERENCE_BUDGET_BYTES,
                     k_scale=None, v_scale=None):
    """float64 of q's shape from `reference(q, k, v, lengths[, k_scale=, v_scale=])` applied chunk by
    chunk (k_scale / v_scale: an fp8 cache's per-kv-head scales, sliced with the heads)."""
    import torch

    batch, q_heads, head_dim = q.shape[0], q.shape[1], q.shape[-1]
    group = q_heads // k.shape[1]
    out = torch.empty((*q.shape[:-1], v.shape[-1]), dtype=torch.float64, device=q.device)  # MLA: o 512 wide
    for b0, b1, h0, h1 in reference_chunks(contexts, k.shape[1], head_dim, budget_bytes):
        lengths = list(contexts[b0:b1])
        longest = max(lengths)
        scales = {n: s[h0:h1] for n, s in (("k_scale", k_scale), ("v_scale", v_scale)) if s is not None}
        out[b0:b1, h0 * group:h1 * group] = reference(
            q[b0:b1, h0 * group:h1 * group], k[b0:b1, h0:h1, :longest], v[b0:b1, h0:h1, :longest], lengths,
            **scales)
    return out


def max_rel_err(out, ref) -> float:
    """reference.max_relative_error (max|out - ref| / max|ref|, NaN -> inf); inf for a wrong shape."""
    from attnsim.kernels.reference import max_relative_error

    if tuple(out.shape) != tuple(ref.shape):
        return float("inf")
    return max_relative_error(out, ref)


def poisoned_like(q, width: int | None = None):
    """An output buffer of q's shape (last dimension `width`: an MLA output's kv_lora_rank) full of
    NaN: every element must be overwritten."""
    import torch

    return torch.full((*q.shape[:-1], width or q.shape[-1]), float("nan"), dtype=q.dtype, device=q.device)
