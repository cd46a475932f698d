"""A combine CTA's segments are its dependent load steps: our combine kernel merges BLOCK_P partials a step
(kernels/partials.merge_slots; BLOCK_P as the launcher sets it) of a row block of at most COMBINE_ROWS rows, a
baseline's combine one partial a step."""

import numpy as np
import pytest

from attnsim.plans.resources import COMBINE_WARPS
from attnsim.planner.choose import make_plan
from attnsim.simulator.hardware import from_name
from attnsim.simulator.partition.common import merge_block
from attnsim.simulator.partition.flashdecoding import COMBINE_ROWS
from attnsim.simulator.workload import DecodeWorkload, query_tile_rows

H200 = from_name("h200")


@pytest.mark.parametrize("q_heads,kv_heads,head_dim,q_len,splits", [
    (32, 8, 128, 1, 16), (32, 8, 64, 1, 7), (8, 1, 128, 8, 32), (16, 2, 128, 4, 128), (64, 8, 128, 2, 5)])
def test_flashdecoding_combine_bills_one_segment_per_load_step(q_heads, kv_heads, head_dim, q_len, splits):
    w = DecodeWorkload.build(2, q_heads, kv_heads, head_dim, 65536, q_len=q_len, dtype="bfloat16")
    combine = make_plan(f"flashdecoding:splits={splits}", w, H200).schedule.launches[1]
    rows = min(query_tile_rows(w), COMBINE_ROWS)
    block_p = merge_block(rows, w.v_dim, COMBINE_WARPS)  # kernels/launch.py's combine BLOCK_P
    partials = np.rint(combine.cta_read_bytes / combine.cta_read_bytes.max() * splits)  # every output: all splits
    assert block_p in (1, 2, 4)
    np.testing.assert_array_equal(combine.cta_segments, np.ceil(partials / block_p))
    outputs = len(make_plan(f"flashdecoding:splits={splits}", w, H200).schedule.reductions)
    assert combine.grid == outputs * -(-query_tile_rows(w) // COMBINE_ROWS)  # row blocks of each output


def test_a_baseline_combine_merges_one_partial_a_step():
    w = DecodeWorkload.build(1, 32, 8, 128, 65536)
    plan = make_plan("torch-cudnn", w, H200)
    assert len(plan.schedule.launches) == 2, "cuDNN splits a batch-1 64k context"
    combine = plan.schedule.launches[1]
    per_partial = combine.cta_read_bytes / combine.cta_segments
    assert np.allclose(per_partial, per_partial[0])  # segments follow the partials one for one


def test_a_verify_block_of_64_rows_is_merged_by_four_row_blocks():
    # 8 partials of 64 rows (q_len 8 x group 8): four CTAs of 16 rows, each at BLOCK_P 4: 2 steps (one CTA of
    # 64 rows at BLOCK_P 2 took 4 steps; billing per partial made it 8)
    w = DecodeWorkload.build(1, 8, 1, 128, 131072, q_len=8, dtype="bfloat16")
    plan = make_plan("flashdecoding:splits=8", w, H200)
    assert list(plan.schedule.launches[1].cta_segments) == [2, 2, 2, 2]


@pytest.mark.parametrize("spec", ["flashmla", "flashdecoding:splits=16"])
def test_an_mla_combine_loads_one_partial_tile_a_step(spec):
    # our MLA combine (FlashMLA's schedule runs it too) takes BLOCK_P LSE rows a step but one o tile per slot
    w = DecodeWorkload.build(2, 16, 1, 576, 65536, dtype="bfloat16", kv_lora_rank=512)
    plan = make_plan(spec, w, H200)
    assert len(plan.schedule.launches) == 2, "64k tokens are split"
    combine = plan.schedule.launches[1]
    partials = plan.schedule.reductions.peer_offsets[1:] - plan.schedule.reductions.peer_offsets[:-1]
    pieces = len(combine.cta_segments) // len(partials)  # MLA: column pieces per output, in piece-major order
    np.testing.assert_array_equal(combine.cta_segments, np.tile(partials, pieces))


def test_row_blocks_bill_the_rows_they_hold():
    # q_len 10 x group 8 = 80 rows: q-block 0 of 64 rows (four full blocks), q-block 1 of 16 (one block, three
    # past its rows: no reads, no writes, no steps); piece-major, as the kernel's 2-D grid linearises
    w = DecodeWorkload.build(1, 8, 1, 128, 65536, q_len=10, dtype="bfloat16")
    combine = make_plan("flashdecoding:splits=4", w, H200).schedule.launches[1]
    rows = combine.cta_write_bytes / (w.v_dim * w.dtype_bytes)
    assert rows.tolist() == [16, 16, 16, 0, 16, 0, 16, 0]
    assert (combine.cta_segments[rows == 0] == 0).all() and (combine.cta_read_bytes[rows == 0] == 0).all()
    # 24 rows (q_len 3 x group 8): a block of 16 and one of the 8 left
    w = DecodeWorkload.build(1, 8, 1, 128, 65536, q_len=3, dtype="bfloat16")
    combine = make_plan("flashdecoding:splits=4", w, H200).schedule.launches[1]
    assert (combine.cta_write_bytes / (w.v_dim * w.dtype_bytes)).tolist() == [16, 8]
