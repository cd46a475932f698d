"""What a launcher checks of its inputs before a launch, and how they are passed to the kernels.

Shapes (w = the planned workload; see launch.py's docstring for the layouts):
- q, out: [batch, q_heads, head_dim] (q_len 1 only) or [batch, q_heads, q_len, head_dim], dtype w.dtype;
- contiguous K/V: [batch, kv_heads, >= max_context, head_dim]; paged: a pool [num_pages, page_size,
  kv_heads, head_dim] and block_table int32 [batch, >= ceil(max_context / page_size)];
- fp8 K/V (float8_e4m3fn): k_scale, v_scale float32 [kv_heads];
- MLA (w.kv_lora_rank > 0): one latent cache of that shape (kv_heads 1, head_dim = kv_lora_rank +
  rope dims) as k_cache, v_cache the very same tensor; out [.., kv_lora_rank].
Every tensor on q's device with a unit last stride. Block-table entries are not range-checked
(that needs a device sync, which a CUDA-graph capture of run() forbids): they must index the pool.
"""

from __future__ import annotations

import torch

from attnsim.errors import InputError
from attnsim.simulator.workload import DecodeWorkload


def q_shape(w: DecodeWorkload, ndim: int) -> tuple[int, ...]:
    """The q / out shape expected: 3-D is accepted for q_len 1 (the decode convention)."""
    if ndim == 3 and w.q_len == 1:
        return (w.batch, w.q_heads, w.head_dim)
    return (w.batch, w.q_heads, w.q_len, w.head_dim)


def o_shape(w: DecodeWorkload, ndim: int) -> tuple[int, ...]:
    """The out shape expected: q's with the last dimension v_dim (an MLA layer's kv_lora_rank)."""
    return (*q_shape(w, ndim)[:-1], w.v_dim)


def as_4d(x: torch.Tensor) -> torch.Tensor:
    """[batch, q_heads, head_dim] -> a [batch, q_heads, 1, head_dim] view; 4-D unchanged."""
    return x.unsqueeze(2) if x.dim() == 3 else x


# A page pool's page stride, in elements: tile_loads.page_tile tells the compiler each page starts 16-byte
# aligned (16 fp8 or 8 16-bit values; 16 covers both), so a tile of several pages keeps 16-byte copies.
# Every pool [num_pages, page >= 16, kv_heads, head_dim] laid out in memory order has it; MLA's latent
# tiles address rows one by one (tile_loads.paged_rows) and are not checked.
PAGE_STRIDE_MULTIPLE = 16


def cache_strides(cache: torch.Tensor, paged: bool) -> tuple[int, int, int]:
    """The kernels' (b or page, head, token or row) strides of a K or V buffer."""
    s = cache.stride()
    return (s[0], s[2], s[1]) if paged else (s[0], s[1], s[2])


def _check_cache(w: DecodeWorkload, name: str, cache: torch.Tensor) -> None:
    if cache.dim() != 4:
        raise InputError(name, f"{cache.dim()}-D, expected 4-D")
    if w.paged:
        n_pages, page, h, d = cache.shape
        if (page, h, d) != (w.page_size, w.kv_heads, w.head_dim) or n_pages < 1:
            raise InputError(name, f"shape {tuple(cache.shape)}, expected a page pool (num_pages, {w.page_size}, "
                                   f"{w.kv_heads}, {w.head_dim})")
        if not w.is_mla and cache.stride(0) % PAGE_STRIDE_MULTIPLE:  # tile_loads.page_tile: page bases 16-byte aligned
            raise InputError(name, f"page stride {cache.stride(0)} elements, expected a multiple of "
                                   f"{PAGE_STRIDE_MULTIPLE}")
        return
    b, h, n, d = cache.shape
    if (b, h, d) != (w.batch, w.kv_heads, w.head_dim) or n < w.max_context:
        raise InputError(name, f"shape {tuple(cache.shape)}, expected ({w.batch}, {w.kv_heads}, "
                               f">= {w.max_context}, {w.head_dim})")


def _check_extras(w: DecodeWorkload, block_table, k_scale, v_scale) -> None:
    if w.paged != (block_table is not None):
        raise InputError("block_table", "a paged workload needs one (int32 [batch, pages per sequence]); "
                                        "a contiguous one takes none")
    if block_table is not None:
        pages = -(-w.max_context // w.page_size)
        if block_table.dtype != torch.int32 or block_table.dim() != 2 or block_table.shape[0] != w.batch \
                or block_table.shape[1] < pages or block_table.stride(-1) != 1:
            raise InputError("block_table", f"{block_table.dtype} {tuple(block_table.shape)}, expected int32 "
                                            f"({w.batch}, >= {pages}) with a unit last stride")
    for name, scale in (("k_scale", k_scale), ("v_scale", v_scale)):
        if w.kv_fp8 != (scale is not None):
            raise InputError(name, "an fp8 KV cache needs one (float32 [kv_heads]); other caches take none")
        if scale is not None and (scale.dtype != torch.float32 or tuple(scale.shape) != (w.kv_heads,)
                                  or scale.stride(0) != 1):
            raise InputError(name, f"{scale.dtype} {tuple(scale.shape)}, expected float32 ({w.kv_heads},)")


def check_inputs(w: DecodeWorkload, dtype: torch.dtype, kv_dtype: torch.dtype, q, k_cache, v_cache, out,
                 block_table=None, k_scale=None, v_scale=None) -> None:
    """One InputError naming the first input that does not match the planned workload."""
    want_q = q_shape(w, q.dim())
    if tuple(q.shape) != want_q:
        raise InputError("q", f"shape {tuple(q.shape)}, expected {want_q}")
    _check_cache(w, "k_cache", k_cache)
    _check_cache(w, "v_cache", v_cache)
    if w.is_mla and v_cache is not k_cache:
        raise InputError("v_cache", "an MLA layer reads one latent cache as K and V: pass it as k_cache alone")
    _check_extras(w, block_table, k_scale, v_scale)
    tensors = (("q", q, dtype), ("k_cache", k_cache, kv_dtype), ("v_cache", v_cache, kv_dtype), ("out", out, dtype),
               ("block_table", block_table, None), ("k_scale", k_scale, None), ("v_scale", v_scale, None))
    for name, x, want in tensors:
        if x is not None and ((want is not None and x.dtype != want) or x.device != q.device or x.stride(-1) != 1):
            raise InputError(name, f"needs dtype {want or x.dtype}, device {q.device} and unit last stride")
    if out is not None and tuple(out.shape) != o_shape(w, q.dim()):
        raise InputError("out", f"shape {tuple(out.shape)}, expected {o_shape(w, q.dim())}")
