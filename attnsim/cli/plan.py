"""`attnsim plan`: the planner's choice for a workload, its tie band, runners-up and what each
production heuristic would choose (attnsim/planner)."""

from __future__ import annotations

import click

from attnsim import schema, strategies
from attnsim.cli.options import (check_option_values, build_workloads, check_format, check_work, gpu_option,
                                 gpu_spec, positive_or_none, workload_options)
from attnsim.cli.plan_table import check_table_options, check_tune, table_option, tune_option, write_table
from attnsim.planner.candidates import pins_of
from attnsim.planner.engines import ENGINES, PLANS_PER_ENGINE, engine_advice, parse_engines
from attnsim.reports.engine_report import advice_data, advice_text
from attnsim.reports.plan_report import result_data, result_text
from attnsim.planner.search import search
from attnsim.simulator.capacity import capacity_fields
from attnsim.simulator.partition.common import PlanConfig

OPTION_FLAGS = {"kv_tile_tokens": "kv-tile", "chunk_tokens": "chunk", "dp_outputs": "dp-outputs"}  # names in messages


@click.command("plan")
@gpu_option
@workload_options
@click.option("--strategy", "--strategies", "strategy_text", default=None,
              help=f"Search only these plans (comma-separated) [default: {', '.join(strategies.candidates())}].")
@click.option("--splits", default=None, help="Pin the split count (split-KV plans only).")
@click.option("--grid", default=None, help="Pin the grid (persistent plans; balanced: its chunk's grid target).")
@click.option("--dp-outputs", default=None, help="Pin the data-parallel outputs (hybrid).")
@click.option("--chunk", default=None, help="Pin the chunk in tokens (balanced split-KV).")
@click.option("--kv-tile", default=None, help="KV tokens per tile (default: the kernel's 16 KB K tile).")
@click.option("--batch-invariant", is_flag=True,
              help="Only plans whose split boundaries depend on each sequence alone (a fixed chunk).")
@click.option("--engine", "engine_text", default=None,
              help=f"What to set in a serving engine ({', '.join(ENGINES)}; comma-separated): its own split rule "
                   "and its knob's values, predicted on our kernels against the choice.")
@table_option
@tune_option
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def plan_command(gpu, calibration, strategy_text, splits, grid, dp_outputs, chunk, kv_tile, batch_invariant,
                 engine_text, table_path, tune, fmt, **workload_kw):
    """Choose the plan with the model: search every candidate plan of our kernels and print the choice.

    \b
    Prints the chosen plan (strategy, grid/splits/chunk, launches), its predicted time and fraction
    of HBM bandwidth, why it was chosen (the fastest predicted; the plans within its tie band, the model's
    expected error, are named as ties, with the simplest of them), the runners-up, what FA2 / FA3 /
    FlashInfer / Lean / SGLang / CUTLASS rules would choose and their regret, and the modelled
    third-party backends. `--format json` is the plan in full (attnsim/schema.py); `attnsim
    predict/bench --strategy auto` runs the same choice. --engine says what to set in a serving
    engine; --table writes the choices over batch x context buckets for a serving loop.

    \b
    Examples:
      attnsim plan --gpu h200 --batch 1 --q-heads 32 --kv-heads 8 --context 4k
      attnsim plan --gpu h200 --model llama-3.1-70b --batch 8 --context 32k,128k --format json
      attnsim plan --gpu h200 --contexts 1000,50000,3000 --q-heads 32 --kv-heads 8
      attnsim plan --gpu h200 --context 64k --strategy streamk,hybrid --grid 132
      attnsim plan --gpu h200 --contexts 512,9000,70000 --batch-invariant
      attnsim plan --gpu h200 --model llama-3.1-70b --tp 8 --batch 16 --page-size 16 --context 32k --engine sglang
      attnsim plan --gpu h200 --model llama-3.1-70b --tp 8 --page-size 16 --kv-dtype bf16,fp8 --table t.json
      attnsim plan --gpu h200 --model llama-3.1-70b --tp 8 --table t.json --tune 3     # on the GPU: cells measured
    """
    check_format(fmt, ("table", "json"))
    names = strategies.parse_list(strategy_text) if strategy_text else None
    options = PlanConfig(splits=positive_or_none(splits, "splits"), grid=positive_or_none(grid, "grid"),
                         dp_outputs=positive_or_none(dp_outputs, "dp-outputs"),
                         chunk_tokens=positive_or_none(chunk, "chunk"), kv_tile_tokens=positive_or_none(kv_tile, "kv-tile"),
                         batch_invariant=1 if batch_invariant else None)
    check_option_values(options, OPTION_FLAGS)
    check_tune(tune, table_path, options, names)
    if table_path is not None:
        check_table_options({**workload_kw, "engine": engine_text}, fmt)
        click.echo(write_table(table_path, gpu_spec(gpu, calibration), options, names, gpu, calibration, workload_kw,
                               tune))
        return
    engines = parse_engines(engine_text) if engine_text is not None else ()
    workloads = build_workloads(**workload_kw)
    check_work(workloads, strategies.names(lambda s: s.planned), PLANS_PER_ENGINE * len(engines))  # a search each
    spec = gpu_spec(gpu, calibration)
    if options.batch_invariant and not pins_of(options):  # the one slow step of `plan` (seconds a shape)
        click.echo("batch-invariant: choosing the fixed plan of each model shape over its batch x context grid "
                   "(a few seconds a shape, once)", err=True)
    results = [search(w.modelled_layer(), spec, options, names) for w in workloads]  # a window: see step_lines
    advice = [[engine_advice(e, r, options) for e in engines] for r in results]
    if fmt == "json":
        data = [{**result_data(r), "step": step_data(w, spec),
                 **({"engines": [advice_data(a) for a in adv]} if engines else {})}
                for r, w, adv in zip(results, workloads, advice)]
        click.echo(schema.document_text(schema.document("plans", data)))
    else:
        click.echo("\n\n".join("\n".join([result_text(r), *step_lines(w, spec), *("\n" + advice_text(a) for a in adv)])
                               for r, w, adv in zip(results, workloads, advice)))


def step_data(workload, spec) -> dict:
    """The model's whole step: its layers, sliding window and whether its KV cache fits the GPU."""
    return {"layers": workload.layers, "window_tokens": workload.window_tokens or None,
            "window_layers": workload.window_layers or None, **capacity_fields(workload, spec)}


def step_lines(workload, spec) -> list[str]:
    """What the plan above leaves out of the step: windowed layers (planned as what they read), capacity."""
    lines = []
    if workload.window_layers and len(workload.layer_kinds()) > 1:
        lines.append(f"sliding window: {workload.window_layers} of {workload.layers} layers read min(context, "
                     f"{workload.window_tokens}) tokens; the plan above is for the full-attention layers")
    elif workload.window_layers:
        lines.append(f"sliding window: every layer reads min(context, {workload.window_tokens}) tokens; "
                     "planned for that")
    warning = capacity_fields(workload, spec)["capacity_warning"]
    return lines + ([f"WARNING: the workload does not fit: {warning}"] if warning else [])
