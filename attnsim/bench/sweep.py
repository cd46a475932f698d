"""The benchmark sweeps of `attnsim bench`: plain lists of DecodeWorkloads.

- standard: context {512 .. 512k} x batch {1 .. 32} x (q_heads, kv_heads) {(32,32), (64,8), (32,8),
  (128,128)} x head_dim {64, 128}, less the points whose KV cache exceeds the cap (~16 GB);
- ragged: batches of 8 and 32 sequences whose lengths are drawn log-uniformly from 1k..256k with
  fixed seeds, so every run (and every machine) benchmarks the same batches;
- quick: a small cross-section of both, for a smoke test in well under a minute;
- serving validation sweeps (issue 13), each >= 40 workloads, none used for fitting, each point
  followed by its twin without the serving feature (so one CSV gives the feature's measured cost):
  `paged` (page sizes 16..256 vs contiguous), `fp8` (fp8 KV vs the dtype's, half of them paged),
  `qlen` (speculative verify, q_len 2..16 vs decode); per-GPU head shapes of tensor-parallel
  serving (Llama-3.1-70B at TP 8 and 4, Llama-3.1-8B, Qwen2.5-7B), head_dim 128;
- cal-serving: what calibration fits the paged / fp8 / tile-math cost fields on, disjoint from
  the three above (other contexts, batches and seeds); cal-fp8, its long fp8 streams (batches 4 / 16 / 48
  x 20k / 80k tokens: one or two CTAs per SM for MBs each), fitted with it;
- MLA (issue 23): `mla`, the validation sweep of DeepSeek-V3's attention at TP 8 (16 query heads per
  GPU) and TP 1 (128), one latent head of 512 + 64, bf16, 64-token pages (FlashMLA's), batch
  1..128 x context 1k..128k and ragged batches, latent caches up to MLA_MAX_KV_GB; `cal-mla`, its
  calibration points (other contexts, batches and seeds; 8 and 64 heads too: Kimi-K2 at TP 8 / 1);
- cal-search (issue 20): points in the three regimes where the oracle study's rank errors sit
  (scripts/oracle_errors.py, docs/planner.md), to time the planner's search axes on: few-output GQA at
  mid-to-long contexts (stream-K grids between 1 and 2 CTAs per SM), GQA groups above 16 (32-row
  query tiles), and short contexts with many outputs (fa2 against 2-4 splits). None is in the
  standard sweep, the calibration set or the oracle study (a test checks).
- cal-chunks (issue 20): the batch-invariant planner's fixed chunk plans timed on batches of 1-48
  over 1.5k-150k tokens and ragged batches, five model shapes (a diagonal of batch x context per shape),
  to fit split-KV's chunked plans on; disjoint from the standard sweep and the oracle study (a test checks).

The cap counts the K/V buffers as the kernels receive them, [batch, kv_heads, max_context,
head_dim] each: a ragged batch pays for its padding.
"""

from __future__ import annotations

import math

from dataclasses import replace

import numpy as np

from attnsim.simulator.workload import FP8, DecodeWorkload

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

