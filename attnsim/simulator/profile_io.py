"""Calibrated profiles on disk: versioned JSON, written atomically, refused when corrupt or stale.

{
  "format": "attnsim-profile", "version": 1, "model": MODEL_VERSION,
  "created": ISO date, "device": {name, sm_count, driver, torch, triton, ...},
  "gpu": {base preset + measured overrides, "cost": {family: CostParams}, "kernels": {...}},
  "fit": {family: {"mape_pct": .., "residuals": [...]}, ...},
  "calibration_data": {"bandwidth": [...], "points": [...]},
  "transfer": {...}  (only in a transferred profile: what was carried or scaled, from which profile)
}
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path

from attnsim.errors import InputError
from attnsim.fileio import write_json
from attnsim.simulator.hardware import GpuSpec, spec_from_dict, spec_to_dict

PROFILE_FORMAT = "attnsim-profile"
PROFILE_VERSION = 1
# Bump when the cost model's structure changes: profiles fitted to another model are stale.
MODEL_VERSION = "fluid-knee-v2"  # v2: kernels tables keyed by compiled kernel shape
SHIPPED = {"h100-sxm": "h100.json", "h200": "h200.json"}  # presets with a measured profile in attnsim/profiles/


def save_profile(path: str | Path, spec: GpuSpec, device: dict, fit: dict, data: dict, created: str,
                 transfer: dict | None = None) -> None:
    doc = {
        "format": PROFILE_FORMAT, "version": PROFILE_VERSION, "model": MODEL_VERSION, "created": created,
        "device": device, "gpu": spec_to_dict(spec), "fit": fit, "calibration_data": missing_as_null(data),
    }
    if transfer is not None:
        doc["transfer"] = transfer
    write_json(path, doc, indent=1)


def load_profile(path: str | Path, field: str = "calibration") -> GpuSpec:
    """The GpuSpec of a calibrated profile; InputError(field, ...) if corrupt or stale."""
    doc = read_profile_document(path, field)
    return spec_from_dict(doc["gpu"], str(path))


def read_json(path: str | Path, field: str):
    """A JSON document; unreadable, binary or malformed files are InputError(field). (NaN is read:
    profiles written before `missing_as_null` mark missing measured cells so; every number a
    profile's `gpu` table holds is checked finite by hardware.spec_from_dict.)"""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(field, f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(field, f"{path} is not a text file (it has bytes that are not UTF-8)") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(field, f"{path} is not valid JSON ({exc})") from None


def missing_as_null(value):
    """Measured tables with NaN for a missing cell (a baseline has no num_warps) -> null, as JSON has no NaN."""
    if isinstance(value, dict):
        return {k: missing_as_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [missing_as_null(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def is_profile_document(doc) -> bool:
    """A versioned profile (or a stale one: any of its header keys), as opposed to a plain GPU description."""
    return isinstance(doc, dict) and any(key in doc for key in ("format", "version", "model"))


def read_profile_document(path: str | Path, field: str = "calibration") -> dict:
    path = Path(path)
    doc = read_json(path, field)
    check_profile_document(doc, path, field)
    return doc


def check_profile_document(doc, path, field: str) -> None:
    """Format and version, wherever a profile enters (--calibration, --gpu FILE.json, scenario files)."""
    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
        raise InputError(field, f"{path} is not an attnsim profile (format != {PROFILE_FORMAT!r})")
    if doc.get("version") != PROFILE_VERSION or doc.get("model") != MODEL_VERSION:
        raise InputError(field, f"{path} is stale: profile version {doc.get('version')}/"
                                f"{doc.get('model')}, this attnsim needs {PROFILE_VERSION}/{MODEL_VERSION}; "
                                "re-run `attnsim calibrate`")
    if not isinstance(doc.get("gpu"), dict):
        raise InputError(field, f"{path} has no 'gpu' table")


def fit_mape_pct(doc: dict) -> float | None:
    """The profile's own error: MAPE over its calibration points, weighted by each strategy's points."""
    fits = [f for f in doc.get("fit", {}).values() if isinstance(f, dict) and {"mape_pct", "points"} <= f.keys()]
    points = sum(f["points"] for f in fits)
    return sum(f["mape_pct"] * f["points"] for f in fits) / points if points else None


@functools.lru_cache(maxsize=8)
def shipped_document(preset_name: str) -> dict:
    """The packaged profile document of a preset, parsed and checked once per process (0.5-1.6 MB of
    JSON: resolving one GPU used to read the shipped profiles up to four times). Read-only by
    convention, as GpuSpecs are."""
    path = shipped_profile_path(preset_name)
    if path is None:
        raise InputError("gpu", f"no measured profile ships for {preset_name}")
    return read_profile_document(path)


def shipped_profile_path(preset_name: str) -> Path | None:
    """The packaged measured profile of a preset, if one ships."""
    name = SHIPPED.get(preset_name)
    if name is None:
        return None
    path = Path(str(resources.files("attnsim") / "profiles" / name))
    return path if path.exists() else None
