"""`attnsim predict`, `attnsim occupancy`, `attnsim schedule`: the model, no GPU needed."""

from __future__ import annotations

import click

from attnsim import limits, pathcheck, schema, strategies
from attnsim.cli.options import (
    TEXT_SUFFIXES, build_workloads, check_figure_option, check_format, check_output_option, check_plan_options,
    check_spec_flags, check_splits, check_work, chunk_options, epilogue_option, gpu_option, gpu_spec, model_label,
    plan_options, strategy_option, workload_inputs, workload_options,
)
from attnsim.errors import InputError
from attnsim.fileio import json_text, write_text
from attnsim.reports.schedule_text import describe_schedule
from attnsim.reports.tables import format_records
from attnsim.planner.choose import make_plan
from attnsim.plans.spec import parse_spec_list, spec_strategy
from attnsim.simulator.engine import simulate
from attnsim.simulator.occupancy import CtaResources, occupancy as occupancy_of, resident_capacity
from attnsim.predict import finite, not_modelled, predict_records
from attnsim.simulator import capacity
from attnsim.units import parse_size


@click.command()
@gpu_option
@workload_options
@strategy_option()
@click.option("--splits", default=None, help="Split count instead of FA2's heuristic (split-KV strategies).")
@click.option("--grid", default=None, help="Persistent grid size (stream-K; default: resident capacity).")
@epilogue_option
@chunk_options
@click.option("--kv-tile", default=None, help="KV tokens per tile (default: the kernel's 16 KB K tile).")
@click.option("--format", "fmt", default="table", show_default=True, help="table, csv or json.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False),
              help="Also draw speedup vs context (PNG/SVG).")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def predict(gpu, calibration, strategy_text, splits, grid, epilogue, chunk_tokens, max_splits, kv_tile, fmt, plot_path,
            out_path, **workload_kw):
    """Predict decode-attention time of each strategy from the analytic model.

    \b
    Every record says where its numbers come from (profile_source: calibrated, transferred or
    datasheet); the table marks rows of non-calibrated profiles with '*'.

    \b
    Examples:
      attnsim predict --gpu h100 --batch 1 --q-heads 32 --kv-heads 8 --head-dim 128 \\
          --context 1k,4k,16k,64k,128k,256k,512k
      attnsim predict --model llama-3.1-70b --batch 8 --context 32k --format json
      attnsim predict --contexts 1000,50000,3000 --strategy streamk,fa2
      attnsim predict --gpu h200 --context 16k --strategy streamk,hybrid --epilogue last
      attnsim predict --gpu h200 --batch 4 --context 16k --strategy fa2,streamk:grid=198,splitkv:splits=8
      attnsim predict --gpu h200 --context 16k --strategy streamk,balanced --epilogue last --chunk-tokens 512
      attnsim predict --gpu my_gpu.toml --context 64k --plot speedup.png
    """
    check_format(fmt)
    check_output_option(out_path, "out", TEXT_SUFFIXES, "text")
    check_figure_option(plot_path)
    pathcheck.check_apart(workload_inputs(gpu, calibration, workload_kw), [("out", out_path), ("plot", plot_path)])
    plan_specs = parse_spec_list(strategy_text)
    names = tuple(spec_strategy(s) for s in plan_specs)
    options = plan_options(splits, grid, kv_tile, epilogue, chunk_tokens, max_splits)
    check_plan_options(names, options)
    check_spec_flags(plan_specs, options)
    workloads = build_workloads(**workload_kw)
    names, dropped = runnable(names, workloads)
    check_work(workloads, names)
    spec = gpu_spec(gpu, calibration)
    check_splits(names, workloads, spec, options)
    plan_specs = [s for s in plan_specs if spec_strategy(s) in names]
    records = [r for w in workloads for r in predict_records(w, spec, plan_specs, options)]
    text = format_records(records, fmt, show_plan=any(":" in s for s in plan_specs))
    if plot_path:
        from attnsim.reports.speedup import plot_speedup

        plot_speedup(schema.records_frame(records), plot_path)
    if out_path:
        write_text(out_path, text + "\n")
        click.echo(f"wrote {out_path}: {len(records)} records", err=True)
    else:
        click.echo(text)
    if plot_path:
        click.echo(f"wrote {plot_path}", err=True)
    echo_notes(dropped, records)


def runnable(names, workloads) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the strategies that can run the workloads, {left out: why}); none left is an error."""
    dropped = {s: why for w in workloads for s, why in not_modelled(w, names).items()}
    kept = tuple(n for n in names if n not in dropped)
    if not kept:
        name, why = next(iter(dropped.items()))
        raise InputError("strategy", f"{name} is not modelled on this workload: {why}")
    return kept, dropped


def echo_notes(dropped: dict[str, str], records: list[dict]) -> None:
    """One stderr line per strategy left out, and one if some workloads do not fit the GPU's memory."""
    for name, why in dropped.items():
        click.echo(f"attnsim: note: {name} left out (not modelled): {why}", err=True)
    over = capacity.summary(records)
    if over:
        click.echo(f"attnsim: warning: {over}", err=True)


