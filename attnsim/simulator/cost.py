"""The cost model: what each CTA must stream, how fast a set of CTAs streams, and fixed costs.

Units: bytes, microseconds, and rates in bytes/µs (1 GB/s = 1e3 bytes/µs).

Bandwidth sharing. One CTA alone streams at b = warps x cta_stream_gbps_per_warp (latency-bound:
bytes in flight / latency). n CTAs together stream at

    agg(n) = B * u / (1 + u^p)^(1/p),   u = n * b / B,

a smooth min(n * b, B) whose knee sharpness p is a profile parameter (p -> inf is the hard
min; p ~ 2.5 fits the H100 read-bandwidth anchors: 132 4-warp CTAs reach ~0.62 of B). Every
streaming CTA of a launch gets agg(n) / n.

Dirty L2: KV reads evict dirty lines, whose write-back takes its share of B (bandwidth_model).

Fixed costs (not streaming, the CTA holds its slot): per CTA, per segment, per tile, and for a host
CTA a fix-up per merged partial; per launch, the launch overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnsim.simulator.hardware import CostParams, GpuSpec
from attnsim.simulator.schedule import Launch, Reductions

GBPS_TO_BYTES_PER_US = 1e3


@dataclass(frozen=True)
class BandwidthModel:
    """Per-CTA and aggregate streaming rates of one launch, in bytes/µs."""

    cta_rate: float  # b: one CTA alone
    hbm_rate: float  # B: the whole chip
    knee: float  # p

    def aggregate(self, n_streaming):
        """agg(n) in bytes/µs; accepts scalars or arrays."""
        u = np.asarray(n_streaming, dtype=np.float64) * self.cta_rate / self.hbm_rate
        m = np.maximum(u, 1.0)  # divide through by max(u, 1) so no power overflows for a sharp knee
        return self.hbm_rate * (u / m) / ((1.0 / m) ** self.knee + (u / m) ** self.knee) ** (1.0 / self.knee)

    def per_cta(self, n_streaming):
        n = np.maximum(np.asarray(n_streaming, dtype=np.float64), 1.0)
        return self.aggregate(n) / n


def bandwidth_model(gpu: GpuSpec, launch: Launch) -> BandwidthModel:
    params = gpu.cost_for(launch.family)
    cta_gbps = params.cta_stream_gbps_per_warp * launch.resources.warps
    moved = float(launch.cta_read_bytes.sum() + launch.cta_write_bytes.sum())
    streamed_share = moved / (moved + dirty_write_back_bytes(launch, gpu)) if moved else 1.0
    hbm_gbps = gpu.hbm_read_gbps * params.hbm_scale * streamed_share
    return BandwidthModel(cta_gbps * GBPS_TO_BYTES_PER_US, hbm_gbps * GBPS_TO_BYTES_PER_US, params.bw_knee)


def dirty_write_back_bytes(launch: Launch, gpu: GpuSpec) -> float:
    """Dirty L2 lines an attention launch's KV reads evict: min(KV bytes, dirty L2 bytes).

    Partials (written moments before by peers) and q are L2 hits and evict nothing. The write-back
    shares the HBM (bandwidth_model), not a CTA's latency-bound stream: it costs time only when
    the launch is bandwidth-bound.
    """
    if launch.name != "attention":
        return 0.0
    kv = launch.segments.kv_bytes if launch.segments is not None else launch.cta_read_bytes
    return min(float(kv.sum()), gpu.cost_for(launch.family).l2_dirty_fraction * gpu.l2_bytes)


def cta_work_bytes(launch: Launch) -> np.ndarray:
    """Bytes each CTA streams: reads + writes. float64 [grid]."""
    return launch.cta_read_bytes + launch.cta_write_bytes


def merge_steps(n_peers: np.ndarray, fanin: float) -> np.ndarray:
    """Merge steps on a host's critical path: one per peer, or one per level of a fanin-ary tree
    (P peers + the host's own partial need ceil(log_fanin(P + 1)) levels)."""
    if fanin < 2:
        return n_peers.astype(np.float64)
    return np.ceil(np.log(n_peers + 1.0) / np.log(fanin) - 1e-9)


def cta_fixed_us(params: CostParams, launch: Launch, reductions: Reductions) -> np.ndarray:
    """Non-streaming time of each CTA: prologue/epilogue, per segment, per tile, host fix-ups. [grid]."""
    fixed = (params.cta_fixed_us + params.segment_fixed_us * launch.cta_segments
             + params.tile_fixed_us * launch.cta_tiles).astype(np.float64)
    if launch.name == "attention" and len(reductions):
        hosts = reductions.host_cta >= 0
        n_peers = np.diff(reductions.peer_offsets)[hosts]
        fixup = params.fixup_fixed_us + params.fixup_per_peer_us * merge_steps(n_peers, params.merge_fanin)
        fixed = fixed + np.bincount(reductions.host_cta[hosts], weights=fixup, minlength=launch.grid)
    return fixed
