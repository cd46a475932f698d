"""Serving-shaped inputs on every kernel path against the float64 reference (CPU interpreter or GPU):
paged K/V (tile inside a page, tile = page, tile holding several pages), fp8 KV with per-head
scales, speculative verify (q_len 2-16, causal within the block, one and two q-blocks) and their
combinations, for every strategy our kernels run. Small shapes, NaN past every context, in every
unused pool row and behind every unused block-table entry; fresh random inputs per case.
"""

import pytest
import torch
import triton
import triton.language as tl

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.kernels.launch import interpreting, launcher_for
from attnsim.kernels.tile_loads import page_tile
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from plan_helpers import plan_for
from kernel_helpers import TOLERANCE, run_serving, serving_inputs
from test_plan_contract import _same_schedule

STRATEGIES = strategies.ours()

# name: (batch, q_heads, kv_heads, head_dim, contexts, dtype, q_len, page_size, kv_dtype, kv_tile, splits, grid)
CASES = {
    "paged16-tile16-gqa4": (3, 8, 2, 64, (37, 100, 5), "float16", 1, 16, "", 16, 3, 5),
    "paged64-tile16-mha": (2, 2, 2, 64, (150, 64), "bfloat16", 1, 64, "", 16, 4, 7),
    "paged16-tile32-mqa": (3, 4, 1, 128, (97, 33, 16), "float16", 1, 16, "", 32, 2, 4),
    "paged16-tile64-tail-pages": (3, 4, 2, 64, (150, 33, 17), "float16", 1, 16, "", 64, 2, 4),  # pages past the context
    "fp8-gqa4-fp16": (2, 8, 2, 128, (65, 17), "float16", 1, 0, "fp8", 16, 2, 3),
    "fp8-mqa-bf16-paged32": (3, 8, 1, 64, (33, 129, 1), "bfloat16", 1, 32, "fp8", 16, 4, 7),
    # 64- and 128-token tiles (the tiles branch warpsplit cuts into a quarter a warp: docs/kernels.md): a last
    # tile with a quarter half-filled and one empty, segments starting mid-sequence
    "fp8-contig-tile64-parts": (2, 8, 2, 128, (300, 70), "bfloat16", 1, 0, "fp8", 64, 3, 5),
    "fp8-contig-tile128-d64": (3, 4, 1, 64, (400, 129, 20), "float16", 1, 0, "fp8", 128, 2, 4),
    "bf16-contig-tile64-parts": (2, 8, 2, 128, (300, 70), "bfloat16", 1, 0, "", 64, 3, 5),  # the same, 16-bit
    "fp16-contig-tile128-d64": (3, 4, 1, 64, (400, 129, 20), "float16", 1, 0, "", 128, 2, 4),
    "fp8-paged16-tile64-parts": (3, 8, 2, 128, (200, 70, 9), "bfloat16", 1, 16, "fp8", 64, 3, 5),  # a part a page
    "fp8-paged128-tile64-parts": (2, 4, 1, 64, (300, 129), "float16", 1, 128, "fp8", 64, 2, 4),  # a tile in a page
    "qlen4-gqa2": (3, 4, 2, 64, (37, 100, 5), "float16", 4, 0, "", 16, 3, 5),
    "qlen16-two-qblocks": (2, 8, 1, 64, (40, 17), "float16", 16, 0, "", 16, 2, 3),
    "qlen8-short-last-tiles": (2, 4, 1, 64, (51, 35), "bfloat16", 8, 0, "", 16, 4, 7),  # rows see 0 tokens of a tile
    "qlen10-second-qblock-of-16": (2, 8, 1, 64, (60, 21), "float16", 10, 0, "", 16, 3, 5),  # combine row blocks
    "qlen3-24-rows": (2, 8, 1, 64, (40, 70), "bfloat16", 3, 0, "", 16, 2, 3),  # a combine block of 8 rows
    "qlen3-fp8-paged16-tile32": (3, 6, 2, 128, (70, 3, 41), "float16", 3, 16, "fp8", 32, 3, 5),
    "qlen2-mha-paged128": (2, 4, 4, 64, (300, 130), "bfloat16", 2, 128, "", 32, 3, 6),
    # padded head dims (tiles.D_VALID): fp8 whole tiles masked to the head's columns only, pages, verify
    "d96-fp8-paged16-qlen2": (2, 4, 2, 96, (37, 70), "bfloat16", 2, 16, "fp8", 32, 3, 5),
    "d224-paged32-qlen4": (2, 2, 1, 224, (40, 65), "float16", 4, 32, "", 32, 2, 3),
}


