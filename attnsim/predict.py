"""Predictions as records: plan + simulate each strategy for each workload, with speedups.

Every record says where its numbers come from: `profile_source` (calibrated / transferred /
datasheet, naming the serving terms its plan uses that were not fitted on this GPU: "calibrated;
paging terms at defaults"; `terms` gives each one's status), `profile_date` for calibrated
profiles, and how far to trust it: the error band of its regime (`band_regime`: decode, or the
serving sweeps' regimes, whose measured bands a paged / fp8 / verify row carries) (err_lo_pct..err_hi_pct of predicted / measured - 1) and the measured-time range it implies
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
from attnsim.plans.spec import canonical_spec, spec_strategy
from attnsim.simulator import bands, floor
from attnsim.simulator.capacity import capacity_fields
from attnsim.simulator.cost import math_bound
from attnsim.simulator.engine import SimResult, simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.provenance import RowProvenance, row_provenance
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
    """The physical limit as bench measures it: a pure streaming read of the call's bytes (K + V + q + o) under
    the bench's timer, modelled (simulator/floor.py: the GPU's measured floors fitted, else its datasheet's)."""
    return floor.of_gpu(gpu).us(workload.kv_bytes() + workload.io_bytes())


def predict_records(workload: DecodeWorkload, gpu: GpuSpec, names=None,
                    config: PlanConfig | None = None) -> list[dict]:
    """One record per strategy that can run the workload (`names`: strategy names or plan specs, one a
    strategy; default: the registry's defaults); speedups against the registry's SPEEDUP_BASES as they
    default (always simulated). A spec's options add to `config`'s (make_plan)."""
    specs = {spec_strategy(n): canonical_spec(n) for n in (names or strategies.default_names())}
    wanted = [s for s in specs if strategies.get(s).unsupported(workload) is None]
    (layer, count), *others = workload.layer_kinds()
    plans = {s: make_plan(specs[s], layer, gpu, config) for s in wanted}
    results = {s: predict_plan(p) for s, p in plans.items()}
    # a base given a spec of its own ('fa2:kv_tile_tokens=32') is still compared at its default plan
    bases = {b: results[b] if b in results and specs[b] == b else predict_plan(make_plan(b, layer, gpu, config))
             for b in strategies.SPEEDUP_BASES}
    base = {b: result.total_us for b, result in bases.items()}
    capacity = capacity_fields(workload, gpu)
    return [{**record(s, results[s], workload, gpu, base,
                      step_us(workload, count * results[s].total_us, others, specs[s], gpu, config)),
             **plan_fields(plans[s].spec), **capacity} for s in wanted]


def plan_fields(spec: str) -> dict:
    """The plan that runs, as an object and as its spec string (attnsim.schema)."""
    return {"plan": schema.plan_object(spec), "plan_spec": spec}


def step_us(workload: DecodeWorkload, first_kind_us: float, others, spec: str, gpu: GpuSpec,
            config: PlanConfig | None) -> float | None:
    """Attention time of one decode step through the model: every layer kind's time x its layers
    (None: not a model)."""
    if not workload.layers:
        return None
    rest = sum(count * predict_one(spec, kind, gpu, config).total_us for kind, count in others)
    return round(first_kind_us + rest, 1)


def not_modelled(workload: DecodeWorkload, names) -> dict[str, str]:
    """{strategy: why it is left out} for the strategies among `names` that cannot run `workload`."""
    reasons = {s: strategies.get(s).unsupported(workload) for s in (spec_strategy(n) for n in names)}
    return {s: why for s, why in reasons.items() if why}


