"""Resolving `--gpu NAME|FILE` (and, later, `--calibration FILE`) to a GpuSpec."""

from __future__ import annotations

from pathlib import Path

from attnsim.simulator import hardware
from attnsim.simulator.hardware import GpuSpec


def resolve_gpu(name_or_path: str) -> GpuSpec:
    """A preset name/alias, or a path to a JSON/TOML profile."""
    path = Path(name_or_path)
    if path.suffix in (".json", ".toml") or path.exists():
        return hardware.load_spec_file(path)
    return hardware.from_name(name_or_path)
