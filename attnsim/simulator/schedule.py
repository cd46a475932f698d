"""The plan: plain frozen data that says which CTA does which KV tiles, and who merges what.

A `Schedule` is produced once by a partitioner (`simulator/partition/`) and consumed twice: the
engine simulates it, the Triton launchers turn it into index tensors. Tables are numpy arrays made
read-only, so a Schedule is as immutable as the frozen dataclass around it.

Terms
- output: one (sequence, kv_head) pair; its `group` q-heads are packed into one query tile.
- tile: `kv_tile_tokens` consecutive tokens of one output's K and V; the last one may be short.
- segment: a run of consecutive tiles of one output processed by one CTA.
- reduction: an output whose tiles are split over several CTAs; its partials (O, max, sum) are
  merged by a host CTA in-kernel (stream-K) or by a separate combine launch (FlashDecoding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.workload import DecodeWorkload

ROLE_COMPLETE, ROLE_PEER, ROLE_HOST = 0, 1, 2  # what a segment does with its result
# Reductions.host_cta of an output merged in the attention launch by whichever peer finishes last
# (an arrival counter: no CTA waits); -1 is a combine launch, >= 0 a host CTA that waits for its peers.
LAST_ARRIVAL = -2


def offsets_from_counts(counts) -> np.ndarray:
    """CSR row pointers [0, c0, c0 + c1, ...] of a count array. int64 [len(counts) + 1]."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.add.accumulate(counts, dtype=np.int64, out=out[1:])  # np.cumsum's sums, without its Python wrapper
    return out


def frozen_array(values, dtype=np.int64) -> np.ndarray:
    """A read-only contiguous array; an array already of that dtype and layout is frozen in place."""
    arr = np.ascontiguousarray(values, dtype)
    arr.setflags(False)  # write=False (positional: half the call's cost; tens of calls per plan)
    return arr


@dataclass(frozen=True, eq=False)
class SegmentTable:
    """One row per segment, sorted by (cta, processing order). All arrays: int64 [n_segments]."""

    cta: np.ndarray
    seq: np.ndarray
    kv_head: np.ndarray
    q_block: np.ndarray  # which Q_BLOCK_ROWS rows of the packed (q_len x group) query tile
    first_tile: np.ndarray
    n_tiles: np.ndarray
    role: np.ndarray  # ROLE_COMPLETE | ROLE_PEER | ROLE_HOST
    kv_bytes: np.ndarray  # K+V bytes this segment reads (short last tiles counted exactly)

    def __len__(self) -> int:
        return len(self.cta)

    def offsets(self, grid: int) -> np.ndarray:
        """CSR row pointers: segments of CTA i are rows offsets[i]:offsets[i+1]. int64 [grid + 1]."""
        return np.searchsorted(self.cta, np.arange(grid + 1))


@dataclass(frozen=True, eq=False)
class Reductions:
    """Outputs split across CTAs. Row r merges the partials of peers[peer_offsets[r]:peer_offsets[r+1]].

    host_cta[r] is the attention-launch CTA that merges in-kernel, -1 when a combine launch
    merges (then every contributing CTA is listed as a peer), or LAST_ARRIVAL when the peer that
    finishes last merges (every CTA that arrives at the output's counter is a peer).
    peer_done_bytes[k] is how many bytes peer k has streamed when its partial for row r is written
    (the engine's dependency point).
    """

    seq: np.ndarray  # int64 [n_reductions]
    kv_head: np.ndarray
    q_block: np.ndarray
    host_cta: np.ndarray
    peer_offsets: np.ndarray  # int64 [n_reductions + 1]
    peer_cta: np.ndarray  # int64 [n_peers]
    peer_done_bytes: np.ndarray  # float64 [n_peers]

    def __len__(self) -> int:
        return len(self.seq)

    def peers_of(self, row: int) -> np.ndarray:
        return self.peer_cta[self.peer_offsets[row]:self.peer_offsets[row + 1]]

    @staticmethod
    def empty() -> "Reductions":
        return _EMPTY_REDUCTIONS  # immutable, so one instance serves every plan


_Z = frozen_array([])
_EMPTY_REDUCTIONS = Reductions(_Z, _Z, _Z, _Z, frozen_array([0]), _Z, frozen_array([], np.float64))


