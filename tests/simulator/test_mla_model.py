"""MLA decode in the model (simulator/mla.py, reuse.py, cost.py): the workload's edge, the bytes a
latent cache costs, the tile math that decides `bound`, the L2 reads of sibling q-blocks, the cost
families and error bands of a kernel nobody has measured yet, and which registry entries take it."""

from __future__ import annotations

import dataclasses
import math

import pytest

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.planner.choose import make_plan
from attnsim.predict import predict_records
from attnsim.profiles import resolve_gpu
from attnsim.simulator import bands, cost, hardware, provenance
from attnsim.simulator.capacity import kv_cache_bytes
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import DEFAULT_COST, PRESETS
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.profile_io import shipped_document
from attnsim.simulator.reuse import l2_reread_bytes
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.fit import MLA_TIES

H200 = resolve_gpu("h200")
# The shipped profile less its MLA families (fitted on results/h200/cal_mla.csv since 2026-12-05): what a
# profile calibrated without MLA points predicts (the families fall back to their partitioning's)
UNFITTED = dataclasses.replace(H200, cost={f: c for f, c in H200.cost.items() if f not in strategies.mla_families()})
LATENT_BYTES = (512 + 64) * 2  # one bf16 latent vector: K and V of a token in one layer


def mla(batch=4, heads=16, context=8192, **kw) -> DecodeWorkload:
    return DecodeWorkload.build(batch, heads, 1, 576, context, dtype="bfloat16", kv_lora_rank=512, **kw)


@pytest.mark.parametrize("kw, field", [
    (dict(kv_lora_rank=500), "kv_lora_rank"),
    (dict(kv_lora_rank=512, head_dim=600), "head_dim"),
    (dict(kv_lora_rank=512, kv_heads=2), "kv_heads"),
    (dict(kv_lora_rank=512, kv_dtype="fp8"), "kv_dtype"),
    (dict(kv_lora_rank=True), "kv_lora_rank"),
])
def test_the_workload_edge_names_the_field(kw, field):
    args = dict(batch=1, q_heads=16, kv_heads=1, head_dim=576, context=100, dtype="bfloat16")
    args.update(kw)
    with pytest.raises(InputError) as err:
        DecodeWorkload.build(**args)
    assert err.value.field == field


def test_a_token_costs_one_latent_vector_and_the_cache_is_replicated_under_tp():
    w = mla(batch=3, context=1000, layers=61, page_size=64, tp=8)
    assert w.kv_bytes() == 3 * 1000 * LATENT_BYTES  # not 2 x 576: V is the latent's first 512
    assert w.io_bytes() == 3 * 16 * (576 + 512) * 2  # q 576 wide, o 512 wide
    # whole 64-token pages, every one of the 61 layers; TP 1 (128 heads) holds exactly as much
    assert kv_cache_bytes(w) == 61 * 3 * 1024 * LATENT_BYTES
    assert kv_cache_bytes(mla(batch=3, heads=128, context=1000, layers=61, page_size=64)) == kv_cache_bytes(w)


@pytest.mark.parametrize("heads, rows", [(8, 16), (16, 16), (64, 64), (128, 64)])
def test_tile_math_counts_both_products_over_the_padded_rows(heads, rows):
    flops, scores, conversions = cost.tile_math(mla(heads=heads), 32, 3.0)
    assert flops == 2 * rows * (576 + 512) * 32 * 3 and scores == rows * 32 * 3 and conversions == 0.0


def test_an_sm_keeps_up_with_the_latent_stream_at_the_tile_math_peak():
    """The math cap per SM: clock x bytes / cycles at 4096 FLOP/clock. At 64 rows, long contexts
    (the latent dominates the bytes), ~67 GB/s an SM, 8.9 TB/s over 132 SMs: twice the H200's HBM,
    which two q-blocks reading the same tiles (one from L2) need, so 128 heads sit at the ridge."""
    sched = make_plan("fa2", mla(batch=2, heads=128, context=65536), UNFITTED).schedule
    launch = sched.attention
    moved = float(launch.cta_read_bytes.sum() + launch.cta_write_bytes.sum())
    rate = cost.sm_math_rate(UNFITTED.cost_for(launch.family), UNFITTED, sched.workload, 32, launch, moved)
    per_tile = H200.clock_mhz * 32 * LATENT_BYTES / (2 * 64 * 1088 * 32 / 4096)
    assert rate == pytest.approx(per_tile, rel=0.01)
    assert 1.5 < rate * H200.sm_count / (H200.hbm_read_gbps * 1e3) < 2.5


