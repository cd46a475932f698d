"""One check and one timing of a launcher, as every bench row takes them (harness.bench_one, and the trials
of `auto:tune=K`, tune.tuned_launcher): run once into a NaN-poisoned output and compare with the float64
reference, then time with the row's timer (a CUDA-graph replay of the call unless the timer says otherwise)."""

from __future__ import annotations

from typing import Callable

from attnsim.bench import inputs
from attnsim.kernels.timing import TimerConfig, replayable, time_us


def checked_run(launcher, w, q, k, v, ref, run_kwargs: dict):
    """(max_rel_err against `ref`, the output): `launcher` run once into a NaN-poisoned output."""
    out = inputs.poisoned_like(q, w.v_dim)
    return inputs.max_rel_err(launcher.run(q, k, v, out=out, **run_kwargs), ref), out


def timed_us(fn: Callable[[], object], timer: TimerConfig) -> float:
    """Median µs of one call of `fn` under `timer`, replayed from a CUDA graph when the timer replays."""
    return time_us(replayable(fn) if timer.replay and not timer.cudagraph else fn, timer)
