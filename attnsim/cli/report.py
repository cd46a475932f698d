"""`attnsim report`, `attnsim plot KIND`, `attnsim scenarios`: scenarios -> figures and an HTML report.

Thin: each command resolves its inputs, calls one scenarios/ helper to model, one reports/ function
to draw or write, and prints where the output went.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click
import pandas as pd

from attnsim.cli import cli
from attnsim.cli.options import build_workloads, workload_options
from attnsim.errors import InputError
from attnsim.scenarios import models
from attnsim.scenarios.loader import load_scenario, scenario_names
from attnsim.scenarios.run import occupancy_frame, predict_frame, run_scenario
from attnsim.simulator.partition import canonical_strategy
from attnsim.simulator.predict import predict_one
from attnsim.simulator.profiles import resolve_gpu

SCENARIO_HELP = "Scenario: a shipped name (see `attnsim scenarios`) or a .toml file."
GPU_HELP = "Comma-separated GPU presets/profile files, replacing the scenario's GPUs."
CAL_HELP = "Calibrated profile JSON for the GPU, or 'none' for datasheet figures (default: shipped profile)."


def _progress(jobs, label):
    """click's progress bar on stderr (it prints just the label when stderr is not a terminal)."""
    with click.progressbar(jobs, label=label, file=sys.stderr, show_pos=True) as bar:
        yield from bar


def _gpus(names: str | None, calibration: str | None) -> list | None:
    if not names and not calibration:
        return None
    parts = [p.strip() for p in (names or "h100").split(",") if p.strip()]
    if calibration and calibration.lower() != "none" and len(parts) > 1:
        raise InputError("calibration", "a calibrated profile describes one GPU; give a single --gpu with it")
    return [resolve_gpu(p, calibration) for p in parts]


def _scenario(name: str, gpu: str | None = None, calibration: str | None = None):
    scenario = load_scenario(name)
    gpus = _gpus(gpu, calibration)
    return dataclasses.replace(scenario, gpus=tuple(gpus)) if gpus else scenario


def _wrote(path) -> None:
    click.echo(f"wrote {path}", err=True)


@cli.command()
@click.option("--scenario", default="default", show_default=True, help=SCENARIO_HELP)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for index.html and its files.")
@click.option("--measurements", default=None, type=click.Path(dir_okay=False),
              help="Measurements or validation CSV: adds predicted-vs-measured errors (MAPE, ...).")
@click.option("--gpu", default=None, help=GPU_HELP)
@click.option("--calibration", default=None, help=CAL_HELP)
@click.option("--figures", default="png", show_default=True, type=click.Choice(["png", "svg"]), help="Figure format.")
@click.option("--no-whatif", is_flag=True, help="Leave out the what-if comparison across GPUs.")
def report(scenario, out_dir, measurements, gpu, calibration, figures, no_whatif):
    """Model a scenario and write a static HTML report (figures and CSVs next to index.html).

    \b
    Sections: summary, what was modelled, GPU profiles (datasheet or calibrated), speedup vs
    context, ragged batches, SM timeline, occupancy, what-if on other GPUs, and with
    --measurements the prediction errors.
    \b
    Examples:
      attnsim report --scenario default --out out/report
      attnsim report --scenario my_study.toml --out out/study --figures svg
      attnsim report --scenario default --out out/val --measurements results/h100/validation.csv
      attnsim report --scenario gqa-sweep --gpu h200 --no-whatif --out out/gqa
    """
    chosen = _scenario(scenario, gpu, calibration)
    if no_whatif:
        chosen = dataclasses.replace(chosen, whatif_gpus=())
    if measurements and not Path(measurements).is_file():
        raise InputError("measurements", f"no file {measurements!r}")
    from attnsim.reports.report import write_report

    results = run_scenario(chosen, measurements, progress=_progress)
    command = "attnsim " + " ".join(sys.argv[1:]) if sys.argv and "attnsim" in sys.argv[0] else ""
    index = write_report(results, out_dir, f".{figures}", command)
    click.echo(f"wrote {index} (open it in a browser)")


@cli.command("scenarios")
@click.option("--check", "check_file", default=None, help="Validate a scenario file (or name) and summarise it.")
def scenarios_command(check_file):
    """List shipped scenarios and model presets, or validate a scenario file.

    \b
    Examples:
      attnsim scenarios
      attnsim scenarios --check my_study.toml
    """
    if check_file:
        s = load_scenario(check_file)
        click.echo(f"{s.name}: {len(s.shapes)} shapes, {len(s.batches)} batches x {len(s.contexts)} contexts, "
                   f"{len(s.ragged)} ragged mixes -> {len(s.cases())} cases on {', '.join(g.name for g in s.gpus)}: OK")
        return
    click.echo("scenarios: " + ", ".join(scenario_names()))
    click.echo("models (q_heads/kv_heads/head_dim, layers):")
    for m in models.MODELS.values():
        shape = f"{m.q_heads}/{m.kv_heads}/{m.head_dim}"
        click.echo(f"  {m.name:<18} {shape:<12} {m.layers:>4}  {m.note}".rstrip())


