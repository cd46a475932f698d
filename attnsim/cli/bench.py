"""`attnsim bench`: time our kernels and PyTorch SDPA over a sweep on the GPU -> CSV."""

from __future__ import annotations

import sys

import click

from attnsim.cli.options import gpu_inputs, gpu_option, gpu_spec
from attnsim import limits
from attnsim.errors import InputError
from attnsim.pathcheck import check_apart, check_output_file
from attnsim.bench import harness as bench, results as bench_results
from attnsim.bench.sweep import (
    DEFAULT_MAX_KV_GB, SERVING_MAX_KV_GB, SERVING_SWEEPS, SWEEP_MAX_KV_GB, SWEEPS, padded_kv_bytes, sweep,
)
from attnsim.kernels.timing import DEFAULT_REP_MS, DEFAULT_WARMUP_MS, TimerConfig
from attnsim.units import parse_size


MAX_POINTS = 100_000  # --limit: more points than any sweep has


@click.command("bench")
@gpu_option
@click.option("--quick", is_flag=True, help="The quick sweep (about a dozen points) instead of the standard one.")
@click.option("--sweep", "sweep_name", default=None, type=click.Choice(list(SWEEPS)),
              help="A named sweep: standard, quick, or the serving ones (paged, fp8, qlen: validation, each "
                   "point with its twin; cal-serving: the serving cost fields' calibration points, cal-fp8: "
                   "their long fp8 streams; mla: DeepSeek-V3 MLA decode at 16 and 128 heads per GPU, cal-mla: "
                   "its calibration points; cal-search: the planner's search-axis regimes, cal-chunks: the "
                   "batch-invariant chunk plans' points, docs/planner.md).")
@click.option("--strategies", "--strategy", "strategy_text", default=",".join(bench.runnable_names()),
              show_default=True, help=f"Comma-separated, any of: {', '.join(bench.runnable_names())}.")
@click.option("--dtype", default=None, type=click.Choice(["float16", "bfloat16"]),
              help="q/o dtype of the sweep [default: float16; bfloat16 for the serving sweeps].")
@click.option("--out", "out_path", default="results.csv", show_default=True, type=click.Path(dir_okay=False),
              help="CSV to write (atomically, also every few seconds while running).")
@click.option("--warmup-ms", default=DEFAULT_WARMUP_MS, show_default=True, type=float,
              help="do_bench warm-up per point and strategy, in ms of GPU time.")
@click.option("--rep-ms", default=DEFAULT_REP_MS, show_default=True, type=float,
              help="do_bench timed repetitions per point and strategy, in ms of GPU time.")
@click.option("--cudagraph", is_flag=True, help="Time with do_bench_cudagraph (no launch gaps, but L2 not flushed).")
@click.option("--eager", is_flag=True, help="Time eager calls instead of a CUDA-graph replay of each call "
                                            "(host launch time can then leak into small points).")
@click.option("--max-kv-gb", default=None, type=float,
              help=f"Skip points whose K+V buffers exceed this many GB (1e9 bytes) [default: {DEFAULT_MAX_KV_GB:g}; "
                   f"{SERVING_MAX_KV_GB:g} for the serving sweeps].")
@click.option("--limit", default=None, help="Run only the first N points of the sweep.")
@click.option("--resume", is_flag=True, help="Keep the ok rows already in --out and measure only the rest.")
@click.option("--peak-gbps", default=None, type=float,
              help="Use this HBM read bandwidth (GB/s) for bw_fraction instead of measuring it.")
