"""Resolving `--gpu NAME|FILE` and `--calibration FILE|none` to a GpuSpec.

A preset with a measured profile shipped in the package (h100) uses it by default; `--calibration
none` selects the datasheet figures, `--calibration FILE` another calibrated profile.
"""

from __future__ import annotations

from pathlib import Path

from attnsim.simulator import hardware
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.profile_io import load_profile, shipped_profile_path


def resolve_gpu(name_or_path: str, calibration: str | None = None) -> GpuSpec:
    """A preset name/alias (calibrated when a profile ships), or a path to a JSON/TOML profile."""
    if calibration and calibration.lower() != "none":
        return load_profile(calibration)
    path = Path(name_or_path)
    if path.suffix in (".json", ".toml") or path.exists():
        return _load_path(path)
    spec = hardware.from_name(name_or_path)
    shipped = shipped_profile_path(spec.name)
    if shipped is not None and calibration is None:
        return load_profile(shipped)
    return spec


def _load_path(path: Path) -> GpuSpec:
    """A calibrated profile (format attnsim-profile) or a plain GPU description file."""
    if path.suffix == ".json" and path.exists() and '"attnsim-profile"' in path.read_text()[:200]:
        return load_profile(path)
    return hardware.load_spec_file(path)
