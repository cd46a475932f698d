"""The smallest useful kernel: one CTA loads and stores one float. Timing it measures what a launch
costs under our timer (launch latency + event gaps), the model's per-launch overhead."""

import triton
import triton.language as tl


@triton.jit
def touch_one(x_ptr):
    tl.store(x_ptr, tl.load(x_ptr) + 1.0)