@click.option("--estimate", is_flag=True, help="Print the points and a rough duration; touch no GPU.")
def bench_command(gpu, calibration, quick, sweep_name, strategy_text, dtype, out_path, warmup_ms, rep_ms, cudagraph,
                  eager, max_kv_gb, limit, resume, peak_gbps, estimate):
    """Check, then time, our kernels and PyTorch SDPA over a sweep (GPU).

    
    --gpu/--calibration choose the profile our launchers plan for (grid, splits); the timings are
    the local GPU's.

    \b
    Every output is first checked against a float64 reference (max relative error <= 2e-2, no NaN,
    output poisoned with NaN before the run); then triton.testing.do_bench takes the median with L2
    flushed. bw_fraction divides achieved GB/s by the HBM read bandwidth measured at the start.
    Exit status 1 when any row fails the check or a kernel crashes (rows say which).

    \b
    Standard sweep: context 512..512k x batch 1..32 x heads (32,32) (64,8) (32,8) (128,128)
    x head_dim 64, 128, under the KV cap, plus ragged batches (lengths drawn from 1k..256k with
    fixed seeds; only our kernels run them: SDPA has no per-sequence lengths).

    \b
    Examples:
      attnsim bench --estimate                          # points and rough duration, no GPU
      attnsim bench --quick --limit 4 --out /tmp/smoke.csv
      attnsim bench --out results/h100/bench.csv        # the standard sweep
      attnsim bench --strategies streamk,torch-flash --dtype bfloat16 --out bf16.csv
      attnsim bench --resume --out results/h100/bench.csv   # finish an interrupted run
      attnsim bench --sweep paged --strategies fa2,flashdecoding,streamk --out results/h200/bench_paged.csv
      attnsim bench --strategies auto,auto:tune=3 --out tuned.csv   # tune: the fastest measured of the model's 3 best

    
    Serving sweeps (bfloat16, head_dim 128, per-GPU heads of tensor-parallel Llama/Qwen, <= 4 GB of KV
    per point): paged, fp8 and qlen put each point next to its twin without the feature (contiguous,
    the dtype's KV, decode), so one CSV measures the feature's cost; cal-serving is for calibration
    (attnsim calibrate --add-points). New columns: kv_dtype, page_size, q_len.
    """
    timer = TimerConfig(limits.check_positive(warmup_ms, "warmup-ms", limits.MAX_TIMER_MS),
                        limits.check_positive(rep_ms, "rep-ms", limits.MAX_TIMER_MS), cudagraph, not eager)
    chosen = bench.parse_strategies(strategy_text)
    n = parse_size(limit, "limit", maximum=MAX_POINTS) if limit is not None else None
    if peak_gbps is not None:
        limits.check_positive(peak_gbps, "peak-gbps", limits.MAX_GBPS)
    points = sweep(*_sweep_choice(quick, sweep_name, dtype, max_kv_gb))[:n]
    spec = gpu_spec(gpu, calibration)
    bench.check_pinned_plans(chosen, points, spec)  # a pinned option every point can run, before any GPU work
    if estimate:
        click.echo(_estimate_text(points, chosen, timer))
        return
    from attnsim.bench.run import require_cuda, run_bench_to_csv

    check_output_file(out_path, "out", (".csv",), "CSV")
    check_apart(gpu_inputs(gpu, calibration), [("out", out_path)])  # --resume reads --out: that is its point
    require_cuda()
    with click.progressbar(length=sum(len(bench.applicable(chosen, w)) for w in points), label="bench",
                           file=sys.stderr, show_pos=True, show_eta=True,
                           item_show_func=lambda label: label) as bar:
        frame = run_bench_to_csv(
            out_path, points, spec, chosen, timer=timer, resume=resume, peak_read_gbps=peak_gbps,
            progress=lambda done, total, label: bar.update(1, label),
            log=lambda message: click.echo(message, err=True))
    click.echo(bench_results.summary(frame).to_string(index=False))
    click.echo(f"wrote {out_path}: {len(frame)} rows", err=True)
    failed = bench_results.failures(frame)
    if len(failed):
        click.echo(f"attnsim: error: {len(failed)} row(s) failed (status fail/error in {out_path}):", err=True)
        click.echo(failed[["strategy", "batch", "q_heads", "kv_heads", "head_dim", "contexts", "max_rel_err",
                           "status"]].head(20).to_string(index=False), err=True)
        sys.exit(1)


def _sweep_choice(quick: bool, name: str | None, dtype: str | None, max_kv_gb: float | None) -> tuple[str, str, float]:
    """(sweep name, dtype, KV cap) from --quick / --sweep / --dtype / --max-kv-gb, with each sweep's defaults."""
    if quick and name not in (None, "quick"):
        raise InputError("sweep", f"--quick and --sweep {name} exclude each other")
    name = "quick" if quick else (name or "standard")
    serving = name in SERVING_SWEEPS
    if max_kv_gb is None:
        max_kv_gb = SWEEP_MAX_KV_GB.get(name, SERVING_MAX_KV_GB if serving else DEFAULT_MAX_KV_GB)
    cap = limits.check_positive(max_kv_gb, "max-kv-gb", limits.MAX_KV_BYTES / 1e9)
    return name, dtype or ("bfloat16" if serving else "float16"), cap


def _estimate_text(points, names, timer: TimerConfig) -> str:
    pairs = sum(len(bench.applicable(names, w)) for w in points)
    ragged = sum(w.is_ragged for w in points)
    biggest = max((padded_kv_bytes(w) for w in points), default=0)
    seconds = bench.estimate_seconds(points, names, timer)
    return (f"{len(points)} points ({len(points) - ragged} uniform, {ragged} ragged) x {len(names)} strategies "
            f"= {pairs} timed runs; largest K+V {biggest / 1e9:.1f} GB; "
            f"timer {timer.name}, warmup {timer.warmup_ms:g} ms, rep {timer.rep_ms:g} ms; "
            f"estimated {seconds:.0f} s ({seconds / 60:.1f} min) on an H100-class GPU (rough)")
