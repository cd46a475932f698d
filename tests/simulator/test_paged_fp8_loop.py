"""Paging's share of the fp8 tile loop's work (terms.paged_loop_scale): a paged fp8 cache's tile math is
priced by its SASS's instructions a tile over the contiguous loop's, and nothing else moves."""

import pytest

from attnsim.predict import predict_one
from attnsim.simulator import cost
from attnsim.simulator.terms import CONTIGUOUS_FP8_LOOP_INSTR, PAGED_FP8_LOOP_INSTR, paged_loop_scale
from attnsim.simulator.workload import PAGE_SIZES, DecodeWorkload
from plan_helpers import plan_for
from test_serving_model import neutral_h200, with_cost


def fp8(page_size, kv_dtype="float8_e4m3fn"):
    return DecodeWorkload.build(8, 32, 8, 128, 32768, dtype="bfloat16", kv_dtype=kv_dtype, page_size=page_size)


def test_every_page_size_has_its_loop_count_and_paging_only_adds_work():
    assert set(PAGED_FP8_LOOP_INSTR) == set(PAGE_SIZES)
    assert all(n >= CONTIGUOUS_FP8_LOOP_INSTR for n in PAGED_FP8_LOOP_INSTR.values())
    # 16-token pages (8 a tile, an index each) cost the most, more than one page a tile (128, 256)
    assert PAGED_FP8_LOOP_INSTR[16] == max(PAGED_FP8_LOOP_INSTR.values()) > PAGED_FP8_LOOP_INSTR[128]


@pytest.mark.parametrize("page_size", PAGE_SIZES)
def test_a_paged_fp8_tile_math_is_its_loop_ratio_slower(page_size):
    spec = with_cost(neutral_h200(), mma_flop_per_sm_clock=600.0, dequant_elem_per_sm_clock=20.0,
                     mma_flop_per_warp_clock=100.0, dequant_elem_per_warp_clock=4.0)
    contiguous, paged = fp8(0), fp8(page_size)
    launch = plan_for("flashdecoding", contiguous, spec).attention  # the same tiles priced for both caches
    params = spec.cost_for("flashdecoding")
    ratio = PAGED_FP8_LOOP_INSTR[page_size] / CONTIGUOUS_FP8_LOOP_INSTR
    assert paged_loop_scale(paged) == ratio and paged_loop_scale(contiguous) == 1.0
    for rate in (cost.sm_math_rate, cost.cta_math_rate):
        a, b = (rate(params, spec, w, 128, launch, 1.0) for w in (contiguous, paged))
        assert b == pytest.approx(a / ratio)


def test_16_bit_paged_caches_keep_their_tile_math():
    spec = neutral_h200()
    bf16, paged_bf16 = fp8(0, "bfloat16"), fp8(16, "bfloat16")
    assert paged_loop_scale(paged_bf16) == 1.0
    launch = plan_for("flashdecoding", bf16, spec).attention
    params = spec.cost_for("flashdecoding")
    assert cost.sm_math_rate(params, spec, paged_bf16, 64, launch, 1.0) == \
        cost.sm_math_rate(params, spec, bf16, 64, launch, 1.0)


def test_a_paged_fp8_prediction_is_slower_where_the_loop_holds_it(monkeypatch):
    """A compute-capped fp8 decode at 16-token pages: the scale makes it slower than the model without it."""
    spec = with_cost(neutral_h200(), mma_flop_per_sm_clock=300.0, dequant_elem_per_sm_clock=8.0)
    paged = fp8(16)
    with_scale = predict_one("flashdecoding", paged, spec).total_us
    monkeypatch.setitem(PAGED_FP8_LOOP_INSTR, 16, CONTIGUOUS_FP8_LOOP_INSTR)
    assert with_scale > predict_one("flashdecoding", paged, spec).total_us * 1.03
