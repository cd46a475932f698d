"""A plan table's document (attnsim/plantable.py reads it; `attnsim plan --table` writes it): the planner's
choice for every batch x context bucket of one model on one GPU, one section per (page size, KV dtype).

    doc = table_document(workload_for, gpu, batches=[1, 2, 4], contexts=[1024, 4096],
                         sections=[(16, "bfloat16")], options=PlanConfig(), meta={"model": ...})

Each cell is the search of the uniform batch at the bucket's upper edges (plantable.BUCKETING): the plan
`predict --strategy auto` runs there (its spec carries the kernel options the user fixed), its predicted
µs per layer, and whether that batch's KV cache fits the GPU. With batch_invariant=1 every cell holds the
one plan fixed for the model shape (planner/invariant.py), and the section says why (`batch_invariant`).
"""

from __future__ import annotations

from typing import Callable

from attnsim import __version__, plantable
from attnsim.planner.search import search
from attnsim.simulator.capacity import capacity_fields
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import KV_DTYPE_ALIASES, DecodeWorkload

WorkloadFor = Callable[[int, int, int, str], DecodeWorkload]  # (batch, context, page size, KV dtype)


def kv_dtype_names(workload: DecodeWorkload) -> list[str]:
    """The cache dtype's name and every alias that names it (a lookup may use either)."""
    canonical = workload.cache_dtype
    aliases = {a for a, name in KV_DTYPE_ALIASES.items() if name == canonical and a != canonical}
    if not workload.kv_dtype:  # the query's own dtype: also the names meaning "as the query" (auto)
        aliases |= {a for a, name in KV_DTYPE_ALIASES.items() if name == ""}
    return [canonical, *sorted(aliases)]


def cell(workload: DecodeWorkload, gpu: GpuSpec, options: PlanConfig, names) -> dict:
    result = search(workload.modelled_layer(), gpu, options, names)
    chosen = result.chosen
    return {"batch": workload.batch, "context": workload.max_context, "strategy": chosen.strategy,
            "options": dict(chosen.options), "spec": chosen.spec,
            "time_us": round(chosen.time_us, 3), "fits": capacity_fields(workload, gpu)["capacity_warning"] is None}


def section(workload_for: WorkloadFor, gpu: GpuSpec, batches, contexts, page_size: int, kv_dtype: str,
            options: PlanConfig, names=None) -> dict:
    cells = [cell(workload_for(b, c, page_size, kv_dtype), gpu, options, names) for b in batches for c in contexts]
    sample = workload_for(batches[0], contexts[0], page_size, kv_dtype)
    doc = {"page_size": page_size or None, "kv_dtype": sample.cache_dtype, "kv_dtype_names": kv_dtype_names(sample),
           "cells": cells}
    if options.batch_invariant:  # one plan in every cell: say which fixed split size and why
        doc["batch_invariant"] = search(sample.modelled_layer(), gpu, options, names).why
    return doc


def table_document(workload_for: WorkloadFor, gpu: GpuSpec, batches, contexts, sections, options: PlanConfig,
                   meta: dict, names=None) -> dict:
    """The whole table: `sections` are (page size, KV dtype) pairs; `meta` describes the model."""
    return {"schema_version": plantable.SCHEMA_VERSION, "kind": plantable.KIND,
            "generated_by": f"attnsim {__version__} plan --table", "gpu": gpu.name,
            "profile_source": gpu.profile_source, **meta, "bucketing": plantable.BUCKETING,
            "batch_buckets": list(batches), "context_buckets": list(contexts),
            "sections": [section(workload_for, gpu, batches, contexts, page, kv, options, names)
                         for page, kv in sections]}