def test_bound_is_memory_at_tp8_and_compute_somewhere_at_tp1():
    for ctx in (4096, 65536):
        for name in ("fa2", "flashdecoding", "streamk"):
            p = make_plan(name, mla(batch=16, context=ctx), H200)
            assert not cost.math_bound(H200, p.schedule, p.capacity), (name, ctx)
    # a 64-row kernel whose SMs do 850 FLOP a clock (what the H200's spilled 64-row kernels stream at): its
    # 128 heads' two q-blocks read the latent once from HBM and twice through the math
    slow = dataclasses.replace(H200, cost={**H200.cost, "flashdecoding-mla64": dataclasses.replace(
        H200.cost_for("flashdecoding-mla64"), mma_flop_per_sm_clock=850.0, cta_stream_gbps_per_warp=4.0)})
    p = make_plan("flashdecoding:splits=12", mla(batch=1, heads=128, context=32768), slow)
    assert p.schedule.attention.family == "flashdecoding-mla64" and cost.math_bound(slow, p.schedule, p.capacity)


def test_sibling_q_blocks_read_their_tiles_from_l2_where_they_run_side_by_side():
    w = mla(batch=2, heads=128, context=4096)
    fa2 = make_plan("fa2", w, H200).schedule  # (seq, q-block) CTAs start together at offset 0
    latent = w.kv_bytes()  # each q-block reads all of it; the second from L2
    assert l2_reread_bytes(fa2.attention, 1, 10**9, H200.l2_bytes) == latent
    assert l2_reread_bytes(fa2.attention, 1, 1, H200.l2_bytes) == 0  # one CTA at a time: other waves
    res = simulate(fa2, H200)
    assert res.bytes_moved == pytest.approx(fa2.total_bytes() - latent)
    sixteen = make_plan("fa2", mla(batch=2, context=4096), H200).schedule  # one q-block: nothing to share
    assert l2_reread_bytes(sixteen.attention, 1, 10**9, H200.l2_bytes) == 0
    flashmla = make_plan("flashmla", w, H200).schedule  # every q-block on the same cut
    assert l2_reread_bytes(flashmla.attention, 1, 264, H200.l2_bytes) == latent


def test_mla_plans_bill_their_own_families_which_fall_back_until_fitted():
    p = make_plan("flashdecoding:splits=4", mla(), H200)
    assert [l.family for l in p.schedule.launches] == ["flashdecoding-mla", "flashdecoding-mla-combine"]
    peak = DEFAULT_COST.mma_flop_per_sm_clock  # an unfitted MLA family's tile math: the tensor peak (below)
    assert UNFITTED.cost_for("flashdecoding").wgmma_flop_scale > 1.5  # FlashDecoding's fitted 64-row scale...
    assert UNFITTED.cost_for("flashdecoding-mla") == dataclasses.replace(  # ... not carried; no per-warp limit
        UNFITTED.cost_for("flashdecoding"), mma_flop_per_sm_clock=peak, mma_flop_per_warp_clock=0.0, wgmma_flop_scale=1.0)
    assert UNFITTED.cost_for("flashdecoding-mla-combine") == UNFITTED.cost_for("flashdecoding-combine")
    # 128 heads: 64-row q-blocks, another compiled kernel (mla.WIDE_FAMILY_SUFFIX), standing in with the 16-row one's
    wide = make_plan("flashdecoding:splits=4", mla(heads=128), H200)
    assert [l.family for l in wide.schedule.launches] == ["flashdecoding-mla64", "flashdecoding-mla64-combine"]
    narrow_only = dataclasses.replace(H200, cost={f: c for f, c in H200.cost.items() if not f.endswith(("64", "64-combine"))})
    assert narrow_only.cost_for("streamk-mla64") == H200.cost["streamk-mla"] != H200.cost["streamk-mla64"]
    # ... but their tile math stays at the tensor peak: stream-K's fitted rate absorbed its GQA verify
    # blocks' re-read q-blocks, nothing an MLA kernel does
    assert UNFITTED.cost_for("streamk").mma_flop_per_sm_clock < 4096 == UNFITTED.cost_for("streamk-mla").mma_flop_per_sm_clock
    # measured residuals are the GQA kernels': an MLA prediction's band is as wide as a datasheet's
    assert bands.band(H200.error_bands, "streamk-mla", 1e8, "calibrated") == bands.DATASHEET_BAND_PCT
    assert bands.band(H200.error_bands, "streamk", 1e8, "calibrated") != bands.DATASHEET_BAND_PCT


