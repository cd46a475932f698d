"""The MLA kernels' compiled resources (scripts/cross_compile_mla.py -> kernels_sm90.json): every plan
of an MLA serving shape on an sm_90 GPU finds its kernel variant in the table, never an estimate."""

from __future__ import annotations

import itertools

import pytest

from attnsim import strategies
from attnsim.planner.choose import make_plan
from attnsim.plans.resources import MLA_KV_TILE_TOKENS, Variant, compiled_table, kv_buffer_bytes
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

SM90 = (resolve_gpu("h200"), resolve_gpu("h100"), resolve_gpu("h200", "none"))
SHAPES = list(itertools.product(("bfloat16", "float16"), (8, 16, 32, 64, 128), (1, 2), (0, 16, 64, 256)))


@pytest.mark.parametrize("dtype, heads, q_len, page", SHAPES)
def test_no_mla_plan_on_sm90_is_estimated(dtype, heads, q_len, page):
    w = DecodeWorkload.build(3, heads, 1, 576, [5000, 700, 30000], q_len, dtype, page, kv_lora_rank=512)
    for gpu in SM90:
        for name in strategies.candidates(w):
            plan = make_plan(name, w, gpu)
            assert plan.resources_source == "compiled table", (name, gpu.source, plan.resources_source)
            assert plan.config.kv_tile_tokens == MLA_KV_TILE_TOKENS


def test_mla_keys_carry_the_latent_rank_and_parse_back():
    keys = [k for k in compiled_table((9, 0)) if k.startswith(("mla_decode", "mla_lean"))]
    assert len(keys) >= 150 and all(k.endswith("/r512") and "/d576/" in k for k in keys)
    v = Variant.parse("mla_lean/d576/bfloat16/m16/w8/s5/n32/p64/r512")
    assert (v.kernel, v.lora, v.page_size, v.tile) == ("mla_lean", 512, 64, 32) and v.key.endswith("/r512")
    assert kv_buffer_bytes(v) == 2 * 32 * 576 * 2  # two latent tiles in flight (5 stages - 1 - 2 for paging)


def test_16_heads_fit_two_ctas_an_sm_and_64_rows_one():
    """What decides the plans' grids on the H200: the FA2-style / split kernel at 16 query rows takes
    128 registers and 91 KB (two CTAs an SM); 64 rows (128 heads: two q-blocks) fill an SM alone."""
    h200 = resolve_gpu("h200")
    sixteen = make_plan("fa2", DecodeWorkload.build(4, 16, 1, 576, 8192, dtype="bfloat16", kv_lora_rank=512), h200)
    wide = make_plan("fa2", DecodeWorkload.build(4, 128, 1, 576, 8192, dtype="bfloat16", kv_lora_rank=512), h200)
    assert sixteen.resources.regs_per_thread == 128 and sixteen.capacity == 2 * h200.sm_count
    assert wide.capacity == h200.sm_count
