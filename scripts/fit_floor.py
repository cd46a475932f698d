"""Fit the floor model (simulator/floor.py) to the floors a GPU's bench rows measured; --write puts it in the profile.

    PYTHONPATH=. python3 scripts/fit_floor.py h200 results/h200/bench.csv results/h200/bench_fp8.csv --write

Every row with a `floor_us` (kernels/membw.ReadFloor: a pure streaming read of the row's bytes under the bench's
timer) gives (bytes read, µs); the bytes are the workload's K + V + q + o, as bench asks the floor for them, and
the rows of one byte count (several strategies, one floor) are taken once, at their median. Prints the fit, its
error by size against the measured floors and the datasheet floor's beside it; --write sets the profile's
`read_floor` (attnsim/profiles/<gpu>.json, the rest kept), its basis naming the files and the points.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim.fileio import write_json
from attnsim.simulator import floor
from attnsim.simulator.hardware import from_name
from attnsim.simulator.profile_io import shipped_profile_path
from attnsim.validation.measurements import row_workload


def measured_floors(paths: list[str]) -> pd.DataFrame:
    """(read_bytes, floor_us) per distinct byte count over the files' rows with a floor, the median floor."""
    rows = []
    for path in paths:
        frame = pd.read_csv(path)
        if "floor_us" not in frame:
            continue
        for row in frame.dropna(subset=["floor_us"]).to_dict("records"):
            w = row_workload(row)
            rows.append((w.kv_bytes() + w.io_bytes(), row["floor_us"]))
    if not rows:
        raise SystemExit(f"fit_floor: no row with a floor_us in {', '.join(paths)}")
    frame = pd.DataFrame(rows, columns=["read_bytes", "floor_us"])
    return frame.groupby("read_bytes", as_index=False).floor_us.median()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gpu")
    ap.add_argument("csvs", nargs="+")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    points = measured_floors(args.csvs)
    basis = (f"fitted on {len(points)} measured floors ({points.read_bytes.min() / 1e6:.1f} MB-"
             f"{points.read_bytes.max() / 1e9:.1f} GB) of {', '.join(Path(p).name for p in args.csvs)}")
    model = floor.fit(points.read_bytes, points.floor_us, basis)
    chip = from_name(args.gpu)
    sheet = floor.datasheet(chip.hbm_read_gbps, chip.l2_bytes)
    fitted = np.array([model.us(b) for b in points.read_bytes]) / points.floor_us - 1
    sheet_err = np.array([sheet.us(b) for b in points.read_bytes]) / points.floor_us - 1
    print(f"{args.gpu}: launch {model.launch_us:.2f} µs, read {model.read_gbps:.0f} GB/s, write-back "
          f"{model.write_back_us:.2f} µs over {model.write_back_bytes / 1e6:.1f} MB; {basis}")
    print(f"MAPE {100 * np.abs(fitted).mean():.2f}% (max {100 * np.abs(fitted).max():.1f}%); the datasheet floor "
          f"{100 * np.abs(sheet_err).mean():.2f}% (max {100 * np.abs(sheet_err).max():.1f}%)")
    for b, y, e in zip(points.read_bytes, points.floor_us, fitted):
        print(f"  {b / 1e6:10.1f} MB  measured {y:9.2f} µs  fit {100 * e:+5.1f}%")
    if args.write:
        path = shipped_profile_path(chip.name)
        if path is None:
            raise SystemExit(f"fit_floor: {args.gpu} ships no measured profile to write into")
        doc = json.loads(path.read_text())
        doc["gpu"]["read_floor"] = model.to_dict()
        write_json(path, doc, indent=1)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
