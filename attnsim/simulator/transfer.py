"""Transferring a calibrated profile to a GPU we have not measured.

The model is accurate where it was fitted (H100: 2-5% MAPE per kernel) and poor on a bare
datasheet (34.5% on the H200, issue "Trust on every GPU"), because a datasheet has none of the
fitted cost parameters. A transfer keeps them, each expressed in a unit that carries across GPUs,
and takes what the target chip *is* (SMs, occupancy limits, L2 size, clock, HBM) from its datasheet.

| parameter                                 | rule    | factor                            |
|-------------------------------------------|---------|-----------------------------------|
| hbm_read_gbps (GpuSpec)                   | scaled  | source measured / source datasheet |
| cta_stream_gbps_per_warp, sm_stream_gbps  | carried | 1                                 |
| cta_fixed_us, segment_fixed_us,           | scaled  | source clock / target clock       |
|   tile_fixed_us, fixup_fixed_us,          |         |                                   |
|   fixup_per_peer_us                       |         |                                   |
| launch_overhead_us                        | carried | 1                                 |
| bw_knee, hbm_scale, merge_fanin           | carried | 1                                 |
| l2_dirty_fraction                         | carried | 1 (the target's own l2_bytes)     |
| paged_tile_fixed_us,                      | scaled  | source clock / target clock       |
|   paged_segment_fixed_us,                 |         |                                   |
|   fp8_segment_fixed_us,                   |         |                                   |
|   wide_tile_ns_per_row_token,             |         |                                   |
|   cta_ns_per_token                        |         |                                   |
| paged_hbm_scale                           | carried | 1                                 |
| mma_flop_per_sm_clock,                    | carried | 1 (per clock: the rate follows    |
|   dequant_elem_per_sm_clock,              |         |   the target's clock and SMs)     |
|   softmax_clocks_per_score                |         |                                   |
| mma_flop_per_warp_clock,                  | carried | 1 (per clock: the rate follows    |
|   dequant_elem_per_warp_clock             |         |   the target's clock)             |
| wgmma_flop_scale, l2_hit_latency_ratio    | carried | 1 (ratios of the same SM design)  |
| kernels (compiled registers, smem, warps) | carried | where they can launch on the target |

The physics of each choice:
- hbm_read_gbps: an HBM system reaches a fixed fraction of its pin bandwidth (refresh, row and bank
  turnarounds, the controller's scheduling), a property of the memory controller rather than of the
  pin rate. The H100 read 3,091 of its 3,350 GB/s (0.923); the H200 ~4,500 of 4,800 (0.94).
- cta_stream_gbps_per_warp: one CTA alone is latency-bound, bytes in flight / memory latency. The
  bytes in flight are the kernel's code (the same compiler target builds the same pipeline) and the
  latency is the memory hierarchy's; the same SM and memory generation keep both. Carried with this
  rate and a scaled saturated bandwidth B, the target needs B / rate streaming warps to saturate: a
  faster memory needs more CTAs to reach its peak, which is what the H200 shows. Across
  architectures the latency and the compiler's pipelining differ: still carried (there is no better
  figure without a measurement), reported, and the expected error is wider.
- fixed costs (per CTA, segment, tile, fix-up, merge step): instructions on the SM, a fixed number of
  cycles, so they scale with the SM clock (same clock: factor 1).
- launch_overhead_us: host and driver submission plus the timer's event gap; not SM work. Carried.
- bw_knee, hbm_scale, merge_fanin: dimensionless shapes (the knee's sharpness, this kernel's
  saturated share of hbm_read_gbps, the arity of the kernel's merge tree). Carried.
- l2_dirty_fraction: the share of the L2 that the timer's flush leaves dirty. Carried as a share;
  the target's own l2_bytes turns it into bytes to write back.
- kernels: the compiled configuration (tile, warps, registers, shared memory) of each kernel. Same
  compute capability: the same compiler target emits the same binary, so carried as is. Another
  architecture: carried as the best guess of what will compile (noted in the report); a
  configuration that cannot launch on the target is dropped (the plan then uses its defaults).

A family the source fitted twice (`carried_cost`: shapes held at the datasheet model's physics, the
per-CTA rate, launch and CTA costs fitted) is carried from that fit, with the serving terms of its own
fit (simulator/terms.py: decode calibration never touches them) except those its decode fit moves
(`decode_fields`, strategies.serving_fields_fitted_on_decode: FA2's CUDA kernels fit their tile-math
rate on decode, where it binds, so the carried fit holds its own): the free fit of every parameter
can trade a per-CTA rate against the knee and the saturated share in ways that fit the source's
bandwidth only (validation/physical_fit.py).

Per-term provenance (simulator/provenance.py) carries too: a serving term the source fitted arrives
`transferred` (its values by the rules above), one at its default stays `default`, and the source's
serving-regime bands carry as the decode bands do (widened for another architecture).

How far to trust a transferred profile: its error bands, measured transfers (the source's
`transfer_bands`), and expected_error_pct from the same residuals (their MAPE); EXPECTED_MARGIN_PCT
only where no transfer was measured.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from attnsim.errors import InputError
from attnsim.simulator import bands, hardware, provenance, terms
from attnsim.simulator.hardware import CostParams, GpuSpec
from attnsim.simulator.occupancy import CtaResources, occupancy

# How each CostParams field carries: "carried" (same value) or "clock" (x source / target clock).
RULES: dict[str, str] = {
    "cta_stream_gbps_per_warp": "carried",  # bytes in flight / latency: same SM and memory generation
    "sm_stream_gbps": "carried",  # one SM's bytes in flight / latency, as the per-warp rate
    "wide_tile_ns_per_row_token": "clock",  # SM cycles of tile math per token and row
    "cta_ns_per_token": "clock",  # SM cycles of a CTA's per-token work
    "launch_overhead_us": "carried",  # host + driver + event gap
    "cta_fixed_us": "clock", "segment_fixed_us": "clock", "tile_fixed_us": "clock",  # SM cycles
    "fixup_fixed_us": "clock", "fixup_per_peer_us": "clock",
    "merge_fanin": "carried", "bw_knee": "carried", "hbm_scale": "carried",  # dimensionless
    "l2_dirty_fraction": "carried",  # a share of the target's own L2
    "paged_tile_fixed_us": "clock", "paged_segment_fixed_us": "clock",  # paged KV: SM cycles ...
    "paged_hbm_scale": "carried",  # ... and a dimensionless share
    "fp8_segment_fixed_us": "clock",  # SM cycles of an fp8 segment's start
    "mma_flop_per_sm_clock": "carried", "dequant_elem_per_sm_clock": "carried",  # per SM clock: same SM design
    "softmax_clocks_per_score": "carried",
    "mma_flop_per_warp_clock": "carried", "dequant_elem_per_warp_clock": "carried",  # per warp clock: same SM
    "wgmma_flop_scale": "carried",  # one mma instruction's throughput over another's: same SM design
    "l2_hit_latency_ratio": "carried",  # a latency ratio of the same memory hierarchy
}

SAME_ARCH, OTHER_ARCH = "same compute capability", "other architecture"
# Expected MAPE of a transferred profile = the source's own MAPE + this margin (points). Estimates,
# not measurements, until a transferred profile is validated on its target:
# - same compute capability: same SM, compiler target and per-CTA physics; what is guessed is the
#   target's bandwidth efficiency (H100 0.923 carried to an H200 that reads ~0.94: ~2%) and how the
#   knee of the bandwidth curve moves with more bandwidth per SM; a few points.
# - other architecture: memory latency (so the per-warp rate), the compiled kernels and the cycles
#   of the fixed costs are all carried from another chip; tens of percent at small caches.
EXPECTED_MARGIN_PCT = {SAME_ARCH: 5.0, OTHER_ARCH: 20.0}
# The source's own MAPE when its document gives none (the H100 validation: 3.9% over all kernels).
UNKNOWN_SOURCE_MAPE_PCT = 5.0


def transfer_profile(source: GpuSpec, target: GpuSpec, source_name: str, source_mape_pct: float | None = None,
                     decode_fields: Mapping[str, tuple[str, ...]] | None = None) -> tuple[GpuSpec, dict]:
    """A profile for `target` (a datasheet preset) from the calibrated `source`, and a report of
    what was carried or scaled. `source_mape_pct`: the source's own MAPE (its fit), if known;
    `decode_fields`: family -> the serving fields its decode fits move
    (strategies.serving_fields_fitted_on_decode())."""
    if target.profile_source != "datasheet":
        raise InputError("transfer", f"the target must be a datasheet preset, got a {target.profile_source} "
                                     f"profile of {target.name}")
    case = SAME_ARCH if source.compute_capability == target.compute_capability else OTHER_ARCH
    efficiency = hbm_efficiency(source)
    clock_factor = source.clock_mhz / target.clock_mhz  # µs of SM work scale with cycle time
    kernels, dropped = carried_kernels(source.kernels, target)
    moved_bands = transferred_bands(source, case)
    expected, basis = expected_error(case, source, source_mape_pct, target.name, moved_bands)
    spec = dataclasses.replace(
        target, hbm_read_gbps=target.hbm_read_gbps * efficiency,
        cost={family: transfer_cost(carried(source, target, family, params, (decode_fields or {}).get(family, ())),
                                    clock_factor)
              for family, params in source.cost.items()},
        kernels=kernels, source=f"transferred from {source_name} ({source.source})",
        profile_source="transferred", expected_error_pct=expected, error_bands=moved_bands,
        serving_terms=provenance.transferred_table(source.serving_terms, source_name,
                                                   0.0 if case == SAME_ARCH else bands.OTHER_ARCH_MARGIN_PCT),
    )
    report = {
        "source": _describe(source, source_name), "target": _describe(target, target.name), "case": case,
        "gpu": {"hbm_read_gbps": {"rule": "scaled", "factor": efficiency,
                                  "basis": "source measured / source datasheet HBM read bandwidth"}},
        "cost": {family: cost_rules(clock_factor) for family in source.cost},
        "kernels": {"rule": "carried", "carried": sorted(kernels), "dropped": dropped,
                    "note": _kernel_note(case, source, target)},
        "expected_error_pct": expected, "expected_error_basis": basis,
    }
    return spec, report


def carried(source: GpuSpec, target: GpuSpec, family: str, params: CostParams,
            decode_fields: tuple[str, ...] = ()) -> CostParams:
    """The fit a family carries: its `carried_cost` (with its own fit's serving terms, less those in
    `decode_fields`, which its decode fits move) to another GPU, its own costs to its own GPU."""
    if target.name == source.name or family not in source.carried_cost:
        return params
    own = {f: getattr(params, f) for f in terms.SERVING_FIELDS if f not in decode_fields}
    return dataclasses.replace(source.carried_cost[family], **own)


def transferred_bands(source: GpuSpec, case: str) -> dict:
    """The error bands a transfer inherits: the source's measured transfer residuals (its
    `transfer_bands`, else its own bands), widened for another architecture."""
    measured = source.transfer_bands or source.error_bands
    if not measured:
        return {}
    if case == SAME_ARCH:
        return measured
    return bands.widen(measured, bands.OTHER_ARCH_MARGIN_PCT,
                       f"{measured.get('basis', '')}; +/-{bands.OTHER_ARCH_MARGIN_PCT:g} points for another architecture")


def hbm_efficiency(source: GpuSpec) -> float:
    """The source's measured / datasheet HBM read bandwidth (its preset holds the datasheet figure)."""
    try:
        datasheet = hardware.from_name(source.name)
    except InputError:
        raise InputError("transfer", f"source profile names GPU {source.name!r}, which is no preset: "
                                     "its datasheet bandwidth is unknown") from None
    return source.hbm_read_gbps / datasheet.hbm_read_gbps


