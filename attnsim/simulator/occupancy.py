"""CUDA occupancy: how many CTAs of a kernel fit on one SM, and which limit binds.

The rules are the driver's (cuda_occupancy.h, as `cudaOccupancyMaxActiveBlocksPerMultiprocessor`
answers them), not the Triton fused-softmax shortcut:
- warps:     floor(max_warps_per_sm / ceil(threads / 32))
- registers: allocated per warp in units of 256, per SM sub-partition (4 on cc >= 7)
- shared:    static + dynamic + 1 KB runtime reserve, rounded up to 128 B, against the carve-out
             (the query assumes the largest carve-out; a preferred carve-out rounds up to a step)
- CTAs:      max_ctas_per_sm
A CTA that cannot launch at all (too many threads, registers or shared memory) gets 0 blocks.
"""

from __future__ import annotations

import functools
import operator
from collections import namedtuple
from dataclasses import dataclass

from attnsim.errors import InputError
from attnsim.simulator.hardware import KB, GpuSpec

LIMITERS = ("warps", "registers", "shared_memory", "blocks")


@dataclass(frozen=True)
class CtaResources:
    """What one CTA of a compiled kernel asks of an SM."""

    threads: int
    regs_per_thread: int
    smem_bytes: int  # static + dynamic, as the launch asks (Triton: metadata.shared)

    @property
    def warps(self) -> int:
        return -(-self.threads // 32)


@dataclass(frozen=True)
class Occupancy:
    blocks_per_sm: int
    limiter: str  # one of LIMITERS, or "cannot_launch: <why>"
    warps_limit: int
    registers_limit: int
    shared_memory_limit: int
    blocks_limit: int
    smem_per_cta_bytes: int  # after the reserve and rounding
    regs_per_warp: int  # after rounding to the allocation unit

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def registers_limit(gpu: GpuSpec, res: CtaResources) -> tuple[int, int, str]:
    """(blocks allowed by registers, registers per warp, failure reason or '')."""
    if res.regs_per_thread > gpu.max_regs_per_thread:
        return 0, 0, f"{res.regs_per_thread} registers per thread > {gpu.max_regs_per_thread}"
    if res.regs_per_thread == 0:  # no register limit (the driver says INT_MAX); never reported as the limiter
        return gpu.max_warps_per_sm // res.warps, 0, ""
    regs_per_warp = _round_up(res.regs_per_thread * 32, gpu.reg_alloc_unit)
    sub = gpu.reg_subpartitions
    if regs_per_warp * _round_up(res.warps, sub) > gpu.regs_per_cta:
        return 0, regs_per_warp, f"{regs_per_warp} registers per warp x {res.warps} warps > {gpu.regs_per_cta} per CTA"
    warps_per_subpartition = (gpu.regs_per_sm // sub) // regs_per_warp
    return (sub * warps_per_subpartition) // res.warps, regs_per_warp, ""


def smem_per_cta(gpu: GpuSpec, smem_bytes: int) -> int:
    """Bytes one CTA takes from the SM: with the runtime reserve, rounded to the allocation unit."""
    return _round_up(smem_bytes + gpu.smem_reserved_per_cta_bytes, gpu.smem_alloc_unit_bytes)


def carveout_bytes(gpu: GpuSpec, preferred_bytes: int | None, per_cta_bytes: int = 0) -> int:
    """The carve-out used: the largest (as the occupancy query assumes) or the smallest step >= preferred;
    a preference too small for one CTA is ignored for the smallest step that holds one (cuda_occupancy.h)."""
    steps = [kb * KB for kb in gpu.smem_carveout_steps_kb]
    if preferred_bytes is None:
        return max(steps)
    return min((s for s in steps if s >= max(preferred_bytes, per_cta_bytes)), default=max(steps))


def shared_memory_limit(gpu: GpuSpec, res: CtaResources, carveout_pref: int | None) -> tuple[int, int, str]:
    """(blocks allowed by shared memory, bytes per CTA, failure reason or '')."""
    per_cta = smem_per_cta(gpu, res.smem_bytes)
    if res.smem_bytes > gpu.smem_per_cta_optin_bytes:
        return 0, per_cta, f"{res.smem_bytes} B shared memory > {gpu.smem_per_cta_optin_bytes} B per CTA"
    return carveout_bytes(gpu, carveout_pref, per_cta) // per_cta, per_cta, ""


# The GpuSpec fields the occupancy rules read. The cache is keyed on these, not on the GpuSpec: specs
# differing only in their costs (every step of a calibration fit) share one hash (name + source), so
# keyed on the spec each lookup compared whole specs, cost and kernel tables included, against every
# cached entry of the same GPU (calibration spent most of its time there).
_CHIP_FIELDS = ("max_warps_per_sm", "max_ctas_per_sm", "max_threads_per_cta", "regs_per_sm", "regs_per_cta",
                "reg_alloc_unit", "max_regs_per_thread", "reg_subpartitions", "smem_per_cta_optin_bytes",
                "smem_reserved_per_cta_bytes", "smem_alloc_unit_bytes", "smem_carveout_steps_kb")
_Chip = namedtuple("_Chip", _CHIP_FIELDS)
_chip_fields = operator.attrgetter(*_CHIP_FIELDS)  # one C call for the tuple (asked per launch planned)


def occupancy(gpu: GpuSpec, res: CtaResources, carveout_pref_bytes: int | None = None) -> Occupancy:
    """Blocks per SM for a CTA shape, exactly as the CUDA occupancy calculator answers."""
    return _occupancy(_Chip._make(_chip_fields(gpu)), res, carveout_pref_bytes)


@functools.lru_cache(maxsize=4096)
def _occupancy(gpu: _Chip, res: CtaResources, carveout_pref_bytes: int | None) -> Occupancy:
    if res.threads <= 0 or res.regs_per_thread < 0 or res.smem_bytes < 0:
        raise ValueError(f"invalid CTA resources {res}")
    warps_limit = gpu.max_warps_per_sm // res.warps
    regs_limit, regs_per_warp, regs_fail = registers_limit(gpu, res)
    smem_limit, per_cta, smem_fail = shared_memory_limit(gpu, res, carveout_pref_bytes)
    limits = {"warps": warps_limit, "registers": regs_limit, "shared_memory": smem_limit,
              "blocks": gpu.max_ctas_per_sm}
    fail = ""
    if res.threads > gpu.max_threads_per_cta:
        fail = f"{res.threads} threads > {gpu.max_threads_per_cta} per CTA"
    fail = fail or regs_fail or smem_fail
    # Ties go to the first limiter in LIMITERS order, as the CUDA calculator reports them.
    limiter = min(LIMITERS, key=lambda name: (limits[name], LIMITERS.index(name)))
    blocks = 0 if fail else limits[limiter]
    return Occupancy(
        blocks_per_sm=blocks, limiter=f"cannot_launch: {fail}" if fail else limiter,
        warps_limit=warps_limit, registers_limit=regs_limit, shared_memory_limit=smem_limit,
        blocks_limit=gpu.max_ctas_per_sm, smem_per_cta_bytes=per_cta, regs_per_warp=regs_per_warp,
    )


def resident_capacity(gpu: GpuSpec, res: CtaResources, carveout_pref_bytes: int | None = None) -> int:
    """CTAs that can be resident at once on the whole GPU (SMs x blocks per SM): the one formula the
    planner, the partitions, the engine's slots, the launcher and the occupancy tables use."""
    return gpu.sm_count * occupancy(gpu, res, carveout_pref_bytes).blocks_per_sm


def check_coresident(grid: int, capacity: int, sm_count: int, what: str = "stream-K") -> None:
    """The one co-residency check: a plan whose CTAs wait on each other (an in-kernel reduction) runs
    only if its whole grid is resident at once."""
    if capacity == 0:
        raise InputError("grid", "the kernel's CTA cannot launch on this GPU (resources too large)")
    if grid > capacity:
        raise InputError("grid", f"{grid} exceeds the resident capacity {capacity} ({sm_count} SMs x "
                                 f"{capacity // sm_count} CTAs/SM); {what} CTAs must be co-resident")
