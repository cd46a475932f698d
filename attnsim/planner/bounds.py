"""A cheap lower bound on a candidate's predicted time, without planning it.

The engine's rates never exceed two limits (cost.py): n streaming CTAs together get agg(n), which
grows with n, and one CTA alone gets b (a verify block's: its warps' rate at most l2_hit_speedup faster, every
later sibling q-block's bytes hitting L2; the per-SM limit R alike). So, for a launch of at most n CTAs resident at once
(n = min(CTAs, resident capacity)) that must move at least `moved` bytes,

    time >= launch overhead + max(moved / agg(n), busiest CTA's bytes / b, host path) + CTA fixed,

with agg's bandwidth B taken with the dirty-L2 write-back share of the smallest possible traffic
(the K+V and q/o bytes every plan moves): B grows with the bytes moved, and moved / agg(n) grows
with them too, so the bound holds for the real traffic. CTA fixed = cta_fixed_us + segment_fixed_us
(every streaming CTA has a segment). A one-wave launch of a family with a per-SM limit R (sm_wave.py): its
most crowded SM, k CTAs, streams their `sm_bytes` at most at min(k b, R) (the chip's stretch only slows
it). Host path: a host merging P peers waits for a peer that
streams `peer_bytes` first, then pays fixup_fixed_us + fixup_per_peer_us x its merge's load rounds
(cost.last_arrival_steps of the longest output's non-empty splits, at its last q-block's rows: the
fewest). A
combine launch that merges K partials of one output adds its launch overhead + cta_fixed_us +
ceil(K / MERGE_BLOCK_MAX) x segment_fixed_us (a segment is a load step of up to that many partials).
Partial traffic and other fixed costs only add time. A candidate whose bound is above best x
(1 + tie band) can neither win nor tie, and is not simulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnsim.planner.candidates import Candidate, StrategyContext
from attnsim.simulator import cost, reuse, terms
from attnsim.simulator.hardware import CostParams
from attnsim.simulator.partition import common
from attnsim.simulator.workload import DecodeWorkload

COMBINE_SUFFIX = "-combine"  # a split plan's combine launch bills family + "-combine" (partition files)


@dataclass(frozen=True)
class LaunchLimits:
    """An entry's attention-launch rates and fixed costs on one workload (bytes/µs, µs)."""

    family: str
    bandwidth: cost.BandwidthModel
    cta_rate: float  # b
    params: CostParams  # the attention launch's
    combine: CostParams  # its combine launch's
    slots: int
    moved_bytes: float  # at least this many bytes: K + V + q + o
    workload: DecodeWorkload
    last_arrival: bool  # host_peers merged by the last arrival (split-KV), not by a host's tree
    sm_count: int
    sm_stream_rate: float  # bytes/µs one SM streams at most (the per-SM limit; 0: none)
    # agg(n) and merge steps already worked out, by n and by peers: candidates of an entry share a few
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def lower_bound_us(self, c: Candidate) -> float:
        if c.max_ctas == 0:  # a plan without bounds (a heuristic's outside the entry's candidates): always simulated
            return 0.0
        p, n = self.params, max(1, min(c.max_ctas, self.slots))
        streaming = max(self.moved_bytes / self.aggregate(n), c.cta_bytes / self.cta_rate)
        if c.sm_bytes and c.max_ctas <= self.slots and self.sm_stream_rate > 0:  # one wave under the per-SM limit
            crowded = -(-n // self.sm_count)  # CTAs on the most crowded SM: together at most min(k b, R)
            sm_rate = min(crowded * self.cta_rate, self.sm_stream_rate)
            streaming = max(streaming, c.sm_bytes / sm_rate)
        if c.host_peers:
            steps = self.merge_steps(c.host_peers)
            streaming = max(streaming, c.peer_bytes / self.cta_rate + p.fixup_fixed_us + p.fixup_per_peer_us * steps)
        bound = p.launch_overhead_us + streaming + p.cta_fixed_us + p.segment_fixed_us
        if c.partials:
            q = self.combine
            bound += q.launch_overhead_us + q.cta_fixed_us + q.segment_fixed_us * -(-c.partials // common.MERGE_BLOCK_MAX)
        return bound

    def aggregate(self, n: int) -> float:
        """agg(n), bytes/µs (cost.BandwidthModel.aggregate)."""
        key = ("aggregate", n)
        if key not in self._memo:
            self._memo[key] = float(self.bandwidth.aggregate(n))
        return self._memo[key]

    def merge_steps(self, peers: int) -> float:
        """Load rounds on the host path of a merge of `peers` partials: the last arrival's, or a host's tree."""
        key = ("merge_steps", peers)
        if key not in self._memo:
            self._memo[key] = float(self.last_arrival_steps(peers) if self.last_arrival else
                                    cost.merge_steps(np.array([peers]), self.params.merge_fanin)[0])
        return self._memo[key]

    def last_arrival_steps(self, merged: int) -> float:
        """Load rounds of a last-arrival merge of `merged` partials at the workload's last q-block (the fewest rows)."""
        last_q_block = self.workload.q_blocks - 1
        return float(cost.last_arrival_steps(self.workload, np.array([last_q_block]), np.array([merged]))[0])


def limits_for(ctx: StrategyContext, family: str) -> LaunchLimits:
    """The limits of the entry's attention launch, whose cost family (`family`) its first planned
    candidate names (schedule.attention.family)."""
    gpu, workload = ctx.gpu, ctx.workload
    params = gpu.cost_for(family)
    warps = ctx.config.stream_warps or common.resources(ctx.config).warps  # as cost.cta_stream_gbps
    gbps = params.cta_stream_gbps_per_warp * warps
    sm_gbps = params.sm_stream_gbps
    if terms.verify_siblings(workload):  # sibling q-blocks stream faster from L2 (reuse.l2_hit_speedup): at most
        # every later q-block's bytes hit; the per-token work left out (cost.cta_stream_gbps: it only slows)
        speedup = reuse.l2_hit_speedup(params, (workload.q_blocks - 1) / workload.q_blocks)
        gbps, sm_gbps = gbps * speedup, sm_gbps * speedup
    elif params.cta_ns_per_token:  # its per-token work, in series
        gbps = 1.0 / (1.0 / gbps + params.cta_ns_per_token / workload.kv_token_bytes)
    b = gbps * cost.GBPS_TO_BYTES_PER_US
    moved = float(workload.kv_bytes() + workload.io_bytes())
    dirty = cost.write_back_bytes(float(workload.kv_bytes()), params.l2_dirty_fraction, gpu.l2_bytes)
    hbm = gpu.hbm_read_gbps * params.hbm_scale * moved / (moved + dirty) * cost.GBPS_TO_BYTES_PER_US
    return LaunchLimits(family, cost.BandwidthModel(b, hbm, params.bw_knee), b, params,
                        gpu.cost_for(family + COMBINE_SUFFIX), ctx.capacity, moved, workload,
                        ctx.strategy.last_arrival_merge, gpu.sm_count, sm_gbps * cost.GBPS_TO_BYTES_PER_US)
