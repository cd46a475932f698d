"""The device A/B variants of the split-KV kernel (scripts/splitkv_variants.py) stay buildable from the
current source: each applies to kernels/split_kv.py as it is, and `v2merge` (the previous merge, the
A side of the merge-schedule A/B) still computes the reference output, so a device run compares two
correct merges rather than a broken one."""

import pytest
import torch

from attnsim.kernels.fastlaunch import CachedLaunch
from attnsim.kernels.launch import launcher_for
from attnsim.kernels.reference import attention_reference, max_relative_error
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from kernel_helpers import TOLERANCE, decode_inputs

from script_helpers import load_script

splitkv_variants = load_script("splitkv_variants")
SOURCE = splitkv_variants.kernel_source()


@pytest.mark.parametrize("name", sorted(splitkv_variants.VARIANTS))
def test_every_variant_applies_to_the_current_kernel(name):
    changed = splitkv_variants.apply(name, SOURCE)
    assert changed != SOURCE
    compile(changed, name, "exec")


def test_the_previous_merge_still_computes_the_reference(device, h100):
    # 3 merge steps of 8 splits (d 128), 8 rows per kv-head: every path of both merges
    workload = DecodeWorkload.build(2, 16, 2, 128, [1000, 130], dtype="float16")
    q, k, v = decode_inputs(workload, device, seed=7)
    ref = attention_reference(q, k, v, workload.contexts)
    outs = {}
    for name in ("current", "v2merge"):
        launcher = launcher_for("splitkv", workload, h100, PlanConfig(kv_tile_tokens=16, splits=24), device=device)
        if name != "current":
            launcher.launch_attention = CachedLaunch(splitkv_variants.load(name).split_kv_kernel)
        outs[name] = launcher.run(q, k, v, torch.full_like(q, float("nan"))).clone()
        assert max_relative_error(outs[name], ref) <= TOLERANCE
        assert int(launcher.tables.flags.abs().sum()) == 0
    # the same partials merged in the same order, padding weighing exactly 0: the same bits in the
    # interpreter (compiled, the reductions' instruction order may differ: fp32 rounding)
    if device == "cpu":
        assert torch.equal(outs["current"], outs["v2merge"])
    assert torch.allclose(outs["current"].float(), outs["v2merge"].float(), rtol=1e-3, atol=1e-4)
