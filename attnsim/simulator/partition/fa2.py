"""FA2: one CTA per output (sequence, kv-head group, q-block), walking the whole context.

At small batch x heads most SMs idle: 32 outputs on a 132-SM H100 leave 100 SMs without work.
"""

from __future__ import annotations

import numpy as np

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition import common
from attnsim.simulator.schedule import ROLE_COMPLETE, Reductions, Schedule
from attnsim.simulator.workload import DecodeWorkload


def partition(workload: DecodeWorkload, gpu: GpuSpec, config: common.PlanConfig) -> Schedule:
    tile = common.kv_tile_tokens(config)
    outs = common.outputs(workload, tile)
    grid = outs.count
    cta = np.arange(grid)
    segs = common.segment_table(workload, tile, outs, cta, None, np.zeros(grid, np.int64), outs.tiles,
                                np.full(grid, ROLE_COMPLETE))
    launch = common.attention_launch(workload, grid, config, config.family or "fa2", segs, outs.rows,
                                     Reductions.empty(), tile)
    return Schedule("fa2", workload, gpu.name, tile, (launch,), Reductions.empty(), splits=1)