@dataclass(frozen=True, eq=False)
class Launch:
    """One kernel launch: its grid, CTA shape and per-CTA work (arrays [grid], in launch order)."""

    name: str  # "attention" or "combine"
    family: str  # cost-parameter family (GpuSpec.cost_for)
    grid: int
    resources: CtaResources
    cta_read_bytes: np.ndarray  # float64: KV + q + partials read
    cta_write_bytes: np.ndarray  # float64: O or partials written
    cta_tiles: np.ndarray  # int64: KV tiles processed
    cta_segments: np.ndarray  # int64: segments processed (a combine launch: partials merged)
    segments: SegmentTable | None = None  # attention launches only
    # The family whose fixup terms price a last-arrival merge in this launch (None: `family`'s own);
    # stream-K's epilogue=last borrows split-KV's (partition/streamk_last.py says why).
    merge_family: str | None = None
    # Query rows the kernel's tile math computes per KV token when its code fixes them (FA2's CUDA
    # kernels: kBlockM, whatever the decode group); 0: the workload's packed rows (our kernels,
    # workload.query_tile_rows). Non-zero puts the launch under the tile-math cap (cost.math_capped).
    tile_rows: int = 0
    # The cost family whose tile-math rate (mma, softmax) the kernel's SMs run at; "": its own. FA2's
    # split kernel runs its unsplit kernel's tile loop (one code, the same mma.sync and softmax per
    # score; only kBlockM and kBlockN differ), so it bills that family's rate: one rate, fitted on both.
    math_family: str = ""
    # The warps whose per-warp stream rate one CTA streams at (PlanConfig.stream_warps: our kernels' default
    # warps scaled by their K/V bytes in flight); 0: its own warps (cost.cta_stream_gbps).
    stream_warps: float = 0.0


@dataclass(frozen=True, eq=False)
class Schedule:
    """Everything a strategy plans for one workload on one GPU."""

    strategy: str
    workload: DecodeWorkload
    gpu_name: str
    kv_tile_tokens: int
    launches: tuple[Launch, ...]
    reductions: Reductions
    splits: int  # KV splits per output (FlashDecoding); 1 for FA2; 0 for stream-K (varies)
    notes: dict = field(default_factory=dict)  # e.g. heuristic inputs, high_load, share
    # The plan options that decide this work ({"grid": 264}): planning again with them set gives
    # this Schedule, so they name the concrete plan (attnsim.plans.Plan.spec).
    options: dict = field(default_factory=dict)

    @property
    def attention(self) -> Launch:
        return self.launches[0]

    @property
    def grid(self) -> int:
        return self.attention.grid

    def total_bytes(self) -> float:
        return float(sum(l.cta_read_bytes.sum() + l.cta_write_bytes.sum() for l in self.launches))

    def engine_key(self) -> tuple:
        """All that the engine reads of this schedule but its workload, as a hashable value: every field of every
        launch (segments and resources included) and of the reductions, and the tile. Equal keys for one workload
        on one GPU: one simulated result (the planner simulates such plans once). Every field, not a list of
        them, so a field a launch gains later is in it; compared whole, not by a hash of it."""
        return self.kv_tile_tokens, _fingerprint(self.launches), _fingerprint(self.reductions)

    def engine_digest(self) -> tuple:
        """A few numbers of engine_key's (the tile, each launch's name, grid and segment count, the reductions'
        count): equal keys have equal digests, so only plans of one digest need their keys compared (a key
        costs ~60 us of Python, a digest ~2)."""
        shapes = tuple((l.name, l.grid, -1 if l.segments is None else len(l.segments)) for l in self.launches)
        return self.kv_tile_tokens, shapes, len(self.reductions)


def _fingerprint(value):
    """A hashable stand-in for plain frozen data: arrays by dtype, shape and bytes, dataclasses field by field."""
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, value.tobytes()
    if isinstance(value, tuple):
        return tuple(map(_fingerprint, value))
    names = getattr(type(value), "__dataclass_fields__", None)  # (dataclasses.fields: ~3x slower, asked per plan)
    if names is not None:
        return type(value).__name__, tuple(_fingerprint(getattr(value, name)) for name in names)
    return value
