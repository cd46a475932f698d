"""Partitioners: pure functions `partition(workload, gpu, config) -> Schedule`, one file each."""

from __future__ import annotations

from typing import Callable

from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition import balanced, fa2, flashdecoding, hybrid, streamk, torch_flash
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.workload import DecodeWorkload

STRATEGIES: dict[str, Callable[[DecodeWorkload, GpuSpec, PlanConfig], Schedule]] = {
    "fa2": fa2.partition,
    "flashdecoding": flashdecoding.partition,
    "streamk": streamk.partition,
    "torch-flash": torch_flash.partition,  # a baseline: PyTorch SDPA's flash backend (FA2 CUDA)
    "hybrid": hybrid.partition,  # data-parallel waves + stream-K tail
    "balanced": balanced.partition,  # equal-size KV chunks (FlashInfer-style split-KV)
}
STRATEGY_ALIASES = {"lean": "streamk", "stream-k": "streamk", "flash-decoding": "flashdecoding", "fd": "flashdecoding"}


def canonical_strategy(name: str) -> str:
    key = STRATEGY_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in STRATEGIES:
        raise InputError("strategy", f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)} (alias lean)")
    return key


def plan(strategy: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None) -> Schedule:
    """The Schedule of `strategy` for `workload` on `gpu`."""
    return STRATEGIES[canonical_strategy(strategy)](workload, gpu, config or PlanConfig())


__all__ = ["PlanConfig", "STRATEGIES", "canonical_strategy", "plan"]