# Serving sweeps: per-GPU (q_heads, kv_heads) of Llama-3.1-70B at TP 8 / TP 4, Llama-3.1-8B, Qwen2.5-7B
SERVING_HEADS = ((8, 1), (16, 2), (32, 8), (28, 4))
SERVING_BATCHES = (1, 8, 32)
SERVING_CONTEXTS = (2 * K, 8 * K, 32 * K, 128 * K)
SERVING_PAGES = (16, 32, 64, 128, 256)  # cycled over the points
SERVING_Q_LENS = (2, 4, 8, 16)  # cycled; 2-8: draft / MTP verify, 16: tree verify
SERVING_RAGGED = ((8, 20), (16, 21), (8, 22), (16, 23))  # (batch, seed), lengths log-uniform 1k..64k
SERVING_MAX_KV_GB = 4.0  # per point (its twin is as large): keeps the float64 reference and inputs quick
CAL_SERVING_CONTEXTS = (3000, 12000, 48000)  # calibration: none of these in the sweeps above
CAL_SERVING_BATCHES = (2, 8, 24)
CAL_SERVING_RAGGED = ((12, 120), (6, 121))
# Small calls (batch 1, a few KV tiles a CTA): the validation sweeps reach batch 1 and 2k tokens, below
# the grid above (its smallest: batch 2, 3000), where the fixed costs of a segment and of the combine
# decide the time; each point once paged, once fp8 (paged at the second context) and once a verify block
CAL_SERVING_SMALL_CONTEXTS = (1200, 5000)
# fp8 calibration (cal-fp8): cal-serving's fp8 points hold at most ~1.5 MB of KV a CTA, so its fit never
# saw a long fp8 stream of one CTA per SM (split-KV at <= 132 CTAs) or two (fa2 at 256 outputs), where the
# held-out fp8 sweep's split-KV rows at 2-8 MB a CTA ran 12-23% faster than the fitted rates say. Batches and
# contexts none of the sweeps above use; every point fp8, half of them paged (16-token pages)
CAL_FP8_CONTEXTS = (20000, 80000)
CAL_FP8_BATCHES = (4, 16, 48)
# MLA: DeepSeek-V3 per GPU at TP 8 and TP 1 (validation), Kimi-K2's 8 / 64 too (calibration)
MLA_RANK, MLA_ROPE, MLA_PAGE = 512, 64, 64
MLA_HEADS = (16, 128)
MLA_BATCHES = (1, 4, 16, 64, 128)
MLA_CONTEXTS = (1 * K, 4 * K, 16 * K, 64 * K, 128 * K)
MLA_RAGGED = ((16, 30), (64, 31), (16, 32), (64, 33))  # (batch, seed), lengths log-uniform 1k..128k
MLA_MAX_KV_GB = 16.0  # the padded latent cache of a point (b128 x 128k, 19 GB, is left out)
CAL_MLA_HEADS = (8, 16, 64, 128)
CAL_MLA_BATCHES = (2, 8, 32, 96)
CAL_MLA_CONTEXTS = (3000, 12000, 48000)
CAL_MLA_RAGGED = ((24, 130), (48, 131))
# cal-search regimes: ((q_heads, kv_heads) shapes, batches, contexts), d 128
CAL_SEARCH_REGIMES = {
    "grids 1-2 CTAs/SM": (((28, 4), (32, 8), (64, 8)), (1, 2), (20000, 40000, 90000)),
    "groups > 16": (((32, 1), (64, 2)), (2, 8), (6000, 60000, 200000)),
    "short, many outputs": (((16, 2), (32, 4), (24, 4)), (8, 24), (800, 1700)),
}
# cal-chunks: (q_heads, kv_heads, head_dim) shapes; shape s takes batch i with context (i + s) mod 6
CAL_CHUNKS_SHAPES = ((8, 1, 128), (16, 2, 128), (32, 8, 128), (28, 4, 128), (64, 8, 64))
CAL_CHUNKS_BATCHES = (1, 3, 6, 12, 24, 48)
CAL_CHUNKS_CONTEXTS = (1500, 3000, 7000, 20000, 60000, 150000)
CAL_CHUNKS_RAGGED = (8, 140, 64 * K)  # (batch, first seed, longest): shape s draws seed 140 + s, 1k..64k
CAL_CHUNKS_MAX_KV_GB = 2.0  # K + V as allocated: the invariant grid's regime (planner/invariant.py: 3 GB)


def padded_kv_bytes(workload: DecodeWorkload) -> int:
    """Bytes of the K and V buffers [batch, kv_heads, max_context, head_dim] a run allocates (MLA: its
    one latent buffer)."""
    return workload.batch * workload.kv_heads * workload.max_context * workload.kv_token_bytes


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


def serving_grid(contexts, batches, ragged, dtype: str, max_kv_gb: float) -> list[DecodeWorkload]:
    """Uniform (heads x batch x context) then ragged batches of the serving head shapes, d 128, under the cap."""
    uniform = [DecodeWorkload.build(b, qh, kvh, 128, c, dtype=dtype)
               for qh, kvh in SERVING_HEADS for b in batches for c in contexts]
    mixed = [DecodeWorkload.build(b, qh, kvh, 128, ragged_contexts(b, seed, 1 * K, 64 * K), dtype=dtype)
             for (b, seed), (qh, kvh) in zip(ragged, SERVING_HEADS)]
    return under_cap(uniform + mixed, max_kv_gb)