@cli.group()
def plot():
    """Draw one figure; the --out suffix decides PNG or SVG.

    \b
    Examples:
      attnsim plot speedup --scenario default --out speedup.png
      attnsim plot speedup --input predictions.csv --out speedup.svg
      attnsim plot timeline --model llama-3.1-8b --contexts 1000,50000,3000 --out gantt.png
      attnsim plot occupancy --scenario gqa-sweep --gpu h100,a100,l40s --out occ.png
      attnsim plot validation --measurements results/h100/validation.csv --out val.png
      attnsim plot whatif --scenario default --gpu h100,h200,a100,l40s --out whatif.png
    """


def _out_option(func):
    return click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
                        help="Figure file: .png or .svg.")(func)


def _check_suffix(out_path: str) -> None:
    from attnsim.reports.style import check_figure_path

    check_figure_path(out_path)  # before any modelling: a wrong suffix fails fast


@plot.command("speedup")
@click.option("--scenario", default="default", show_default=True, help=SCENARIO_HELP)
@click.option("--input", "input_csv", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Use a predictions CSV (`attnsim predict --format csv`) instead of a scenario.")
@click.option("--gpu", default=None, help=GPU_HELP)
@click.option("--calibration", default=None, help=CAL_HELP)
@_out_option
def plot_speedup_command(scenario, input_csv, gpu, calibration, out_path):
    """Speedup and time vs context (log x), one line per strategy, per model/batch, with the floor."""
    _check_suffix(out_path)
    from attnsim.reports.speedup import plot_speedup

    if input_csv:
        frame = pd.read_csv(input_csv, dtype={"context": str})
    else:
        frame = predict_frame(_scenario(scenario, gpu, calibration), progress=_progress)
    plot_speedup(frame, out_path)
    _wrote(out_path)


@plot.command("timeline")
@click.option("--gpu", default="h100", show_default=True, help="GPU preset or profile file.")
@click.option("--calibration", default=None, help=CAL_HELP)
@workload_options
@click.option("--strategy", default="fa2,flashdecoding,streamk", show_default=True, help="One panel per strategy.")
@_out_option
def plot_timeline_command(gpu, calibration, strategy, out_path, **workload_kw):
    """SM timeline (Gantt) per strategy for one workload: idle SMs, waves, fix-ups."""
    _check_suffix(out_path)
    from attnsim.reports.timeline import plot_timelines

    spec = resolve_gpu(gpu, calibration)
    workloads = build_workloads(**workload_kw)
    if len(workloads) != 1:
        raise InputError("context", "a timeline shows one workload: give one --context (or one ragged --contexts)")
    results = [predict_one(canonical_strategy(s), workloads[0], spec) for s in strategy.split(",") if s.strip()]
    w = workloads[0]
    plot_timelines(results, out_path, subtitle=f"batch {w.batch}, heads {w.q_heads}/{w.kv_heads}, d {w.head_dim}, "
                                              f"context {w.context_label} on {spec.name}")
    _wrote(out_path)


@plot.command("occupancy")
@click.option("--scenario", default="default", show_default=True, help=SCENARIO_HELP)
@click.option("--gpu", default=None, help=GPU_HELP)
@click.option("--calibration", default=None, help=CAL_HELP)
@_out_option
def plot_occupancy_command(scenario, gpu, calibration, out_path):
    """Blocks per SM and the binding limit for each kernel configuration the strategies launch."""
    _check_suffix(out_path)
    from attnsim.reports.occupancy import plot_occupancy

    plot_occupancy(occupancy_frame(_scenario(scenario, gpu, calibration)), out_path)
    _wrote(out_path)


@plot.command("validation")
@click.option("--measurements", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with gpu, strategy, batch, q_heads, kv_heads, head_dim, context, dtype, time_us "
                   "[, predicted_us].")
@click.option("--gpu", default=None, help="Profile to predict rows without predicted_us (default: by the gpu column).")
@click.option("--calibration", default=None, help=CAL_HELP)
@_out_option
def plot_validation_command(measurements, gpu, calibration, out_path):
    """Predicted vs measured (log-log, y = x) and the error vs context length."""
    _check_suffix(out_path)
    from attnsim.reports.validation_plots import plot_validation
    from attnsim.scenarios.measurements import measured_frame

    gpus = _gpus(gpu, calibration)
    plot_validation(measured_frame(measurements, gpus[0] if gpus else None), out_path)
    _wrote(out_path)


@plot.command("whatif")
@click.option("--scenario", default="default", show_default=True, help=SCENARIO_HELP)
@click.option("--gpu", default="h100,h200,a100,l40s", show_default=True,
              help="GPUs to compare; the first is the baseline.")
@_out_option
def plot_whatif_command(scenario, gpu, out_path):
    """The same scenario on several GPU profiles: fastest strategy's time, and speedup over the first."""
    _check_suffix(out_path)
    from attnsim.reports.whatif import plot_whatif

    chosen = load_scenario(scenario)
    plot_whatif(predict_frame(chosen, _gpus(gpu, None), progress=_progress), out_path)
    _wrote(out_path)
