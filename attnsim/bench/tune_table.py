"""A plan table tuned on the device (`attnsim plan --table OUT.json --tune K`): every cell's plan re-chosen by
measurement, the fastest of the model's K fastest plans (and the batch-invariant one) for the cell's uniform
batch (bench/tune.py).

    doc = tune_table(doc, workload_for, config, k=3)

Each cell that fits the GPU and whose K/V buffers stay under MAX_CELL_BYTES is timed as one bench point
(random inputs, every candidate fp64-checked, `auto:tune=K`); its entry then names the plan that won,
with `time_us` its measured µs, `predicted_us` the model's for that plan, `model_spec` what the model
alone chose, and `tuned` the trials. Other cells keep the model's choice and say why (`tuned`).
A batch-invariant table (`--batch-invariant`) keeps one plan per section, chosen by measurement among the
model's K best invariant plans (bench/tune_invariant.py). The document says how it was tuned (`tuned`:
plans per cell, device, timer, cells timed). A serving loop reads it exactly as a model table
(attnsim/plantable.py): the tuning is done once, offline.
"""

from __future__ import annotations

from typing import Callable

from attnsim.bench import tune_invariant as inv
from attnsim.bench.harness import BenchConfig, run_sweep
from attnsim.bench.results import point_key, spec_label
from attnsim.bench.sweep import padded_kv_bytes
from attnsim.planner.choose import make_plan, planned_name
from attnsim.plans.spec import parse_plan_spec, plan_spec
from attnsim.predict import predict_plan
from attnsim.simulator.partition.options import kernel_shape

MAX_CELL_BYTES = 16e9  # K + V of one timed cell (the sweeps' cap): the reference and inputs must fit beside it


def tuned_spec(options: dict, k: int) -> str:
    """`auto:...,tune=K` with the table's pinned options and kernel shape."""
    return plan_spec(planned_name(), {**options, "tune": k})


def timed_cells(section: dict, workload_for: Callable) -> tuple[list, list]:
    """([(cell, workload)] of the section, the same of the cells to time); the others say why not (`tuned`)."""
    pairs, todo = [], []
    for cell in section["cells"]:
        w = workload_for(cell["batch"], cell["context"], section["page_size"] or 0, section["kv_dtype"]).modelled_layer()
        pairs.append((cell, w))
        if not cell["fits"]:
            cell["tuned"] = "not timed: the bucket's KV cache does not fit the GPU"
        elif padded_kv_bytes(w) > MAX_CELL_BYTES:
            cell["tuned"] = f"not timed: K + V {padded_kv_bytes(w) / 1e9:.1f} GB > {MAX_CELL_BYTES / 1e9:.0f} GB"
        else:
            todo.append((cell, w))
    return pairs, todo


def sweep_rows(todo: list, specs: tuple, config: BenchConfig, progress, **sweep_kw) -> dict:
    """The bench rows of `specs` at the workloads of `todo` [(cell, workload)], by bench point key."""
    return inv.rows_by_point(run_sweep, [w for _, w in todo], specs, config, progress=progress, **sweep_kw)


def run_in_cell(cell: dict, spec: str, w, gpu, measured_us: float | None, **extra) -> None:
    """`cell` runs plan `spec`: `time_us` its measured µs (else the model's), `predicted_us` the model's,
    `model_spec` what the model alone chose."""
    strategy, options = parse_plan_spec(spec)
    predicted = round(predict_plan(make_plan(spec, w, gpu)).total_us, 3)
    cell.update(model_spec=cell["spec"], strategy=strategy.name, options=options.set(), spec=spec,
                predicted_us=predicted, time_us=predicted if measured_us is None else round(float(measured_us), 3),
                **extra)


def tune_table(doc: dict, workload_for: Callable, config: BenchConfig, k: int,
               progress: Callable[[int, int, str], None] | None = None, **sweep_kw) -> dict:
    """`doc` (planner/table.table_document) with its cells re-chosen on the device; sweep_kw: run_sweep's
    prepare / reference (tests). Returns the same document, changed in place."""
    options = dict(doc.get("options", {}))
    invariant = options.pop("batch_invariant", None)
    spec, timed = tuned_spec(options, k), 0
    for section in doc["sections"]:
        pairs, todo = timed_cells(section, workload_for)
        if invariant:
            timed += tune_invariant(section, pairs, todo, config, k, options, spec, progress, **sweep_kw)
            continue
        by_point = sweep_rows(todo, (spec,), config, progress, **sweep_kw)
        for cell, w in todo:
            row = by_point.get(point_key(spec, w), {"status": "no row"})
            if row["status"] != "ok":
                cell["tuned"] = f"not timed: {row['status']}"
                continue
            run_in_cell(cell, spec_label(row), w, config.gpu, row["time_us"], tuned=row["tuned"])  # the plan it ran
            timed += 1
    doc["tuned"] = {"plans_per_cell": (f"the model's {k} best batch-invariant plans and auto:tune={k} (each cell's "
                                       "fastest)" if invariant else
                                       f"the model's {k} fastest and the batch-invariant plan (auto:tune={k})"),
                    "device": config.device_name, "timer": config.timer.name,
                    "cells_timed": timed, "cells": sum(len(s["cells"]) for s in doc["sections"]),
                    "time_us": "measured on the device where a cell was timed (predicted_us: the model's)"}
    return doc


def tune_invariant(section: dict, pairs: list, todo: list, config: BenchConfig, k: int, options: dict, best: str,
                   progress, **sweep_kw) -> int:
    """One section of a batch-invariant table: its one plan chosen by measurement (tune_invariant.py), run in
    every cell (measured time where the cell was timed); returns the cells timed."""
    if not todo:
        return 0
    candidates = inv.invariant_candidates(pairs[0][1], config.gpu, kernel_shape(options), k)
    by_point = sweep_rows(todo, (*candidates, best), config, progress, **sweep_kw)
    chosen, scores = inv.measured_choice(by_point, [w for _, w in todo], candidates, best)
    if chosen is None:  # the model's choice stays, and the section says why
        section["batch_invariant"] += f"; not chosen by measurement: no cell ran every one of {', '.join(candidates)}"
        return 0
    for cell, w in pairs:
        row = by_point.get(point_key(chosen, w), {"status": "not timed"})
        run_in_cell(cell, chosen, w, config.gpu, row["time_us"] if row["status"] == "ok" else None)
    section["batch_invariant"] = inv.describe(chosen, scores, len(todo), best)
    return len(todo)
