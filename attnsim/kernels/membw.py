"""HBM read bandwidth as a streaming kernel sees it, and how it grows with the number of CTAs.

Program p of `num_ctas` (each `num_warps` warps) reduces a contiguous slice of `elems_per_cta`
fp16 elements of one large buffer, `block_elems` per loop step, and writes one fp32 sum:
reads num_ctas x elems_per_cta x 2 bytes, writes num_ctas x 4. No reuse, so the time is the
time to stream the slices from HBM (do_bench flushes L2 before each call; slices >> L2 anyway).

- `measure_read_gbps` times one configuration (GB/s = 1e9 bytes/s, bytes read only).
- `read_bandwidth_curve` sweeps CTA counts: one 4-warp CTA streams ~13-17 GB/s on the H100,
  linear to ~100 CTAs, saturating near ~3.05 TB/s (shared/anchors/h100_read_bandwidth.csv).
  Calibration fits its per-CTA streaming rate and knee to this curve.
- `peak_read_gbps` is the max over a few saturating configurations: the "measured HBM read
  bandwidth" that `attnsim bench` divides achieved GB/s by (`bw_fraction`).
"""

from __future__ import annotations

import triton
import triton.language as tl

from attnsim.kernels.timing import TimerConfig, time_us

GIB = 1 << 30
DEFAULT_BUFFER_BYTES = 4 * GIB
MAX_BYTES_PER_CTA = 32 << 20  # keeps one-CTA points at a few ms (one 4-warp CTA: ~15 GB/s)
# (num_warps, block_elems, CTA counts): past the knee on the H100 (264-1056 CTAs of 8 warps, 528+ of 4)
PEAK_CONFIGS = ((8, 4096, (264, 528, 1056)), (4, 8192, (528, 1056)))


@triton.jit
def slice_sum(x_ptr, pid, elems_per_cta, BLOCK_ELEMS: tl.constexpr):
    """fp32 sum of slice `pid` of x (elements [pid * elems_per_cta, (pid + 1) * elems_per_cta), fp16,
    elems_per_cta a multiple of BLOCK_ELEMS), read BLOCK_ELEMS a step: the streaming loop every read kernel runs."""
    base_ptr = x_ptr + pid.to(tl.int64) * elems_per_cta
    offs = tl.arange(0, BLOCK_ELEMS)
    acc = tl.zeros([BLOCK_ELEMS], dtype=tl.float32)
    for start in range(0, elems_per_cta, BLOCK_ELEMS):
        acc += tl.load(base_ptr + start + offs).to(tl.float32)
    return tl.sum(acc, axis=0)


@triton.jit
def _stream_read_kernel(x_ptr, sums_ptr, elems_per_cta, BLOCK_ELEMS: tl.constexpr):
    # x: [num_ctas * elems_per_cta] fp16; sums: [num_ctas] fp32
    pid = tl.program_id(0)
    tl.store(sums_ptr + pid, slice_sum(x_ptr, pid, elems_per_cta, BLOCK_ELEMS))