def test_the_shipped_h200_fits_its_mla_families_on_measured_mla_rows():
    """Fitted on cal_mla.csv (scripts/mla_fit.py): the tensor-core rate where the 64-row kernels measured it,
    far under the peak (they spill), and each owner's fit report beside its K/V-head one."""
    fits = shipped_document(H200.name)["fit"]
    assert set(strategies.mla_families()) <= set(H200.cost)  # 16/32-row and 64-row kernels alike
    assert H200.cost["streamk-mla64"].mma_flop_per_sm_clock < DEFAULT_COST.mma_flop_per_sm_clock / 2
    for family in ("fa2-mla", "flashdecoding-mla", "streamk-mla"):
        assert fits[family]["points"] >= 56 and fits[family]["data"].endswith("cal_mla.csv")
        assert fits[family]["mape_pct"] < (5.0 if family == "streamk-mla" else 3.0)  # in-sample; held out: docs/mla.md
    source, tied = MLA_TIES["streamk-mla"]  # stream-K's 16-row kernel runs fa2's tile loop
    assert all(getattr(H200.cost["streamk-mla"], f) == getattr(H200.cost[source], f) for f in tied)


def test_which_entries_take_an_mla_layer():
    w, gqa = mla(), DecodeWorkload.build(2, 32, 8, 128, 4096)
    assert set(strategies.candidates(w)) == {"fa2", "flashdecoding", "streamk", "hybrid", "balanced", "flashmla"}
    assert "flashmla" not in strategies.candidates(gqa) and "splitkv" in strategies.candidates(gqa)
    for name in ("splitkv", "torch-flash", "torch-cudnn"):
        assert strategies.get(name).unsupported(w)
    assert "MLA workloads only" in strategies.get("flashmla").unsupported(gqa)
    mla_rules = {h.name for h in strategies.heuristics_for(w)} - {h.name for h in strategies.heuristics_for(gqa)}
    assert mla_rules == {"flashmla-rule", "vllm-mla-rule"}
    with pytest.raises(InputError) as err:
        make_plan("splitkv", w, H200)
    assert err.value.field == "strategy"


def test_records_of_a_model_step_count_every_mla_layer():
    w = mla(batch=16, context=32768, layers=61, page_size=64, tp=8)
    records = {r["strategy"]: r for r in predict_records(w, H200)}
    assert set(records) == set(strategies.default_names())
    for r in records.values():
        assert (r["kv_lora_rank"], r["head_dim"], r["kv_heads"], r["layers"]) == (512, 576, 1, 61)
        assert r["token_attention_us"] == pytest.approx(61 * r["time_us"], abs=0.1)
        assert 0 < r["bw_fraction"] <= 1 and r["bound"] == "memory"
        assert r["kv_cache_gib"] == pytest.approx(61 * 16 * 32768 * LATENT_BYTES / 2**30, abs=1e-3)


@pytest.mark.parametrize("gpu", ["h100-sxm", "a100-80gb", "l40s"])
def test_every_mla_plan_launches_where_its_cta_fits(gpu):
    """16 heads everywhere; 64-row tiles (128 heads) keep ~110 KB of shared memory besides the K/V
    buffers (sm_90's compiled kernel: the 64 x 576 query tile and the epilogue), which the L40S's
    99 KB per block cannot hold: refused by name, never modelled as if it ran."""
    spec = PRESETS[gpu]
    for heads in (16, 128):
        w = mla(batch=2, heads=heads, context=3000, page_size=64)
        for name in strategies.candidates(w):
            if gpu == "l40s" and heads == 128:
                with pytest.raises(InputError) as err:
                    simulate(make_plan(name, w, spec, PlanConfig()).schedule, spec)
                assert err.value.field in ("resources", "grid")  # stream-K: its co-resident grid of 0
                continue
            res = simulate(make_plan(name, w, spec, PlanConfig()).schedule, spec)
            assert math.isfinite(res.total_us) and res.bw_fraction <= 1 + 1e-9


