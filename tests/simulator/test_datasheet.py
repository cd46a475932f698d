"""The datasheet model (simulator/datasheet.py): first-principles costs that obey the physics, agree
with the measured H100 facts they were not fitted to, and predict the committed sweeps within 15%."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attnsim import strategies
from attnsim.plans.resources import COMBINE_WARPS, K_TILE_BYTES
from attnsim.predict import predict_one
from attnsim.profiles import resolve_gpu
from attnsim.profiles.datasheet import datasheet_spec
from attnsim.simulator import datasheet
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.compare import error_metrics, predict_measurements
from attnsim.validation.measurements import load_measurements

ROOT = Path(__file__).resolve().parents[2]
ANCHORS = Path("/work/shared/anchors/h100_read_bandwidth.csv")
SWEEPS = {"h100": ROOT / "results/h100/bench.csv", "h200": ROOT / "results/h200/bench.csv"}


def test_every_cost_family_has_kernel_traits():
    assert set(strategies.kernel_traits()) == set(strategies.all_families())
    assert set(resolve_gpu("h200", "none").cost) == set(strategies.all_families())


def test_our_traits_follow_the_kernels_tiles():
    assert strategies.OUR_TILE_PAIR_BYTES == 2 * K_TILE_BYTES  # one K and one V tile in flight
    assert strategies.COMBINE_TRAITS.warps == COMBINE_WARPS


@pytest.mark.parametrize("strategy", ["fa2", "flashdecoding", "streamk", "torch-flash", "torch-cudnn"])
@pytest.mark.parametrize("gpu", ["h100", "h200", "a100"])
def test_time_is_monotone_in_kv_bytes(strategy, gpu):
    spec = resolve_gpu(gpu, "none")
    times = [predict_one(strategy, DecodeWorkload(batch=4, q_heads=32, kv_heads=8, head_dim=128, contexts=(c,) * 4),
                         spec).total_us for c in (512, 2048, 8192, 32768, 131072)]
    assert np.all(np.diff(times) > 0), times


@pytest.mark.parametrize("strategy", ["fa2", "flashdecoding", "streamk", "torch-flash", "torch-cudnn"])
@pytest.mark.parametrize("context", [1024, 65536])
def test_more_bandwidth_is_never_slower(strategy, context):
    workload = DecodeWorkload(batch=8, q_heads=32, kv_heads=8, head_dim=128, contexts=(context,) * 8)
    base = PRESETS["h100-sxm"]
    slow, fast = (resolve_gpu("h100", "none"), datasheet_spec(dataclasses.replace(base, hbm_read_gbps=base.hbm_read_gbps * 1.5)))
    assert predict_one(strategy, workload, fast).total_us <= predict_one(strategy, workload, slow).total_us


def test_per_cta_rate_is_within_the_measured_h100_range():
    """One of our 4-warp CTAs alone: the FA2 rows of the H100 sweep with at most 64 CTAs and > 150 µs
    stream 34-37 GB/s per CTA; the datasheet's Little's law (32 KB / 0.9 µs) must land in that range
    (+-10%), and a membw CTA keeping one 16 KB step in flight in the anchors' 13-17 GB/s (+-15%)."""
    rows = pd.read_csv(SWEEPS["h100"])
    fa2 = rows[(rows["strategy"] == "fa2") & (rows["grid"] <= 64) & (rows["time_us"] > 150)]
    per_cta = fa2["kv_bytes"] / fa2["grid"] / (fa2["time_us"] * 1e3)
    ours = datasheet.cta_rate_gbps(PRESETS["h100-sxm"], strategies.OUR_TRAITS)
    assert per_cta.min() * 0.9 <= ours <= per_cta.max() * 1.1
    membw = datasheet.cta_rate_gbps(PRESETS["h100-sxm"], datasheet.KernelTraits(warps=4, bytes_in_flight=16384))
    if ANCHORS.exists():
        anchors = pd.read_csv(ANCHORS)
        one = anchors[(anchors["num_ctas"] <= 2) & (anchors["num_warps"] == 4)]
        one_rate = one["read_gbps"] / one["num_ctas"]
        assert one_rate.min() * 0.85 <= membw <= one_rate.max() * 1.15


def test_launch_and_bandwidth_agree_with_the_measured_h100_facts():
    h100 = PRESETS["h100-sxm"]
    assert 4.3 <= datasheet.launch_us(h100) <= 5.0  # an empty kernel: 4.8 µs calibrated, ~5 µs in DOMAIN.md
    assert datasheet.hbm_gbps(h100) == pytest.approx(3091, rel=0.02)  # measured saturated read


def test_the_math_bound_caps_fa2s_cuda_kernels_only():
    traits = strategies.kernel_traits()
    h100 = PRESETS["h100-sxm"]
    little = {f: t.bytes_in_flight / datasheet.HBM_LATENCY_US / 1e3 for f, t in traits.items() if not t.combine}
    capped = {f for f in little if datasheet.cta_rate_gbps(h100, traits[f]) < little[f] * 0.999}
    assert {"torch-flash", "torch-flash-nosplit"} <= capped and "fa2" not in capped


@pytest.mark.parametrize("gpu", list(SWEEPS))
def test_datasheet_predicts_the_committed_sweeps_within_15_percent(gpu):
    rows = predict_measurements(load_measurements(SWEEPS[gpu]), resolve_gpu(gpu, "none"))
    for strategy, m in error_metrics(rows).items():
        assert m["mape"] <= 15.0, (strategy, m["mape"])
