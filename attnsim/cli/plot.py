"""`attnsim plot KIND`: one figure from a scenario, a predictions CSV or a measurements file."""

from __future__ import annotations

import dataclasses

import click

from attnsim import limits, pathcheck, strategies
from attnsim.cli.options import (build_workloads, check_figure_option, check_work, gpu_inputs, gpu_option, gpu_spec,
                                 model_label, strategy_option, workload_inputs, workload_options)
from attnsim.cli.report import (CAL_HELP, GPU_HELP, SCENARIO_HELP, _check_measurements, _gpus, _inputs, _progress,
                                _scenario, _wrote)
from attnsim.errors import InputError
from attnsim.scenarios.budget import check_budget
from attnsim.scenarios.loader import load_scenario
from attnsim.scenarios.run import occupancy_frame, scenario_predictions
from attnsim.plans.spec import parse_spec_list, spec_strategy
from attnsim.predict import predict_one
from attnsim.scenarios.scenario import workload_scenario


@click.group()
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
      attnsim plot whatif --gpus h100,h200,b200 --model llama-3.1-70b --tp 8 --batch 16 --out whatif.png
    """


def _out_option(func):
    return click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
                        help="Figure file: .png or .svg.")(func)


def _check_suffix(out_path: str) -> None:
    check_figure_option(out_path, "out")  # before any modelling: a wrong suffix fails fast


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
    from attnsim.reports.speedup import plot_speedup, read_predictions

    if input_csv:
        pathcheck.check_apart([("--input", input_csv)], [("out", out_path)])
        frame = read_predictions(input_csv)
    else:
        chosen = _scenario(scenario, gpu, calibration, whatif=False)
        pathcheck.check_apart(_inputs(scenario, gpu, calibration), [("out", out_path)])
        check_budget(chosen)
        frame = scenario_predictions(chosen, progress=_progress, compare=True)
    plot_speedup(frame, out_path)
    _wrote(out_path)


@plot.command("timeline")
@gpu_option
@workload_options
@strategy_option(help_prefix="One panel per strategy")
@_out_option
def plot_timeline_command(gpu, calibration, strategy_text, out_path, **workload_kw):
    """SM timeline (Gantt) per strategy for one workload: idle SMs, waves, fix-ups."""
    _check_suffix(out_path)
    pathcheck.check_apart(workload_inputs(gpu, calibration, workload_kw), [("out", out_path)])
    from attnsim.reports.timeline import plot_timelines

    plan_specs = parse_spec_list(strategy_text)
    workloads = build_workloads(**workload_kw)
    if len(workloads) != 1:
        raise InputError("context", "a timeline shows one workload: give one --context (or one ragged --contexts)")
    check_work(workloads, [spec_strategy(s) for s in plan_specs])
    spec = gpu_spec(gpu, calibration)
    results = [predict_one(s, workloads[0], spec) for s in plan_specs]
    limits.check_timeline(results, "workload")
    plot_timelines(results, out_path, model=model_label(workload_kw["model"]))
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

    chosen = _scenario(scenario, gpu, calibration)
    pathcheck.check_apart(_inputs(scenario, gpu, calibration), [("out", out_path)])
    plot_occupancy(occupancy_frame(chosen), out_path)
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
    from attnsim.validation.measured import measured_frame

    pathcheck.check_apart(gpu_inputs(gpu, calibration) + [("--measurements", measurements)], [("out", out_path)])
    gpus = _gpus(gpu, calibration)
    note = _check_measurements(measurements, gpus[0] if gpus else None)
    plot_validation(measured_frame(measurements, gpus[0] if gpus else None), out_path)
    if note:
        click.echo(note, err=True)
    _wrote(out_path)


@plot.command("whatif")
@click.option("--scenario", default=None, help=SCENARIO_HELP + " [default: default, unless workload options are given]")
@click.option("--gpu", "--gpus", "gpu", default="h100,h200,a100,l40s", show_default=True,
              help="GPUs to compare; the first is the baseline.")
@workload_options
@click.option("--strategy", "--strategies", "strategy_text", default=None,
              help="Strategies whose fastest is compared [default: the scenario's, or "
                   f"{','.join(strategies.default_names())}].")
@_out_option
def plot_whatif_command(scenario, gpu, strategy_text, out_path, **workload_kw):
    """The same scenario, or the workload of --model/--context/..., on several GPU profiles: the
    fastest strategy's time, and speedup over the first GPU."""
    _check_suffix(out_path)
    from attnsim.reports.whatif import plot_whatif

    gpus = _gpus(gpu, None)
    chosen = _whatif_scenario(scenario, strategy_text, gpus, workload_kw)
    inputs = _inputs(scenario, gpu, None) if scenario else workload_inputs(gpu, None, workload_kw)
    pathcheck.check_apart(inputs, [("out", out_path)])
    check_budget(chosen, gpus, compare=False)
    plot_whatif(scenario_predictions(chosen, gpus, progress=_progress), out_path)
    _wrote(out_path)


WHATIF_CONTEXTS = "1k,4k,16k,64k,128k,256k"  # a workload's what-if without --context: a context sweep


def _whatif_scenario(scenario, strategy_text, gpus, workload_kw):
    """--scenario (default: 'default'), or a scenario of the workload options; --strategy replaces its strategies."""
    given = [k for k, v in workload_kw.items() if v is not None and (k, v) != ("q_len", "1")]
    if scenario is not None and given:
        raise InputError("scenario", f"give --scenario or workload options (--{given[0].replace('_', '-')}, ...), "
                                     "not both")
    names = strategies.parse_list(strategy_text) if strategy_text else None
    if not given:
        chosen = load_scenario(scenario or "default")
        return dataclasses.replace(chosen, strategies=names) if names else chosen
    if workload_kw["context"] is None and workload_kw["contexts"] is None:
        workload_kw = {**workload_kw, "context": WHATIF_CONTEXTS}
    workloads = build_workloads(**workload_kw)
    return workload_scenario(workloads, gpus, names or strategies.default_names(), model_label(workload_kw["model"]))
