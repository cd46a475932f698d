"""Options shared by several subcommands, and their conversion to a workload and GPU spec."""

from __future__ import annotations

import functools

import click

from attnsim.errors import InputError
from attnsim.scenarios import models
from attnsim.simulator.workload import DecodeWorkload
from attnsim.units import parse_size, parse_size_list


def gpu_option(func):
    """--gpu and --calibration; commands receive both and pass them to resolve_gpu."""
    func = click.option("--calibration", default=None,
                        help="Calibrated profile (JSON from `attnsim calibrate`); 'none' = datasheet figures. "
                             "Default: the measured profile shipped for the preset, if any (h100).")(func)
    return click.option("--gpu", default="h100", show_default=True,
                        help="GPU preset (h100, h200, a100, l40s) or a .json/.toml profile file.")(func)


def workload_options(func):
    """--model / --batch / --q-heads / --kv-heads / --head-dim / --context / --contexts / --dtype / --q-len."""
    opts = [
        click.option("--model", default=None, help="Model preset (sets heads and head_dim), e.g. llama-3.1-8b."),
        click.option("--batch", default="1", show_default=True, help="Sequences in the batch."),
        click.option("--q-heads", default=None, help="Query heads [default: 32]."),
        click.option("--kv-heads", default=None, help="KV heads (GQA/MQA when fewer than q-heads) [default: q-heads]."),
        click.option("--head-dim", default=None, help="Head dimension [default: 128]."),
        click.option("--context", default="4k", show_default=True,
                     help="Context length(s), comma-separated, k/M suffixes: 1k,64k,512k."),
        click.option("--contexts", default=None, help="A ragged batch: one length per sequence, e.g. 1000,50000,3000."),
        click.option("--dtype", default="float16", show_default=True, type=click.Choice(["float16", "bfloat16"])),
        click.option("--q-len", default="1", show_default=True, help="New query tokens per sequence."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(opts), func)


def build_workloads(model, batch, q_heads, kv_heads, head_dim, context, contexts, dtype, q_len) -> list[DecodeWorkload]:
    """One workload per context length (or one ragged workload when --contexts is given)."""
    shape = models.from_name(model) if model else None
    qh = parse_size(q_heads, "q-heads") if q_heads else (shape.q_heads if shape else 32)
    kvh = parse_size(kv_heads, "kv-heads") if kv_heads else (shape.kv_heads if shape else qh)
    hd = parse_size(head_dim, "head-dim") if head_dim else (shape.head_dim if shape else 128)
    ql = parse_size(q_len, "q-len")
    if contexts:
        lengths = parse_size_list(contexts, "contexts")
        b = parse_size(batch, "batch") if batch not in (None, "1") else len(lengths)
        return [DecodeWorkload.build(b, qh, kvh, hd, lengths, ql, dtype)]
    b = parse_size(batch, "batch")
    return [DecodeWorkload.build(b, qh, kvh, hd, c, ql, dtype) for c in parse_size_list(context, "context")]


def positive_or_none(value, field: str) -> int | None:
    return None if value is None else parse_size(value, field)


def check_format(fmt: str, allowed=("table", "csv", "json")) -> str:
    if fmt not in allowed:
        raise InputError("format", f"{fmt!r}; choose one of {', '.join(allowed)}")
    return fmt
