"""`attnsim bench` harness: sweeps, inputs and the check, CSV schema, error paths (CPU, fake
launchers); the GPU parts (membw, SDPA baselines, a real mini-sweep) are marked gpu and skipped here."""

from __future__ import annotations

import math
import os

import pandas as pd
import pytest
import torch

from attnsim.cli import main
from attnsim.errors import InputError
from attnsim.bench import harness as bench, measure, inputs as bench_inputs, results as bench_results, sweep
from attnsim.kernels import timing
from attnsim.kernels.reference import attention_reference
from attnsim.kernels.torch_baselines import prepare_baseline, unsupported_reason
from attnsim.simulator.hardware import from_name
from attnsim.simulator.partition.flashdecoding import heuristic_splits
from attnsim.simulator.workload import DecodeWorkload

H100 = from_name("h100")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# --- sweeps ------------------------------------------------------------------------------------

def test_standard_sweep_respects_cap_and_covers_axes():
    points = sweep.standard_sweep()
    assert all(sweep.padded_kv_bytes(w) <= 16e9 for w in points)
    uniform = [w for w in points if not w.is_ragged]
    assert {w.max_context for w in uniform} == set(sweep.STANDARD_CONTEXTS)
    assert {w.batch for w in uniform} == set(sweep.STANDARD_BATCHES)
    assert {(w.q_heads, w.kv_heads) for w in uniform} == set(sweep.STANDARD_HEADS)
    assert {w.head_dim for w in uniform} == set(sweep.STANDARD_HEAD_DIMS)
    assert len({bench_results.point_key("x", w) for w in points}) == len(points)
    big = DecodeWorkload.build(32, 32, 32, 128, 512 * 1024)
    assert big not in points and sweep.padded_kv_bytes(big) > 16e9


def test_quick_sweep_is_small_and_has_a_ragged_batch():
    points = sweep.quick_sweep()
    assert 4 <= len(points) <= 16
    assert any(w.is_ragged for w in points)


def test_cap_counts_padding_of_ragged_batches():
    w = DecodeWorkload.build(2, 8, 8, 64, [1000, 3000])
    assert sweep.padded_kv_bytes(w) == 2 * 2 * 8 * 3000 * 64 * 2 > w.kv_bytes()
    assert sweep.under_cap([w], sweep.padded_kv_bytes(w) / 1e9) == [w]
    assert sweep.under_cap([w], w.kv_bytes() / 1e9) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ragged_contexts_are_reproducible_and_in_range(seed):
    lengths = sweep.ragged_contexts(8, seed)
    assert lengths == sweep.ragged_contexts(8, seed)
    assert len(lengths) == 8 and all(1024 <= c <= 256 * 1024 for c in lengths)
    assert len(set(lengths)) > 1 and lengths != sweep.ragged_contexts(8, seed + 10)


# --- inputs, reference chunks, error -------------------------------------------------------------

@pytest.mark.parametrize("contexts,kv_heads,budget", [
    ((100, 50, 300, 7), 4, 10**9), ((100, 50, 300, 7), 4, 100 * 2 * 16 * 8 * 3), ((5000,), 8, 2 * 16 * 8 * 1000)])
def test_reference_chunks_cover_every_sequence_and_head_once(contexts, kv_heads, budget):
    seen = [(b, h) for b0, b1, h0, h1 in bench_inputs.reference_chunks(contexts, kv_heads, 16, budget)
            for b in range(b0, b1) for h in range(h0, h1)]
    assert sorted(seen) == [(b, h) for b in range(len(contexts)) for h in range(kv_heads)]


def test_chunked_reference_equals_whole():
    w = DecodeWorkload.build(3, 8, 2, 32, [40, 17, 64])
    q, k, v = (torch.randn(s, dtype=torch.float16) for s in ((3, 8, 32), (3, 2, 64, 32), (3, 2, 64, 32)))
    whole = attention_reference(q, k, v, w.contexts)
    chunked = bench_inputs.reference_output(attention_reference, q, k, v, w.contexts, budget_bytes=2 * 32 * 8 * 40)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)


