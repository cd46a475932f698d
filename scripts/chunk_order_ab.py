"""Split-KV's fixed-chunk plans timed as this tree runs them, for an A/B against another tree (the same
script run from it): the oracle study's ragged workloads and a few uniform ones, three chunk rules each,
plus balanced on the same chunks (the same CTA order with a combine launch).

    PYTHONPATH=. python3 scripts/chunk_order_ab.py --out $OUT/chunks_new.csv
    (cd old && PYTHONPATH=. python3 ../scripts/chunk_order_ab.py --out $OUT/chunks_old.csv)
    PYTHONPATH=. python3 scripts/chunk_order_ab.py --rules 'splits=4;splits=16' --out $OUT/splits.csv  # split counts

Timer and checks as the oracle study's (do_bench median, L2 flushed, every row fp64-checked first).
"""

from __future__ import annotations

import sys

from attnsim.bench.study import run_study, study_parser
from attnsim.kernels.timing import TimerConfig
from attnsim.profiles import resolve_gpu
from attnsim.validation.planner_oracle import oracle_workloads

TIMER = TimerConfig(warmup_ms=10.0, rep_ms=10.0)
RULES = ("chunk_tokens=512,max_splits=16", "chunk_tokens=512,max_splits=64", "chunk_tokens=1024")
UNIFORM = 8  # uniform workloads, every twelfth of the oracle set


def points():
    everything = oracle_workloads()
    ragged = [w for w in everything if len(set(w.contexts)) > 1]
    uniform = [w for w in everything if len(set(w.contexts)) == 1][::12][:UNIFORM]
    return ragged + uniform


def specs(rules: tuple[str, ...]):
    """(workload) -> plan specs: each rule as split-KV and as balanced (a split count: split-KV and FlashDecoding)."""
    def of(w) -> list[str]:
        return [f"{s}:{r}" for r in rules for s in ("splitkv", "flashdecoding" if r.startswith("splits=") else "balanced")]
    return of


def main() -> int:
    ap = study_parser(__doc__.splitlines()[0], "chunks.csv")
    ap.add_argument("--rules", default=";".join(RULES),
                    help="';'-separated option sets, e.g. 'splits=4;splits=16' for split-KV's split-count grid")
    args = ap.parse_args()
    rules = tuple(r for r in args.rules.split(";") if r)
    return run_study(args.out, points()[:args.limit], resolve_gpu(args.gpu), specs(rules), TIMER, args.resume,
                     args.estimate)


if __name__ == "__main__":
    sys.exit(main())
