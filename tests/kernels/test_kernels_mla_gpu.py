"""test_kernels_mla.py's checks at DeepSeek-V3's sizes, compiled for a CUDA GPU (default tiles, grids
and splits; the plans the model makes): 16 heads (TP 8) and 128 heads (TP 1, two q-blocks), 64-token
pages, MTP verify, ragged batches with NaN past every context, for every strategy with an MLA kernel;
and the compiled kernel runs the plan as the table sized it: the same CTAs per SM, its registers at most the
table's (compile_table keeps the larger of a kernel's group-1 and group-2 specialisations: the device run of
2026-12-05 compiled the 16-row MLA kernels to 181 / 187 registers against the table's 182 / 190) and the same
shared memory (prepare refuses a plan its kernel cannot run; the table must not have guessed)."""

import pytest

from attnsim import strategies
from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator.occupancy import resident_capacity
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE
from test_kernels_mla import run_mla

pytestmark = pytest.mark.gpu

# name: (batch, q_heads, contexts, q_len, page_size)
CASES = {
    "tp8-paged64": (16, 16, 8191, 1, 64),
    "tp8-ragged-long": (4, 16, [131072, 4097, 17, 33333], 1, 64),
    "tp1-two-qblocks": (8, 128, 8192, 1, 64),
    "tp8-mtp2": (8, 16, [3000, 70000, 5, 4097, 9000, 123, 2048, 64], 2, 64),
    "kimi-tp8-contiguous": (4, 8, 20000, 1, 0),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("strategy", strategies.ours_mla())
def test_mla_matches_reference_real_sizes(strategy, name, cuda):
    batch, heads, contexts, q_len, page = CASES[name]
    workload = DecodeWorkload.build(batch, heads, 1, 576, contexts, q_len, "bfloat16", page, kv_lora_rank=512)
    h200 = resolve_gpu("h200")
    launcher, err = run_mla(strategy, workload, None, cuda, sum(map(ord, name)), h200, runs=2)
    assert err <= TOLERANCE
    planned = make_plan(strategy, workload, h200)
    assert planned.resources_source == "compiled table"
    compiled, table = launcher.resources, planned.resources
    assert compiled.regs_per_thread <= table.regs_per_thread and compiled.smem_bytes == table.smem_bytes, launcher.meta
    assert resident_capacity(h200, compiled) == resident_capacity(h200, table), launcher.meta