def test_pool_views_are_contiguous_and_padding_poison_is_undone():
    w = DecodeWorkload.build(2, 4, 2, 32, [10, 30])
    pool = bench_inputs.KvPool([w, DecodeWorkload.build(1, 4, 4, 32, 64)], "float16", "cpu")
    k, v = pool.views(w)
    assert k.shape == (2, 2, 30, 32) and k.is_contiguous() and v.is_contiguous()
    with pool.poisoned_padding(w) as (pk, pv):
        assert pk[0, :, 10:].isnan().all() and pv[0, :, 10:].isnan().all()
        assert not pk[0, :, :10].isnan().any() and not pk[1].isnan().any()
    assert torch.isfinite(pool.k).all() and torch.isfinite(pool.v).all()


def test_max_rel_err_flags_nan_and_shape():
    ref = torch.randn(2, 4, 8, dtype=torch.float64)
    assert bench_inputs.max_rel_err(ref.half(), ref) < 1e-3
    bad = ref.half().clone()
    bad[1, 2, 3] = float("nan")
    assert math.isinf(bench_inputs.max_rel_err(bad, ref))
    assert math.isinf(bench_inputs.max_rel_err(ref[:1].half(), ref))


# --- the sweep loop with fake launchers ---------------------------------------------------------

class FakeLauncher:
    """Computes the reference in fp16, then misbehaves as `mode` says."""

    meta = {"num_warps": 4, "num_stages": 2, "n_regs": 96, "n_spills": 0, "smem_bytes": 32768, "grid": 264,
            "splits": 3, "kv_tile": 128, "launches": 2}

    def __init__(self, workload, mode="ok"):
        self.workload, self.mode = workload, mode

    def run(self, q, k, v, out=None):
        if self.mode == "raise":
            raise RuntimeError("illegal memory access\nmore")
        lengths = [k.shape[2]] * q.shape[0] if self.mode == "ignore_lengths" else self.workload.contexts
        o = attention_reference(q, k, v, lengths).to(q.dtype)
        if self.mode == "wrong":
            o = o * 1.5
        out = torch.empty_like(q) if out is None else out
        rows = q.shape[1] // 2 if self.mode == "partial" else q.shape[1]
        out[:, :rows] = o[:, :rows]
        return out


def fake_prepare(modes=None):
    return lambda strategy, w, config: FakeLauncher(w, (modes or {}).get(strategy, "ok"))


@pytest.fixture
def fake_timer(monkeypatch):
    def time_us(fn, config):
        fn()
        return 0.5
    monkeypatch.setattr(measure, "time_us", time_us)
    monkeypatch.setattr(measure, "replayable", lambda fn: fn)  # no CUDA graphs on a CPU host


def cpu_config(strategies=("fa2", "streamk", "torch-flash")):
    return bench.BenchConfig(tuple(strategies), H100, "fake-gpu", 3000.0, device="cpu")


POINTS = [DecodeWorkload.build(2, 8, 2, 32, 48), DecodeWorkload.build(3, 4, 4, 64, [20, 70, 33])]


def test_rows_have_the_csv_schema_and_bandwidth(fake_timer):
    df = bench.run_sweep(POINTS, cpu_config(), prepare=fake_prepare(), reference=attention_reference)
    assert list(df.columns) == bench_results.COLUMNS
    assert len(df) == 3 + 2  # SDPA gets no row for the ragged batch
    assert (df["status"] == "ok").all() and (df["max_rel_err"] <= bench.REL_TOL).all()
    row = df.iloc[0]
    w = POINTS[0]
    assert row["achieved_gbps"] == pytest.approx((w.kv_bytes() + w.io_bytes()) / 0.5e3, rel=1e-3)
    assert row["bw_fraction"] == pytest.approx(row["achieved_gbps"] / 3000.0, abs=1e-4)
    assert row["registers"] == 96 and row["grid"] == 264 and row["timer"] == timing.TimerConfig().name
    ragged = df[df["ragged"]]
    assert set(ragged["strategy"]) == {"fa2", "streamk"}
    assert (ragged["contexts"] == "20;70;33").all() and (ragged["context"] == 70).all()


