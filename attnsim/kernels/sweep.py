"""The benchmark sweeps of `attnsim bench`: plain lists of DecodeWorkloads.

- standard: context {512 .. 512k} x batch {1 .. 32} x (q_heads, kv_heads) {(32,32), (64,8), (32,8),
  (128,128)} x head_dim {64, 128}, less the points whose KV cache exceeds the cap (~16 GB);
- ragged: batches of 8 and 32 sequences whose lengths are drawn log-uniformly from 1k..256k with
  fixed seeds, so every run (and every machine) benchmarks the same batches;
- quick: a small cross-section of both, for a smoke test in well under a minute.

The cap counts the K/V buffers as the kernels receive them, [batch, kv_heads, max_context,
head_dim] each: a ragged batch pays for its padding.
"""

from __future__ import annotations

import math

import numpy as np

from attnsim.simulator.workload import DecodeWorkload

K = 1024
STANDARD_CONTEXTS = (512, 1 * K, 2 * K, 4 * K, 8 * K, 16 * K, 32 * K, 64 * K, 128 * K, 256 * K, 512 * K)
STANDARD_BATCHES = (1, 2, 4, 8, 16, 32)
STANDARD_HEADS = ((32, 32), (64, 8), (32, 8), (128, 128))  # (q_heads, kv_heads)
STANDARD_HEAD_DIMS = (64, 128)

RAGGED_BATCHES = (8, 32)
RAGGED_SEEDS = (0, 1, 2)
RAGGED_RANGE = (1 * K, 256 * K)  # tokens, inclusive

QUICK_CONTEXTS = (1 * K, 16 * K, 128 * K)
QUICK_BATCHES = (1, 8)
QUICK_HEADS = ((32, 8), (32, 32))
QUICK_HEAD_DIMS = (128,)

DEFAULT_MAX_KV_GB = 16.0  # decimal GB (1e9 bytes) of K + V


def padded_kv_bytes(workload: DecodeWorkload) -> int:
    """Bytes of the K and V buffers [batch, kv_heads, max_context, head_dim] a run allocates."""
    return 2 * workload.batch * workload.kv_heads * workload.max_context * workload.head_dim * workload.dtype_bytes


def ragged_contexts(batch: int, seed: int, low: int = RAGGED_RANGE[0], high: int = RAGGED_RANGE[1]) -> tuple[int, ...]:
    """`batch` lengths, log-uniform in [low, high], reproducible from `seed` (numpy PCG64)."""
    rng = np.random.default_rng(seed)
    logs = rng.uniform(math.log(low), math.log(high), size=batch)
    return tuple(int(np.clip(round(math.exp(x)), low, high)) for x in logs)


def grid_points(contexts, batches, heads, head_dims, dtype: str) -> list[DecodeWorkload]:
    """Uniform batches over the cross product, ordered head_dim, heads, batch, context."""
    return [DecodeWorkload.build(b, qh, kvh, d, c, dtype=dtype)
            for d in head_dims for qh, kvh in heads for b in batches for c in contexts]


def ragged_points(batches, seeds, heads, head_dims, dtype: str) -> list[DecodeWorkload]:
    return [DecodeWorkload.build(b, qh, kvh, d, ragged_contexts(b, seed), dtype=dtype)
            for d in head_dims for qh, kvh in heads for b in batches for seed in seeds]


def under_cap(points: list[DecodeWorkload], max_kv_gb: float) -> list[DecodeWorkload]:
    return [w for w in points if padded_kv_bytes(w) <= max_kv_gb * 1e9]


def standard_sweep(dtype: str = "float16", max_kv_gb: float = DEFAULT_MAX_KV_GB) -> list[DecodeWorkload]:
    uniform = grid_points(STANDARD_CONTEXTS, STANDARD_BATCHES, STANDARD_HEADS, STANDARD_HEAD_DIMS, dtype)
    ragged = ragged_points(RAGGED_BATCHES, RAGGED_SEEDS, STANDARD_HEADS, STANDARD_HEAD_DIMS, dtype)
    return under_cap(uniform, max_kv_gb) + under_cap(ragged, max_kv_gb)


def quick_sweep(dtype: str = "float16", max_kv_gb: float = DEFAULT_MAX_KV_GB) -> list[DecodeWorkload]:
    uniform = grid_points(QUICK_CONTEXTS, QUICK_BATCHES, QUICK_HEADS, QUICK_HEAD_DIMS, dtype)
    ragged = ragged_points(RAGGED_BATCHES[:1], RAGGED_SEEDS[:1], QUICK_HEADS[:1], QUICK_HEAD_DIMS, dtype)
    return under_cap(uniform, max_kv_gb) + under_cap(ragged, max_kv_gb)


def sweep(name: str, dtype: str = "float16", max_kv_gb: float = DEFAULT_MAX_KV_GB) -> list[DecodeWorkload]:
    """A named sweep ('standard' or 'quick'); the caller validates the name."""
    return {"standard": standard_sweep, "quick": quick_sweep}[name](dtype, max_kv_gb)
