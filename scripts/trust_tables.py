"""The issue-21 table for docs/validation.md: per swept GPU, each profile source's MAPE per strategy on
rows it was not fitted to, and its error bands' held-out coverage. CPU only (committed measurements).

    PYTHONPATH=. python3 scripts/trust_tables.py            # ~3 min on 2 cores

Sources and scoring: attnsim/validation/trust.py. The H100 profile's cuDNN costs were fitted on the
H100 sweep (scripts/fit_baselines.py): its calibrated cell and residuals are the out-of-fold ones
(results/h100/torch-cudnn_cv.csv, each fold predicted by a fit to the others) where that file exists.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attnsim.simulator.hardware import from_name
from attnsim.simulator.profile_io import read_profile_document, shipped_profile_path
from attnsim.validation.measurements import load_measurements
from attnsim.validation.trust import (EXTRA_STRATEGIES, SOURCES, GpuData, band_rows, cv_coverage, mape_by_strategy,
                                      residuals_on, scored_rows, source_specs)

GPUS = {"h100": "results/h100", "h200": "results/h200"}
COLUMNS = ("fa2", "flashdecoding", "streamk", *EXTRA_STRATEGIES, "torch-flash", "torch-cudnn")


def gpu_data(gpu: str, folder: str) -> GpuData:
    """The sweep in `folder`; the calibration rows the shipped profile holds (results/<gpu>/calibration_data.json
    and rows added since, e.g. the H200's split-KV points)."""
    name = from_name(gpu).name
    doc = read_profile_document(shipped_profile_path(name))
    points = pd.DataFrame(doc["calibration_data"]["points"])
    return GpuData(name, load_measurements(Path(folder, "bench.csv")),
                   points[points["status"] == "ok"].reset_index(drop=True), doc)


def out_of_fold(rows: pd.DataFrame, folder: str) -> pd.DataFrame:
    """Rows of a strategy fitted on this sweep replaced by their out-of-fold predictions, if recorded."""
    for path in Path(folder).glob("*_cv.csv"):
        strategy = path.name[: -len("_cv.csv")]
        rows = pd.concat([rows[rows["strategy"] != strategy], pd.read_csv(path)], ignore_index=True)
    return rows


def table(gpu: str, data: dict[str, GpuData], datasheet_rows: pd.DataFrame) -> list[dict]:
    other = next(g for g in data if g != gpu)
    specs = source_specs(data[gpu], other)
    records = []
    for source in SOURCES:
        rows = scored_rows(source, specs[source], data[gpu])
        bands_from = band_rows(source, specs, data[gpu], datasheet_rows)
        if source == "calibrated":
            rows, bands_from = (out_of_fold(r, GPUS[gpu]) for r in (rows, bands_from))
        mape = mape_by_strategy(rows)
        label = f"{source} ({'from ' + other if source in ('quick', 'transferred') else gpu})"
        records.append({"source": label, **{c: f"{mape[c]:.2f}" if c in mape else "–" for c in COLUMNS},
                        "all": f"{rows['abs_pct_error'].mean():.2f}",
                        "band coverage (5-fold)": f"{cv_coverage(bands_from, rows):.3f}"})
    return records


def markdown(records: list[dict]) -> str:
    frame = pd.DataFrame(records)
    lines = ["| " + " | ".join(frame.columns) + " |", "|---|" + "---:|" * (len(frame.columns) - 1)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in frame.itertuples(index=False)])


def main() -> None:
    data = {gpu: gpu_data(gpu, folder) for gpu, folder in GPUS.items()}
    from attnsim.profiles import resolve_gpu

    datasheet_rows = pd.concat([residuals_on(resolve_gpu(g, "none"), d) for g, d in data.items()], ignore_index=True)
    for gpu in data:
        print(f"\n{gpu}: MAPE % per strategy on rows no fit of the source saw; band coverage held out\n")
        print(markdown(table(gpu, data, datasheet_rows)))


if __name__ == "__main__":
    main()
