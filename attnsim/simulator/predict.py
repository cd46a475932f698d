"""Predictions as records: plan + simulate each strategy for each workload, with speedups."""

from __future__ import annotations

from dataclasses import replace

from attnsim.simulator.engine import SimResult, simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import PlanConfig, canonical_strategy, plan
from attnsim.simulator.workload import DecodeWorkload

ALL_STRATEGIES = ("fa2", "flashdecoding", "streamk")


def plan_for(strategy: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None):
    """The Schedule the kernel would run: the profile's kernel configuration fills unset options."""
    return plan(strategy, workload, gpu, plan_config_for(strategy, workload, gpu, config or PlanConfig()))


def predict_one(strategy: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None) -> SimResult:
    return simulate(plan_for(strategy, workload, gpu, config), gpu)


def floor_us(workload: DecodeWorkload, gpu: GpuSpec) -> float:
    """Physical floor: KV bytes at the profile's HBM read bandwidth."""
    return workload.kv_bytes() / (gpu.hbm_read_gbps * 1e3)


def plan_config_for(strategy: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig) -> PlanConfig:
    """The config a strategy runs with: options that belong to one strategy (splits, grid) are not
    applied to the others, and a calibrated profile's kernel configuration (tile, warps, compiled
    resources) fills what the user left unset, so the model plans what the kernel launches."""
    config = replace(config, splits=config.splits if strategy in ("flashdecoding", "torch-flash") else None,
                     grid=config.grid if strategy == "streamk" else None)
    measured = gpu.kernel_config(strategy, workload.head_dim, workload.dtype)
    if not measured or config.resources is not None:
        return config
    return replace(
        config, kv_tile_tokens=config.kv_tile_tokens or measured.get("kv_tile_tokens"),
        num_warps=measured.get("num_warps", config.num_warps),
        resources=CtaResources(measured["threads"], measured["regs_per_thread"], measured["smem_bytes"]),
    )


def predict_records(workload: DecodeWorkload, gpu: GpuSpec, strategies=ALL_STRATEGIES,
                    config: PlanConfig | None = None) -> list[dict]:
    """One record per strategy; speedups against fa2 and flashdecoding (always simulated)."""
    config = config or PlanConfig()
    wanted = [canonical_strategy(s) for s in strategies]
    results = {s: predict_one(s, workload, gpu, config)
               for s in dict.fromkeys(wanted + ["fa2", "flashdecoding"])}
    base = {"fa2": results["fa2"].total_us, "flashdecoding": results["flashdecoding"].total_us}
    return [_record(s, results[s], workload, gpu, base) for s in dict.fromkeys(wanted)]


def _record(strategy: str, res: SimResult, workload: DecodeWorkload, gpu: GpuSpec, base: dict) -> dict:
    sched = res.schedule
    return {
        "gpu": gpu.name, "strategy": strategy, "batch": workload.batch, "q_heads": workload.q_heads,
        "kv_heads": workload.kv_heads, "head_dim": workload.head_dim, "context": workload.context_label,
        "dtype": workload.dtype, "time_us": round(res.total_us, 3),
        "speedup_vs_fa2": round(base["fa2"] / res.total_us, 4),
        "speedup_vs_flashdecoding": round(base["flashdecoding"] / res.total_us, 4),
        "grid": sched.grid, "splits": sched.splits, "launches": len(sched.launches),
        "achieved_gbps": round(res.achieved_gbps, 1), "bw_fraction": round(res.bw_fraction, 4),
        "floor_us": round(floor_us(workload, gpu), 3),
    }
