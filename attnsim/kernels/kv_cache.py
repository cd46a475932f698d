"""KV-cache layouts the kernels read, built from a contiguous cache: fp8 quantisation with per-kv-head
scales, and a page pool with shuffled block tables (vLLM / FlashInfer layout).

- fp8 (e4m3, float8_e4m3fn): per kv-head, scale = max |x| over every sequence, token and element
  of that head / 448 (e4m3's largest finite value), stored x / scale; NaN stays NaN (padding poison).
  Pools are paged in the source dtype and quantised elementwise with the contiguous cache's scales
  (no fp8 indexing kernels needed on the GPU), so they hold the very bytes of the quantised cache.
  Dequantised, x_fp8 * scale is what the kernels attend and the float64 reference checks against.
- pages: sequence s's tokens go to ceil(context_s / page_size) pages drawn in random order from a
  pool [num_pages, page_size, kv_heads, head_dim]; block_table int32 [batch, max pages rounded up to 16] lists them.
  Every pool row that holds no valid token (the tail of a last page) is NaN, and every unused
  block-table entry points at an extra all-NaN page, so a kernel that reads past a context or
  through a wrong entry poisons its output.
"""

from __future__ import annotations

import torch

FP8_MAX = 448.0  # largest finite float8_e4m3fn
# Block tables are padded to a multiple of 16 entries per row (as an engine's fixed-width table is):
# Triton specialises integer arguments on divisibility by 16, so one compiled kernel serves every width.
TABLE_WIDTH_MULTIPLE = 16


def fp8_scales(cache: torch.Tensor) -> torch.Tensor:
    """Per-kv-head scales float32 [kv_heads] of a contiguous cache [batch, kv_heads, n, d] (NaN ignored)."""
    amax = cache.float().abs().nan_to_num(0.0, 0.0, 0.0).amax(dim=(0, 2, 3))
    return torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax)).contiguous()


def to_fp8(x: torch.Tensor, scale: torch.Tensor, head_axis: int) -> torch.Tensor:
    """x / scale (broadcast along `head_axis`) as float8_e4m3fn: elementwise, so a contiguous cache and
    a page pool of the same values quantise to the same bytes."""
    shape = [1] * x.dim()
    shape[head_axis] = -1
    return (x.float() / scale.view(shape)).to(torch.float8_e4m3fn)


def fp8_quantize(cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cache [batch, kv_heads, n, d] -> (float8_e4m3fn of the same shape, scale float32 [kv_heads])."""
    scale = fp8_scales(cache)
    return to_fp8(cache, scale, 1), scale


def paged_fp8(cache: torch.Tensor, contexts, page_size: int, seed: int = 0):
    """(fp8 contiguous cache, fp8 pool, block_table, scale): `paged` of the cache, then both quantised
    with the contiguous cache's per-kv-head scales."""
    scale = fp8_scales(cache)
    pool, table = paged(cache, contexts, page_size, seed)
    return to_fp8(cache, scale, 1), to_fp8(pool, scale, 2), table, scale


def paged(cache: torch.Tensor, contexts, page_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A contiguous cache [batch, kv_heads, n, d] as (pool [num_pages, page_size, kv_heads, d],
    block_table int32 [batch, max pages]); the pages are shuffled with `seed` (see the module docstring)."""
    pool, table = page_pool_like(cache, contexts, page_size, seed)
    fill_pages(pool, table, cache, contexts)
    return pool, table


def page_pool_like(cache: torch.Tensor, contexts, page_size: int, seed: int = 0):
    """An all-NaN pool for `contexts` and its shuffled block table (the last page of the order is the
    poison page unused entries point at)."""
    batch, kv_heads, _, d = cache.shape
    counts = [-(-int(c) // page_size) for c in contexts]
    order = torch.randperm(sum(counts) + 1, generator=torch.Generator().manual_seed(seed))
    width = -(-max(counts) // TABLE_WIDTH_MULTIPLE) * TABLE_WIDTH_MULTIPLE
    table = torch.full((batch, width), int(order[-1]), dtype=torch.int32)
    starts = [sum(counts[:s]) for s in range(batch)]
    for s, (start, count) in enumerate(zip(starts, counts)):
        table[s, :count] = order[start:start + count].to(torch.int32)
    pool = torch.empty(len(order), page_size, kv_heads, d, dtype=cache.dtype, device=cache.device)
    return pool.fill_(float("nan")), table.to(cache.device)


def fill_pages(pool: torch.Tensor, table: torch.Tensor, cache: torch.Tensor, contexts) -> None:
    """Copy each sequence's first contexts[s] tokens of `cache` into its pages."""
    page_size = pool.shape[1]
    for s, n in enumerate(int(c) for c in contexts):
        tokens = torch.arange(n, device=cache.device)
        pages = table[s, tokens // page_size].long()
        pool[pages, tokens % page_size] = cache[s, :, :n].transpose(0, 1)  # [n, kv_heads, d]
