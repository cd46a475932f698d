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


def test_the_tile_math_caps_fa2s_cuda_kernels_only():
    """FA2's CUDA kernels fix their tile rows (kBlockM for one decode row): their costs hold the SM's
    tile math; every other family's stay at the defaults (the cap does not apply to their decode)."""
    traits = strategies.kernel_traits()
    assert {f for f, t in traits.items() if datasheet.tile_math_fields(t)} == {"torch-flash", "torch-flash-nosplit"}
    fields = datasheet.tile_math_fields(traits["torch-flash-nosplit"])
    assert fields["mma_flop_per_sm_clock"] < datasheet.MMA_SYNC_FLOP_PER_SM_CLOCK
    assert fields["softmax_clocks_per_score"] == 1 / datasheet.SFU_EXP2_PER_SM_CLOCK


def unsplit_rates(gpu: str) -> pd.DataFrame:
    """torch-flash's unsplit rows above 256 MB of KV on a swept GPU: measured and datasheet-predicted GB/s."""
    rows = load_measurements(SWEEPS[gpu])
    rows = predict_measurements(rows[(rows["strategy"] == "torch-flash") & (rows["splits"] == 1)
                                     & (rows["kv_bytes"] > 256e6)], resolve_gpu(gpu, "none"))
    return pd.DataFrame({"measured": rows["kv_bytes"] / rows["time_us"] / 1e3,
                         "predicted": rows["kv_bytes"] / rows["predicted_us"] / 1e3, "head_dim": rows["head_dim"]})


def test_fa2s_unsplit_kernel_reads_at_its_math_rate_on_both_dies():
    """The H100 and H200 (one die, 3.1 vs 4.5 TB/s of HBM) read FA2's unsplit decode at about the same
    2.2-2.5 TB/s: its tile math, per SM, is the limit. The datasheet model predicts that rate on both
    (median within 10%, not fitted to either), and d 128 faster per byte than d 64 (the softmax's share)."""
    for gpu in SWEEPS:
        rates = unsplit_rates(gpu)
        assert 0.9 <= (rates["predicted"] / rates["measured"]).median() <= 1.1, gpu
        by_d = rates.groupby("head_dim").median()
        assert by_d.loc[128, "predicted"] > by_d.loc[64, "predicted"] and by_d.loc[128, "measured"] > by_d.loc[64, "measured"]
        assert rates["predicted"].median() < 0.85 * datasheet.hbm_gbps(PRESETS[resolve_gpu(gpu, "none").name])


@pytest.mark.parametrize("gpu", list(SWEEPS))
def test_datasheet_predicts_the_committed_sweeps_within_15_percent(gpu):
    rows = predict_measurements(load_measurements(SWEEPS[gpu]), resolve_gpu(gpu, "none"))
    for strategy, m in error_metrics(rows).items():
        assert m["mape"] <= 15.0, (strategy, m["mape"])
