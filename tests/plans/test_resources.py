"""The one resources resolver: exact compiled entries, a fallback one field at a time that never
drops the KV dtype or paging, never more CTAs per SM than the compiled truth it stands in for."""

from __future__ import annotations

import dataclasses

import pytest

from attnsim.planner.choose import make_plan
from attnsim.plans import resources as R
from attnsim.profiles import resolve_gpu
from attnsim.simulator.hardware import from_name
from attnsim.simulator.occupancy import CtaResources, occupancy
from attnsim.simulator.workload import HEAD_DIMS, PAGE_SIZES, DecodeWorkload, block_head_dim

H100, H200 = resolve_gpu("h100"), resolve_gpu("h200")
TABLE = R.compiled_table((9, 0))


def _entry(e: dict) -> CtaResources:
    return CtaResources(int(e["threads"]), int(e["regs_per_thread"]), int(e["smem_bytes"]))


@pytest.fixture
def without(monkeypatch):
    """lookup() against the shipped table less some keys (and no profile kernels)."""

    def table_without(*keys):
        smaller = {k: e for k, e in TABLE.items() if k not in keys}
        monkeypatch.setattr(R, "compiled_table", lambda cc: smaller)
        return dataclasses.replace(from_name("h200"), kernels={})

    return table_without


def test_every_key_parses_back_and_looks_up_exactly():
    gpu = dataclasses.replace(from_name("h200"), kernels={})
    for key, entry in TABLE.items():
        variant = R.Variant.parse(key)
        assert variant is not None and variant.key == key, key
        assert R.lookup(gpu, variant) == (_entry(entry), "compiled table"), key


def test_leave_one_out_fallback_is_never_optimistic(without):
    """Hide each compiled attention variant in turn: its fallback allows at most its true CTAs/SM."""
    optimistic = []
    for key, entry in TABLE.items():
        variant = R.Variant.parse(key)
        if variant.kernel == R.COMBINE_KERNEL:
            continue
        gpu = without(key)
        got, source = R.lookup(gpu, variant)
        assert source != "compiled table", key
        if occupancy(gpu, got).blocks_per_sm > occupancy(gpu, _entry(entry)).blocks_per_sm:
            optimistic.append((key, got, source))
    assert optimistic == []


def test_fallback_keeps_kv_dtype_and_paging(without):
    """issue 17: fp8 on 32-token pages (then not compiled) took the contiguous fp16 kernel's
    resources and planned more CTAs than the fp8 kernel could keep resident. With that entry hidden
    again, its fp8 paged siblings stand in, and the plan stays within what they allow. (Since issue
    18 the fp8 stream-K kernel keeps two CTAs per SM: 105 KB of shared memory, 4 warps at 16 rows.)"""
    w = DecodeWorkload.build(8, 32, 8, 128, 65536, dtype="bfloat16", page_size=32, kv_dtype="fp8")
    compiled = make_plan("streamk", w, H100)
    assert compiled.resources_source == "compiled table" and compiled.schedule.grid == compiled.capacity
    variant = R.variant("lean_decode", w, compiled.config.kv_tile_tokens, compiled.config.num_warps,
                        compiled.config.num_stages)
    gpu = without(variant.key)
    plan = make_plan("streamk", w, gpu)
    assert "siblings: any page_size" in plan.resources_source
    siblings = [_entry(e) for k, e in TABLE.items() if k != variant.key
                and (v := R.Variant.parse(k)).kernel == "lean_decode" and v.kv_dtype == w.kv_dtype
                and v.page_size and v.block_m == variant.block_m and v.dtype == w.dtype and v.q_len == 1
                and v.head_dim == 128 and v.warps == variant.warps and v.stages == variant.stages and v.tile == variant.tile]
    assert siblings and plan.resources.regs_per_thread == max(s.regs_per_thread for s in siblings)
    fewest = min(occupancy(H100, s).blocks_per_sm for s in siblings) * H100.sm_count
    assert plan.capacity <= fewest and plan.schedule.grid == plan.capacity
    assert make_plan("auto", w, gpu).schedule.grid <= plan.capacity


def test_a_variant_no_sibling_covers_is_estimated_with_the_kernels_most_registers(without):
    gpu = without()
    wanted = R.Variant("lean_decode", 128, "float16", 16, 2, 3, 64)  # 2 warps: never compiled
    got, source = R.lookup(gpu, wanted)
    compiled = [e["regs_per_thread"] for k, e in TABLE.items()
                if (v := R.Variant.parse(k)).kernel == "lean_decode" and v.warps == 2]
    most = max(compiled, default=R.ESTIMATED_REGISTERS)
    assert source == "estimate" and got == CtaResources(64, most, R.kv_buffer_bytes(wanted) + 6144)


def test_profile_kernels_come_before_the_shipped_table():
    key = next(k for k in TABLE if k.startswith("lean_decode/d128/float16/m16/w8/s3/"))
    measured = {"threads": 256, "regs_per_thread": 96, "smem_bytes": 40960}
    gpu = dataclasses.replace(from_name("h200"), kernels={key: measured})
    assert R.lookup(gpu, R.Variant.parse(key)) == (_entry(measured), "profile")


def test_shrinking_to_fit_counts_fewer_buffers():
    """d 256 on an L40S (100 KB per SM): fewer stages, then smaller tiles, until one CTA fits."""
    w = DecodeWorkload.build(2, 128, 1, 256, 3000)
    for name in ("fa2", "flashdecoding", "streamk"):
        plan = make_plan(name, w, resolve_gpu("l40s"))
        assert plan.capacity > 0, name


@pytest.mark.parametrize("kv_dtype", ["", "float8_e4m3fn"])
@pytest.mark.parametrize("head_dim", HEAD_DIMS)
def test_default_tiles_are_powers_of_two_at_every_head_dim(head_dim, kv_dtype):
    """FA2's head dims that are not powers of two (96, 160-224) get a tile of their padded width's 16 KB (a
    power of two of tokens: it holds whole pages or lies inside one), not 16 KB / head_dim (85 tokens at 96)."""
    for page_size in (0, *PAGE_SIZES):
        w = DecodeWorkload.build(2, 16, 8, head_dim, 5000, page_size=page_size, kv_dtype=kv_dtype)
        tile = R.default_kv_tile_tokens(w)
        assert tile & (tile - 1) == 0 and tile >= 16
        assert tile * block_head_dim(head_dim) * w.kv_dtype_bytes == max(16 * 1024, 16 * block_head_dim(head_dim) * w.kv_dtype_bytes)
        plan = make_plan("flashdecoding", w, H200)
        assert plan.schedule.kv_tile_tokens == tile
        assert not page_size or tile % page_size == 0 or page_size % tile == 0
