"""Recompute the regret table of docs/planner.md from an oracle-study CSV.

    PYTHONPATH=. python3 scripts/planner_regret.py results/h200/planner_oracle.csv [--doc docs/planner.md]

Prints the table (markdown) and, with --doc, replaces it between the regret-table markers. The
profile the study planned for (--gpu, default h200's shipped one) replays the heuristics' rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from attnsim.validation.planner_regret import acceptance, markdown, per_workload, regret_summary, replace_table
from attnsim.profiles import resolve_gpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--doc", default=None, help="markdown file whose regret table to replace")
    ap.add_argument("--per-workload", default=None, help="also write the per-workload table (CSV)")
    ap.add_argument("--replay", default=None, help="a profile (preset or file) to re-run the planner with, scored "
                                                   "on the measured rows (plans the study did not time count as missing)")
    args = ap.parse_args()
    frame = pd.read_csv(args.csv, dtype={"contexts": str, "options": str, "status": str})
    replay = resolve_gpu(args.replay) if args.replay else None
    table = per_workload(frame, resolve_gpu(args.gpu), replay)
    text = markdown(regret_summary(table), acceptance(table))
    print(text)
    if args.per_workload:
        table.to_csv(args.per_workload, index=False)
    if args.doc:
        doc = Path(args.doc)
        doc.write_text(replace_table(doc.read_text(), text))
        print(f"updated {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
