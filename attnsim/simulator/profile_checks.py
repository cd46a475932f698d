"""The ranges every number of a GPU profile must lie in, checked wherever a profile enters.

A profile is data from a file (hand-written, or written by `attnsim calibrate`/a transfer): a string
where a number belongs, NaN, zero where the model divides, or a figure a thousand times any real
GPU's would give NaN or infinite times downstream. These ranges are wide (real GPUs sit far inside
them); their purpose is that an accepted profile gives finite, positive times and bounded plans.
"""

from __future__ import annotations

import math

from attnsim import limits
from attnsim.errors import InputError

# GpuSpec integer fields: (low, high). sm_count x max_ctas_per_sm bounds a persistent grid (65,536).
SPEC_INT_RANGES = {
    "sm_count": (1, 1024),  # B200: 148
    "max_warps_per_sm": (1, 256),  # 64 on every preset
    "max_ctas_per_sm": (1, 64),  # 32 on cc >= 9
    "max_threads_per_sm": (32, 8192),
    "max_threads_per_cta": (32, 8192),  # 1024 on every CUDA GPU
    "regs_per_sm": (1, 1 << 24),
    "regs_per_cta": (1, 1 << 24),
    "reg_alloc_unit": (1, 1 << 16),
    "max_regs_per_thread": (1, 1 << 16),
    "reg_subpartitions": (1, 64),
    "smem_per_sm_bytes": (1, 1 << 30),
    "smem_per_cta_optin_bytes": (1, 1 << 30),
    "smem_reserved_per_cta_bytes": (1, 1 << 30),
    "smem_alloc_unit_bytes": (1, 1 << 20),
    "l2_bytes": (1, limits.MAX_PROFILE_INT),
    "clock_mhz": (1, 100_000),
    "memory_bytes": (0, limits.MAX_PROFILE_INT),  # 0: unknown (no capacity check); B200: 192 GB
    "fast_sms": (0, 1 << 16),  # 0: none modelled; at most sm_count (cross_fields)
}
SPEC_GBPS_RANGE = (1e-3, limits.MAX_GBPS)  # hbm_read_gbps and any other *_gbps field

# CostParams fields: (low, high, low_inclusive). A zero streaming rate, HBM scale or knee divides by
# zero in the bandwidth model (cost.py); a knee below 0.1 overflows its power.
COST_RANGES = {
    "cta_stream_gbps_per_warp": (0.0, limits.MAX_GBPS, False),
    "launch_overhead_us": (0.0, 1e6, True),
    "cta_fixed_us": (0.0, 1e6, True),
    "segment_fixed_us": (0.0, 1e6, True),
    "tile_fixed_us": (0.0, 1e6, True),
    "fixup_fixed_us": (0.0, 1e6, True),
    "fixup_per_peer_us": (0.0, 1e6, True),
    "merge_fanin": (0.0, 1024.0, True),  # < 2: one merge step per peer
    "bw_knee": (0.1, 1e6, True),  # a hard min() fits a huge knee; cost.py divides through so none overflows
    "hbm_scale": (0.0, 4.0, False),
    "l2_dirty_fraction": (0.0, 4.0, True),  # fitted values run slightly above 1
    # tile-math rates divide the cap's cycles (cost.sm_math_rate): zero would be a division by zero
    "mma_flop_per_sm_clock": (0.0, 1e6, False), "dequant_elem_per_sm_clock": (0.0, 1e6, False),
    "fp8_segment_fixed_us": (0.0, 1e3, True), "paged_segment_fixed_us": (0.0, 1e3, True),
    # per-warp rates: 0 is no per-CTA limit (cost.cta_math_rate never divides by it)
    "mma_flop_per_warp_clock": (0.0, 1e6, True), "dequant_elem_per_warp_clock": (0.0, 1e6, True),
    # multiply a rate / a latency: zero would divide by zero or make an L2 hit free
    "wgmma_flop_scale": (0.0, 1e3, False), "l2_hit_latency_ratio": (0.0, 1.0, False),
}

# A compiled kernel's resources (profile `kernels` tables): what the occupancy rules read.
KERNEL_RANGES = {"threads": (1, limits.MAX_THREADS), "regs_per_thread": (0, limits.MAX_REGISTERS),
                 "smem_bytes": (0, limits.MAX_SMEM_BYTES)}


