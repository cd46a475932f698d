"""Decide, inside one device call, whether a branch's timings beat this tree's (an *_ab stage's pair), so that
the sweeps that follow in the same call run on the winner (scripts/device_stage.sh fp8min_land).

    PYTHONPATH=. python3 scripts/ab_pick.py A.csv B.csv [--kv-dtype fp8] [--gain 0.998] [--large-mb 256]

B wins when, over the pairs of ok rows (scripts/tree_ab.py; only KV of --kv-dtype if given), the geometric
mean of time B / time A is at most --gain and the median at KV >= --large-mb is at most 1.005 (no loss where
the bytes are). Exit 0: B wins; 1: A stays; 2: no pairs. Prints the figures it decided on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from tree_ab import paired  # noqa: E402

LARGE_TOLERANCE = 1.005  # the median B / A allowed at large KV (about the noise of one call there)


def verdict(good: pd.DataFrame, gain: float, large_bytes: float) -> tuple[bool, str]:
    """(B wins, the figures behind it) over the paired rows `good` (tree_ab.paired)."""
    geomean = float(np.exp(np.log(good["ratio"]).mean()))
    large = good[good["kv_bytes_a"] >= large_bytes]["ratio"]
    large_median = float(large.median()) if len(large) else 1.0
    wins = geomean <= gain and large_median <= LARGE_TOLERANCE
    return wins, f"{len(good)} pairs: B / A geomean {geomean:.4f} (wins at <= {gain}), " \
                 f"median at KV >= {large_bytes / 2**20:.0f} MB {large_median:.4f} ({len(large)} pairs)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--kv-dtype", default="")
    ap.add_argument("--gain", type=float, default=0.998)
    ap.add_argument("--large-mb", type=float, default=256.0)
    args = ap.parse_args(argv)
    good, _ = paired(pd.read_csv(args.a), pd.read_csv(args.b))
    if args.kv_dtype:
        good = good[good["kv_dtype"] == args.kv_dtype]
    if good.empty:
        print("ab_pick: no pair of ok rows", file=sys.stderr)
        return 2
    wins, figures = verdict(good, args.gain, args.large_mb * 2**20)
    print(f"ab_pick: {'B' if wins else 'A'} ({figures})")
    return 0 if wins else 1


if __name__ == "__main__":
    sys.exit(main())
