"""How close to the best predicted time counts as a tie: the model's expected error, in percent.

One function, `tie_band`, so the source can be swapped. In order:
1. a serving workload (paged KV, fp8 KV or q_len > 1) on a calibrated or transferred profile: the band
   measured on the serving sweeps of its regimes (simulator/provenance.py, the band its predictions
   print), where the profile has one for every regime, as a half-width (below); the decode band
   says nothing about the serving terms;
2. the profile's per-regime error bands (simulator/bands.py: 5th-95th percentile of measured
   residuals per cost family x KV-size bin, calibrated or transferred profiles): the band's
   half-width (hi - lo) / 2, the spread around the regime's bias (a bias shared by the plans of one
   family does not change which is faster);
3. the profile's `expected_error_pct` (a transferred profile without bands);
3. a calibrated profile shipped with attnsim: the calibration MAPE of the plan's cost family
   (`fit.<family>.mape_pct` in attnsim/profiles/<gpu>.json);
5. DEFAULT_TIE_BAND_PCT (3%: the H100/H200 calibrated profiles validate at 2-6% MAPE), also for
   datasheet figures, whose error (tens of percent) would make every plan a tie.
A padded head dim (96, 160-224) takes at least the half-width of its measured residuals (tie_band).
"""

from __future__ import annotations

import functools

from attnsim.simulator import bands, provenance
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.profile_io import shipped_document, shipped_profile_path
from attnsim.simulator.terms import terms_used
from attnsim.simulator.workload import DecodeWorkload

DEFAULT_TIE_BAND_PCT = 3.0
# A family whose band is wider than this (half-width, %) at a KV size, or whose costs are not calibrated
# on any GPU (GpuSpec.uncalibrated), is uncertain there: a comparison with it says so, and its tie
# band is the band's own width (the H200's calibrated bands are 2-9% wide; the datasheet's 5-25%).
UNCERTAIN_HALF_WIDTH_PCT = 10.0


@functools.lru_cache(maxsize=16)
def _shipped_fit(gpu_name: str, source: str) -> dict:
    """The fit report of the shipped profile that `gpu` was loaded from ({} if it was not)."""
    if shipped_profile_path(gpu_name) is None:
        return {}
    doc = shipped_document(gpu_name)
    return doc.get("fit", {}) if doc["gpu"].get("source") == source else {}


def _regime_band(gpu: GpuSpec, family: str) -> dict | None:
    families = (getattr(gpu, "error_bands", None) or {}).get("families", {})
    return families if gpu.profile_source != "datasheet" and bands.measured_family(families, family) else None


def _serving_band(gpu: GpuSpec, family: str, workload: DecodeWorkload) -> tuple[float, str] | None:
    """A serving workload's measured band as (half-width %, source); None for decode or where unmeasured."""
    if not terms_used(workload):
        return None
    regimes = provenance.serving_regimes(workload)
    measured = provenance.measured_serving_band(gpu, family, regimes, workload.kv_bytes())
    if measured is None:
        return None
    label = bands.BIN_LABELS[min(bands.kv_bin(workload.kv_bytes()), len(bands.BIN_LABELS) - 1)]
    return (measured[1] - measured[0]) / 2.0, f"{'+'.join(regimes)} error band of {family} at {label} KV (half-width)"


def tie_band(gpu: GpuSpec, family: str, workload: DecodeWorkload) -> tuple[float, str]:
    """(band in percent, where it comes from) for plans of cost family `family` running `workload`; a padded head
    dim's at least the half-width of provenance.PADDED_BAND_PCT (the model's plans there were measured apart by
    up to 26% more than it said: split-KV 14% slow, FlashDecoding 12% fast at d 160 on the H100)."""
    band = kernel_tie_band(gpu, family, workload)
    if not workload.pads_head_dim:
        return band
    lo, hi = provenance.PADDED_BAND_PCT
    padded = ((hi - lo) / 2.0, "padded head dim: the H100's padded sweeps' residuals (half-width)")
    return max(band, padded)


def kernel_tie_band(gpu: GpuSpec, family: str, workload: DecodeWorkload) -> tuple[float, str]:
    """tie_band of the workload's power-of-two kernel, from the sources of the module docstring."""
    serving = _serving_band(gpu, family, workload)
    if serving is not None:
        return serving
    kv_bytes = workload.kv_bytes()
    if _regime_band(gpu, family) is not None:
        lo, hi = bands.band(gpu.error_bands, family, kv_bytes, gpu.profile_source)
        label = bands.BIN_LABELS[min(bands.kv_bin(kv_bytes), len(bands.BIN_LABELS) - 1)]
        return (hi - lo) / 2.0, f"error band of {family} at {label} KV (half-width)"
    if gpu.expected_error_pct is not None:
        return float(gpu.expected_error_pct), "profile expected_error_pct"
    if gpu.profile_source == "calibrated":
        fit = _shipped_fit(gpu.name, gpu.source).get(family)
        if isinstance(fit, dict) and isinstance(fit.get("mape_pct"), (int, float)):
            return float(fit["mape_pct"]), f"calibration MAPE of {family}"
    return DEFAULT_TIE_BAND_PCT, "default"


def uncertain(gpu: GpuSpec, family: str, workload: DecodeWorkload) -> bool:
    """Whether predictions of `family` on `workload` are too uncertain to rank plans on (see above)."""
    return family in gpu.uncalibrated or tie_band(gpu, family, workload)[0] > UNCERTAIN_HALF_WIDTH_PCT


def comparison_band(gpu: GpuSpec, family_a: str, family_b: str, workload: DecodeWorkload) -> float:
    """The tie band (%) of two plans of different families: the wider of their two bands, so a plan is
    never called faster than one whose own prediction is that uncertain."""
    return max(tie_band(gpu, family_a, workload)[0], tie_band(gpu, family_b, workload)[0])
