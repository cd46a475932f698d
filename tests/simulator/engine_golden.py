"""Predicted times of a fixed set of plans, as exact float hex (tests/data/engine_golden.json), so an
engine or planner optimisation proves its predictions identical (to 1e-12: test_engine_golden.py). A
deliberate model change re-records them:

    PYTHONPATH=. python tests/simulator/engine_golden.py --write
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from attnsim.predict import predict_one
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

PATH = Path(__file__).resolve().parents[1] / "data" / "engine_golden.json"
SPECS = ("fa2", "flashdecoding", "flashdecoding:splits=3", "flashdecoding:splits=16", "streamk", "streamk:grid=100",
         "hybrid", "hybrid:grid=132,dp_outputs=132", "balanced", "balanced:grid=1000", "balanced:chunk_tokens=1024",
         "torch-flash")


def workloads() -> list[DecodeWorkload]:
    ragged = [1000 * (i + 1) ** 2 % 70001 + 37 for i in range(24)]
    return [DecodeWorkload.build(1, 32, 8, 128, 4096), DecodeWorkload.build(8, 64, 8, 64, 100_000),
            DecodeWorkload.build(48, 32, 32, 128, 3000), DecodeWorkload.build(24, 32, 8, 128, ragged),
            DecodeWorkload.build(5, 128, 1, 64, [70_000, 300, 5000, 12_000, 777])]


def figures() -> dict[str, str]:
    out = {}
    for gpu_name in ("h200", "l40s"):  # datasheet figures and default costs: stable across recalibrations
        gpu = resolve_gpu(gpu_name, "none")
        for i, w in enumerate(workloads()):
            for spec in SPECS:
                out[f"{gpu_name}|{i}|{spec}"] = predict_one(spec, w, gpu).total_us.hex()
    return out


def moved(stored: dict[str, str], now: dict[str, str], rel_tol: float = 0.0) -> dict[str, tuple[float, float]]:
    """The figures of `stored` that `now` lacks or moved by more than rel_tol (0: any bit), as (stored, now)."""
    out = {}
    for key, value in stored.items():
        was, got = float.fromhex(value), float.fromhex(now[key]) if key in now else math.nan
        if not math.isclose(was, got, rel_tol=rel_tol, abs_tol=0.0):
            out[key] = (was, got)
    return out


def main() -> int:
    now = figures()
    if "--write" in sys.argv:
        PATH.write_text(json.dumps(now, indent=0, sort_keys=True) + "\n")
        print(f"wrote {PATH}: {len(now)} figures")
        return 0
    stored = json.loads(PATH.read_text())
    changed = list(moved(stored, now))
    print(f"{len(stored) - len(changed)}/{len(stored)} figures bit-identical" + (f"; changed: {changed[:5]}" if changed else ""))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