def transfer_cost(params: CostParams, clock_factor: float) -> CostParams:
    """One family's parameters on the target: fixed SM costs x clock_factor, the rest carried."""
    scaled = {name: getattr(params, name) * clock_factor for name, rule in RULES.items() if rule == "clock"}
    return dataclasses.replace(params, **scaled)


def cost_rules(clock_factor: float) -> dict[str, dict]:
    """Per CostParams field: {"rule": "carried" | "scaled", "factor": ...} as the report lists it."""
    return {name: {"rule": "scaled", "factor": clock_factor} if rule == "clock" else {"rule": "carried", "factor": 1.0}
            for name, rule in RULES.items()}


def carried_kernels(kernels: dict[str, dict], target: GpuSpec) -> tuple[dict[str, dict], dict[str, str]]:
    """(configurations that can launch on the target, {key: why not} for the rest)."""
    carried, dropped = {}, {}
    for key, config in kernels.items():
        res = CtaResources(config["threads"], config["regs_per_thread"], config["smem_bytes"])
        occ = occupancy(target, res)
        if occ.blocks_per_sm:
            carried[key] = dict(config)
        else:
            dropped[key] = occ.limiter
    return carried, dropped


def expected_error(case: str, source: GpuSpec, source_mape_pct: float | None, target_name: str,
                   moved_bands: dict | None = None) -> tuple[float, str]:
    """(expected MAPE %, how it was reached): the MAPE of the measured transfer residuals its bands
    come from (one source of error, simulator/bands.py), else the source's own error + the case's margin."""
    if (moved_bands or {}).get("mape_pct") is not None:
        return round(float(moved_bands["mape_pct"]), 1), f"MAPE of the residuals behind its error bands ({moved_bands.get('basis', '')})"
    if source_mape_pct is not None:
        base, of = source_mape_pct, "the source's fit MAPE"
    elif source.expected_error_pct is not None:  # a transfer of a transfer
        base, of = source.expected_error_pct, "the source's expected error"
    else:
        base, of = UNKNOWN_SOURCE_MAPE_PCT, "an assumed source MAPE"
    margin = EXPECTED_MARGIN_PCT[case]
    basis = (f"{of} {base:.1f}% + {margin:.0f} points ({case}); an estimate until measured on {target_name}")
    return round(base + margin, 1), basis


def _describe(spec: GpuSpec, name: str) -> dict:
    return {"profile": name, "gpu": spec.name, "source": spec.source, "profile_source": spec.profile_source,
            "compute_capability": list(spec.compute_capability), "clock_mhz": spec.clock_mhz,
            "sm_count": spec.sm_count, "hbm_read_gbps": spec.hbm_read_gbps}


def _kernel_note(case: str, source: GpuSpec, target: GpuSpec) -> str:
    if case == SAME_ARCH:
        return "same compute capability: the same compiler target builds the same kernels"
    cc = ".".join(map(str, source.compute_capability)), ".".join(map(str, target.compute_capability))
    return (f"compiled for compute capability {cc[0]}, carried to {cc[1]}: registers and shared memory "
            "may differ when compiled there; measure with `attnsim calibrate` on the target")
