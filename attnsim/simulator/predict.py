"""Predictions as records: plan + simulate each strategy for each workload, with speedups.

Every record says where its numbers come from: `profile_source` (calibrated / transferred /
datasheet), `profile_date` for calibrated profiles, and how far to trust it: the error band of its
regime (err_lo_pct..err_hi_pct of predicted / measured - 1) and the measured-time range it implies
(time_lo_us..time_hi_us). `time_us` is one layer on one GPU; `token_attention_us` = layers x
time_us, the attention time of one decode step through the whole model (when the workload comes
from a model with a known layer count). `bound`: "compute" when the attention launch's resident
CTAs are held back by their SMs' tile math (cost.math_bound: verify blocks of many q_len x group
rows, fp8 dequantisation), else "memory".
"""

from __future__ import annotations

import math

from attnsim import schema, strategies
from attnsim.errors import InputError
from attnsim.simulator import bands
from attnsim.resolve import plan, plan_for, resolve
from attnsim.simulator.cost import math_bound
from attnsim.simulator.engine import SimResult, simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload


def predict_one(strategy: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None) -> SimResult:
    return finite(simulate(plan_for(strategy, workload, gpu, config), gpu), gpu)


def finite(result: SimResult, gpu: GpuSpec) -> SimResult:
    """The result, if its time is finite and positive (a checked profile guarantees it; this is the
    last guard before a NaN would reach a table or JSON)."""
    if not (math.isfinite(result.total_us) and result.total_us > 0):
        raise InputError("gpu", f"the profile ({gpu.source}) gives {result.schedule.strategy} a time of "
                                f"{result.total_us} µs; check its cost parameters")
    return result


def floor_us(workload: DecodeWorkload, gpu: GpuSpec) -> float:
    """Physical floor: KV bytes at the profile's HBM read bandwidth."""
    return workload.kv_bytes() / (gpu.hbm_read_gbps * 1e3)


def predict_records(workload: DecodeWorkload, gpu: GpuSpec, names=None,
                    config: PlanConfig | None = None) -> list[dict]:
    """One record per strategy (default: the registry's defaults); speedups against the registry's
    SPEEDUP_BASES, which are always simulated."""
    wanted = [strategies.canonical(s) for s in (names or strategies.default_names())]
    resolved = {s: resolve(s, workload, gpu, config) for s in dict.fromkeys(wanted + list(strategies.SPEEDUP_BASES))}
    results = {s: finite(simulate(plan(r.strategy.name, workload, gpu, r.config), gpu), gpu)
               for s, r in resolved.items()}
    base = {b: results[b].total_us for b in strategies.SPEEDUP_BASES}
    return [{**record(s, results[s], workload, gpu, base), **plan_fields(resolved[s].plan or s)}
            for s in dict.fromkeys(wanted)]


def plan_fields(spec: str) -> dict:
    """The plan that runs, as an object and as its spec string (attnsim.schema)."""
    return {"plan": schema.plan_object(spec), "plan_spec": spec}


def workload_fields(workload: DecodeWorkload) -> dict:
    """The workload as record fields (attnsim.schema): `contexts` one length per sequence; null
    page_size = contiguous KV; null layers = not a model (no per-token total); tp = GPUs the
    model's heads are sharded over (the heads are one GPU's)."""
    return {"batch": workload.batch, "q_heads": workload.q_heads, "kv_heads": workload.kv_heads,
            "head_dim": workload.head_dim, "contexts": list(workload.contexts), "q_len": workload.q_len,
            "dtype": workload.dtype, "kv_dtype": workload.cache_dtype, "page_size": workload.page_size or None,
            "tp": workload.tp, "layers": workload.layers}


def provenance(gpu: GpuSpec) -> dict:
    return {"profile_source": gpu.profile_source, "profile_date": gpu.profile_date,
            "expected_error_pct": gpu.expected_error_pct}


def error_band(res: SimResult, gpu: GpuSpec) -> dict:
    """The prediction's error band (simulator.bands) and the measured-time range it implies."""
    lo, hi = bands.band(gpu.error_bands, res.schedule.attention.family, res.schedule.workload.kv_bytes(),
                        gpu.profile_source)
    t_lo, t_hi = bands.measured_range_us(res.total_us, lo, hi)
    return {"err_lo_pct": round(lo, 2), "err_hi_pct": round(hi, 2), "time_lo_us": round(t_lo, 3),
            "time_hi_us": round(t_hi, 3)}


def record(strategy: str, res: SimResult, workload: DecodeWorkload, gpu: GpuSpec, base: dict) -> dict:
    sched = res.schedule
    return {
        "gpu": gpu.name, "strategy": strategy, **workload_fields(workload), "time_us": round(res.total_us, 3),
        "token_attention_us": round(res.total_us * workload.layers, 1) if workload.layers else None,
        **{f"speedup_vs_{b}": round(t / res.total_us, 4) for b, t in base.items()},
        "grid": sched.grid, "splits": sched.splits or None,  # 0: each output cut its own way (stream-K)
        "launches": len(sched.launches),
        "achieved_gbps": round(res.achieved_gbps, 1), "bw_fraction": round(res.bw_fraction, 4),
        "floor_us": round(floor_us(workload, gpu), 3),
        "bound": "compute" if math_bound(gpu, sched, res.launches[0].slots) else "memory",
        **error_band(res, gpu), **provenance(gpu),
    }
