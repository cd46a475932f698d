"""Partitioners: pure functions `partition(workload, gpu, config) -> Schedule`, one file each.

Strategies are looked up in the registry (`attnsim.strategies`); `attnsim.plans` fills a plan's
configuration and calls the partitioner.
"""

from attnsim.simulator.partition.common import PlanConfig

__all__ = ["PlanConfig"]
