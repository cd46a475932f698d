"""Is d 160's slowness the load pattern? A pure read of [rows, d] fp16 K-like rows, streamed as our kernels' tiles
are loaded (docs/kernels.md, "Head dims that are not powers of two"), at every head dim, on whichever GPU came.

    PYTHONPATH=. python3 scripts/masked_read_probe.py --out $OUT      # on the device, ~1 min

Each program streams a contiguous run of rows of one buffer, BLOCK_N rows a step, in one of two patterns:
- `tile`: a [BLOCK_N, W] tile, W = d's next power of two, the columns past d masked (tile_loads.head_columns'
  pattern: a warp's load covers one 256-column row at W 256, 20 of its 32 lanes live at d 160);
- `flat`: the same BLOCK_N x d elements as one contiguous 1-D run (every lane live but the last step's).
Both read exactly the buffer's bytes; their times against the same bytes' plain read (membw's slice_sum) say
whether masked rows at d 160 cost more per byte than at 192 / 224 without any attention math. Writes
OUT/masked_read_probe.csv (pattern, head_dim, grid, warps, us, GB/s, vs the plain read).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
import triton
import triton.language as tl

from attnsim.kernels.membw import launch_stream_read
from attnsim.kernels.timing import TimerConfig, time_us

HEAD_DIMS = (128, 160, 192, 224, 256)
GRIDS = (132, 264, 528)
BLOCK_N = 32
TOTAL_BYTES = 256 << 20


@triton.jit
def _tile_read(x_ptr, sums_ptr, rows_per_cta, D: tl.constexpr, W: tl.constexpr, BLOCK_N: tl.constexpr):
    pid = tl.program_id(0)
    base = x_ptr + pid.to(tl.int64) * rows_per_cta * D
    rows, cols = tl.arange(0, BLOCK_N), tl.arange(0, W)
    acc = tl.zeros([BLOCK_N, W], dtype=tl.float32)
    for start in range(0, rows_per_cta, BLOCK_N):
        ptrs = base + (start + rows)[:, None] * D + cols[None, :]
        acc += tl.load(ptrs, mask=cols[None, :] < D, other=0.0).to(tl.float32)
    tl.store(sums_ptr + pid, tl.sum(tl.sum(acc, axis=1), axis=0))


@triton.jit
def _flat_read(x_ptr, sums_ptr, rows_per_cta, D: tl.constexpr, FLAT: tl.constexpr, BLOCK_N: tl.constexpr):
    pid = tl.program_id(0)
    base = x_ptr + pid.to(tl.int64) * rows_per_cta * D
    offs = tl.arange(0, FLAT)
    acc = tl.zeros([FLAT], dtype=tl.float32)
    for start in range(0, rows_per_cta, BLOCK_N):
        acc += tl.load(base + start * D + offs, mask=offs < BLOCK_N * D, other=0.0).to(tl.float32)
    tl.store(sums_ptr + pid, tl.sum(acc, axis=0))


def launch(pattern: str, x, sums, grid: int, rows_per_cta: int, d: int, warps: int) -> None:
    if pattern == "tile":
        _tile_read[(grid,)](x, sums, rows_per_cta, D=d, W=triton.next_power_of_2(d), BLOCK_N=BLOCK_N,
                            num_warps=warps)
    elif pattern == "flat":
        _flat_read[(grid,)](x, sums, rows_per_cta, D=d, FLAT=triton.next_power_of_2(BLOCK_N * d), BLOCK_N=BLOCK_N,
                            num_warps=warps)
    else:  # the plain read of the same bytes (membw), the floor's kernel
        launch_stream_read(x, sums, grid, warps, 1024, rows_per_cta * d)  # 32 rows x d: a multiple of 1024


def checked(pattern: str, x, grid: int, rows_per_cta: int, d: int, warps: int) -> None:
    """Every pattern reads what we count: CTA 0's and the last CTA's sums match their rows' fp64 sums."""
    sums = torch.zeros(grid, dtype=torch.float32, device=x.device)
    launch(pattern, x, sums, grid, rows_per_cta, d, warps)
    for cta in (0, grid - 1):
        want = float(x[cta * rows_per_cta * d:(cta + 1) * rows_per_cta * d].double().sum())
        if abs(float(sums[cta]) - want) > 1e-3 * abs(want):
            raise RuntimeError(f"{pattern} d {d}: CTA {cta} summed {float(sums[cta])}, expected {want}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    out = ap.parse_args().out
    timer, rows = TimerConfig(), []
    for d in HEAD_DIMS:
        for grid in GRIDS:
            rows_per_cta = TOTAL_BYTES // (2 * d * grid) // BLOCK_N * BLOCK_N
            x = torch.rand(grid * rows_per_cta * d, dtype=torch.float16, device="cuda")
            sums = torch.zeros(grid, dtype=torch.float32, device="cuda")
            for pattern in ("plain", "tile", "flat"):
                checked(pattern, x, grid, rows_per_cta, d, 4)
                us = time_us(lambda: launch(pattern, x, sums, grid, rows_per_cta, d, 4), timer)
                rows.append({"pattern": pattern, "head_dim": d, "grid": grid, "warps": 4, "bytes": x.numel() * 2,
                             "us": round(us, 3), "gbps": round(x.numel() * 2 / us / 1e3, 1)})
                print(rows[-1], flush=True)
            del x, sums
            torch.cuda.empty_cache()
    frame = pd.DataFrame(rows)
    plain = frame[frame["pattern"] == "plain"].set_index(["head_dim", "grid"])["us"]
    frame["vs_plain"] = [round(r.us / plain[(r.head_dim, r.grid)], 4) for r in frame.itertuples()]
    frame.to_csv(out / f"masked_read_probe_{torch.cuda.get_device_name().split()[1].lower()}.csv", index=False)
    print(frame.pivot_table(index=["grid", "pattern"], columns="head_dim", values="vs_plain").to_string())


if __name__ == "__main__":
    main()
