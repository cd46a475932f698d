"""How close to the best predicted time counts as a tie: the model's expected error, in percent.

One function, `tie_band`, so the source can be swapped (per-regime error bands in profiles):
1. the profile states `expected_error_pct` (a transferred profile) -> that;
2. a calibrated profile shipped with attnsim whose fit report has the MAPE of the chosen plan's
   cost family (`fit.<family>.mape_pct` in attnsim/profiles/<gpu>.json) -> that;
3. else DEFAULT_TIE_BAND_PCT (3%: the H100/H200 calibrated profiles validate at 2-6% MAPE).
"""

from __future__ import annotations

import functools

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.profile_io import read_profile_document, shipped_profile_path

DEFAULT_TIE_BAND_PCT = 3.0


@functools.lru_cache(maxsize=16)
def _shipped_fit(gpu_name: str, source: str) -> dict:
    """The fit report of the shipped profile that `gpu` was loaded from ({} if it was not)."""
    path = shipped_profile_path(gpu_name)
    if path is None:
        return {}
    doc = read_profile_document(path)
    return doc.get("fit", {}) if doc["gpu"].get("source") == source else {}


def tie_band(gpu: GpuSpec, family: str) -> tuple[float, str]:
    """(band in percent, where it comes from) for plans of cost family `family` on `gpu`."""
    if gpu.expected_error_pct is not None:
        return float(gpu.expected_error_pct), "profile expected_error_pct"
    if gpu.profile_source == "calibrated":
        fit = _shipped_fit(gpu.name, gpu.source).get(family)
        if isinstance(fit, dict) and isinstance(fit.get("mape_pct"), (int, float)):
            return float(fit["mape_pct"]), f"calibration MAPE of {family}"
    return DEFAULT_TIE_BAND_PCT, "default"
