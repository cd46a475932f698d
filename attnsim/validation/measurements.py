"""Measurement files -> planned points: one row per (strategy, workload) as `attnsim bench` writes them.

Columns: gpu, strategy, batch, q_heads, kv_heads, head_dim, context, dtype, time_us; optionally
`contexts` (';'-separated lengths of a ragged batch), the serving columns q_len, page_size and
kv_dtype (absent: decode, contiguous, the dtype's KV), and the kernel's own plan inputs (num_warps,
num_stages, kv_tile, registers, smem_bytes, grid, splits) so the prediction plans exactly the work
that ran — through the same resolver the launcher used (attnsim.plans). A row's identity is the
concrete plan it ran (`strategy` + `options`); `requested` says what was asked for (row_spec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from attnsim import csvfile, limits, strategies
from attnsim.errors import InputError
from attnsim.plans.plan import Plan, resolve_plan
from attnsim.plans.spec import parse_plan_spec
from attnsim.simulator.partition.options import KERNEL_FIELDS
from attnsim.simulator.hardware import ALIASES, PRESETS, GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.profile_checks import KERNEL_RANGES
from attnsim.simulator import mla
from attnsim.simulator.workload import PAGE_SIZES, DecodeWorkload

REQUIRED = ("gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "dtype", "time_us")
# Integer columns and their ranges (a workload's own limits; head_dim is checked against HEAD_DIMS later)
INTEGER_COLUMNS = {"batch": limits.MAX_BATCH, "q_heads": limits.MAX_HEADS, "kv_heads": limits.MAX_HEADS,
                   "head_dim": 1024}
_ALIASES = {"registers": ("registers", "n_regs", "regs", "regs_per_thread"),
            "smem_bytes": ("smem_bytes", "shared_memory", "shared_bytes", "smem"),
            "kv_tile_tokens": ("kv_tile_tokens", "kv_tile", "block_n")}
# Integer columns a row may carry (empty cells allowed): the workload's serving fields and the plan
# inputs of the kernel that ran (row_options). Checked by name: a word there was a traceback, and a
# fraction (q_len 2.5) was truncated into another workload without a word.
OPTIONAL_INTEGER_COLUMNS = {
    "q_len": (1, limits.MAX_Q_LEN), "page_size": (0, max(PAGE_SIZES)), "num_warps": (1, 32), "num_stages": (1, 16),
    "grid": (1, limits.MAX_PLAN_CTAS), "splits": (0, limits.MAX_SPLITS),  # splits 0: a plan without splits
    "kv_tile_tokens": (1, limits.MAX_KV_TILE_TOKENS), "registers": KERNEL_RANGES["regs_per_thread"],
    "smem_bytes": KERNEL_RANGES["smem_bytes"], "kv_lora_rank": (0, max(mla.LORA_RANKS)),  # 0: not MLA
}


def load_measurements(path: str | Path, field: str = "measurements") -> pd.DataFrame:
    """The ok rows of a measurements file, every required cell checked (line and column named when
    not): integers without fractions, finite times of at least limits.MIN_MEASURED_US. The frame's
    index is the file's row (csvfile.line_of)."""
    return check_measurement_frame(csvfile.read_csv(path, field, limits.MAX_MEASUREMENT_ROWS), path, field)


