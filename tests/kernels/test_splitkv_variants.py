"""The device A/B variants of the split-KV kernel (scripts/splitkv_variants.py) stay buildable from the
current source: each applies to kernels/split_kv.py as it is."""

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