def case(name: str):
    batch, hq, hkv, d, contexts, dtype, q_len, page, kv, tile, splits, grid = CASES[name]
    workload = DecodeWorkload.build(batch, hq, hkv, d, list(contexts), q_len, dtype, page, kv)
    return workload, PlanConfig(kv_tile_tokens=tile, splits=splits, grid=grid)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_reference(strategy, name, device, h100):
    workload, config = case(name)
    _, err = run_serving(strategy, workload, h100, config, device, seed=sum(map(ord, name + strategy)))
    assert err <= TOLERANCE


@pytest.mark.parametrize("name", CASES)
def test_split_kv_fixed_chunks_match_reference(name, device, h100):
    """Split-KV's fixed chunks (one chunk per program in LPT order, lean_last.one_segment_kernel) on every
    serving input: pages, fp8, verify blocks; two-tile chunks, at most three per sequence."""
    workload, config = case(name)
    chunks = PlanConfig(kv_tile_tokens=config.kv_tile_tokens, chunk_tokens=2 * config.kv_tile_tokens, max_splits=3)
    launcher, err = run_serving("splitkv", workload, h100, chunks, device, seed=sum(map(ord, name)))
    assert launcher.kernel.name == "split_kv_chunks" and err <= TOLERANCE


@pytest.mark.parametrize("strategy", ["flashdecoding", "streamk"])
def test_one_tile_segments_of_a_verify_block(strategy, device, h100):
    """Every segment a single 16-token tile, 51 and 35 tokens: the last tiles (3 tokens) hold no key
    that the first 4 query positions may see, so those partials are empty (lse -inf) and must
    weigh nothing in the merge."""
    workload = DecodeWorkload.build(2, 4, 1, 64, [51, 35], q_len=8)
    tiles = 4 + 3
    config = PlanConfig(kv_tile_tokens=16, splits=4, grid=tiles)
    launcher, err = run_serving(strategy, workload, h100, config, device, seed=17, runs=2)
    assert err <= TOLERANCE
    assert launcher.schedule.attention.segments.n_tiles.max() == 1


@pytest.mark.parametrize("strategy", ["fa2", "streamk"])
def test_decode_accepts_3d_queries(strategy, device, h100):
    workload = DecodeWorkload.build(2, 8, 2, 64, [40, 70], page_size=16, kv_dtype="fp8")
    _, err = run_serving(strategy, workload, h100, PlanConfig(kv_tile_tokens=16, grid=4), device, seed=4, q_3d=True)
    assert err <= TOLERANCE


def test_launcher_names_a_missing_or_wrong_input(device, h100):
    workload = DecodeWorkload.build(2, 4, 2, 64, [40, 17], q_len=2, page_size=16, kv_dtype="fp8")
    launcher = launcher_for("fa2", workload, h100, PlanConfig(kv_tile_tokens=16), device=device)
    q, k, v, kwargs, _ = serving_inputs(workload, device, seed=1)
    for missing in ("block_table", "k_scale", "v_scale"):
        with pytest.raises(InputError) as info:
            launcher.run(q, k, v, **{n: t for n, t in kwargs.items() if n != missing})
        assert info.value.field == missing
    with pytest.raises(InputError, match="block_table"):
        launcher.run(q, k, v, **{**kwargs, "block_table": kwargs["block_table"].long()})
    with pytest.raises(InputError, match="k_cache"):
        launcher.run(q, k[:, :8], v, **kwargs)
    with pytest.raises(InputError, match="q"):
        launcher.run(q[:, :, 0], k, v, **kwargs)  # 3-D q is decode (q_len 1) only
    with pytest.raises(InputError, match="k_cache"):
        launcher.run(q, k.to(torch.float16), v, **kwargs)
    page_elems = k.shape[1] * k.shape[2] * k.shape[3]
    padded = torch.zeros(k.shape[0], page_elems + 8, dtype=k.dtype, device=k.device)  # pages 8 elements apart
    unaligned = padded.as_strided(k.shape, (page_elems + 8,) + k.stride()[1:])
    with pytest.raises(InputError, match="k_cache: page stride .* multiple of 16"):
        launcher.run(q, unaligned, v, **kwargs)


@pytest.mark.parametrize("name", CASES)
def test_model_plans_what_the_launcher_uploads(name, h100):
    """The Schedule the model simulates for a serving workload is the one the launcher runs (CPU:
    on a GPU the compiled resources may differ from the tables, test_kernels_gpu compares those)."""
    if not interpreting():
        pytest.skip("CPU contract test")
    workload, config = case(name)
    for strategy in STRATEGIES:
        launcher = launcher_for(strategy, workload, h100, config, device="cpu")
        _same_schedule(plan_for(strategy, workload, h100, config), launcher.schedule)


