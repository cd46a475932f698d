"""`attnsim bench` on serving points: the named sweeps, page pools and fp8 caches built from the
sweep's own random data and checked against the float64 reference, the new CSV columns, and
CSVs written before them."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from attnsim.bench import harness as bench, measure, inputs as bench_inputs, results as bench_results, sweep
from attnsim.kernels.launch import interpreting
from attnsim.kernels.reference import attention_reference
from attnsim.simulator.hardware import from_name
from attnsim.simulator.workload import DecodeWorkload

H100 = from_name("h100")
SERVING_POINTS = [
    DecodeWorkload.build(2, 8, 1, 64, 70, page_size=16),
    DecodeWorkload.build(3, 4, 2, 64, [20, 70, 33], page_size=32, kv_dtype="fp8"),
    DecodeWorkload.build(2, 8, 2, 64, [40, 17], q_len=4),
    DecodeWorkload.build(2, 4, 1, 64, 50, dtype="float16", q_len=3, page_size=16, kv_dtype="fp8"),
]


@pytest.mark.parametrize("name", ["paged", "fp8", "qlen"])
def test_serving_sweeps_have_40_feature_points_each_next_to_its_twin(name):
    points = sweep.sweep(name, "bfloat16", sweep.SERVING_MAX_KV_GB)
    has = {"paged": lambda w: w.paged, "fp8": lambda w: w.kv_fp8, "qlen": lambda w: w.q_len > 1}[name]
    featured = [w for w in points if has(w)]
    assert len(featured) >= 40 and len(points) == 2 * len(featured)
    for feature, twin in zip(points[::2], points[1::2]):
        assert has(feature) and not has(twin)
        assert dataclasses.replace(feature, page_size=twin.page_size, kv_dtype="", q_len=1) == twin
    assert all(sweep.padded_kv_bytes(w) <= sweep.SERVING_MAX_KV_GB * 1e9 for w in points)
    assert len({bench_results.point_key("x", w) for w in points}) == len(points)
    values = {"paged": {w.page_size for w in featured}, "qlen": {w.q_len for w in featured},
              "fp8": {w.page_size for w in featured}}[name]
    assert values == {"paged": set(sweep.SERVING_PAGES), "qlen": set(sweep.SERVING_Q_LENS), "fp8": {0, 16}}[name]


def test_point_cache_is_what_the_reference_reads():
    w = SERVING_POINTS[1]
    pool = bench_inputs.KvPool([w], "float16", "cpu")
    with pool.poisoned_padding(w) as (k, v):
        cache = bench_inputs.point_cache(w, k, v, seed=1)
        assert cache.k.dtype == torch.float8_e4m3fn and cache.k.shape[1:] == (32, 2, 64)
        assert cache.run_kwargs["block_table"].shape == (3, 16) and set(cache.scales) == {"k_scale", "v_scale"}
        dequantised = cache.ref_k.float() * cache.scales["k_scale"][None, :, None, None]
        assert (dequantised[0, :, :20] - k[0, :, :20].float()).abs().max() <= 0.07 * k[0].float().nan_to_num().abs().max()


def test_chunked_reference_of_a_verify_block_with_scales_equals_whole():
    w = SERVING_POINTS[3]
    q = torch.randn(2, 4, 3, 64, dtype=torch.float16)
    k, v = (torch.randn(2, 1, 50, 64) for _ in range(2))
    scales = dict(k_scale=torch.tensor([0.5]), v_scale=torch.tensor([2.0]))
    whole = attention_reference(q, k, v, w.contexts, **scales)
    chunked = bench_inputs.reference_output(attention_reference, q, k, v, w.contexts, budget_bytes=2 * 64 * 8 * 50,
                                            **scales)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)


@pytest.fixture
def fake_timer(monkeypatch):
    monkeypatch.setattr(measure, "time_us", lambda fn, config: (fn(), 0.5)[1])
    monkeypatch.setattr(measure, "replayable", lambda fn: fn)


@pytest.mark.skipif(not interpreting(), reason="runs our kernels in the CPU interpreter")
def test_sweep_rows_of_serving_points_with_our_kernels(fake_timer):
    config = bench.BenchConfig(("fa2", "streamk", "torch-flash"), H100, "cpu", 3000.0, device="cpu")
    df = bench.run_sweep(SERVING_POINTS, config)
    assert list(df.columns) == bench_results.COLUMNS
    assert len(df) == 2 * len(SERVING_POINTS)  # SDPA takes no paged, fp8 or verify point
    assert (df["status"] == "ok").all() and (df["max_rel_err"] <= bench.REL_TOL).all(), df[["status", "max_rel_err"]]
    assert list(df["page_size"][::2]) == [16, 32, 0, 16] and list(df["q_len"][::2]) == [1, 1, 4, 3]
    assert list(df["kv_dtype"][::2]) == ["float16", "float8_e4m3fn", "float16", "float8_e4m3fn"]
    fp8 = df.iloc[2]
    assert fp8["kv_bytes"] == SERVING_POINTS[1].kv_bytes() == 2 * (20 + 70 + 33) * 2 * 64


def test_csvs_from_before_the_serving_columns_still_resume_and_validate(tmp_path):
    from attnsim.validation.measurements import row_workload

    old = pd.DataFrame([{c: None for c in bench_results.COLUMNS if c not in ("kv_dtype", "page_size", "q_len")}])
    old = old.assign(strategy="fa2", options="", batch=2, q_heads=8, kv_heads=2, head_dim=64, context=48,
                     contexts="48", dtype="float16", status="ok", time_us=5.0)
    path = tmp_path / "old.csv"
    old.to_csv(path, index=False)
    kept = bench_results.load_previous(path)
    assert (kept["kv_dtype"] == "float16").all() and (kept["page_size"] == 0).all() and (kept["q_len"] == 1).all()
    assert bench_results.done_keys(kept) == {bench_results.point_key("fa2", DecodeWorkload.build(2, 8, 2, 64, 48))}
    w = row_workload({**old.iloc[0].to_dict(), "q_len": 4, "page_size": 16, "kv_dtype": "float8_e4m3fn"})
    assert (w.q_len, w.page_size, w.kv_fp8) == (4, 16, True)
