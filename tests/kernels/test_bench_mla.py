"""`attnsim bench` on MLA points (issue 23): the device sweep and its calibration points, latent
caches built from the sweep's pool and checked against the float64 reference, rows that carry the
latent rank and TFLOP/s, and rows read back into MLA workloads by validate."""

from __future__ import annotations

import pandas as pd
import pytest

from attnsim.bench import harness as bench, inputs as bench_inputs, results as bench_results, sweep
from attnsim.kernels.launch import interpreting
from attnsim.kernels.reference import attention_reference
from attnsim.simulator.hardware import from_name
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.measurements import row_workload
from test_bench_serving import fake_timer  # noqa: F401  (a fixture: time_us of every call 0.5 µs, no GPU)

H100 = from_name("h100")
MLA_POINTS = [  # reduced latent widths: the interpreter runs them in seconds
    DecodeWorkload.build(2, 16, 1, 48, [70, 33], dtype="bfloat16", page_size=16, kv_lora_rank=32),
    DecodeWorkload.build(1, 128, 1, 80, 90, dtype="bfloat16", kv_lora_rank=64),
]


def test_the_mla_sweep_spans_the_issues_ranges():
    points = sweep.sweep("mla", "bfloat16", sweep.MLA_MAX_KV_GB)
    assert len(points) >= 40 and all(w.is_mla and (w.kv_lora_rank, w.head_dim) == (512, 576) for w in points)
    assert {w.q_heads for w in points} == {16, 128} and {w.page_size for w in points} == {64}
    uniform = [w for w in points if not w.is_ragged]
    assert {w.batch for w in uniform} == {1, 4, 16, 64, 128}
    assert {w.contexts[0] for w in uniform} == {1024, 4096, 16384, 65536, 131072}
    assert any(w.is_ragged for w in points)
    assert all(sweep.padded_kv_bytes(w) <= sweep.MLA_MAX_KV_GB * 1e9 for w in points)
    assert sweep.padded_kv_bytes(points[0]) == points[0].batch * points[0].max_context * 1152  # one latent buffer


def test_calibration_points_are_not_validation_points():
    validation = set(sweep.sweep("mla", "bfloat16", sweep.MLA_MAX_KV_GB))
    calibration = sweep.sweep("cal-mla", "bfloat16", sweep.MLA_MAX_KV_GB)
    assert len(calibration) >= 40 and not validation & set(calibration)
    assert {w.q_heads for w in calibration} == {8, 16, 64, 128}


def test_the_latent_point_cache_is_what_the_reference_reads():
    w = MLA_POINTS[0]
    pool = bench_inputs.KvPool([w], "bfloat16", "cpu")
    with pool.poisoned_padding(w) as (k, v):
        cache = bench_inputs.point_cache(w, k, v, seed=1)
        assert cache.k is cache.v and cache.k.shape[1:] == (16, 1, 48)  # one paged latent pool
        assert cache.ref_k is k and cache.ref_v.shape[-1] == 32  # V: the latent's first kv_lora_rank elements
        q = bench_inputs.make_query(w, 0, "cpu")
        ref = bench_inputs.reference_output(attention_reference, q, cache.ref_k, cache.ref_v, w.contexts)
        assert ref.shape == (2, 16, 32)


@pytest.mark.skipif(not interpreting(), reason="runs our kernels in the CPU interpreter")
def test_sweep_rows_of_mla_points(fake_timer):
    config = bench.BenchConfig(("fa2", "flashdecoding", "streamk", "flashmla", "splitkv", "torch-flash"), H100,
                               "cpu", 3000.0, device="cpu")
    df = bench.run_sweep(MLA_POINTS, config)
    assert list(df.columns) == bench_results.COLUMNS
    assert set(df["strategy"]) == {"fa2", "flashdecoding", "streamk", "flashmla"}  # no MLA kernel: no row
    assert (df["status"] == "ok").all() and (df["max_rel_err"] <= bench.REL_TOL).all(), df[["status", "max_rel_err"]]
    assert set(df["kv_lora_rank"]) == {32, 64}
    first = df.iloc[0]
    flops = 2 * 16 * (48 + 32) * (70 + 33)  # q·Kᵀ over 48 + P·V over 32, every head and token
    assert first["achieved_tflops"] == pytest.approx(flops / (first["time_us"] * 1e6), abs=0.01)
    assert first["kv_bytes"] == (70 + 33) * 48 * 2


def test_mla_rows_read_back_as_mla_workloads_and_old_csvs_still_resume(tmp_path):
    row = {c: None for c in bench_results.COLUMNS}
    row.update(strategy="fa2", options="", batch=2, q_heads=16, kv_heads=1, head_dim=48, context=70, contexts="70;33",
               dtype="bfloat16", kv_dtype="bfloat16", page_size=16, q_len=1, kv_lora_rank=32, status="ok", time_us=5.0)
    assert row_workload(row) == MLA_POINTS[0]
    old = pd.DataFrame([{k: v for k, v in row.items() if k not in ("kv_lora_rank", "achieved_tflops")}])
    old = old.assign(head_dim=64, kv_heads=2, contexts="48", context=48)
    old.to_csv(tmp_path / "old.csv", index=False)
    assert len(bench_results.load_previous(tmp_path / "old.csv")) == 1
    assert not row_workload(old.iloc[0].to_dict()).is_mla
