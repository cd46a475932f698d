"""Predictions as records: plan + simulate each strategy for each workload, with speedups.

Every record says where its numbers come from: `profile_source` (calibrated / transferred /
datasheet), `profile_date` for calibrated profiles, and how far to trust it: the error band of its
regime (err_lo_pct..err_hi_pct of predicted / measured - 1) and the measured-time range it implies
(time_lo_us..time_hi_us). `time_us` is one layer on one GPU; `token_attention_us` = layers x
time_us, the attention time of one decode step through the whole model (when the workload comes
from a model with a known layer count). `bound`: "compute" when the attention launch's resident
CTAs are held back by their SMs' tile math (cost.math_bound: verify blocks of many q_len x group
rows, fp8 dequantisation), else "memory".

A model with sliding-window layers (workload.window_layers): `time_us` is its modelled layer (a
full-attention layer if it has one, else a windowed one reading min(context, window) tokens) and
`token_attention_us` sums every layer kind. Strategies that cannot run the workload (the registry's
`unsupported`: an SDPA baseline on a paged or fp8 cache) are left out; `not_modelled` says why.
Capacity fields (simulator/capacity.py) say whether the step's KV cache fits the GPU.
"""

from __future__ import annotations

import math

from attnsim import schema, strategies
from attnsim.errors import InputError
from attnsim.planner.choose import make_plan
from attnsim.plans.plan import Plan
from attnsim.simulator import bands
from attnsim.simulator.capacity import capacity_fields
from attnsim.simulator.cost import math_bound
from attnsim.simulator.engine import SimResult, simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload


def predict_plan(plan: Plan) -> SimResult:
    """The simulated time of a Plan on its GPU (the engine on the very Schedule the kernel launches)."""
    return finite(simulate(plan.schedule, plan.gpu), plan.gpu)


def predict_one(spec: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None) -> SimResult:
    """One layer (the workload's modelled layer) under a strategy or plan spec (`auto` too)."""
    return predict_plan(make_plan(spec, workload.modelled_layer(), gpu, config))


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
    """One record per strategy that can run the workload (default: the registry's defaults);
    speedups against the registry's SPEEDUP_BASES, which are always simulated."""
    wanted = [s for s in dict.fromkeys(strategies.canonical(n) for n in (names or strategies.default_names()))
              if strategies.get(s).unsupported(workload) is None]
    (layer, count), *others = workload.layer_kinds()
    plans = {s: make_plan(s, layer, gpu, config) for s in dict.fromkeys(wanted + list(strategies.SPEEDUP_BASES))}
    results = {s: predict_plan(p) for s, p in plans.items()}
    base = {b: results[b].total_us for b in strategies.SPEEDUP_BASES}
    capacity = capacity_fields(workload, gpu)
    return [{**record(s, results[s], workload, gpu, base,
                      step_us(workload, count * results[s].total_us, others, s, gpu, config)),
             **plan_fields(plans[s].spec), **capacity} for s in wanted]


def plan_fields(spec: str) -> dict:
    """The plan that runs, as an object and as its spec string (attnsim.schema)."""
    return {"plan": schema.plan_object(spec), "plan_spec": spec}


def step_us(workload: DecodeWorkload, first_kind_us: float, others, strategy: str, gpu: GpuSpec,
            config: PlanConfig | None) -> float | None:
    """Attention time of one decode step through the model: every layer kind's time x its layers
    (None: not a model)."""
    if not workload.layers:
        return None
    rest = sum(count * predict_one(strategy, kind, gpu, config).total_us for kind, count in others)
    return round(first_kind_us + rest, 1)


def not_modelled(workload: DecodeWorkload, names) -> dict[str, str]:
    """{strategy: why it is left out} for the strategies among `names` that cannot run `workload`."""
    reasons = {s: strategies.get(s).unsupported(workload) for s in (strategies.canonical(n) for n in names)}
    return {s: why for s, why in reasons.items() if why}


def workload_fields(workload: DecodeWorkload) -> dict:
    """The workload as record fields (attnsim.schema): `contexts` one length per sequence; null
    page_size = contiguous KV; null layers = not a model (no per-token total); tp = GPUs the
    model's heads are sharded over (the heads are one GPU's)."""
    return {"batch": workload.batch, "q_heads": workload.q_heads, "kv_heads": workload.kv_heads,
            "head_dim": workload.head_dim, "contexts": list(workload.contexts), "q_len": workload.q_len,
            "dtype": workload.dtype, "kv_dtype": workload.cache_dtype, "page_size": workload.page_size or None,
            "tp": workload.tp, "layers": workload.layers,
            "window_tokens": workload.window_tokens or None, "window_layers": workload.window_layers or None}


def provenance(gpu: GpuSpec, family: str | None = None, kv_bytes: float = 0.0) -> dict:
    """Where the numbers come from. With the prediction's cost family and KV bytes: the expected error
    of its regime, from the same residuals as its band (simulator.bands.expected), and `family_source`,
    "not calibrated" for a family whose costs are the datasheet model's in a calibrated/transferred profile."""
    if family is None:
        return {"profile_source": gpu.profile_source, "profile_date": gpu.profile_date,
                "expected_error_pct": gpu.expected_error_pct}
    expected = bands.expected(gpu.error_bands, family, kv_bytes, gpu.profile_source)
    return {"profile_source": gpu.profile_source, "profile_date": gpu.profile_date,
            "expected_error_pct": round(expected, 2), "family_source": family_source(gpu, family)}


def family_source(gpu: GpuSpec, family: str) -> str:
    if family in gpu.uncalibrated and gpu.profile_source != "datasheet":
        return "not calibrated"
    return gpu.profile_source


def error_band(res: SimResult, gpu: GpuSpec) -> dict:
    """The prediction's error band (simulator.bands) and the measured-time range it implies."""
    lo, hi = bands.band(gpu.error_bands, res.schedule.attention.family, res.schedule.workload.kv_bytes(),
                        gpu.profile_source)
    t_lo, t_hi = bands.measured_range_us(res.total_us, lo, hi)
    return {"err_lo_pct": round(lo, 2), "err_hi_pct": round(hi, 2), "time_lo_us": round(t_lo, 3),
            "time_hi_us": round(t_hi, 3)}


def record(strategy: str, res: SimResult, workload: DecodeWorkload, gpu: GpuSpec, base: dict,
           token_us: float | None = None) -> dict:
    """`res` simulates the workload's modelled layer; `token_us` is the whole step (step_us)."""
    sched = res.schedule
    return {
        "gpu": gpu.name, "strategy": strategy, **workload_fields(workload), "time_us": round(res.total_us, 3),
        "token_attention_us": token_us,
        **{f"speedup_vs_{b}": round(t / res.total_us, 4) for b, t in base.items()},
        "grid": sched.grid, "splits": sched.splits or None,  # 0: each output cut its own way (stream-K)
        "launches": len(sched.launches),
        "achieved_gbps": round(res.achieved_gbps, 1), "bw_fraction": round(res.bw_fraction, 4),
        "floor_us": round(floor_us(sched.workload, gpu), 3),
        "bound": "compute" if math_bound(gpu, sched, res.launches[0].slots) else "memory",
        **error_band(res, gpu), **provenance(gpu, sched.attention.family, sched.workload.kv_bytes()),
    }
