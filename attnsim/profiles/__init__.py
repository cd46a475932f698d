"""Resolving `--gpu NAME|FILE` and `--calibration FILE|none` to a GpuSpec.

A preset with a measured profile shipped in the package (h100, h200) uses it by default. A preset without
one (a100, l40s, b200) gets a transfer of the shipped profile of the closest calibrated
architecture (simulator/transfer.py): profile_source "transferred", with its expected error.
Either way, cost families the profile lacks (its GPU was calibrated before a strategy was modelled:
the H100's has no cuDNN) are transferred from the closest shipped profile that has them.
`--calibration none` selects the datasheet profile (first-principles costs and the bands that model
measured: profiles/datasheet.py), `--calibration FILE` another profile. A family no profile carries
gets its datasheet costs and bands and is listed `uncalibrated` (predictions say "not calibrated").
`transfer_from` chooses the source explicitly; `write_transferred_profile` writes one to disk.
"""

from __future__ import annotations

import dataclasses
import functools
import datetime as dt
import math
from pathlib import Path

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.profiles.datasheet import datasheet_spec, fill_uncalibrated
from attnsim.simulator import bands, hardware
from attnsim.simulator.hardware import GpuSpec, spec_from_dict
from attnsim.simulator.profile_io import (SHIPPED, check_profile_document, fit_mape_pct, is_profile_document,
                                          load_profile, read_json, read_profile_document, save_profile,
                                          shipped_document, shipped_profile_path)
from attnsim.simulator.transfer import transfer_profile


def resolve_gpu(name_or_path: str, calibration: str | None = None) -> GpuSpec:
    """A preset name/alias (calibrated when a profile ships, else transferred), or a path to a JSON/TOML profile."""
    if calibration and calibration.lower() != "none":
        return _measured(load_profile(calibration))
    path = Path(name_or_path)
    if path.suffix in (".json", ".toml") or _exists(path):
        return _measured(_load_path(path))
    spec = hardware.from_name(name_or_path)
    if calibration is not None:  # "none": the datasheet figures, first-principles costs
        return datasheet_spec(spec)
    shipped = shipped_profile_path(spec.name)
    if shipped is not None:
        return complete_families(spec_from_dict(shipped_document(spec.name)["gpu"], str(shipped)))
    source = closest_calibrated(spec)
    return spec if source is None else complete_families(transfer_from(source, spec.name)[0])


def _measured(spec: GpuSpec) -> GpuSpec:
    """A profile file: a calibrated or transferred one gets datasheet costs for the families it lacks,
    marked not calibrated (a hand-written GPU description keeps what it says)."""
    return spec if spec.profile_source == "datasheet" else fill_uncalibrated(spec)


def complete_families(spec: GpuSpec) -> GpuSpec:
    """A preset's profile with every cost family of the registry: those it lacks are transferred from
    the closest shipped profile that has them, with that transfer's error bands where the profile has
    none for them (`source` says which families, and from where)."""
    missing = [f for f in {**strategies.all_families(), **strategies.mla_families()} if f not in spec.cost]
    donor = closest_calibrated(hardware.from_name(spec.name), missing) if missing else None
    if donor is None:
        return fill_uncalibrated(spec)  # no profile measured them: datasheet costs, "not calibrated"
    moved = transfer_from(donor, spec.name)[0]
    unmeasured = [f for f in missing if f not in (spec.error_bands or {}).get("families", {})]
    return dataclasses.replace(spec, cost={**spec.cost, **{f: moved.cost[f] for f in missing}},
                               error_bands=bands.with_families(spec.error_bands, moved.error_bands, unmeasured),
                               serving_terms=_with_terms_of(spec.serving_terms, moved.serving_terms, missing),
                               source=f"{spec.source}; {', '.join(missing)} transferred from {donor}",
                               transferred={**spec.transferred, **{f: donor for f in missing}})


def _with_terms_of(table: dict, donor_table: dict, families: list[str]) -> dict:
    """`table` plus the donor's serving-term provenance of the transferred `families` (its bands stay
    the profile's own: they were measured for this GPU's profile, or are the datasheet band)."""
    extra = {f: entries for f, entries in donor_table.get("terms", {}).items() if f in families}
    return {**table, "terms": {**table.get("terms", {}), **extra}} if extra else table


