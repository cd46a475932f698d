"""The fp8 loop ablation (scripts/fp8_loop_probe.py) does what its levels say on small shapes: level 0 reads
every byte of K and V, level 1 every value converted, level 3 is attention (the kernels' own tile step)."""

import math

import pytest
import torch

from script_helpers import load_script

probe = load_script("fp8_loop_probe")

SMALL = {kv: probe.ProbeShape(kv, block_n=16, num_stages=2, ctas_per_sm=1, head_dim=32)
         for kv in ("float8_e4m3fn", "bfloat16")}


def run_level(shape, level, device, tokens=48, ctas=2):
    q, k, v = probe.make_inputs(shape, ctas, tokens, device)
    out = torch.zeros(ctas, shape.block_m, shape.head_dim, device=device)
    probe.launcher(shape, level, q, k, v, out)()
    return q, k, v, out


@pytest.mark.parametrize("kv_dtype", sorted(SMALL))
def test_full_level_is_attention_over_the_ctas_slice(kv_dtype, device):
    q, k, v, out = run_level(SMALL[kv_dtype], probe.LEVELS.index("full"), device)
    assert probe.check_full(q, k, v, out, ctas_checked=(0, 1)) < 2e-3


@pytest.mark.parametrize("kv_dtype", sorted(SMALL))
def test_load_level_folds_every_word_of_k_and_v(kv_dtype, device):
    _, k, v, out = run_level(SMALL[kv_dtype], probe.LEVELS.index("load"), device)
    for cta in range(k.shape[0]):
        words = (k[cta].contiguous().view(torch.int32), v[cta].contiguous().view(torch.int32))
        tiles = torch.cat(words).reshape(-1, SMALL[kv_dtype].block_n, words[0].shape[-1])
        fold = tiles[0].clone()
        for tile in tiles[1:]:
            fold ^= tile
        assert out[cta, 0, 0].item() == float((fold & 0xFFFF).sum())


def test_convert_level_sums_every_converted_value(device):
    _, k, v, out = run_level(SMALL["float8_e4m3fn"], probe.LEVELS.index("convert"), device)
    for cta in range(k.shape[0]):
        want = (k[cta].to(torch.float64) + v[cta].to(torch.float64)).sum()
        assert math.isclose(out[cta, 0, 0].item(), float(want), rel_tol=2e-2, abs_tol=1.0)


def test_a_run_streams_at_least_the_asked_bytes_in_whole_tiles():
    shape = probe.DEFAULT_SHAPES[0]
    tokens = probe.tokens_per_cta(512 << 20, 264, shape)
    assert tokens % shape.block_n == 0
    assert 264 * tokens * 2 * shape.head_dim >= 512 << 20 > 264 * (tokens - shape.block_n) * 2 * shape.head_dim