def is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def spec_number(key: str, value, where: str) -> int | float:
    """A numeric GpuSpec field: a finite float for *_gbps, else an integer, within its range."""
    field = f"gpu.{key}"
    if not is_number(value):
        raise InputError(field, f"must be a finite number in {where}, got {value!r}")
    if key.endswith("gbps"):
        low, high = SPEC_GBPS_RANGE
        if not low <= value <= high:
            raise InputError(field, f"must be a positive number in [{low:g}, {high:g}] GB/s in {where}, got {value!r}")
        return float(value)
    low, high = SPEC_INT_RANGES.get(key, (1, limits.MAX_PROFILE_INT))
    if value != int(value) or not low <= value <= high:
        raise InputError(field, f"must be an integer in [{low}, {high:,}] in {where}, got {value!r}")
    return int(value)


def cost_number(family: str, key: str, value, where: str) -> float:
    field = f"gpu.cost.{family}.{key}"
    low, high, inclusive = COST_RANGES.get(key, (0.0, 1e6, True))
    if not is_number(value):
        raise InputError(field, f"must be a finite number in {where}, got {value!r}")
    if value < low or (value == low and not inclusive) or value > high:
        bracket = "[" if inclusive else "("
        raise InputError(field, f"must be in {bracket}{low:g}, {high:g}] in {where}, got {value!r}")
    return float(value)


def kernel_tables(kernels, where: str) -> dict:
    """`kernels`: {key: {threads, regs_per_thread, smem_bytes, ...}}, each resource an integer in range."""
    if not isinstance(kernels, dict):
        raise InputError("gpu.kernels", f"must be a table of tables in {where}")
    for key, entry in kernels.items():
        if not isinstance(entry, dict):
            raise InputError(f"gpu.kernels.{key}", f"must be a table in {where}")
        for name, (low, high) in KERNEL_RANGES.items():
            value = entry.get(name)
            if not is_number(value) or value != int(value) or not low <= value <= high:
                raise InputError(f"gpu.kernels.{key}.{name}",
                                 f"must be an integer in [{low}, {high:,}] in {where}, got {value!r}")
    return kernels


def cross_fields(spec, where: str) -> None:
    """Consistency between fields of a built GpuSpec."""
    pairs = (("max_threads_per_cta", "max_threads_per_sm"), ("smem_per_cta_optin_bytes", "smem_per_sm_bytes"),
             ("regs_per_cta", "regs_per_sm"))
    if spec.fast_sms > spec.sm_count:
        raise InputError("gpu.fast_sms", f"{spec.fast_sms} exceeds sm_count {spec.sm_count} in {where}")
    for small, large in pairs:
        if getattr(spec, small) > getattr(spec, large):
            raise InputError(f"gpu.{small}", f"{getattr(spec, small)} exceeds {large} {getattr(spec, large)} "
                                             f"in {where}")


def claimed_source(spec, where: str) -> None:
    """A profile that says its costs were fitted (calibrated) or carried over (transferred) holds cost
    families: one without any would be labelled so while every prediction used the defaults."""
    if spec.profile_source in ("calibrated", "transferred") and not spec.cost:
        raise InputError("gpu.cost", f"{where} says its cost figures are {spec.profile_source}, but it holds no "
                                     "fitted cost families (gpu.cost is empty); re-run `attnsim calibrate`, or "
                                     "mark it profile_source = \"datasheet\"")


def band_rows_ok(rows) -> bool:
    """An error band per KV-size bin: a non-empty list of [lo, hi] % pairs of finite numbers with
    -100 < lo <= hi (a measured time within the band, t / (1 + lo/100), stays finite and positive)."""
    return isinstance(rows, list) and bool(rows) and all(
        isinstance(r, list) and len(r) == 2 and all(is_number(x) for x in r) and -100 < r[0] <= r[1] for r in rows)


def band_table(key: str, value, where: str) -> dict:
    """An error-band table: families -> list of [lo, hi] pairs of finite numbers with lo <= hi."""
    if value == {}:
        return {}  # no bands measured
    families = value.get("families") if isinstance(value, dict) else None
    if not isinstance(families, dict):
        raise InputError(f"gpu.{key}", f"must be a table with a 'families' table in {where}")
    for family, rows in families.items():
        if not band_rows_ok(rows):
            raise InputError(f"gpu.{key}.families.{family}", f"must be a list of [lo, hi] % pairs with "
                                                             f"-100 < lo <= hi in {where}")
    for family, rows in (value.get("expected_pct") or {}).items():  # the MAPE of the same residuals
        if not (isinstance(rows, list) and rows and all(is_number(r) and 0 <= r < 1e4 for r in rows)):
            raise InputError(f"gpu.{key}.expected_pct.{family}", f"must be a list of % in [0, 10000) in {where}")
    return value