def check_measurement_frame(frame: pd.DataFrame, path, field: str = "measurements") -> pd.DataFrame:
    """load_measurements' checks on a frame read elsewhere (a profile's calibration points); `path`
    names where it came from in messages."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(field, f"{path} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise InputError(field, f"{path} has no rows")
    if "status" in frame.columns:  # `attnsim bench` keeps failed or unavailable points as rows
        frame = frame[frame["status"].fillna("ok") == "ok"]
        if frame.empty:
            raise InputError(field, f"{path} has no rows with status ok")
    for column in ("gpu", "strategy", "dtype"):
        csvfile.text_column(frame, column, field, path)
    columns = {c: csvfile.integer_column(frame, c, field, path, 1, high) for c, high in INTEGER_COLUMNS.items()}
    columns["time_us"] = csvfile.number_column(frame, "time_us", field, path, limits.MIN_MEASURED_US,
                                               limits.MAX_MEASURED_US)
    if "predicted_us" in frame.columns:
        columns["predicted_us"] = csvfile.number_column(frame, "predicted_us", field, path, 1e-6,
                                                        limits.MAX_MEASURED_US, optional=True)
    csvfile.lengths_column(frame, "context", field, path)
    if "contexts" in frame.columns:
        csvfile.lengths_column(frame, "contexts", field, path, optional=True)
    for name, (low, high) in OPTIONAL_INTEGER_COLUMNS.items():
        for column in (c for c in _ALIASES.get(name, (name,)) if c in frame.columns):
            csvfile.integer_column(frame, column, field, path, low, high, optional=True)
    columns["strategy"] = frame["strategy"].map(_canonical)
    frame = frame.assign(**columns)
    _refuse_repeats(frame, path, field)
    return frame


SERVING_COLUMNS = ("kv_dtype", "page_size", "q_len")  # a paged / fp8 / verify row and its twin are two points


def _refuse_repeats(frame: pd.DataFrame, path, field: str) -> None:
    """One measurement per (GPU, strategy, plan options, workload): a repeat makes errors and ranks ambiguous."""
    keys = [c for c in ("gpu", "strategy", "options", "requested", *REQUIRED[2:-1], "contexts", *SERVING_COLUMNS)
            if c in frame.columns]
    seen: dict[tuple, int] = {}
    for index, key in zip(frame.index, frame[keys].astype(str).itertuples(index=False)):
        first = seen.setdefault(tuple(key), index)
        if first == index:
            continue
        raise InputError(field, f"{Path(path).name} line {csvfile.line_of(index)} repeats line "
                                f"{csvfile.line_of(first)} (same GPU, strategy, plan and workload); keep one "
                                "measurement per point")


def named_preset(gpu_text: str) -> str | None:
    """The preset a GPU name means ('NVIDIA H100 80GB HBM3' -> 'h100-sxm'), or None."""
    key = str(gpu_text).lower().replace(" ", "-")
    for preset in list(PRESETS) + list(ALIASES):
        if preset in key:
            return ALIASES.get(preset, preset)
    return None


def check_rows_gpu(frame: pd.DataFrame, spec: GpuSpec, path, field: str = "measurements") -> None:
    """Rows measured on a GPU other than the profile's, or on one whose name says no known GPU, are
    refused (see unscorable_rows)."""
    drop_unscorable(frame[frame["strategy"].isin(strategies.REGISTRY)], spec, path, field)


def unscorable_rows(frame: pd.DataFrame, spec: GpuSpec | None = None) -> dict:
    """{index: (column, why)} of the rows the model cannot score: a strategy attnsim does not model
    (a typo, a newer attnsim's); with a preset's profile, a row measured on another GPU or on one whose
    name says no preset: its error would measure the difference between two GPUs, not the model (a
    profile of a custom GPU cannot be told apart, so it takes any row)."""
    found = {}
    for index, name in frame["strategy"].items():
        if name not in strategies.REGISTRY:
            found[index] = ("strategy", f"names strategy {name!r}, which attnsim does not model "
                                        f"({', '.join(strategies.names())})")
    if spec is None or spec.name not in PRESETS:
        return found
    for index, gpu in frame["gpu"].items():
        why = _gpu_mismatch(gpu, spec)
        if why and index not in found:
            found[index] = ("gpu", why)
    return found


def _gpu_mismatch(gpu, spec: GpuSpec) -> str | None:
    preset = named_preset(gpu)
    if preset is None:
        return (f"was measured on {gpu!r}, which names no known GPU ({', '.join(PRESETS)}), but the profile is "
                f"{spec.name}'s; name the GPU in the gpu column or pass a profile of it")
    if preset != spec.name:
        return (f"was measured on {gpu!r}, but the profile is {spec.name}'s; pass --gpu {preset} or keep only that "
                "GPU's rows")
    return None


def drop_unscorable(frame: pd.DataFrame, spec: GpuSpec | None, path, field: str = "measurements",
                    skip: bool = False, hint: str = "") -> tuple[pd.DataFrame, list[dict]]:
    """(the scorable rows, [{line, reason}] of those left out). Without `skip` the first unscorable row
    is refused, naming its line and column (`hint`: how to leave such rows out instead)."""
    found = unscorable_rows(frame, spec)
    if found and not skip:
        index, (column, why) = next(iter(found.items()))
        count = f"; {len(found)} rows cannot be scored" if len(found) > 1 else ""
        raise InputError(f"{field}.{column}", f"{Path(path).name} line {csvfile.line_of(index)} {why}{count}{hint}")
    skipped = [{"line": csvfile.line_of(i), "reason": why} for i, (_, why) in found.items()]
    return frame.drop(index=list(found)), skipped


def skipped_note(skipped: list[dict], path, shown: int = 10) -> str:
    """One line naming the rows left out and why (the first `shown` of them)."""
    listed = "; ".join(f"line {s['line']} {s['reason']}" for s in skipped[:shown])
    rest = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"note: skipped {len(skipped)} row(s) of {Path(path).name} the model cannot score: {listed}{rest}"


def _canonical(name):
    """The registry's name of a known strategy or alias ('lean', 'FA2' -> streamk, fa2); an unknown
    name unchanged, for unscorable_rows to name."""
    try:
        return strategies.canonical(name)
    except InputError:
        return name


def _optional(row, name):
    for col in _ALIASES.get(name, (name,)):
        if col in row and not _is_missing(row[col]):
            return int(row[col])
    return None


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _int(value) -> int:
    return int(float(value))  # a CSV column with gaps reads as floats


def row_workload(row) -> DecodeWorkload:
    contexts = row.get("contexts")
    if not _is_missing(contexts) and ";" in str(contexts):
        context = [int(float(c)) for c in str(contexts).split(";")]
    elif ";" in str(row["context"]):
        context = [int(float(c)) for c in str(row["context"]).split(";")]
    else:
        context = int(float(row["context"]))
    serving = {key: cast(row[key]) for key, cast in (("q_len", _int), ("page_size", _int), ("kv_dtype", str),
                                                     ("kv_lora_rank", _int))
               if key in row and not _is_missing(row[key])}  # bench CSVs from before issue 13 (23: MLA) have none
    return DecodeWorkload.build(int(row["batch"]), int(row["q_heads"]), int(row["kv_heads"]),
                                int(row["head_dim"]), context, dtype=str(row["dtype"]), **serving)


@dataclass(frozen=True, eq=False)
class MeasuredPoint:
    """One measured row and the concrete plan that ran (predicted exactly as planned)."""

    plan: Plan
    time_us: float
    requested: str  # the spec the row asked for ('auto', 'streamk', 'streamk:grid=132')

    @property
    def strategy(self) -> str:
        return self.plan.name

    @property
    def workload(self) -> DecodeWorkload:
        return self.plan.workload


def row_spec(row) -> str:
    """The concrete plan spec a row ran: its strategy and options columns (`attnsim bench` writes the
    resolved plan there, the asked one under `requested`). Rows written before that: an `auto` row's
    choice is its `plan` column, and a plain strategy's options are what the user set."""
    strategy, options = str(row["strategy"]), "" if _is_missing(row.get("options")) else str(row["options"])
    if "requested" not in row and strategies.get(strategy).planned:
        if _is_missing(row.get("plan")):
            raise InputError("plan", f"an {strategy} row without the plan it chose (a `plan` column)")
        return str(row["plan"])
    return strategy + (f":{options}" if options else "")


def row_requested(row) -> str:
    """What the row asked for: its `requested` column, else (older CSVs) its strategy and options."""
    if "requested" in row and not _is_missing(row["requested"]):
        return str(row["requested"])
    options = "" if _is_missing(row.get("options")) else str(row["options"])
    return str(row["strategy"]) + (f":{options}" if options else "")


def row_plan(row, spec: GpuSpec) -> Plan:
    """The plan a row ran, with the compiled resources it recorded (they decided its occupancy).
    A library baseline's grid and splits are what the model assumed it launched when the row was
    written (kernels/torch_baselines.py), not observations: its plan comes from its plan file."""
    strategy, options = parse_plan_spec(row_spec(row), "options")
    workload = row_workload(row)
    if strategy.baseline:
        return resolve_plan(strategy, workload, spec)
    values = options.set()
    if "requested" not in row:  # older rows: what ran is the observed grid / splits where the plan takes them
        values.update({k: v for k in ("grid", "splits") if (v := _optional(row, k)) is not None})
    warps, regs, smem = _optional(row, "num_warps"), _optional(row, "registers"), _optional(row, "smem_bytes")
    given = CtaResources(32 * warps, regs, smem) if None not in (warps, regs, smem) else None
    plan = resolve_plan(strategy, workload, spec, values, given=given)
    # the kernel shape that compiled (tile, warps, stages): pinned where today's defaults differ
    shape = {k: v for k in KERNEL_FIELDS if (v := _optional(row, k)) and v != getattr(plan.config, k)}
    return resolve_plan(strategy, workload, spec, {**values, **shape}, given=given) if shape else plan


def check_observed(row, plan: Plan) -> None:
    """The plan reproduces what the row observed: the same grid and split count (else the row and
    the plan disagree about what ran, and its error would measure that)."""
    for column, planned in (("grid", plan.schedule.grid), ("splits", plan.schedule.splits)):
        seen = _optional(row, column)
        if seen is not None and not plan.strategy.baseline and seen != planned:
            raise InputError(column, f"the row recorded {column} {seen}, but its plan {plan.spec} gives {planned}")


def measured_points(frame: pd.DataFrame, spec: GpuSpec) -> list[MeasuredPoint]:
    """Rows of predictable strategies as MeasuredPoints with the plan each ran (rows of strategies
    the model does not cover, e.g. a baseline not modelled yet, are skipped)."""
    points = []
    for idx, row in frame[frame["strategy"].isin(strategies.predictable())].iterrows():
        try:
            plan = row_plan(row, spec)
            check_observed(row, plan)
            points.append(MeasuredPoint(plan, float(row["time_us"]), row_requested(row)))
        except (InputError, ValueError, OverflowError) as exc:
            raise InputError("measurements", f"line {csvfile.line_of(idx)}: {exc}") from None
    limits.check_modelled([p.workload.output_count for p in points], 1, "measurements")
    return points
