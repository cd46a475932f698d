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
(merge_cost.last_arrival_steps of the longest output's non-empty splits, at its last q-block's rows: the
fewest). A
combine launch that merges K partials of one output adds its launch overhead + cta_fixed_us +
ceil(K / MERGE_BLOCK_MAX) x segment_fixed_us (a segment is a load step of up to that many partials).
Partial traffic and other fixed costs only add time.

Tail merge: where every output is split and merged in the launch (Candidate.tail_peers, the fewest
partials an output merges), whichever CTA streams its last K+V (no sooner than K+V / agg(n), nor than
the crowded SMs' stream) ends a piece of a split output, whose merge (a host's, after its last peer's
publication, or the last arrival's) follows: + fixup_fixed_us + fixup_per_peer_us x its load rounds. Not with
sibling q-blocks (verify blocks of more than 64 rows), whose L2 hits may end the stream sooner than agg(n) says.

One wave of exactly n resident CTAs past one per SM, each at least x bytes (Candidate.wave_cta_bytes),
under a per-SM limit: the SMs holding k = ceil(n / S) CTAs end no sooner than the engine's sharing
(sm_wave.py) with every CTA at x (crowded_wave_us), at the engine's rates at their most: its chip rate
B x M / (M + D) (dirty write-back D) at an M no smaller than the launch moves (K+V, block table, and per
segment its q, its write and its host's read of it, for at most n + outputs segments). Fewer bytes on any
CTA only end it sooner. (Sibling q-blocks' L2 hits may speed the engine past these rates: there each SM
streams its k CTAs at most at min(k b, R).)

A candidate whose bound is above best x (1 + tie band) can neither win nor tie, and is not simulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnsim.planner.candidates import Candidate, StrategyContext
from attnsim.simulator import cost, merge_cost, reuse, terms
from attnsim.simulator.hardware import CostParams
from attnsim.simulator.partition import common
from attnsim.simulator.workload import DecodeWorkload

COMBINE_SUFFIX = "-combine"  # a split plan's combine launch bills family + "-combine" (partition files)


@dataclass(frozen=True)
class WaveTraffic:
    """An upper bound on a one-wave launch's chip rate (cost.bandwidth_model): B x M / (M + D) grows with M."""

    hbm_rate: float  # bytes/µs: B with every scale that may speed it
    moved_bytes: float  # K+V and block-table bytes
    segment_bytes: float  # at most what each segment moves besides (common.segment_side_bytes_max)
    dirty_bytes: float  # D


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
    kv_bytes: float  # K + V
    workload: DecodeWorkload
    last_arrival: bool  # host_peers merged by the last arrival (split-KV), not by a host's tree
    sm_count: int
    sm_stream_rate: float  # bytes/µs one SM streams at most (the per-SM limit; 0: none)
    wave_traffic: WaveTraffic | None  # what crowded_us prices a wave's rates by (None: sibling q-blocks)
    # agg(n) and merge steps already worked out, by n and by peers: candidates of an entry share a few
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def lower_bound_us(self, c: Candidate) -> float:
        if c.max_ctas == 0:  # a plan without bounds (a heuristic's outside the entry's candidates): always simulated
            return 0.0
        p, n = self.params, max(1, min(c.max_ctas, self.slots))
        streaming = max(self.moved_bytes / self.aggregate(n), c.cta_bytes / self.cta_rate)
        kv_done = self.kv_bytes / self.aggregate(n)  # no sooner is the last CTA's K+V streamed
        if c.wave_cta_bytes and self.sm_count < c.max_ctas <= self.slots and self.sm_stream_rate > 0:
            crowded = self.crowded_us(c.max_ctas, c.wave_cta_bytes)
            streaming, kv_done = max(streaming, crowded), max(kv_done, crowded)
        if c.host_peers:
            steps = self.merge_steps(c.host_peers)
            streaming = max(streaming, c.peer_bytes / self.cta_rate + p.fixup_fixed_us + p.fixup_per_peer_us * steps)
        if c.tail_peers and self.workload.q_blocks == 1:  # that last CTA's output is split: its merge comes after
            # (tail merge, module docstring; not where sibling q-blocks' L2 hits may stream K+V faster than agg says)
            streaming = max(streaming, kv_done + p.fixup_fixed_us + p.fixup_per_peer_us * self.merge_steps(c.tail_peers))
        bound = p.launch_overhead_us + streaming + p.cta_fixed_us + p.segment_fixed_us
        if c.partials:
            q = self.combine
            bound += q.launch_overhead_us + q.cta_fixed_us + q.segment_fixed_us * -(-c.partials // common.MERGE_BLOCK_MAX)
        return bound

    def crowded_us(self, ctas: int, cta_bytes: float) -> float:
        """Least stream time of the most crowded SMs of one wave of `ctas` CTAs past one per SM, each CTA
        at least `cta_bytes` (module docstring)."""
        traffic = self.wave_traffic
        if traffic is None:  # each of its k CTAs at most at min(k b, R) / k
            crowded = -(-ctas // self.sm_count)
            return crowded * cta_bytes / min(crowded * self.cta_rate, self.sm_stream_rate)
        key = ("wave", ctas)
        if key not in self._memo:
            moved = traffic.moved_bytes + (ctas + self.workload.output_count) * traffic.segment_bytes
            hbm = traffic.hbm_rate * cost.own_share(moved, traffic.dirty_bytes)
            self._memo[key] = cost.BandwidthModel(self.cta_rate, hbm, self.bandwidth.knee, sm_count=self.sm_count,
                                                  sm_stream_rate=self.sm_stream_rate)
        return crowded_wave_us(self._memo[key], ctas, cta_bytes)

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
                                    merge_cost.merge_steps(np.array([peers]), self.params.merge_fanin)[0])
        return self._memo[key]

    def last_arrival_steps(self, merged: int) -> float:
        """Load rounds of a last-arrival merge of `merged` partials at the workload's last q-block (the fewest rows)."""
        last_q_block = self.workload.q_blocks - 1
        return float(merge_cost.last_arrival_steps(self.workload, np.array([last_q_block]), np.array([merged]))[0])


def limits_for(ctx: StrategyContext, family: str) -> LaunchLimits:
    """The limits of the entry's attention launch, whose cost family (`family`) its first planned
    candidate names (schedule.attention.family)."""
    gpu, workload = ctx.gpu, ctx.workload
    params = gpu.cost_for(family)
    gbps = cost.stream_gbps(params, ctx.config.stream_warps or common.resources(ctx.config).warps, workload)
    sm_gbps = params.sm_stream_gbps
    if terms.verify_siblings(workload):  # sibling q-blocks stream faster from L2 (reuse.l2_hit_speedup): at most
        # every later q-block's bytes hit
        speedup = reuse.l2_hit_speedup(params, (workload.q_blocks - 1) / workload.q_blocks)
        gbps, sm_gbps = gbps * speedup, sm_gbps * speedup
    b = gbps * cost.GBPS_TO_BYTES_PER_US
    moved = float(workload.kv_bytes() + workload.io_bytes())
    dirty = cost.write_back_bytes(float(workload.kv_bytes()), params.l2_dirty_fraction, gpu.l2_bytes)
    hbm = gpu.hbm_read_gbps * params.hbm_scale * cost.own_share(moved, dirty) * cost.GBPS_TO_BYTES_PER_US
    return LaunchLimits(family, cost.BandwidthModel(b, hbm, params.bw_knee), b, params,
                        gpu.cost_for(family + COMBINE_SUFFIX), ctx.capacity, moved, float(workload.kv_bytes()), workload,
                        ctx.strategy.last_arrival_merge, gpu.sm_count, sm_gbps * cost.GBPS_TO_BYTES_PER_US,
                        wave_traffic(ctx, params, dirty))


def wave_traffic(ctx: StrategyContext, params: CostParams, dirty: float) -> WaveTraffic | None:
    """None where the engine's streams may run faster than its chip rate says: sibling q-blocks' L2 hits."""
    workload = ctx.workload
    if workload.q_blocks > 1:
        return None
    gbps = ctx.gpu.hbm_read_gbps * params.hbm_scale * (max(1.0, params.paged_hbm_scale) if workload.paged else 1.0)
    moved = float(workload.kv_bytes()) + float(common.index_bytes(workload, ctx.tile, ctx.total_tiles))
    side = common.segment_side_bytes_max(workload, common.outputs(workload, ctx.tile).rows)
    return WaveTraffic(gbps * cost.GBPS_TO_BYTES_PER_US, moved, side, dirty)


def crowded_wave_us(bw: cost.BandwidthModel, ctas: int, cta_bytes: float) -> float:
    """When the SMs holding k = ceil(ctas / S) CTAs (CTA i on SM i % S) end, every CTA at `cta_bytes`, under
    the engine's per-SM sharing at `bw`'s rates (sm_wave.py): they share the chip with the SMs holding
    k - 1, whose CTAs stream no slower and end first; then they stream alone."""
    sms = bw.sm_count
    crowded = -(-ctas // sms)
    holding = [0] * (crowded + 1)
    holding[crowded] = ctas - (crowded - 1) * sms
    holding[crowded - 1] = sms - holding[crowded]
    rates = bw.load_rates(crowded + 1)
    rate = rates(holding)
    if not holding[crowded - 1]:
        return cta_bytes / rate[crowded]
    shared_us = cta_bytes / rate[crowded - 1]
    holding[crowded - 1] = 0
    return shared_us + (cta_bytes - rate[crowded] * shared_us) / rates(holding)[crowded]