def closest_calibrated(target: GpuSpec, families=()) -> str | None:
    """The preset with a shipped measured profile nearest the target's architecture (the same compute
    capability if one ships, else the nearest one; among those, the nearest HBM bandwidth, since the
    memory system is what a decode kernel's costs depend on most), among those whose profile has all
    cost `families`; None if no such profile ships."""
    return _nearest([name for name in SHIPPED if shipped_profile_path(name) is not None
                     and set(families) <= _shipped_families(name)], target)


def _nearest(names: list[str], target: GpuSpec) -> str | None:
    """The preset among `names` nearest `target`: compute capability first, then HBM bandwidth."""
    if not names:
        return None
    return min(names, key=lambda n: (abs(_cc_number(hardware.PRESETS[n]) - _cc_number(target)),
                                     abs(math.log(hardware.PRESETS[n].hbm_read_gbps / target.hbm_read_gbps))))


def transfer_from(source: str, target: str) -> tuple[GpuSpec, dict]:
    """(spec, report): the calibrated profile `source` (a preset with a shipped profile, e.g. "h100", or a
    profile file) transferred to the datasheet of the preset `target`."""
    path, name = _source_profile(source)
    doc = shipped_document(name) if name in SHIPPED else read_profile_document(path)
    source_spec = spec_from_dict(doc["gpu"], str(path))
    spec, report = transfer_profile(source_spec, hardware.from_name(target), name, fit_mape_pct(doc),
                                    strategies.serving_fields_fitted_on_decode())
    filled = fill_uncalibrated(spec)  # families the source never had: the target's datasheet costs
    if filled.uncalibrated:
        report["uncalibrated"] = {"families": list(filled.uncalibrated),
                                  "rule": "not in the source profile: datasheet costs and bands (not calibrated)"}
    return filled, report


def write_transferred_profile(source_name_or_path: str, target_preset: str, out_path: str | Path) -> GpuSpec:
    """Write the transfer of `source_name_or_path` to `target_preset` as a versioned profile: its
    "transfer" table says what was carried or scaled, by which factor, from which profile."""
    spec, report = transfer_from(source_name_or_path, target_preset)
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    device = {"name": spec.name, "measured": False}  # nothing ran on the target
    save_profile(out_path, spec, device, fit={}, data={}, created=created, transfer=report)
    return spec


def quick_source(target: GpuSpec) -> str:
    """The profile a quick calibration of `target` transfers its kernel costs from: the nearest
    calibrated profile of another GPU (a quick calibration is a transfer plus two measurements)."""
    source = _nearest([n for n in SHIPPED if n != target.name and shipped_profile_path(n) is not None], target)
    if source is None:
        raise InputError("transfer-from", "no calibrated profile of another GPU ships; give --transfer-from FILE")
    return source


def source_profile_path(source: str) -> Path:
    """The profile file behind a transfer source (a preset that ships one, or a path)."""
    return _source_profile(source)[0]


def _source_profile(source: str) -> tuple[Path, str]:
    """(profile path, name for the report) of a transfer source: a profile file or a preset that ships one."""
    path = Path(source)
    if path.suffix == ".json" or path.exists():
        return path, str(path)
    preset = hardware.from_name(source)
    shipped = shipped_profile_path(preset.name)
    if shipped is None:
        raise InputError("transfer", f"no calibrated profile ships for {preset.name}; give a profile file "
                                     f"(shipped: {', '.join(SHIPPED)})")
    return shipped, preset.name


@functools.lru_cache(maxsize=8)
def _shipped_families(preset_name: str) -> frozenset[str]:
    return frozenset(shipped_document(preset_name)["gpu"].get("cost", {}))


def _cc_number(spec: GpuSpec) -> int:
    major, minor = spec.compute_capability
    return 10 * major + minor


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system is not a file
        return False


def _load_path(path: Path) -> GpuSpec:
    """A versioned profile (format and version checked, as for --calibration) or a plain GPU description."""
    if path.suffix != ".toml":
        doc = read_json(path, "gpu")
        if is_profile_document(doc):
            check_profile_document(doc, path, "gpu")
            return spec_from_dict(doc["gpu"], str(path))
    return hardware.load_spec_file(path)