def with_twins(points: list[DecodeWorkload], feature) -> list[DecodeWorkload]:
    """Each point with `feature(i, w)` applied, followed by the point itself (the twin without it)."""
    return [x for i, w in enumerate(points) for x in (feature(i, w), w)]


def _pick(values: tuple, i: int):
    """values cycled along the grid's diagonals (column + row of the 4-context rows), so no value sticks
    to one context length."""
    n = len(SERVING_CONTEXTS)
    return values[(i % n + i // n) % len(values)]


def _paged(i: int, w: DecodeWorkload) -> DecodeWorkload:
    return replace(w, page_size=_pick(SERVING_PAGES, i))


def _fp8(i: int, w: DecodeWorkload) -> DecodeWorkload:
    return replace(_fp8_twin(i, w), kv_dtype=FP8)


def _fp8_twin(i: int, w: DecodeWorkload) -> DecodeWorkload:
    return replace(w, page_size=_pick((0, 16), i))  # the fp8 point's paging, the dtype's KV


def _verify(i: int, w: DecodeWorkload) -> DecodeWorkload:
    return replace(w, q_len=_pick(SERVING_Q_LENS, i))


def paged_sweep(dtype: str = "bfloat16", max_kv_gb: float = SERVING_MAX_KV_GB) -> list[DecodeWorkload]:
    return with_twins(serving_grid(SERVING_CONTEXTS, SERVING_BATCHES, SERVING_RAGGED, dtype, max_kv_gb), _paged)


def fp8_sweep(dtype: str = "bfloat16", max_kv_gb: float = SERVING_MAX_KV_GB) -> list[DecodeWorkload]:
    grid = serving_grid(SERVING_CONTEXTS, SERVING_BATCHES, SERVING_RAGGED, dtype, max_kv_gb)
    return [x for i, w in enumerate(grid) for x in (_fp8(i, w), _fp8_twin(i, w))]


def qlen_sweep(dtype: str = "bfloat16", max_kv_gb: float = SERVING_MAX_KV_GB) -> list[DecodeWorkload]:
    return with_twins(serving_grid(SERVING_CONTEXTS, SERVING_BATCHES, SERVING_RAGGED, dtype, max_kv_gb), _verify)


def cal_serving_sweep(dtype: str = "bfloat16", max_kv_gb: float = SERVING_MAX_KV_GB) -> list[DecodeWorkload]:
    """Calibration points of the serving cost fields: each grid point once paged, once fp8 (half of
    them paged) and once as a verify block (q_len 16 at every fourth: the most tile math)."""
    grid = serving_grid(CAL_SERVING_CONTEXTS, CAL_SERVING_BATCHES, CAL_SERVING_RAGGED, dtype, max_kv_gb)
    features = (_paged, _fp8, _verify)
    points = [features[(i + i // 3) % 3](i // 3, w) for i, w in enumerate(grid)]  # a diagonal: 3 contexts a row
    points += [replace(w, q_len=16, kv_dtype=FP8 if i % 2 else "") for i, w in enumerate(grid[::4])]
    return list(dict.fromkeys(points + cal_serving_small(dtype, max_kv_gb)))


def cal_serving_small(dtype: str, max_kv_gb: float) -> list[DecodeWorkload]:
    """cal-serving's small calls (CAL_SERVING_SMALL_CONTEXTS, batch 1): every feature at every point,
    appended after the grid's points so that those keep their order (a sweep run before resumes)."""
    grid = serving_grid(CAL_SERVING_SMALL_CONTEXTS, (1,), (), dtype, max_kv_gb)
    return [feature(i, w) for i, w in enumerate(grid) for feature in (_paged, _fp8, _verify)]


def cal_fp8_sweep(dtype: str = "bfloat16", max_kv_gb: float = SERVING_MAX_KV_GB) -> list[DecodeWorkload]:
    """fp8 calibration points of long per-CTA streams (CAL_FP8_*): every serving shape at every batch and
    context, fp8, paged at every other point."""
    return [_fp8(i, w) for i, w in enumerate(serving_grid(CAL_FP8_CONTEXTS, CAL_FP8_BATCHES, (), dtype, max_kv_gb))]


def mla_point(batch: int, heads: int, context, dtype: str) -> DecodeWorkload:
    return DecodeWorkload.build(batch, heads, 1, MLA_RANK + MLA_ROPE, context, dtype=dtype, page_size=MLA_PAGE,
                                kv_lora_rank=MLA_RANK)


def mla_grid(heads, batches, contexts, ragged, dtype: str, max_kv_gb: float) -> list[DecodeWorkload]:
    """Uniform (heads x batch x context) then ragged batches (each at every head count), 1k..128k."""
    uniform = [mla_point(b, h, c, dtype) for h in heads for b in batches for c in contexts]
    mixed = [mla_point(b, h, ragged_contexts(b, seed, 1 * K, 128 * K), dtype) for b, seed in ragged for h in heads]
    return under_cap(uniform + mixed, max_kv_gb)


def mla_sweep(dtype: str = "bfloat16", max_kv_gb: float = MLA_MAX_KV_GB) -> list[DecodeWorkload]:
    return mla_grid(MLA_HEADS, MLA_BATCHES, MLA_CONTEXTS, MLA_RAGGED, dtype, max_kv_gb)


def cal_mla_sweep(dtype: str = "bfloat16", max_kv_gb: float = MLA_MAX_KV_GB) -> list[DecodeWorkload]:
    """Calibration points of the MLA cost families: none of them in the `mla` sweep (a test checks)."""
    return mla_grid(CAL_MLA_HEADS, CAL_MLA_BATCHES, CAL_MLA_CONTEXTS, CAL_MLA_RAGGED, dtype, max_kv_gb)


def cal_search_sweep(dtype: str = "float16", max_kv_gb: float = DEFAULT_MAX_KV_GB) -> list[DecodeWorkload]:
    """The planner's search-axis calibration points (CAL_SEARCH_REGIMES), head_dim 128."""
    points = [p for heads, batches, contexts in CAL_SEARCH_REGIMES.values()
              for p in grid_points(contexts, batches, heads, (128,), dtype)]
    return under_cap(points, max_kv_gb)


def cal_chunks_sweep(dtype: str = "float16", max_kv_gb: float = CAL_CHUNKS_MAX_KV_GB) -> list[DecodeWorkload]:
    """The chunked plans' calibration points (CAL_CHUNKS_*): a batch x context diagonal per shape, then one
    ragged batch per shape."""
    n = len(CAL_CHUNKS_CONTEXTS)
    uniform = [DecodeWorkload.build(b, qh, kvh, d, CAL_CHUNKS_CONTEXTS[(i + s) % n], dtype=dtype)
               for s, (qh, kvh, d) in enumerate(CAL_CHUNKS_SHAPES) for i, b in enumerate(CAL_CHUNKS_BATCHES)]
    batch, seed, longest = CAL_CHUNKS_RAGGED
    ragged = [DecodeWorkload.build(batch, qh, kvh, d, ragged_contexts(batch, seed + s, 1 * K, longest), dtype=dtype)
              for s, (qh, kvh, d) in enumerate(CAL_CHUNKS_SHAPES)]
    return under_cap(uniform + ragged, max_kv_gb)


SWEEPS = {"standard": standard_sweep, "quick": quick_sweep, "paged": paged_sweep, "fp8": fp8_sweep,
          "qlen": qlen_sweep, "cal-serving": cal_serving_sweep, "cal-fp8": cal_fp8_sweep, "mla": mla_sweep,
          "cal-mla": cal_mla_sweep, "cal-search": cal_search_sweep, "cal-chunks": cal_chunks_sweep}
SERVING_SWEEPS = ("paged", "fp8", "qlen", "cal-serving", "cal-fp8", "mla", "cal-mla")  # default dtype bfloat16
SWEEP_MAX_KV_GB = {"mla": MLA_MAX_KV_GB, "cal-mla": MLA_MAX_KV_GB, "cal-chunks": CAL_CHUNKS_MAX_KV_GB}  # else SERVING_MAX_KV_GB / DEFAULT_MAX_KV_GB


def sweep(name: str, dtype: str = "float16", max_kv_gb: float = DEFAULT_MAX_KV_GB) -> list[DecodeWorkload]:
    """A named sweep (SWEEPS); the caller validates the name."""
    return SWEEPS[name](dtype, max_kv_gb)