@click.command()
@gpu_option
@click.option("--threads", required=True, help="Threads per CTA.")
@click.option("--regs", required=True, help="Registers per thread.")
@click.option("--smem", default="0", show_default=True, help="Shared memory per CTA in bytes (static + dynamic).")
@click.option("--carveout", default=None, help="Preferred shared-memory carve-out in bytes (default: the largest).")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def occupancy(gpu, calibration, threads, regs, smem, carveout, fmt):
    """CTAs per SM for a kernel shape, by the CUDA occupancy rules, and the binding limit.

    \b
    Example:
      attnsim occupancy --gpu h100 --threads 128 --regs 96 --smem 40960 --format json
    """
    check_format(fmt, ("table", "json"))
    res = CtaResources(parse_size(threads, "threads", limits.MAX_THREADS),
                       parse_size(regs, "regs", limits.MAX_REGISTERS, minimum=0),
                       parse_size(smem, "smem", limits.MAX_SMEM_BYTES, minimum=0))
    preferred = None if carveout is None else parse_size(carveout, "carveout", limits.MAX_SMEM_BYTES, minimum=0)
    spec = gpu_spec(gpu, calibration)
    occ = occupancy_of(spec, res, preferred)
    result = {"gpu": spec.name, "threads": res.threads, "regs_per_thread": res.regs_per_thread,
              "smem_bytes": res.smem_bytes, **occ.as_dict(),
              "resident_ctas": resident_capacity(spec, res, preferred)}
    if fmt == "json":
        click.echo(json_text(result))
    else:
        click.echo("\n".join(f"{k:>22}: {v}" for k, v in result.items()))
    if occ.blocks_per_sm == 0:
        raise InputError("resources", occ.limiter)


@click.command()
@gpu_option
@workload_options
@strategy_option(default=strategies.SCHEDULE_DEFAULT, help_prefix="One of")
@click.option("--splits", default=None, help="Split count (split-KV strategies).")
@click.option("--grid", default=None, help="Persistent grid size (stream-K).")
@epilogue_option
@chunk_options
@click.option("--kv-tile", default=None, help="KV tokens per tile.")
@click.option("--max-ctas", default=40, show_default=True, help="CTAs listed in the summary.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False), help="Draw the SM timeline (Gantt).")
def schedule(gpu, calibration, strategy_text, splits, grid, epilogue, chunk_tokens, max_splits, kv_tile, max_ctas,
             plot_path, **workload_kw):
    """Who does what: per-CTA tile ranges, hosts and fix-ups, and the simulated timeline.

    \b
    Examples:
      attnsim schedule --strategy streamk --batch 2 --q-heads 8 --context 3000
      attnsim schedule --strategy flashdecoding --context 64k --plot gantt.png
      attnsim schedule --gpu h200 --strategy splitkv:chunk_tokens=512,max_splits=16 --contexts 700,9000
    """
    check_figure_option(plot_path)
    pathcheck.check_apart(workload_inputs(gpu, calibration, workload_kw), [("plot", plot_path)])
    if not 0 <= max_ctas <= limits.MAX_PLAN_CTAS:
        raise InputError("max-ctas", f"must be in [0, {limits.MAX_PLAN_CTAS:,}], got {max_ctas}")
    plan_specs = parse_spec_list(strategy_text)
    names = tuple(spec_strategy(s) for s in plan_specs)
    if len(names) != 1:
        raise InputError("strategy", "schedule shows one strategy; give one name or plan spec")
    options = plan_options(splits, grid, kv_tile, epilogue, chunk_tokens, max_splits)
    check_plan_options(names, options)
    check_spec_flags(plan_specs, options)
    workloads = build_workloads(**workload_kw)
    if len(workloads) != 1:
        raise InputError("context", "schedule takes one context length (or one ragged --contexts)")
    spec = gpu_spec(gpu, calibration)
    check_splits(names, workloads, spec, options)
    runnable(names, workloads)
    plan = make_plan(plan_specs[0], workloads[0].modelled_layer(), spec, options)
    result = finite(simulate(plan.schedule, spec), spec)
    if plot_path:
        from attnsim.reports.timeline import plot_timeline

        limits.check_timeline([result], "plot")
        plot_timeline(result, plot_path, model=model_label(workload_kw["model"]))
    click.echo(describe_schedule(result.schedule, result, max_ctas))
    if plot_path:
        click.echo(f"wrote {plot_path}", err=True)