def test_fp8_reference_is_the_dequantised_cache():
    """The float64 reference of an fp8 case reads the e4m3 values times their scales: 3-5% of max |o|
    from the unquantised cache's reference (e4m3 keeps 3 mantissa bits), so the kernels' 2e-2 bound
    is on their arithmetic, not on the quantisation."""
    from attnsim.kernels.kv_cache import fp8_quantize
    from attnsim.kernels.reference import attention_reference, max_relative_error

    gen = torch.Generator().manual_seed(7)
    q = torch.randn(2, 8, 128, generator=gen)
    k, v = (torch.randn(2, 2, 300, 128, generator=gen) for _ in range(2))
    (k8, ks), (v8, vs) = fp8_quantize(k), fp8_quantize(v)
    exact = attention_reference(q, k, v, [300, 300])
    dequantised = attention_reference(q, k8, v8, [300, 300], k_scale=ks, v_scale=vs)
    assert 1e-2 < max_relative_error(dequantised, exact) < 1e-1
    assert (k8.float() * ks[None, :, None, None] - k).abs().max() <= k.abs().max() / 16  # <= half an e4m3 step


@pytest.mark.parametrize("strategy", ["fa2", "streamk"])
def test_a_head_major_pool_is_read_through_its_strides(strategy, device, h100):
    """FlashInfer's HND pages ([num_pages, kv_heads, page, d], here a transposed view): a 32-token tile
    of 16-token pages addresses each page through the pool's strides (tile_loads.page_tile); the output is
    the same as from the NHD pool."""
    from attnsim.kernels.reference import max_relative_error

    workload = DecodeWorkload.build(3, 4, 2, 64, [97, 33, 16], page_size=16)
    launcher = launcher_for(strategy, workload, h100, PlanConfig(kv_tile_tokens=32, grid=5), device=device)
    q, k, v, kwargs, ref = serving_inputs(workload, device, seed=5)
    k_hnd, v_hnd = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (k, v))
    assert k_hnd.stride(1) == 64 and k_hnd.stride(0) == 2 * 16 * 64
    assert max_relative_error(launcher.run(q, k_hnd, v_hnd, **kwargs), ref) <= TOLERANCE



@triton.jit
def _page_tile_rows(k_pool, bt, out, tile, context, stride_p, stride_n, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
                    PAGE_SIZE: tl.constexpr):
    k, _ = page_tile(k_pool, k_pool, bt, tile, context, stride_p, stride_n, stride_p, stride_n, BLOCK_N, HEAD_DIM,
                     PAGE_SIZE)
    tl.store(out + tl.arange(0, BLOCK_N)[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :], k.to(tl.float32))


@pytest.mark.parametrize("head_major", [False, True])
@pytest.mark.parametrize("page,tile", [(16, 32), (16, 64), (16, 128), (32, 128)])
@pytest.mark.parametrize("short", [0, 1, 17])
def test_a_tile_of_pages_reads_each_row_from_its_page(head_major, page, tile, short):
    """Row r of a tile of whole pages is row r % page of page block_table[r // page] (rows past the context
    read 0): decode attention cannot see rows of K and V swapped together, so the rows are checked here."""
    if not interpreting():
        pytest.skip("CPU layout test")
    heads, d, n_pages = 2, 32, 40
    pool = torch.arange(n_pages * page * heads * d, dtype=torch.float32).reshape(n_pages, page, heads, d)
    if head_major:  # [num_pages, heads, page, d] viewed as [num_pages, page, heads, d]
        pool = pool.transpose(1, 2).contiguous().transpose(1, 2)
    table = torch.randperm(n_pages, generator=torch.Generator().manual_seed(page + tile))[:32].to(torch.int32)
    context = 2 * tile - short  # tile 1 ends `short` tokens early
    out = torch.full((tile, d), -1.0)
    column = pool[:, :, 1]  # kv_head 1's column of the pool
    _page_tile_rows[(1,)](column, table, out, 1, context, pool.stride(0), pool.stride(1), BLOCK_N=tile, HEAD_DIM=d,
                          PAGE_SIZE=page)
    for r in range(tile):
        token = tile + r
        want = pool[table[token // page], token % page, 1] if token < context else torch.zeros(d)
        assert torch.equal(out[r], want), (r, token)
