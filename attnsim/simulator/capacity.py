"""KV capacity: does a decode step's KV cache fit on one GPU? (DOMAIN.md section 8)

A GPU of a tensor-parallel group holds, for every attention layer, its shard of the KV heads:
bytes = sum over layer kinds of layers x kv_heads (per GPU) x 2 (K and V) x head_dim x KV element
bytes x tokens held. An MLA layer holds one latent vector per token (kv_lora_rank + rope dims), and
every GPU of the group holds all of it: its latent cache is replicated, not split. A windowed layer holds min(context, window) tokens (engines free the pages that
slid out: vLLM's sliding-window manager), a paged cache whole pages (ceil(context / page) x page).
A workload without a model (no layer count) is checked for its one layer.

The check is a lower bound on what the step needs: weights, activations and the engine's reserve
come on top, so a workload over the GPU's memory cannot run, and one just under it may not either
(`kv_memory_fraction` says how close it is).
"""

from __future__ import annotations

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.workload import DecodeWorkload

GIB = 1 << 30


def held_tokens(workload: DecodeWorkload) -> int:
    """Cached tokens of one layer kind over the batch (whole pages of a paged cache)."""
    if not workload.paged:
        return sum(workload.contexts)
    page = workload.page_size
    return sum(-(-c // page) * page for c in workload.contexts)


def kv_cache_bytes(workload: DecodeWorkload) -> int:
    """K+V bytes one GPU holds for the step: every attention layer (one without a model)."""
    per_token = workload.kv_heads * workload.kv_token_bytes  # MLA: the latent vector, on every GPU of the group
    return sum(per_token * held_tokens(kind) * count for kind, count in workload.layer_kinds())


def capacity_fields(workload: DecodeWorkload, gpu: GpuSpec) -> dict:
    """Record fields: kv_cache_gib (per GPU, all layers), gpu_memory_gib, kv_memory_fraction, and
    capacity_warning (None when the KV fits; the GPU's memory unknown: no check)."""
    held = kv_cache_bytes(workload)
    fields = {"kv_cache_gib": round(held / GIB, 3), "gpu_memory_gib": None, "kv_memory_fraction": None,
              "capacity_warning": None}
    if not gpu.memory_bytes:
        return fields
    fields.update(gpu_memory_gib=round(gpu.memory_bytes / GIB, 1),
                  kv_memory_fraction=round(held / gpu.memory_bytes, 4))
    if held > gpu.memory_bytes:
        fields["capacity_warning"] = warning_text(workload, gpu, held)
    return fields


def warning_text(workload: DecodeWorkload, gpu: GpuSpec, held: int) -> str:
    layers = f"{workload.layers} layers" if workload.layers else "1 layer, no model given"
    return (f"KV cache {held / GIB:,.1f} GiB per GPU ({layers}) > the {gpu.name}'s "
            f"{gpu.memory_bytes / GIB:,.1f} GiB of memory (weights not counted)")


def summary(records: list[dict]) -> str | None:
    """One line for a command's output: how many workloads do not fit, and the worst (None: all fit)."""
    over = {_key(r): r for r in records if r.get("capacity_warning")}
    if not over:
        return None
    seen = {_key(r) for r in records}
    worst = max(over.values(), key=lambda r: r["kv_cache_gib"])
    lengths = worst["contexts"]
    context = lengths[0] if len(set(lengths)) == 1 else f"ragged {len(lengths)}"
    return (f"{len(over)} of {len(seen)} workloads do not fit the GPU's memory; the largest, batch "
            f"{worst['batch']} x context {context} on {worst['gpu']}: {worst['capacity_warning']}")


def _key(record: dict) -> tuple:
    return record["gpu"], record["batch"], tuple(record["contexts"])