def test_each_row_can_take_its_own_timer(monkeypatch):
    # calibration times each point with what its residual needs (validation/point_cost.point_timer)
    used = []
    monkeypatch.setattr(measure, "time_us", lambda fn, config: used.append(config.rep_ms) or 0.5)
    monkeypatch.setattr(measure, "replayable", lambda fn: fn)
    own = {"fa2": timing.TimerConfig(warmup_ms=5.0, rep_ms=3.0), "streamk": timing.TimerConfig(rep_ms=7.0)}
    df = bench.run_sweep(POINTS[:1], cpu_config(("fa2", "streamk")), prepare=fake_prepare(),
                         reference=attention_reference, timer_for=lambda spec, w: own[spec])
    assert used == [3.0, 7.0]
    assert df.set_index("strategy")[["warmup_ms", "rep_ms"]].to_dict("index") == {
        "fa2": {"warmup_ms": 5.0, "rep_ms": 3.0}, "streamk": {"warmup_ms": 25.0, "rep_ms": 7.0}}


@pytest.mark.parametrize("mode,status", [("wrong", "fail: max_rel_err"), ("partial", "fail: NaN"),
                                         ("ignore_lengths", "fail: NaN"), ("raise", "error: RuntimeError")])
def test_bad_launchers_are_marked_and_not_timed(fake_timer, mode, status):
    df = bench.run_sweep(POINTS[1:], cpu_config(("fa2", "streamk")), prepare=fake_prepare({"streamk": mode}),
                         reference=attention_reference)
    bad = df[df["strategy"] == "streamk"].iloc[0]
    assert bad["status"].startswith(status) and pd.isna(bad["time_us"])
    assert df[df["strategy"] == "fa2"].iloc[0]["status"] == "ok"
    assert list(bench_results.failures(df)["strategy"]) == ["streamk"]


def test_a_refusing_baseline_is_unavailable_not_failed(fake_timer):
    df = bench.run_sweep(POINTS[:1], cpu_config(("fa2", "torch-flash")), prepare=fake_prepare({"torch-flash": "raise"}),
                         reference=attention_reference)
    assert df[df["strategy"] == "torch-flash"].iloc[0]["status"].startswith("unavailable")
    assert bench_results.failures(df).empty


def test_csv_round_trip_and_resume_skip_done_rows(fake_timer, tmp_path):
    df = bench.run_sweep(POINTS, cpu_config(), prepare=fake_prepare({"streamk": "wrong"}), reference=attention_reference)
    path = tmp_path / "bench.csv"
    bench_results.write_csv(df, path)
    kept = bench_results.load_previous(path)
    assert len(kept) == len(df) - 2 and (kept["status"] == "ok").all()
    calls = []
    rerun = bench.run_sweep(POINTS, cpu_config(), prepare=fake_prepare(), reference=attention_reference,
                            done=bench_results.done_keys(kept), progress=lambda *a: calls.append(a))
    assert list(rerun["strategy"]) == ["streamk", "streamk"] and len(calls) == 2


def test_load_previous_rejects_foreign_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError):
        bench_results.load_previous(path)


def test_summary_geomean_uses_points_all_strategies_ran(fake_timer):
    df = bench.run_sweep(POINTS, cpu_config(), prepare=fake_prepare(), reference=attention_reference)
    df.loc[(df["strategy"] == "fa2") & df["ragged"], "time_us"] = 1e6  # only fa2/streamk ran it
    table = bench_results.summary(df).set_index("strategy")
    assert table.loc["fa2", "geomean_us_common"] == pytest.approx(0.5)
    assert table.loc["torch-flash", "ok"] == 1 and table.loc["fa2", "failed"] == 0


def test_parse_strategies_aliases_order_and_errors():
    assert bench.parse_strategies("torch-flash, lean,fa2") == ("fa2", "streamk", "torch-flash")
    for bad in ("", "foo", "fa2,torch-efficient"):
        with pytest.raises(InputError):
            bench.parse_strategies(bad)


