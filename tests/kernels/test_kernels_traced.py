"""kernels/traced.py: a launch rerouted through its kernel's traced copy computes what the shipped kernel
computes, bit for bit, and fills one trace row per planned CTA (under the interpreter the 'SM' is the
program's linear id, so the rows' order checks the CTA numbering of split grids); kernels the transform
cannot stamp safely are refused."""

from __future__ import annotations

import pytest
import torch

from attnsim.kernels import traced
from attnsim.kernels.launch import launcher_for
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import decode_inputs

CASES = [  # (spec, config): one program a CTA; a split grid (outputs, splits); a segment table's CTAs
    ("fa2", PlanConfig(kv_tile_tokens=16)),
    ("splitkv", PlanConfig(kv_tile_tokens=16, splits=3)),
    ("streamk", PlanConfig(kv_tile_tokens=16, grid=5)),
]


@pytest.mark.parametrize("spec, config", CASES, ids=[c[0] for c in CASES])
def test_a_traced_launch_is_the_kernel_and_stamps_every_cta(device, h100, spec, config):
    workload = DecodeWorkload.build(3, 4, 2, 64, [40, 90, 17])
    launcher = launcher_for(spec, workload, h100, config, device=device)
    q, k, v = decode_inputs(workload, device, seed=5)
    plain = launcher.run(q, k, v).clone()
    rows = traced.trace(launcher)
    stamped = launcher.run(q, k, v)
    assert torch.equal(stamped, plain)
    assert rows.shape == (launcher.schedule.grid, traced.TRACE_COLUMNS)
    assert (rows[:, 2] >= rows[:, 1]).all()
    if device == "cpu":  # the interpreter's stand-in SM: program p's linear id, so row p was written by p
        assert torch.equal(rows[:, 0].cpu(), torch.arange(launcher.schedule.grid))


def test_kernels_the_transform_cannot_stamp_are_refused():
    header = "@triton.jit\ndef k(\n    x, BLOCK_P: tl.constexpr,\n):\n"
    assert "def traced_k(" in traced.traced_source("", header + "    tl.store(x, 1)\n", "k")
    with pytest.raises(ValueError, match="returns early"):
        traced.traced_source("", header + "    if x:\n        return\n    tl.store(x, 1)\n", "k")
    with pytest.raises(ValueError, match="signature"):
        traced.traced_source("", "@triton.jit\ndef k(\n    x,\n):\n    pass\n", "k")
