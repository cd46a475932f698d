"""Datasheet profiles and the families no calibration carried: first-principles costs with measured bands.

`datasheet_spec(preset)` is what `--calibration none` selects: the preset's datasheet with every
registry family's costs derived by simulator/datasheet.py from its kernel traits, and the error bands
that model measured on the GPUs we have swept (`datasheet_bands.json`, written by
scripts/error_bands.py: residuals on the H100 and H200 calibration sets and sweeps, coverage by
cross-validation), widened for another architecture as a transfer's are.

`fill_uncalibrated(spec)`: a calibrated or transferred profile that lacks some registry families (a
calibration that did not measure them, a transfer whose source never had them) gets their datasheet
costs and bands, and lists them in `uncalibrated`: never the CostParams defaults, never a default band.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from importlib import resources

from attnsim import strategies
from attnsim.simulator import bands, hardware
from attnsim.simulator.datasheet import datasheet_cost, datasheet_profile
from attnsim.simulator.hardware import GpuSpec

BANDS_FILE = "datasheet_bands.json"
MEASURED_ON_CC = (9, 0)  # the datasheet model's bands were measured on the H100 and H200


@functools.lru_cache(maxsize=1)
def measured_bands() -> dict:
    """The datasheet model's bands as shipped ({} before scripts/error_bands.py wrote them)."""
    path = resources.files("attnsim") / "profiles" / BANDS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def bands_for(preset: GpuSpec) -> dict:
    """The measured datasheet bands, widened for an architecture they were not measured on."""
    measured = measured_bands()
    if not measured or preset.compute_capability == MEASURED_ON_CC:
        return measured
    return bands.widen(measured, bands.OTHER_ARCH_MARGIN_PCT, f"{measured.get('basis', '')}; "
                       f"+/-{bands.OTHER_ARCH_MARGIN_PCT:g} points for another architecture")


def datasheet_spec(preset: GpuSpec) -> GpuSpec:
    """`--calibration none`: first-principles costs for every registry family, measured bands."""
    spec = datasheet_profile(preset, strategies.kernel_traits())
    measured = bands_for(preset)
    return dataclasses.replace(spec, error_bands=measured, expected_error_pct=measured.get("mape_pct"))


def fill_uncalibrated(spec: GpuSpec) -> GpuSpec:
    """`spec` with datasheet costs and bands for the registry families it lacks, listed as uncalibrated."""
    traits = strategies.kernel_traits()
    missing = [f for f in traits if f not in spec.cost]
    if not missing:
        return spec
    chip = hardware.PRESETS.get(spec.name, spec)  # the datasheet of the chip, as datasheet_spec uses it
    cost = {**spec.cost, **{f: datasheet_cost(chip, traits[f]) for f in missing}}
    return dataclasses.replace(spec, cost=cost, uncalibrated=tuple(dict.fromkeys(spec.uncalibrated + tuple(missing))),
                               error_bands=bands.with_families(spec.error_bands, bands_for(spec), missing))
