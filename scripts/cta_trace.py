"""Where and when the CTAs of a launch past one wave run: SM id, start and end of every program (GPU only).

    PYTHONPATH=. python3 scripts/cta_trace.py --out DIR [--total-mib 1024] [--reps 3]

The model's engine starts every CTA past the first wave when that wave ends, one an SM, on the chip-wide
share (docs/validation.md, "Grids of 1-1.5 waves are predicted too fast"); the grid study says the
device does otherwise both ways (small tails cost less, large ones more). This probe records what the
block scheduler does: a streaming read (membw's loop: each program reduces its own contiguous slice of one
buffer, equal slices) whose program p stores (%smid, %globaltimer at its start, %globaltimer after its
result's store) in trace[p]. The warps per CTA set how many CTAs an SM holds (k = 64 warps / num_warps: 2
at 32 warps, 4 at 16), the grids are k x SMs (one full wave) plus tails of 4 .. half a wave, at fixed
total bytes, each launched after do_bench's L2 flush (256 MB written), `--reps` times.

Writes DIR/cta_trace.csv (config, rep, pid, sm, start_ns, end_ns: ns from the launch's first start) and
prints per grid: the span, the first wave's end spread (p10 / p50 / p90 of its CTAs' ends over the
median), the tail's CTAs per SM (how many SMs hold 1, 2, ... of them) and its starts relative to the first
wave's median end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import triton
import triton.language as tl

from attnsim.fileio import write_text
from attnsim.kernels.membw import elems_per_cta, make_buffer, slice_sum

WARPS_PER_SM = 64  # Hopper: 2,048 threads an SM
BLOCK_ELEMS = 8192


@triton.jit
def _traced_read_kernel(x_ptr, sums_ptr, trace_ptr, elems_per_cta, BLOCK: tl.constexpr):
    # x: [grid * elems_per_cta] fp16; sums: [grid] fp32; trace: int64 [grid, 3] = (sm, start ns, end ns)
    pid = tl.program_id(0)
    start = tl.extra.cuda.globaltimer()
    tl.store(sums_ptr + pid, slice_sum(x_ptr, pid, elems_per_cta, BLOCK))
    end = tl.extra.cuda.globaltimer()  # after the store: the program's last side effect
    row = trace_ptr + pid * 3
    tl.store(row, tl.extra.cuda.smid().to(tl.int64))
    tl.store(row + 1, start)
    tl.store(row + 2, end)


def grids_for(sms: int, k: int) -> list[int]:
    """One full wave of k CTAs an SM, then tails of 4, 28, a quarter and a half wave, and two waves + 4."""
    wave = k * sms
    return [wave, wave + 4, wave + 28, wave + wave // 4, wave + wave // 2, 2 * wave + 4]


def trace_launch(x, grid: int, warps: int, flush):
    import torch

    per_cta = elems_per_cta(x.numel(), grid, BLOCK_ELEMS)  # equal slices (<= membw's 32 MB cap a CTA)
    sums = torch.empty(grid, dtype=torch.float32, device=x.device)
    trace = torch.zeros(grid, 3, dtype=torch.int64, device=x.device)
    flush.zero_()  # do_bench's flush: the launch starts with a dirty L2
    _traced_read_kernel[(grid,)](x, sums, trace, per_cta, BLOCK=BLOCK_ELEMS, num_warps=warps)
    torch.cuda.synchronize()
    t = trace.cpu().numpy()
    t[:, 1:] -= t[:, 1].min()
    return t


def summary(t: np.ndarray, wave: int, sms: int) -> str:
    ends, starts, sm = t[:, 2], t[:, 1], t[:, 0]
    first = ends[:wave]
    med = float(np.median(first))
    line = (f"span {ends.max() / 1e3:7.1f} us; first wave ends p10/p50/p90 "
            f"{np.percentile(first, 10) / med:.3f}/1/{np.percentile(first, 90) / med:.3f} of {med / 1e3:.1f} us")
    if len(t) > wave:
        tail_sm = np.bincount(sm[wave:], minlength=sms)
        held = np.bincount(tail_sm)[1:]
        rel = starts[wave:] / med
        line += (f"; tail of {len(t) - wave}: SMs holding 1/2/3/4.. of it {'/'.join(map(str, held))}, "
                 f"starts p10/p50/p90 {np.percentile(rel, 10):.3f}/{np.percentile(rel, 50):.3f}/"
                 f"{np.percentile(rel, 90):.3f} of the first wave's median end")
    return line


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--total-mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    x = make_buffer(args.total_mib << 20)
    flush = torch.empty(256 << 20, dtype=torch.int8, device="cuda")
    rows = []
    for warps in (32, 16):
        k = WARPS_PER_SM // warps
        for grid in grids_for(sms, k):
            trace_launch(x, grid, warps, flush)  # compile and warm up
            for rep in range(args.reps):
                t = trace_launch(x, grid, warps, flush)
                config = f"w{warps}_k{k}_g{grid}"
                rows += [(config, rep, p, *map(int, t[p])) for p in range(grid)]
                print(f"{config} rep {rep}: {summary(t, k * sms, sms)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["config,rep,pid,sm,start_ns,end_ns"] + [",".join(map(str, r)) for r in rows]
    write_text(args.out / "cta_trace.csv", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
