"""How long a plan-table lookup takes: µs per call of attnsim.plantable's PlanTable.lookup, the call a
serving loop makes every decode step (a benchmark, not a test: the figure depends on the host).

    PYTHONPATH=. python3 scripts/bench_plantable.py [TABLE.json] [--repeat 5]

Without a table it writes one first, in a separate process (`attnsim plan --table`, Llama-3.1-70B at
TP 8 on the H200, pages of 16 tokens, bf16 and fp8 KV: 144 cells), so this process imports the loader
alone; it says whether numpy or torch were imported. Per case: the best of --repeat timings of
10,000 calls (time.perf_counter_ns), as µs per call.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from attnsim import plantable

CALLS = 10_000
BUILD = ["plan", "--gpu", "h200", "--model", "meta-llama/Llama-3.1-70B", "--tp", "8", "--page-size", "16",
         "--kv-dtype", "bf16,fp8"]


def build(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "attnsim", *BUILD, "--table", str(path)], check=True,
                   stdout=subprocess.DEVNULL)


def us_per_call(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(CALLS):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / CALLS / 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", nargs="?")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.table) if args.table else Path(tmp) / "table.json"
        if not args.table:
            build(path)
        table = plantable.load(path)
    rng = random.Random(0)
    page, kv = table.sections[0]
    cases = {"uniform (batch 16, one length)": lambda: table.lookup(16, 30000, page, kv)}
    for batch in (1, 16, 256):
        lengths = [rng.randint(100, 200_000) for _ in range(batch)]
        cases[f"ragged batch {batch} (one length each)"] = lambda b=batch, c=lengths: table.lookup(b, c, page, kv)
    if len(table.sections) == 1:
        cases["single section, no page/dtype given"] = lambda: table.lookup(16, 30000)
    heavy = {m for m in ("numpy", "torch", "pandas", "triton") if m in sys.modules}
    print(f"{path.name if args.table else 'a fresh table'}: {len(table.batches)} x {len(table.contexts)} buckets, "
          f"{len(table.sections)} (page size, KV dtype) names; imported besides the stdlib: {sorted(heavy) or 'nothing'}")
    for name, fn in cases.items():
        print(f"  {name:<40} {us_per_call(fn, args.repeat):6.2f} µs/call")


if __name__ == "__main__":
    main()
