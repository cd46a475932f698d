"""Quick calibration: measure only what a GPU's memory system and launch path decide, transfer the rest.

`attnsim calibrate --quick` measures two things on the target (about 15 s of device time): the HBM
read bandwidth vs streaming CTAs (the membw microbenchmark) and the launch overhead of an empty
kernel. Every kernel family's cost parameters come from a calibrated profile of another GPU through
`simulator.transfer` (per-clock fixed costs, carried shapes, the datasheet bandwidth scaled by the
source's efficiency), then the two measurements replace what they measure:

- hbm_read_gbps: the measured saturated read bandwidth (not datasheet x efficiency);
- cta_stream_gbps_per_warp of every family: scaled by target / source per-warp streaming rate of
  the microbenchmark (the latency-bound rate of one warp: bytes in flight / memory latency, which a
  different memory system changes for every kernel alike);
- launch_overhead_us of every family: scaled by target / source empty-kernel time.

Its error bands are the source document's `quick_bands` (residuals of a quick calibration of this
source replayed on another GPU's recorded curve and launch time: scripts/error_bands.py), else the
transfer's; its expected error is their MAPE (one source, simulator/bands.py).

Pure: measurements come in as plain rows.
"""

from __future__ import annotations

import dataclasses

from attnsim.simulator.calibration import fit_bandwidth_curve
from attnsim.simulator.hardware import GpuSpec


def quick_profile(transferred: GpuSpec, transfer_report: dict, source_doc: dict, bandwidth_rows: list[dict],
                  launch_overhead_us: float, source_text: str) -> tuple[GpuSpec, dict]:
    """(spec, report): `transferred` (a transfer of the source profile to the target datasheet) with the
    target's measured bandwidth curve and launch overhead applied. source_doc: the source profile document
    (its calibration_data holds the source's own bandwidth curve and launch overhead)."""
    source_data = source_doc["calibration_data"]
    src_per_warp = _per_warp(source_data["bandwidth"])
    tgt_per_warp, knee, _ = _fit(bandwidth_rows)
    stream_factor = tgt_per_warp / src_per_warp
    launch_factor = launch_overhead_us / float(source_data["launch_overhead_us"])
    cost = {family: dataclasses.replace(
        params, cta_stream_gbps_per_warp=params.cta_stream_gbps_per_warp * stream_factor,
        launch_overhead_us=params.launch_overhead_us * launch_factor) for family, params in transferred.cost.items()}
    peak = max(float(r["read_gbps"]) for r in bandwidth_rows)
    moved_bands = source_doc.get("quick_bands") or transferred.error_bands  # measured for quick, else the transfer's
    spec = dataclasses.replace(transferred, cost=cost, hbm_read_gbps=round(peak, 1), source=source_text,
                               error_bands=moved_bands,
                               expected_error_pct=moved_bands.get("mape_pct", transferred.expected_error_pct))
    report = {**transfer_report, "quick": {
        "measured": {"hbm_read_gbps": peak, "membw_per_warp_gbps": tgt_per_warp, "membw_knee": knee,
                     "launch_overhead_us": launch_overhead_us},
        "source": {"membw_per_warp_gbps": src_per_warp, "launch_overhead_us": float(source_data["launch_overhead_us"])},
        "scaled": {"cta_stream_gbps_per_warp": stream_factor, "launch_overhead_us": launch_factor}}}
    return spec, report


def _fit(rows: list[dict]) -> tuple[float, float, float]:
    return fit_bandwidth_curve([r["num_ctas"] for r in rows], [r["num_warps"] for r in rows],
                               [r["read_gbps"] for r in rows])


def _per_warp(rows: list[dict]) -> float:
    return _fit(rows)[0]