def test_a_stream_k_host_reads_its_merge_trees_chain_not_every_partial():
    """128 heads, batch 1, 2k tokens on 132 CTAs: each of the two outputs straddles ~64 CTAs; its
    host reads 4 partials a level of the 5-ary tree (3 levels: 12 x 64 x 513 x 4 bytes), as the
    kernel's merge tree has it, not all ~63."""
    sched = make_plan("streamk", mla(batch=1, heads=128, context=2048), H200).schedule
    red, launch = sched.reductions, sched.attention
    partial = 64 * 513 * 4
    for r in range(len(red)):
        peers = len(red.peers_of(r))
        host = int(red.host_cta[r])
        streamed = float(launch.segments.kv_bytes[launch.segments.cta == host].sum())
        assert peers > 50 and launch.cta_read_bytes[host] - streamed <= 12 * partial + 2 * 64 * 576 * 2


def test_an_mla_rows_band_is_the_mla_sweeps_held_out_residuals_where_measured():
    """scripts/mla_fit.py --held-out stores the mla regime's bands from results/h200/bench_mla.csv: an MLA row
    takes its family's, no longer the datasheet's; a profile without them (UNFITTED's bands stripped) does."""
    w = mla(batch=16, context=32768, page_size=64)
    family = make_plan("flashdecoding", w, H200).schedule.attention.family
    measured = provenance.row_provenance(H200, family, w, w.kv_bytes())
    table = H200.serving_terms["bands"]["regimes"]["mla"][family]
    assert measured.band_regime == "mla" and list(measured.band_pct) == table[bands.kv_bin(w.kv_bytes())]
    assert measured.band_pct[1] - measured.band_pct[0] < bands.DATASHEET_BAND_PCT[1] - bands.DATASHEET_BAND_PCT[0]
    regimes = {r: v for r, v in H200.serving_terms["bands"]["regimes"].items() if r != "mla"}
    bare = dataclasses.replace(H200, serving_terms={**H200.serving_terms, "bands": {"regimes": regimes}})
    assert provenance.row_provenance(bare, family, w, w.kv_bytes()).band_pct == bands.DATASHEET_BAND_PCT


def test_the_h100_takes_the_h200s_mla_families_transferred_and_says_so():
    """No MLA point ran on the H100 for a fit: its profile takes the H200's MLA families through the transfer
    (profiles.complete_families); a row says they were transferred, and its band is the H100's own mla sweep's
    residuals with them (scripts/mla_fit.py h100 --held-out), not the datasheet's."""
    h100 = resolve_gpu("h100")
    assert set(strategies.mla_families()) <= set(h100.cost)
    assert provenance.transferred_from(h100, "streamk-mla64") == "h200"
    assert provenance.transferred_from(h100, "streamk") is None and provenance.transferred_from(H200, "fa2-mla") is None
    w = mla(batch=16, context=32768, page_size=64)
    record = next(r for r in predict_records(w, h100) if r["strategy"] == "streamk")
    assert "MLA kernel costs transferred from h200" in record["profile_source"]
    assert record["band_regime"] == "mla"  # measured on the H100's mla sweep (the datasheet band is -40% .. +60%)
    assert -15 < record["err_lo_pct"] < record["err_hi_pct"] < 15


def test_a_profile_records_the_families_it_borrowed_as_data_not_text():
    """GpuSpec.transferred (family -> donor) is what provenance reads; it round-trips through a profile
    file and refuses anything but names."""
    h100 = resolve_gpu("h100")
    assert h100.transferred["streamk-mla64"] == "h200" and "streamk" not in h100.transferred
    again = hardware.spec_from_dict(hardware.spec_to_dict(h100), "test")
    assert again.transferred == h100.transferred
    with pytest.raises(InputError, match="gpu.transferred"):
        hardware.spec_from_dict({**hardware.spec_to_dict(h100), "transferred": {"fa2": 1}}, "test")
