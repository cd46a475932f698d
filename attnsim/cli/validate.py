"""`attnsim validate`: the model's predictions against measured kernel times (a CSV, or a GPU run)."""

from __future__ import annotations

from pathlib import Path

import click

from attnsim import strategies
from attnsim.cli.calibrate import require_cuda
from attnsim.cli.options import check_format, gpu_inputs, gpu_option, gpu_spec
from attnsim.errors import InputError
from attnsim.fileio import json_text, write_json, write_text
from attnsim.pathcheck import check_apart, check_output_file, check_output_folder
from attnsim.validation.compare import error_metrics, overall_mape, predict_measurements, rank_metrics
from attnsim.validation.measurements import drop_unscorable, load_measurements, skipped_note

SKIP_HINT = "; --skip-unscorable leaves such rows out and lists them"


def _serving(frame, feature) -> "pd.DataFrame":
    """Rows whose workload has the feature (columns absent: a CSV from before the serving sweeps: none)."""
    from attnsim.bench.results import with_serving_columns

    frame = with_serving_columns(frame)
    return frame[feature(frame)]  # the index stays the file's row: messages name its line


ROW_FILTERS = {
    "all": lambda f: f,
    "paged": lambda f: _serving(f, lambda x: x["page_size"].fillna(0).astype(int) > 0),
    "fp8": lambda f: _serving(f, lambda x: x["kv_dtype"].astype(str).str.startswith("float8")),
    "qlen": lambda f: _serving(f, lambda x: x["q_len"].fillna(1).astype(int) > 1),
    "mla": lambda f: f[f["kv_lora_rank"].fillna(0).astype(int) > 0] if "kv_lora_rank" in f else f.iloc[:0],
}


@click.command()
@gpu_option
@click.option("--measurements", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Measurements CSV (no GPU needed); without it, runs the benchmark sweep on the GPU.")
@click.option("--quick", is_flag=True, help="GPU mode: the quick sweep instead of the standard one.")
@click.option("--out-dir", default=None, type=click.Path(file_okay=False),
              help="Write validation.csv and the plots here.")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
@click.option("--skip-unscorable", is_flag=True,
              help="Leave out rows the model cannot score (a strategy attnsim does not model, a GPU other than "
                   "the profile's) and list them, instead of refusing the file.")
@click.option("--rows", "row_filter", default="all", show_default=True, type=click.Choice(list(ROW_FILTERS)),
              help="Which measured rows to score: all, or those with a paged cache / an fp8 cache / q_len > 1 / MLA "
                   "(the serving sweeps' validation rows; their twins are the baseline).")
def validate(gpu, calibration, measurements, quick, out_dir, fmt, skip_unscorable, row_filter):
    """Compare the model's predictions with measured kernel times: MAPE, p90, rank accuracy.

    \b
    Examples:
      attnsim validate --measurements results/h100/bench.csv --out-dir results/h100
      attnsim validate --quick --out-dir /tmp/val          # on a GPU: measure, then compare
      attnsim validate --measurements results/h200/bench_paged.csv --rows paged --gpu h200
    The last line of plain output is the overall MAPE.
    """
    check_format(fmt, ("table", "json"))
    outputs = _check_outputs(out_dir, gpu_run=measurements is None)
    check_apart(gpu_inputs(gpu, calibration) + [("--measurements", measurements)], outputs)
    spec = gpu_spec(gpu, calibration)
    if measurements is None:
        measurements = _bench_for_validation(spec, quick, out_dir)
    frame, skipped = drop_unscorable(ROW_FILTERS[row_filter](load_measurements(measurements)), spec, measurements,
                                     skip=skip_unscorable, hint=SKIP_HINT)
    rows = predict_measurements(frame, spec)
    if rows.empty:
        raise InputError("measurements", f"{Path(measurements).name}: no rows left to score (--rows {row_filter}; "
                                         f"{len(skipped)} left out as unscorable)")
    if skipped:  # after the last refusal: an error stays one line
        click.echo(skipped_note(skipped, measurements), err=True)
    result = {"profile": spec.source, "profile_source": spec.profile_source, "measurements": str(measurements),
              "skipped_rows": skipped, "per_strategy": error_metrics(rows),
              "ranking": rank_metrics(rows), "overall_mape": overall_mape(rows)}
    if out_dir:
        _write_outputs(rows, result, Path(out_dir))
    click.echo(json_text(result) if fmt == "json" else _text_report(result))


OUT_FILES = ("validation.csv", "validation_metrics.json", "validation_scatter.png", "validation_error_vs_context.png")
BENCH_FILE = "validation_measurements.csv"  # GPU mode: what the benchmark measured


def _check_outputs(out_dir, gpu_run: bool) -> list[tuple[str, Path]]:
    """Every file validate will write, checked before the first is written (and before any GPU run);
    (field, path) of each."""
    if out_dir is not None:
        check_output_folder(out_dir, "out-dir")
    folder = Path(out_dir or ".")
    names = (OUT_FILES if out_dir is not None else ()) + ((BENCH_FILE,) if gpu_run else ())
    for name in names:
        check_output_file(folder / name, "out-dir")
    return [("out-dir", folder / name) for name in names]


def _bench_for_validation(spec, quick, out_dir) -> Path:
    require_cuda("validate", "--measurements FILE.csv")
    from attnsim.bench.run import run_bench_to_csv
    from attnsim.bench.sweep import sweep

    target = Path(out_dir or ".") / BENCH_FILE
    names = strategies.names(lambda s: s.predictable and s.runnable)
    run_bench_to_csv(target, sweep("quick" if quick else "standard"), spec, names)
    return target


def _write_outputs(rows: pd.DataFrame, result: dict, out_dir: Path) -> None:
    from attnsim.reports.validation_plots import plot_error_vs_context, plot_predicted_vs_measured

    csv_name, metrics_name, scatter_name, error_name = OUT_FILES
    write_text(out_dir / csv_name, rows.to_csv(index=False))
    write_json(out_dir / metrics_name, result)
    plot_predicted_vs_measured(rows, out_dir / scatter_name)
    plot_error_vs_context(rows, out_dir / error_name)
    click.echo(f"wrote {out_dir}/validation.csv, validation_metrics.json and plots", err=True)


def _pct(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction:.1%}"


def _text_report(result: dict) -> str:
    lines = [f"profile: {result['profile']}", "",
             f"{'strategy':<14}{'n':>5}{'MAPE%':>8}{'median%':>9}{'p90%':>8}{'max%':>8}"]
    for strategy, m in result["per_strategy"].items():
        lines.append(f"{strategy:<14}{m['n']:>5}{m['mape']:>8.2f}{m['median_ape']:>9.2f}"
                     f"{m['p90_ape']:>8.2f}{m['max_ape']:>8.1f}")
    rank = result["ranking"]
    lines += ["", f"rank accuracy (fastest of {'/'.join(strategies.default_names())}): {_pct(rank['rank_accuracy'])} "
                  f"over {rank['points']} workloads; predicted fastest within 5% of the measured fastest: "
                  f"{_pct(rank['rank_accuracy_within_5pct'])}; where the measured winner leads by > 5% "
                  f"({rank['decisive_points']} workloads): {_pct(rank['rank_accuracy_decisive'])}"]
    lines += [f"speedup ratio {k}: mean abs error {v:.2f}%" for k, v in rank["speedup_ratio_mape"].items()]
    lines.append("")
    for strategy, m in result["per_strategy"].items():
        lines += [f"worst {strategy}: {w}" for w in m["worst"][:2]]
    lines.append(f"overall MAPE: {result['overall_mape']:.2f}%")
    return "\n".join(lines)
