"""`attnsim plan --table OUT.json`: the options of a plan table checked at the edge, the table built
(attnsim/planner/table.py) and written atomically; attnsim/plantable.py reads it."""

from __future__ import annotations

import click

from attnsim import limits, pathcheck, strategies
from attnsim.cli.options import check_output_option, check_work, model_shape, workload_inputs
from attnsim.errors import InputError
from attnsim.fileio import write_json
from attnsim.planner.table import table_document
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.partition.options import check_value
from attnsim.units import parse_size, parse_sweep

# Default buckets: powers of two (plantable.BUCKETING: nearest above).
DEFAULT_BATCHES = ",".join(str(2 ** k) for k in range(9))  # 1..256 sequences
DEFAULT_CONTEXTS = ",".join(f"{2 ** k}k" for k in range(8))  # 1k..128k tokens
NOT_WITH_TABLE = {"contexts": "a table is over uniform buckets: --context lists the context buckets",
                  "engine": "--engine and --table exclude each other: a table holds our plans"}


def _buckets(text: str | None, default: str, field: str, maximum: int) -> list[int]:
    return sorted(set(parse_sweep(text or default, field, maximum, limits.MAX_MODELLED_SIMULATIONS)))


def _sections(page_size: str | None, kv_dtype: str | None) -> list[tuple[int, str]]:
    """(page size, KV dtype) pairs: --page-size and --kv-dtype may each list several (comma-separated)."""
    pages = [parse_size(p.strip(), "page-size") for p in page_size.split(",")] if page_size else [0]
    kvs = [k.strip() for k in kv_dtype.split(",")] if kv_dtype is not None else [""]
    if kv_dtype is not None and not all(kvs):
        raise InputError("kv-dtype", f"{kv_dtype!r}: expected a comma-separated list of KV dtypes")
    return [(p, k) for p in dict.fromkeys(pages) for k in dict.fromkeys(kvs)]


def check_table_options(given: dict, fmt: str) -> None:
    """Options that do not apply to a table: one error naming the first."""
    for field, why in NOT_WITH_TABLE.items():
        if given.get(field) is not None:
            raise InputError(field, why)
    if fmt != "table":
        raise InputError("format", "--table writes JSON to its file; --format does not apply")


def check_tune(tune: int | None, table_path: str | None, options: PlanConfig, names) -> None:
    """--tune: a plan table's cells timed on the GPU (bench/tune_table.py); one error naming what excludes it."""
    if tune is None:
        return
    check_value("tune", tune, "tune")
    if table_path is None:
        raise InputError("tune", "times the plans of a plan table's cells: use it with --table (one workload: "
                                 "`attnsim bench --strategies auto:tune=K`)")
    if names:
        raise InputError("tune", "times auto's own candidates; --strategy does not apply")


def write_table(path: str, spec, options: PlanConfig, names, gpu, calibration, workload_kw: dict,
                tune: int | None = None) -> str:
    """Build and write the table (its cells measured on the GPU with `tune`); returns the line to print."""
    check_output_option(path, "table", (".json",), "plan table")
    device = tuning_device() if tune else None  # before any work: a CPU host gets one line
    pathcheck.check_apart(workload_inputs(gpu, calibration, workload_kw), [("table", path)])
    kw = workload_kw
    shape = model_shape(kw["model"], kw["q_heads"], kw["kv_heads"], kw["head_dim"], kw["tp"])
    dtype = (kw["dtype"] or shape.dtype or "float16").lower()
    q_len = parse_size(kw["q_len"], "q-len", maximum=limits.MAX_Q_LEN)
    batches = _buckets(kw["batch"], DEFAULT_BATCHES, "batch", limits.MAX_BATCH)
    contexts = _buckets(kw["context"], DEFAULT_CONTEXTS, "context", limits.MAX_CONTEXT)
    sections = _sections(kw["page_size"], kw["kv_dtype"])

    def workload_for(batch: int, context: int, page: int, kv: str):
        return shape.workload(batch, context, dtype, q_len, page, kv)

    workloads = [workload_for(b, c, p, k) for p, k in sections for b in batches for c in contexts]  # checked here
    check_work(workloads, strategies.names(lambda s: s.planned))
    meta = {"model": {"name": shape.name, "q_heads": shape.q_heads, "kv_heads": shape.kv_heads,
                      "head_dim": shape.head_dim, "tp": shape.tp, "layers": shape.layers, "dtype": dtype,
                      "q_len": q_len},
            "options": {k: v for k, v in options.options().items() if v is not None}}
    doc = table_document(workload_for, spec, batches, contexts, sections, options, meta, names)
    if tune:
        doc = measured_table(doc, workload_for, spec, device, tune)
    write_json(path, doc)
    plans = {c["spec"] for s in doc["sections"] for c in s["cells"]}
    tuned = f", {doc['tuned']['cells_timed']} of them timed on the GPU ({doc['tuned']['plans_per_cell']})" if tune else ""
    return (f"wrote {path}: {len(workloads)} cells ({len(batches)} batches x {len(contexts)} contexts x "
            f"{len(sections)} section(s)){tuned}, {len(plans)} distinct plans; read it with "
            f"attnsim.plantable.load(path).lookup(batch, contexts)")


def tuning_device() -> str:
    """The CUDA device --tune times on, or an InputError naming --tune."""
    from attnsim.bench.run import require_cuda

    try:
        return require_cuda()
    except InputError:
        raise InputError("tune", "times plans on a CUDA GPU and torch sees none here; without --tune the table "
                                 "holds the model's choices") from None


def measured_table(doc: dict, workload_for, spec, device: str, tune: int) -> dict:
    """The table's cells re-chosen on the GPU (bench/tune_table.py), with a progress bar."""
    from attnsim.bench.harness import BenchConfig
    from attnsim.bench.tune_table import tune_table
    from attnsim.kernels import membw

    config = BenchConfig((), spec, device, membw.peak_read_gbps())
    rows = sum(len(s["cells"]) for s in doc["sections"]) * (tune + 1 if doc["options"].get("batch_invariant") else 1)
    with click.progressbar(length=rows, label=f"timing {tune} + 1 plans per cell", file=click.get_text_stream("stderr")) as bar:
        return tune_table(doc, workload_for, config, tune, progress=lambda done, total, label: bar.update(1))


def tune_option(func):
    return click.option("--tune", type=int, default=None,
                        help="With --table, on a GPU: time the model's TUNE fastest plans of every cell and its "
                             "batch-invariant plan (each fp64-checked) and write the fastest measured (auto:tune=TUNE; "
                             "cells too large for the GPU keep the model's choice and say why). With --batch-invariant: "
                             "the model's TUNE best invariant plans timed at every cell, the least mean regret runs in "
                             "all.")(func)


def table_option(func):
    return click.option("--table", "table_path", default=None,
                        help="Write a plan table (JSON) for a serving loop: the choice for every batch x context "
                             "bucket, --batch and --context listing the buckets' upper edges [default: powers of "
                             "two, batch 1..256, context 1k..128k]; --page-size and --kv-dtype may list several "
                             "(a section each). Read it with attnsim.plantable.load(path).lookup(batch, contexts) "
                             "(buckets: nearest above; context: the batch's mean length).")(func)