def workload_fields(workload: DecodeWorkload) -> dict:
    """The workload as record fields (attnsim.schema): `contexts` one length per sequence; null
    page_size = contiguous KV; null layers = not a model (no per-token total); tp = GPUs the
    model's heads are sharded over (the heads are one GPU's); kv_lora_rank: an MLA layer's latent
    rank (head_dim is then its 576-wide key, kv_heads its one latent head), null otherwise."""
    return {"batch": workload.batch, "q_heads": workload.q_heads, "kv_heads": workload.kv_heads,
            "head_dim": workload.head_dim, "contexts": list(workload.contexts), "q_len": workload.q_len,
            "dtype": workload.dtype, "kv_dtype": workload.cache_dtype, "page_size": workload.page_size or None,
            "tp": workload.tp, "layers": workload.layers,
            "window_tokens": workload.window_tokens or None, "window_layers": workload.window_layers or None,
            "kv_lora_rank": workload.kv_lora_rank or None}


def provenance(res: SimResult, gpu: GpuSpec) -> dict:
    """The prediction's error band, the measured-time range it implies and where its numbers come
    from (source_fields). `band_regime`: "decode", or the serving regimes whose measured bands it carries."""
    sched = res.schedule
    row = row_provenance(gpu, sched.attention.family, sched.workload, sched.workload.kv_bytes())
    lo, hi = row.band_pct
    t_lo, t_hi = bands.measured_range_us(res.total_us, lo, hi)
    return {"err_lo_pct": round(lo, 2), "err_hi_pct": round(hi, 2), "time_lo_us": round(t_lo, 3),
            "time_hi_us": round(t_hi, 3), "band_regime": row.band_regime,
            **source_fields(gpu, row, sched.attention.family, sched.workload.kv_bytes())}


def source_fields(gpu: GpuSpec, row: RowProvenance, family: str | None = None, kv_bytes: float = 0.0) -> dict:
    """Where a plan's numbers come from, term by term (simulator/provenance.py): `terms` is the status
    of each serving term the plan uses (null for decode). With the plan's cost family: the expected
    error of its regime, from the same residuals as its band, and `family_source` ("not calibrated":
    datasheet costs in a calibrated or transferred profile)."""
    out = {"profile_source": row.profile_source, "terms": row.terms, "profile_date": gpu.profile_date,
           "expected_error_pct": gpu.expected_error_pct}
    if family is not None:
        out.update(expected_error_pct=round(expected_pct(gpu, row, family, kv_bytes), 2),
                   family_source=family_source(gpu, family))
    return out


def expected_pct(gpu: GpuSpec, row: RowProvenance, family: str, kv_bytes: float) -> float:
    """The regime's MAPE from the decode bands' residuals (simulator.bands.expected); a serving regime,
    whose bands store no MAPE, the mean of its own band's two bounds."""
    if row.band_regime == "decode":
        return bands.expected(gpu.error_bands, family, kv_bytes, gpu.profile_source)
    lo, hi = row.band_pct
    return (abs(lo) + abs(hi)) / 2.0


def family_source(gpu: GpuSpec, family: str) -> str:
    if family in gpu.uncalibrated and gpu.profile_source != "datasheet":
        return "not calibrated"
    return gpu.profile_source


def record(strategy: str, res: SimResult, workload: DecodeWorkload, gpu: GpuSpec, base: dict,
           token_us: float | None = None) -> dict:
    """`res` simulates the workload's modelled layer; `token_us` is the whole step (step_us)."""
    sched = res.schedule
    floor_time = floor_us(sched.workload, gpu)
    return {
        "gpu": gpu.name, "strategy": strategy, **workload_fields(workload), "time_us": round(res.total_us, 3),
        "token_attention_us": token_us,
        **{f"speedup_vs_{b}": round(t / res.total_us, 4) for b, t in base.items()},
        "grid": sched.grid, "splits": sched.splits or None,  # 0: each output cut its own way (stream-K)
        "launches": len(sched.launches),
        "achieved_gbps": round(res.achieved_gbps, 1), "bw_fraction": round(res.bw_fraction, 4),
        "floor_us": round(floor_time, 3), "vs_floor": round(res.total_us / floor_time, 4),
        "bound": "compute" if math_bound(gpu, sched, res.launches[0].slots) else "memory",
        **provenance(res, gpu),
    }