# --- baselines, timing, membw (host side) ---------------------------------------------------------

def test_baseline_skips_ragged_and_records_the_modelled_plan():
    assert unsupported_reason("torch-flash", POINTS[1]) and unsupported_reason("torch-flash", POINTS[0]) is None
    w = DecodeWorkload.build(1, 32, 8, 128, 64 * 1024)
    assert prepare_baseline("torch-flash", w, H100).meta["splits"] == heuristic_splits(w, H100, 128) > 1
    # cuDNN: 8 kv-heads x 1 q-block of 16 rows, 32 splits (<= 2 x 132 CTAs), then its reduction launch
    assert prepare_baseline("torch-cudnn", w, H100).meta == {"grid": 256, "splits": 32, "launches": 2}


def test_torch_flash_on_cpu_matches_reference():
    w = POINTS[0]
    q, k, v = torch.randn(2, 8, 32, dtype=torch.float16), *torch.randn(2, 2, 2, 48, 32, dtype=torch.float16)
    out = prepare_baseline("torch-flash", w, H100).run(q, k, v, out=torch.full_like(q, float("nan")))
    assert bench_inputs.max_rel_err(out, attention_reference(q, k, v, w.contexts)) < 1e-2


def test_sdpa_is_timed_inside_one_backend_context():
    w = POINTS[0]
    q, k, v = torch.randn(2, 8, 32, dtype=torch.float16), *torch.randn(2, 2, 2, 48, 32, dtype=torch.float16)
    fn, context = bench.timed_call(prepare_baseline("torch-flash", w, H100), q, k, v, None)
    with context:
        assert fn().shape == (2, 8, 1, 32)


def test_error_description_keeps_the_cause_line():
    text = bench._describe(ValueError("at 9:35:\n    x = tl.load(p)\nIncompatibleTypeErrorImpl('bad')"))
    assert text.startswith("ValueError: at 9:35:") and text.endswith("IncompatibleTypeErrorImpl('bad')")


def test_timer_names_and_call_counts():
    assert "flushed" in timing.TimerConfig().name and "warm" in timing.TimerConfig(cudagraph=True).name
    assert timing.expected_calls(5000.0, timing.TimerConfig(5, 20)) == 1 + 5 + 1 + 3  # 20 ms buys 3 timed calls
    assert timing.expected_calls(1.0) > 100


def test_membw_slices_are_whole_blocks_and_capped():
    from attnsim.kernels import membw

    assert membw.elems_per_cta(1 << 30, 528, 4096) % 4096 == 0
    assert membw.elems_per_cta(1 << 31, 1, 2048) * 2 == membw.MAX_BYTES_PER_CTA


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="runs the Triton kernel in the interpreter")
def test_stream_read_kernel_sums_slices_in_interpreter():
    from attnsim.kernels import membw

    x = torch.rand(8 * 256, dtype=torch.float16)
    sums = torch.empty(4, dtype=torch.float32)
    try:
        membw.launch_stream_read(x, sums, 4, 4, 128, 256)
    except Exception as exc:  # triton 3.6's interpreter turns int args into 1-element arrays; numpy 2 refuses int()
        if "0-dimensional" not in str(exc):
            raise
        pytest.skip("triton interpreter cannot loop to a runtime bound under numpy 2")
    torch.testing.assert_close(sums, x[:1024].float().view(4, 256).sum(1), rtol=1e-3, atol=1e-3)


# --- CLI -------------------------------------------------------------------------------------------

def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr()


def test_cli_estimate_needs_no_gpu(capsys):
    main(["bench", "--estimate", "--quick", "--limit", "3"])
    assert capsys.readouterr().out.startswith("3 points")


def test_cli_without_cuda_is_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, captured = run_cli(["bench", "--quick", "--limit", "1", "--strategies", "torch-flash"], capsys)
    assert code == 2 and captured.err.count("\n") == 1 and "no CUDA GPU" in captured.err


@pytest.mark.parametrize("args", [["--rep-ms", "0"], ["--limit", "x"], ["--strategies", "nope"]])
def test_cli_rejects_bad_options(args, capsys):
    code, captured = run_cli(["bench", "--estimate", *args], capsys)
    assert code == 2 and captured.err.startswith("attnsim: error:")


