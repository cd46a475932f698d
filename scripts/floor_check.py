"""The floors calibrate measures (bench/calibration.measure_floors) against this GPU's floor model (GPU only).

    PYTHONPATH=. python3 scripts/floor_check.py [--gpu h100]

A fresh node's pure reads of 0.5 MiB-4 GiB under the bench's timer, each beside the profile's floor model
(simulator/floor.py) and its error: how far the shipped fit carries to another machine of the same GPU.
"""

from __future__ import annotations

import argparse

from attnsim.bench.calibration import measure_floors
from attnsim.profiles import resolve_gpu
from attnsim.simulator import floor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", default="h100")
    model = floor.of_gpu(resolve_gpu(ap.parse_args().gpu))
    errors = []
    for row in measure_floors():
        predicted = model.us(row["read_bytes"])
        errors.append(predicted / row["floor_us"] - 1)
        print(f"{row['read_bytes'] / 2**20:9.1f} MiB  measured {row['floor_us']:9.2f} µs  model {predicted:9.2f} µs "
              f"({100 * errors[-1]:+.1f}%)", flush=True)
    print(f"MAPE {100 * sum(map(abs, errors)) / len(errors):.2f}%, max {100 * max(map(abs, errors)):.1f}% "
          f"({model.basis})")


if __name__ == "__main__":
    main()
