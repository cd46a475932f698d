"""test_kernels_serving.py's checks at real sizes, compiled for a CUDA GPU (default tiles, grids and
splits): paged caches of 16 and 256-token pages, fp8 caches, verify blocks of 4 and 16 tokens, and
all three together, for every strategy our kernels run. NaN past every context and in every unused
page row, so a read past a length or through a wrong block-table entry fails."""

import pytest

from attnsim import strategies
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, run_serving

pytestmark = pytest.mark.gpu

# name: (batch, q_heads, kv_heads, contexts, dtype, q_len, page_size, kv_dtype)
CASES = {
    "paged16-70b-tp8": (16, 8, 1, 8191, "bfloat16", 1, 16, ""),
    "paged256-ragged-gqa4": (4, 32, 8, [4096, 16391, 999, 17], "float16", 1, 256, ""),
    "fp8-mqa-long": (1, 8, 1, 131071, "bfloat16", 1, 0, "fp8"),
    "fp8-paged16-gqa": (8, 16, 2, 20000, "bfloat16", 1, 16, "fp8"),
    "verify4-gqa8": (8, 8, 1, [3000, 70000, 17, 4097, 5, 9000, 123, 2048], "bfloat16", 4, 0, ""),
    "verify16-two-qblocks": (4, 8, 1, 32768, "float16", 16, 0, ""),
    "verify8-fp8-paged32": (16, 32, 8, 4096, "bfloat16", 8, 32, "fp8"),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("strategy", strategies.ours())
def test_serving_paths_match_reference_real_sizes(strategy, name, cuda, h100):
    batch, hq, hkv, contexts, dtype, q_len, page, kv = CASES[name]
    workload = DecodeWorkload.build(batch, hq, hkv, 128, contexts, q_len, dtype, page, kv)
    launcher, err = run_serving(strategy, workload, h100, None, cuda, seed=sum(map(ord, name)), runs=2)
    assert err <= TOLERANCE
    assert launcher.meta["n_regs"] is not None
