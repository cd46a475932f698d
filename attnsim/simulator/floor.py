"""The floor under the bench's timer: what a pure streaming read of a call's bytes takes, modelled.

`attnsim bench` judges every row against a measured floor (kernels/membw.ReadFloor: the faster of two pure
streaming reads of the row's bytes, K + V + q + o, timed as the kernels are: do_bench's median after its 256 MB
L2 flush, a CUDA-graph replay). A prediction carries the same floor, modelled per GPU from four numbers:

    floor(B) = launch_us + B / read_gbps + write_back_us x (1 - exp(-B / write_back_bytes))

- launch_us: an empty call under the timer (launch and event gap);
- read_gbps: what a long pure read sustains;
- write_back_us: the write-back of the dirty lines the flush leaves in L2, which a read pays as its misses
  evict them: all of it once it has read about write_back_bytes (the L2's size), a share before.

Fitted on a GPU's measured floors (`fit`; scripts/fit_floor.py writes the profile's `read_floor`): on the 171
byte counts from 0.5 MB to 8.6 GB that each of the H200's and the H100's bench sweeps measured, 1.15% / 1.17%
MAPE (max 11.1 / 8.4%), launch 4.90 / 5.18 µs, 4,574 / 3,221 GB/s, write-back 11.3 / 12.2 µs over 65 / 61 MB
(docs/validation.md, "The floor in predictions"). A profile
without measured floors (datasheet, transferred) gets the datasheet's: its HBM read rate and L2 size in the two
fits' shape (DATASHEET_*). `floor_us` before 2026-12-07 was B / HBM alone: 38-96% under the measured floor at
<= 64 MB.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from attnsim.errors import InputError

# The datasheet floor's shape, from the two GPUs whose floors were measured (H200 / H100 fits): the read kernel's
# call 4.9 / 5.2 µs, 0.82 / 0.75 of the L2 written back at the read rate, due over 1.03 / 1.17 L2s of reads
DATASHEET_LAUNCH_US = 5.0
DATASHEET_DIRTY_L2 = 0.78
DATASHEET_DUE_L2S = 1.1
FIELDS = ("launch_us", "read_gbps", "write_back_us", "write_back_bytes")


@dataclass(frozen=True)
class FloorModel:
    launch_us: float
    read_gbps: float
    write_back_us: float
    write_back_bytes: float
    basis: str  # where the numbers come from: the measured floors fitted, or "datasheet"

    def us(self, read_bytes: float) -> float:
        """The floor of a call that reads `read_bytes`, µs."""
        due = 1.0 - math.exp(-read_bytes / self.write_back_bytes)
        return self.launch_us + read_bytes / (self.read_gbps * 1e3) + self.write_back_us * due

    def to_dict(self) -> dict:
        return asdict(self)


def datasheet(hbm_read_gbps: float, l2_bytes: float) -> FloorModel:
    """The floor from the chip's HBM read rate and L2 size, in the measured GPUs' shape (DATASHEET_*)."""
    write_back_us = DATASHEET_DIRTY_L2 * l2_bytes / (hbm_read_gbps * 1e3)
    return FloorModel(DATASHEET_LAUNCH_US, hbm_read_gbps, write_back_us, DATASHEET_DUE_L2S * l2_bytes,
                      "datasheet: the HBM read rate and L2 size, in the shape fitted on the H100's and H200's floors")


def of_gpu(gpu) -> FloorModel:
    """The GPU's floor: its profile's fitted one (`read_floor`), else the datasheet's."""
    if gpu.read_floor:
        return FloorModel(**gpu.read_floor)
    return datasheet(gpu.hbm_read_gbps, gpu.l2_bytes)


def fit(read_bytes, floor_us, basis: str) -> FloorModel:
    """The model fitted to measured floors (bytes read [n], µs [n]), least relative squares: for each
    write_back_bytes on a log grid (0.1 MB .. 10 GB) the other three are linear; the best grid point wins."""
    x, y = np.asarray(read_bytes, np.float64), np.asarray(floor_us, np.float64)
    if len(x) < 4 or (x <= 0).any() or (y <= 0).any():
        raise InputError("floor", f"needs >= 4 positive (bytes, µs) measurements, got {len(x)}")
    best = None
    for scale in np.geomspace(1e5, 1e10, 401):
        design = np.stack([np.ones_like(x), x, 1.0 - np.exp(-x / scale)], 1) / y[:, None]
        coef, *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
        error = float(np.abs(design @ coef - 1.0).mean())
        if (coef > 0).all() and (best is None or error < best[0]):
            best = (error, scale, coef)
    if best is None:
        raise InputError("floor", "no physical fit (every term positive) to these measurements")
    _, scale, (launch, per_byte, write_back) = best
    return FloorModel(float(launch), float(1e-3 / per_byte), float(write_back), float(scale), basis)


def check(value, where: str) -> dict:
    """A profile's `read_floor` table: {} or the four positive numbers and a basis string."""
    if value == {}:
        return {}
    ok = isinstance(value, dict) and set(value) == {*FIELDS, "basis"} and isinstance(value["basis"], str) and all(
        isinstance(value[k], (int, float)) and not isinstance(value[k], bool) and math.isfinite(value[k])
        and value[k] > 0 for k in FIELDS)
    if not ok:
        raise InputError("gpu.read_floor", f"must be {{}} or a table of positive {', '.join(FIELDS)} and a basis "
                                           f"in {where}")
    return dict(value)
