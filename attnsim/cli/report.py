"""`attnsim report` and `attnsim scenarios`: scenarios -> an HTML report; the shipped scenarios and models.

Thin: each command resolves its inputs, calls one scenarios/ helper to model, one reports/ function
to write, and prints where the output went. `_scenario`/`_gpus`/`_inputs`/`_check_measurements`/
`_progress` serve `attnsim plot` too.
"""

from __future__ import annotations

import dataclasses
import sys

import click

from attnsim import limits, pathcheck
from attnsim.cli.options import gpu_inputs
from attnsim.errors import InputError
from attnsim.scenarios import models
from attnsim.scenarios.budget import check_budget
from attnsim.scenarios.loader import load_scenario, scenario_files, scenario_names
from attnsim.scenarios.run import run_scenario
from attnsim.profiles import resolve_gpu
from attnsim.validation.measured import check_measurements_file
from attnsim.validation.measurements import skipped_note

SCENARIO_HELP = "Scenario: a shipped name (see `attnsim scenarios`) or a .toml file."
GPU_HELP = "Comma-separated GPU presets/profile files, replacing the scenario's GPUs."
CAL_HELP = "Calibrated profile JSON for the GPU, or 'none' for datasheet figures (default: shipped profile)."


def _progress(jobs, label):
    """click's progress bar on stderr (it prints just the label when stderr is not a terminal)."""
    with click.progressbar(jobs, label=label, file=sys.stderr, show_pos=True) as bar:
        yield from bar


def _gpus(names: str | None, calibration: str | None) -> list | None:
    if names is None and not calibration:
        return None
    parts = [p.strip() for p in (names or "h100").split(",")]
    if not all(parts):
        raise InputError("gpu", f"{names!r}: expected a comma-separated list of GPU presets or profile files")
    limits.check_max(len(parts), limits.MAX_SCENARIO_GPUS, "gpu", "GPUs")
    if calibration and calibration.lower() != "none" and len(parts) > 1:
        raise InputError("calibration", "a calibrated profile describes one GPU; give a single --gpu with it")
    return [resolve_gpu(p, calibration) for p in parts]


def _scenario(name: str, gpu: str | None = None, calibration: str | None = None, whatif: bool = True):
    """The scenario with --gpu/--calibration (and --no-whatif) applied; the caller checks its budget
    (scenarios.budget) for what it draws."""
    scenario = load_scenario(name)
    gpus = _gpus(gpu, calibration)
    if gpus or not whatif:
        scenario = dataclasses.replace(scenario, gpus=tuple(gpus or scenario.gpus),
                                       whatif_gpus=scenario.whatif_gpus if whatif else ())
    return scenario


def _inputs(scenario: str, gpu: str | None, calibration: str | None) -> list[pathcheck.Named]:
    """What a scenario-based command reads (after _scenario loaded it), for pathcheck.check_apart."""
    return [("--scenario", path) for path in scenario_files(scenario)] + gpu_inputs(gpu, calibration)


def _check_measurements(path, gpu=None, preferred=()) -> str:
    """The measurements checked before any modelling; returns the note naming the rows the model will
    leave out ("" if none), for the command to print once it succeeded (an error stays one line)."""
    skipped = check_measurements_file(path, gpu, preferred)
    return skipped_note(skipped, path) if skipped else ""


def _wrote(path) -> None:
    click.echo(f"wrote {path}", err=True)


@click.command()
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
    from attnsim.reports.report import replace_refusal, write_report

    pathcheck.check_output_folder(out_dir, "out", replaceable=replace_refusal)
    chosen = _scenario(scenario, gpu, calibration, whatif=not no_whatif)
    pathcheck.check_apart(_inputs(scenario, gpu, calibration) + [("--measurements", measurements)],
                          replaced=[("out", out_dir)])
    check_budget(chosen)
    note = _check_measurements(measurements, preferred=chosen.gpus) if measurements else ""
    results = run_scenario(chosen, measurements, progress=_progress)
    command = "attnsim " + " ".join(sys.argv[1:]) if sys.argv and "attnsim" in sys.argv[0] else ""
    index = write_report(results, out_dir, f".{figures}", command)
    if note:
        click.echo(note, err=True)
    click.echo(f"wrote {index} (open it in a browser)")


@click.command("scenarios")
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