def make_buffer(buffer_bytes: int = DEFAULT_BUFFER_BYTES, device: str = "cuda"):
    """A 1-D fp16 buffer of uniform [0, 1) values (never zeros: they can time faster than data)."""
    import torch

    return torch.rand(buffer_bytes // 2, dtype=torch.float16, device=device)


def elems_per_cta(buffer_elems: int, num_ctas: int, block_elems: int,
                  max_bytes_per_cta: int = MAX_BYTES_PER_CTA) -> int:
    """Slice length: an equal share of the buffer, capped, rounded down to whole blocks."""
    share = min(buffer_elems // num_ctas, max_bytes_per_cta // 2)
    return (share // block_elems) * block_elems


def launch_stream_read(buffer, sums, num_ctas: int, num_warps: int, block_elems: int, per_cta: int):
    _stream_read_kernel[(num_ctas,)](buffer, sums, per_cta, BLOCK_ELEMS=block_elems, num_warps=num_warps)
    return sums


def _check_sums(buffer, sums, per_cta: int) -> None:
    """The kernel read what we count: the first and last CTA's sums match their slices' sums."""
    for cta in (0, sums.numel() - 1):
        want = float(buffer[cta * per_cta:(cta + 1) * per_cta].double().sum())
        got = float(sums[cta])
        if abs(got - want) > 1e-3 * abs(want):
            raise RuntimeError(f"stream-read kernel: CTA {cta} summed {got}, expected {want}")


def measure_read_gbps(num_ctas: int, num_warps: int = 4, block_elems: int = 2048,
                      buffer_bytes: int = DEFAULT_BUFFER_BYTES, *, buffer=None,
                      timer: TimerConfig = TimerConfig(), max_bytes_per_cta: int = MAX_BYTES_PER_CTA) -> float:
    """Read GB/s of `num_ctas` CTAs streaming slices of an fp16 buffer of `buffer_bytes`.

    Pass `buffer` (from make_buffer) to reuse one allocation across calls.
    """
    import torch

    buffer = make_buffer(buffer_bytes) if buffer is None else buffer
    per_cta = elems_per_cta(min(buffer.numel(), buffer_bytes // 2), num_ctas, block_elems, max_bytes_per_cta)
    if per_cta == 0:
        raise ValueError(f"buffer of {buffer_bytes} bytes too small for {num_ctas} CTAs x {block_elems} elems")
    sums = torch.empty(num_ctas, dtype=torch.float32, device=buffer.device)
    _check_sums(buffer, launch_stream_read(buffer, sums, num_ctas, num_warps, block_elems, per_cta), per_cta)
    us = time_us(lambda: launch_stream_read(buffer, sums, num_ctas, num_warps, block_elems, per_cta), timer)
    return num_ctas * per_cta * 2 / (us * 1e3)


def read_bandwidth_curve(cta_counts, num_warps: int = 4, block_elems: int = 2048,
                         buffer_bytes: int = DEFAULT_BUFFER_BYTES, *, buffer=None,
                         timer: TimerConfig = TimerConfig()) -> list[dict]:
    """One record per CTA count: num_warps, block_elems_fp16, num_ctas, read_gbps (as in anchors/)."""
    buffer = make_buffer(buffer_bytes) if buffer is None else buffer
    return [{"num_warps": num_warps, "block_elems_fp16": block_elems, "num_ctas": n,
             "read_gbps": round(measure_read_gbps(n, num_warps, block_elems, buffer_bytes,
                                                  buffer=buffer, timer=timer), 1)}
            for n in cta_counts]


def peak_read_gbps(buffer_bytes: int = DEFAULT_BUFFER_BYTES, timer: TimerConfig = TimerConfig(),
                   configs=PEAK_CONFIGS) -> float:
    """Measured HBM read bandwidth (GB/s): the best of a few saturating configurations."""
    import torch

    buffer = make_buffer(buffer_bytes)
    try:
        records = [r for warps, block, ctas in configs
                   for r in read_bandwidth_curve(ctas, warps, block, buffer_bytes, buffer=buffer, timer=timer)]
    finally:
        del buffer
        torch.cuda.empty_cache()
    return max(r["read_gbps"] for r in records)


# The floor under the bench timer (shared/research/small-call-decode.md): the faster of two pure reads.
# 512 streaming blocks of 4 warps reach the chip's read bandwidth from a few MB up (fewer leave it
# latency-bound at small sizes) but not at the top: from 256 MB cuDNN and stream-K read faster than
# them (H200, 2026-12-05: cuDNN / that floor 0.83 above 4 GB), so a floor that kernels beat. 528 blocks
# of 8 warps and 4096-element steps (one of peak_read_gbps' saturating shapes) are the second.
# (ctas, warps, block_elems)
FLOOR_SHAPES = ((512, 4, 1024), (528, 8, 4096))


def floor_layout(read_bytes: int, max_ctas: int, block_elems: int) -> tuple[int, int]:
    """(CTAs, fp16 elements per CTA) of a read of at least `read_bytes`: whole blocks, at most
    `max_ctas` CTAs, each with work (small reads use fewer)."""
    ctas = max(1, min(max_ctas, -(-read_bytes // (2 * block_elems))))
    return ctas, -(-read_bytes // (2 * ctas * block_elems)) * block_elems


class ReadFloor:
    """The physical limit of a kernel that must read N bytes, measured: the faster of pure streaming
    reads of N bytes (FLOOR_SHAPES, rounded up to whole blocks) under the same timer and L2 flush as
    the kernels. Cached per byte count; one buffer, grown to the largest read asked for."""

    def __init__(self, timer: TimerConfig = TimerConfig(), device: str = "cuda"):
        self.timer, self.device, self.buffer, self.times = timer, device, None, {}

    def us(self, read_bytes: int) -> float:
        if read_bytes not in self.times:
            self.times[read_bytes] = min(self._measure(read_bytes, *shape) for shape in FLOOR_SHAPES)
        return self.times[read_bytes]

    def _measure(self, read_bytes: int, max_ctas: int, warps: int, block_elems: int) -> float:
        import torch

        ctas, per_cta = floor_layout(read_bytes, max_ctas, block_elems)
        if self.buffer is None or self.buffer.numel() < ctas * per_cta:
            self.buffer = None
            self.buffer = make_buffer(2 * ctas * per_cta, self.device)
        sums = torch.empty(ctas, dtype=torch.float32, device=self.device)
        _check_sums(self.buffer, launch_stream_read(self.buffer, sums, ctas, warps, block_elems, per_cta), per_cta)
        return time_us(lambda: launch_stream_read(self.buffer, sums, ctas, warps, block_elems, per_cta), self.timer)
