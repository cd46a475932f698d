"""Options shared by several subcommands, and their conversion to a workload and GPU spec.

Everything a user types is checked here, before any work: conflicting options are errors (never
silent overrides), strategy names are canonicalised once, output paths are checked up front.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from attnsim import limits, pathcheck, strategies
from attnsim.errors import InputError
from attnsim.plans.plan import check_splits_fill, options_for, plan_config, resolve_plan
from attnsim.plans.spec import parse_plan_spec
from attnsim.profiles import resolve_gpu
from attnsim.scenarios import models
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.partition.options import OPTION_CHOICES, check_value
from attnsim.simulator.workload import DecodeWorkload
from attnsim.units import parse_size, parse_size_list, parse_sweep

TEXT_SUFFIXES = (".txt", ".csv", ".json", ".tsv", ".md", "")  # predict --out: a table, CSV or JSON
DEFAULT_GPU = "h100"
DEFAULT_CONTEXT = "4k"


def gpu_option(func):
    """--gpu and --calibration; commands receive both and pass them to gpu_spec."""
    func = click.option("--calibration", default=None,
                        help="Calibrated profile (JSON from `attnsim calibrate`); 'none' = datasheet figures. "
                             "Default: the profile shipped for the preset (measured, or transferred).")(func)
    return click.option("--gpu", default=None,
                        help=f"GPU preset (h100, h200, a100, l40s, b200) or a .json/.toml profile file "
                             f"[default: {DEFAULT_GPU}, or the GPU of --calibration].")(func)


def gpu_spec(gpu: str | None, calibration: str | None):
    """The profile for --gpu/--calibration; a calibration naming another GPU than --gpu is an error."""
    spec = resolve_gpu(gpu or DEFAULT_GPU, calibration)
    if gpu and calibration and calibration.lower() != "none":
        preset = resolve_gpu(gpu, "none")
        if preset.name != spec.name:
            raise InputError("calibration", f"the profile is for {spec.name}, but --gpu names {preset.name}; "
                                            "drop --gpu or pass a profile of that GPU")
    return spec


def strategy_option(default: str | None = None, help_prefix: str = "Comma-separated"):
    default = default or ",".join(strategies.default_names())
    return click.option("--strategy", "--strategies", "strategy_text", default=default, show_default=True,
                        help=f"{help_prefix}: {strategies.help_list()}.")


DTYPE_NAMES = ["float16", "bfloat16", "half", "fp16", "bf16"]  # vLLM's names too; the workload canonicalises


def workload_options(func):
    """--model / --batch / --q-heads / --kv-heads / --head-dim / --context / --contexts / --dtype / --q-len,
    and the serving options --tp / --page-size / --kv-dtype (serving_options)."""
    opts = [
        click.option("--model", default=None, help="Model preset (sets heads, head_dim and layers), e.g. "
                                                   "meta-llama/Llama-3.1-70B, or a Hugging Face config.json path."),
        click.option("--batch", default=None, help="Sequences in the batch [default: 1, or the --contexts count]."),
        click.option("--q-heads", default=None, help="Query heads [default: 32]."),
        click.option("--kv-heads", default=None, help="KV heads (GQA/MQA when fewer than q-heads) [default: q-heads]."),
        click.option("--head-dim", default=None, help="Head dimension [default: 128]."),
        click.option("--context", default=None,
                     help="Context length(s): comma-separated, k/M suffixes (1.5M), start:stop:step ranges "
                          f"(stop included): 1k,64k,512k or 1k:256k:1k [default: {DEFAULT_CONTEXT}]."),
        click.option("--contexts", default=None, help="A ragged batch: one length per sequence, e.g. 1000,50000,3000."),
        click.option("--dtype", default=None, type=click.Choice(DTYPE_NAMES, case_sensitive=False),
                     help="q/o (and KV unless --kv-dtype) dtype [default: the config's torch_dtype, else float16]."),
        click.option("--q-len", default="1", show_default=True,
                     help="New query tokens per sequence: 1 = decode, 2-16 = speculative-decoding verify."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(opts), serving_options(func))


def serving_options(func):
    """--tp, --page-size (alias --block-size), --kv-dtype (alias --kv-cache-dtype)."""
    opts = [
        click.option("--tp", default=None, help="Tensor-parallel GPUs: per GPU q_heads / N and kv_heads / N "
                                                "(one replicated kv-head when N > kv_heads) [default: 1]."),
        click.option("--page-size", "--block-size", "page_size", default=None,
                     help="Paged KV cache: tokens per page (16, 32, 64, 128, 256) [default: contiguous]."),
        click.option("--kv-dtype", "--kv-cache-dtype", "kv_dtype", default=None,
                     help="KV cache dtype: auto (= --dtype), float16, bfloat16 or fp8 (e4m3, per-head scales)."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(opts), func)


def _head_option(value, field: str, from_model: int | None, model: str | None, default: int) -> int:
    """An explicit head option, checked against the model preset when both are given."""
    if value is None:
        return from_model if from_model is not None else default
    parsed = parse_size(value, field, maximum=limits.MAX_HEADS)
    if from_model is not None and parsed != from_model:
        raise InputError(field, f"--{field} {parsed} disagrees with --model {model} ({from_model}); give one of them")
    return parsed


def build_workloads(model, batch, q_heads, kv_heads, head_dim, context, contexts, dtype, q_len, tp=None,
                    page_size=None, kv_dtype=None) -> list[DecodeWorkload]:
    """One workload per context length (or one ragged workload when --contexts is given), each one
    GPU's share of one layer (heads / tp) carrying the model's layer count when it is known."""
    if context is not None and contexts is not None:
        raise InputError("context", "--context and --contexts exclude each other: --context for uniform "
                                    "batches, --contexts for one length per sequence")
    shape = model_shape(model, q_heads, kv_heads, head_dim, tp)
    step = dict(q_len=parse_size(q_len, "q-len", maximum=limits.MAX_Q_LEN),
                dtype=(dtype or shape.dtype or "float16").lower(), kv_dtype=kv_dtype or "",
                page_size=parse_size(page_size, "page-size") if page_size is not None else 0)  # workload: PAGE_SIZES
    if contexts is not None:
        lengths = parse_size_list(contexts, "contexts", limits.MAX_CONTEXT, max_items=limits.MAX_BATCH)
        b = parse_size(batch, "batch", maximum=limits.MAX_BATCH) if batch is not None else len(lengths)
        return [shape.workload(b, lengths, **step)]
    b = parse_size(batch, "batch", maximum=limits.MAX_BATCH) if batch is not None else 1
    # the list is bounded by the work it asks for (check_work); this bound only stops a huge range early
    lengths = parse_sweep(context or DEFAULT_CONTEXT, "context", limits.MAX_CONTEXT, limits.MAX_MODELLED_SIMULATIONS)
    return [shape.workload(b, c, **step) for c in lengths]


def model_shape(model, q_heads, kv_heads, head_dim, tp=None) -> models.ModelShape:
    """The --model preset or config (explicit head options must agree with it), or the raw heads;
    sharded over --tp GPUs."""
    shape = models.from_name(model) if model else None
    qh = _head_option(q_heads, "q-heads", shape and shape.q_heads, model, 32)
    kvh = _head_option(kv_heads, "kv-heads", shape and shape.kv_heads, model, qh)
    hd = _head_option(head_dim, "head-dim", shape and shape.head_dim, model, 128)
    shape = shape or models.ModelShape(f"q{qh}-kv{kvh}-d{hd}", qh, kvh, hd)
    return shape.sharded(parse_size(tp, "tp", maximum=limits.MAX_HEADS)) if tp is not None else shape


def model_label(model: str | None) -> str:
    """What figures call --model: the preset's or the config's name ('' without --model)."""
    return models.from_name(model).name if model else ""


def check_work(workloads: list[DecodeWorkload], names, extra_plans: int = 0) -> None:
    """The command's modelling budget (limits.MAX_MODELLED_OUTPUTS, MAX_MODELLED_SIMULATIONS): speedup
    bases are always modelled, a planner entry (auto) simulates a search's candidates, and a model with
    sliding-window layers each of its layer kinds; `extra_plans` more per workload (an engine's settings)."""
    searched = [n for n in names if strategies.get(n).planned]
    plans = len(set(names) - set(searched) | set(strategies.SPEEDUP_BASES)) + extra_plans
    plans += limits.PLANS_PER_SEARCH if searched else 0
    kinds = [len(w.layer_kinds()) for w in workloads]
    limits.check_simulations(sum(kinds) * plans, "context")
    limits.check_modelled([w.output_count * k for w, k in zip(workloads, kinds)], plans, "workload")


def positive_or_none(value, field: str) -> int | None:
    return None if value is None else parse_size(value, field)


def epilogue_option(func):
    """--epilogue: how stream-K plans (streamk, hybrid) merge outputs that straddle CTAs."""
    return click.option("--epilogue", type=click.Choice(OPTION_CHOICES["epilogue"]), default=None,
                        help="Stream-K merge of straddled outputs: tree (a host CTA waits on its peers; the "
                             "default) or last (the last contributor to arrive merges; merge terms borrowed "
                             "from splitkv until fitted).")(func)


def chunk_options(func):
    """--chunk-tokens / --max-splits: fixed chunks per sequence (balanced; stream-K with --epilogue last)."""
    func = click.option("--max-splits", default=None,
                        help="With --chunk-tokens: a sequence longer than this many chunks is cut into this many "
                             "larger ones.")(func)
    return click.option("--chunk-tokens", default=None,
                        help="Cut every sequence alone into chunks of this many tokens (a multiple of the KV "
                             "tile): balanced, and stream-K with --epilogue last (batch-invariant plans).")(func)


def plan_options(splits=None, grid=None, kv_tile=None, epilogue=None, chunk_tokens=None, max_splits=None) -> PlanConfig:
    """The shared plan flags as a bag of options (each strategy keeps those it declares)."""
    config = PlanConfig(splits=positive_or_none(splits, "splits"), grid=positive_or_none(grid, "grid"),
                        kv_tile_tokens=positive_or_none(kv_tile, "kv-tile"), epilogue=epilogue,
                        chunk_tokens=positive_or_none(chunk_tokens, "chunk-tokens"),
                        max_splits=positive_or_none(max_splits, "max-splits"))
    return check_option_values(config, {"kv_tile_tokens": "kv-tile"})


def check_option_values(config: PlanConfig, flags: dict[str, str] | None = None) -> PlanConfig:
    """Every set option in range (simulator/partition/options.py); `flags` names them as the CLI does."""
    for name, value in config.options().items():
        if name in ("kv_tile_tokens", "splits", "grid", "num_warps", "num_stages", "dp_outputs", "chunk_tokens",
                    "max_splits", "batch_invariant", "tune"):
            check_value(name, value, (flags or {}).get(name, name.replace("_", "-")))
    return config


def check_splits(names, workloads: list[DecodeWorkload], spec, options: PlanConfig) -> None:
    """--splits fits every workload: no split of the longest sequence without a KV tile."""
    if options.splits is None:
        return
    # a planner entry pins its search with --splits: the search checks the pin against each candidate
    for strategy in (strategies.get(n) for n in names if "splits" in strategies.get(n).options
                     and not strategies.get(n).planned):
        for workload in workloads:
            config, _ = plan_config(strategy, workload, spec, options_for(strategy, options))
            # a library baseline's tile is its own: its default plan's
            tile = config.kv_tile_tokens or resolve_plan(strategy, workload, spec).schedule.kv_tile_tokens
            check_splits_fill(workload, options.splits, tile)


def check_plan_options(names, options: PlanConfig) -> None:
    """A strategy option nobody in `names` takes is a mistake, not something to ignore."""
    for option, flag in (("splits", "--splits"), ("grid", "--grid"), ("epilogue", "--epilogue"),
                         ("chunk_tokens", "--chunk-tokens"), ("max_splits", "--max-splits")):
        if getattr(options, option) is not None and not any(option in strategies.get(n).options for n in names):
            takers = strategies.names(lambda s, o=option: o in s.options)
            raise InputError(option.replace("_", "-"), f"{flag} applies to {', '.join(takers)}, "
                                                       f"not to {', '.join(names)}")


def check_spec_flags(plan_specs, options: PlanConfig) -> None:
    """A plan spec's option and the same option's flag must agree ('streamk:grid=198' with --grid 66 is a
    mistake: which one runs?)."""
    flags = options.options()
    for text in plan_specs:
        for name, value in parse_plan_spec(text)[1].set().items():
            if name in flags and flags[name] != value:
                raise InputError(name.replace("_", "-"), f"{text} and --{name.replace('_', '-')} {flags[name]} "
                                                         "disagree; give the option once")


def check_format(fmt: str, allowed=("table", "csv", "json")) -> str:
    if fmt not in allowed:
        raise InputError("format", f"{fmt!r}; choose one of {', '.join(allowed)}")
    return fmt


def check_figure_option(path, field: str = "plot"):
    """A figure path checked before any work: .png or .svg, and writable."""
    if path is None:
        return None
    return pathcheck.check_output_file(path, field, pathcheck.FIGURE_SUFFIXES, "figure")


def check_output_option(path, field: str = "out", suffixes=None, what: str = ""):
    """A file output checked before any work (pathcheck.check_output_file); None passes."""
    return None if path is None else pathcheck.check_output_file(path, field, suffixes, what)


SHIPPED_DATA = Path(__file__).parent.parent / "profiles"  # measured profiles and compiled-kernel tables


def gpu_inputs(gpu, calibration) -> list[pathcheck.Named]:
    """What --gpu/--calibration read, for pathcheck.check_apart: the files they name (each of a
    comma-separated --gpu list), and the shipped profiles a preset's profile or transfer comes from."""
    named = [("--calibration", calibration), ("--gpu", gpu)]
    named += [("--gpu", part.strip()) for part in str(gpu or "").split(",")]
    return named + [("a shipped profile", path) for path in sorted(SHIPPED_DATA.glob("*.json"))]


def workload_inputs(gpu, calibration, workload_kw: dict) -> list[pathcheck.Named]:
    """gpu_inputs and the --model config.json of a command taking workload_options."""
    return gpu_inputs(gpu, calibration) + [("--model", workload_kw.get("model"))]
