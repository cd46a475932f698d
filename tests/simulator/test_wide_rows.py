"""Which query tiles bill the wide-tile term (cost.wide_decode_rows): 32-row tiles on the mma.sync path,
decode, verify or fp8 alike; not 16-row tiles, not the 64-row verify / fp8 tiles whose warpgroup mma the
tile-math cap prices, not MLA."""

from __future__ import annotations

import pytest

from attnsim.simulator.cost import wide_decode_rows
from attnsim.simulator.workload import DecodeWorkload


@pytest.mark.parametrize("q_heads, kv_heads, q_len, kv_dtype, rows", [
    (32, 8, 1, "", 0),  # decode, group 4: 16 rows
    (32, 1, 1, "", 16),  # decode MQA, group 32
    (64, 1, 1, "", 48),  # decode, group 64: the calibrated decode rule
    (16, 2, 4, "", 16),  # verify, 4 x 8 = 32 rows: the decode 32-row code
    (16, 2, 8, "", 0),  # verify, 64 rows: warpgroup mma, math-capped
    (32, 1, 1, "fp8", 16),  # fp8 at group 32
    (16, 2, 1, "fp8", 0),  # fp8 at group 8
])
def test_which_tiles_pay_for_rows_above_16(q_heads, kv_heads, q_len, kv_dtype, rows):
    w = DecodeWorkload.build(2, q_heads, kv_heads, 128, 4096, q_len, "bfloat16", 0, kv_dtype)
    assert wide_decode_rows(w) == rows


def test_mla_tiles_never_do():
    w = DecodeWorkload.build(2, 32, 1, 576, 4096, kv_lora_rank=512)
    assert wide_decode_rows(w) == 0
