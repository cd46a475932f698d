"""CachedLaunch's direct path (a GPU's second and later launches): the compiled kernel takes every constexpr
positionally, so one a launch leaves at its default (tiles.D_VALID = 0 for a power-of-two head dim) must be
filled in. Under the interpreter nothing compiles, so this path is exercised here with a recording stand-in."""

from __future__ import annotations

import torch

from attnsim.kernels.fastlaunch import CachedLaunch, specialization_key
from attnsim.kernels.flash_decoding import combine_kernel, flash_decoding_kernel


class Recorder:
    def __init__(self):
        self.calls = []

    def __getitem__(self, grid):
        return lambda *args: self.calls.append((grid, args))


def direct_call(jit_fn, constexprs: dict) -> tuple:
    """The positional arguments CachedLaunch passes the compiled kernel for `constexprs` (after the runtime args)."""
    n_runtime = jit_fn.arg_names.index("BLOCK_P")  # our kernels' constexprs start there
    args = tuple(torch.zeros(1) if i % 2 else 16 * (i + 1) for i in range(n_runtime))
    launch, recorder = CachedLaunch(jit_fn), Recorder()
    launch.compiled, launch.key = recorder, specialization_key(args)
    launch((4,), args, constexprs)
    (grid, passed), = recorder.calls
    assert grid == (4, 1, 1) and passed[:n_runtime] == args
    return passed[n_runtime:]


def test_a_constexpr_left_out_takes_its_default():
    shape = dict(BLOCK_P=2, BLOCK_M=16, BLOCK_N=64, HEAD_DIM=128, PAGE_SIZE=0, Q_LEN=1)
    assert direct_call(flash_decoding_kernel, shape) == (2, 16, 64, 128, 0, 1, 0)
    assert direct_call(flash_decoding_kernel, {**shape, "D_VALID": 96}) == (2, 16, 64, 128, 0, 1, 96)
    assert direct_call(combine_kernel, dict(BLOCK_P=4, BLOCK_M=16, ROWS=16, HEAD_DIM=128, Q_LEN=1))[-1] == 0
