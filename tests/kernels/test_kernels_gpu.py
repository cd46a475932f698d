"""The same checks as test_kernels_decode.py at real sizes, compiled for a CUDA GPU: default tiles,
default grids (stream-K at the compiled kernel's resident capacity), FA2's split heuristic."""

import pytest

from attnsim import strategies
from attnsim.kernels.launch import launcher_for
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, run_checked

pytestmark = pytest.mark.gpu

STRATEGIES = strategies.ours()  # every strategy our kernels run, from the registry
SHAPES = {  # (batch, q_heads, kv_heads, contexts)
    "mha-ragged": (4, 16, 16, [4096, 16391, 999, 1]),
    "gqa8-uniform": (2, 32, 4, 32768),
    "mqa-long": (1, 32, 1, 131071),
    "gqa4-many-seqs": (24, 32, 8, 2053),
}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_reference_real_sizes(strategy, shape, head_dim, dtype, cuda, h100):
    batch, hq, hkv, contexts = SHAPES[shape]
    workload = DecodeWorkload.build(batch, hq, hkv, head_dim, contexts, dtype=dtype)
    launcher, err = run_checked(strategy, workload, h100, None, cuda, seed=sum(map(ord, shape)), runs=2)
    assert err <= TOLERANCE
    assert launcher.meta["n_regs"] is not None and launcher.meta["n_spills"] == 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_head_dim_256(strategy, cuda, h100):
    workload = DecodeWorkload.build(2, 8, 2, 256, [3001, 777], dtype="bfloat16")
    _, err = run_checked(strategy, workload, h100, None, cuda, seed=11)
    assert err <= TOLERANCE


def test_streamk_grid_is_compiled_capacity(cuda, h100):
    """The plan's grid comes from the compiled kernel's registers and shared memory."""
    from attnsim.simulator.occupancy import resident_capacity

    workload = DecodeWorkload.build(8, 32, 8, 128, 8192)
    launcher = launcher_for("streamk", workload, h100, device=cuda)
    assert launcher.resources.regs_per_thread == launcher.meta["n_regs"]
    assert launcher.schedule.grid == resident_capacity(h100, launcher.resources)


def test_streamk_small_grid_straddles(cuda, h100):
    workload = DecodeWorkload.build(3, 32, 8, 128, [5000, 1234, 20000], dtype="float16")
    _, err = run_checked("streamk", workload, h100, PlanConfig(grid=7), cuda, seed=2, runs=3)
    assert err <= TOLERANCE