def test_cli_help_has_examples(capsys):
    main(["bench", "--help"])
    out = capsys.readouterr().out
    assert "Examples:" in out and "--quick" in out


# --- GPU -------------------------------------------------------------------------------------------

@pytest.mark.gpu
@gpu
def test_membw_saturates_near_hbm_rate():
    from attnsim.kernels import membw

    buffer = membw.make_buffer(1 << 30)
    one = membw.measure_read_gbps(1, 4, 2048, 1 << 30, buffer=buffer)
    many = membw.measure_read_gbps(528, 8, 4096, 1 << 30, buffer=buffer)
    assert 0 < one < many and many > 0.5 * H100.hbm_read_gbps * torch.cuda.get_device_properties(0).multi_processor_count / 132


@pytest.mark.gpu
@gpu
def test_sdpa_baselines_on_gpu(tmp_path):
    points = [DecodeWorkload.build(2, 32, 8, 128, 4096), DecodeWorkload.build(2, 8, 8, 64, [300, 1000])]
    config = bench.BenchConfig(("torch-flash", "torch-cudnn"), H100, torch.cuda.get_device_name(), 3000.0,
                               timing.TimerConfig(1, 5))
    df = bench.run_sweep(points, config)
    assert len(df) == 2 and bench_results.failures(df).empty
    ok = df[df["status"] == "ok"]
    assert len(ok) >= 1 and (ok["time_us"] > 0).all()


# --- the measured floor (issue 19): a pure read of a point's bytes under the same timer ----------

def test_rows_carry_the_points_floor_and_their_distance_from_it(fake_timer):
    asked = []

    def floor(read_bytes):
        asked.append(read_bytes)
        return 0.25

    df = bench.run_sweep(POINTS, cpu_config(), prepare=fake_prepare(), reference=attention_reference, floor=floor)
    assert asked == [w.kv_bytes() + w.io_bytes() for w in POINTS]  # once per point, its own bytes
    assert (df["floor_us"] == 0.25).all() and df["vs_floor"].tolist() == pytest.approx([0.5 / 0.25] * len(df))
    summary = bench_results.summary(df).set_index("strategy")
    assert summary.loc["fa2", "median_vs_floor"] == pytest.approx(2.0)


def test_read_floor_streams_the_bytes_once_per_size(monkeypatch):
    """ReadFloor under the interpreter: the stream-read kernel sums what it reads (checked), the
    rounding never reads fewer bytes than asked, each size is measured once per read shape, and the
    floor is the fastest shape's time."""
    from attnsim.kernels import membw
    from attnsim.kernels.launch import patch_interpreter_index

    if not os.environ.get("TRITON_INTERPRET"):
        pytest.skip("runs the kernel under the CPU interpreter")
    patch_interpreter_index()
    timed = []

    def time_us(fn, config):  # the second read shape is the faster one
        fn()
        timed.append(1)
        return 3.0 if len(timed) % len(membw.FLOOR_SHAPES) == 1 else 2.0

    monkeypatch.setattr(membw, "time_us", time_us)
    floor = membw.ReadFloor(device="cpu")
    small_block = min(block for _ctas, _warps, block in membw.FLOOR_SHAPES)
    for read_bytes in (10_000, 10_000, 3 * 2 * small_block + 2):
        assert floor.us(read_bytes) == 2.0
    assert len(timed) == 2 * len(membw.FLOOR_SHAPES)  # every shape once per size: the floor is the fastest
    assert floor.buffer.numel() * 2 >= 10_000
    for ctas, _warps, block in membw.FLOOR_SHAPES:
        for read_bytes in (1, 10_000, 3 << 20):
            n, per_cta = membw.floor_layout(read_bytes, ctas, block)
            assert 1 <= n <= ctas and per_cta % block == 0 and 2 * n * per_cta >= read_bytes
            assert 2 * (n * per_cta - block * n) < read_bytes  # less than one block per CTA over
