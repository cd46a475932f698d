"""The whole `attnsim bench` run on a GPU: device checks, the measured peak read bandwidth, the sweep,
and its CSV written atomically every few seconds (so an interrupted run can --resume)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.bench.harness import BenchConfig, run_sweep, spec_name
from attnsim.bench.results import COLUMNS, done_keys, load_previous, write_csv
from attnsim.kernels.timing import TimerConfig


def require_cuda() -> str:
    """The CUDA device's name, or a one-line InputError on a host without one."""
    import torch

    if not torch.cuda.is_available():
        raise InputError("gpu", "no CUDA GPU is visible to torch here; `attnsim bench` times kernels on a GPU "
                                "(`attnsim bench --estimate` and `attnsim predict` run without one)")
    return torch.cuda.get_device_name()


def usable_strategies(names, log: Callable[[str], None]) -> tuple[str, ...]:
    """Drop what this machine cannot run at all, saying why: a missing SDPA backend is a note;
    our kernels missing (no attnsim.kernels.launch) is an input error."""
    from attnsim.kernels.torch_baselines import backend_available

    if any(strategies.get(spec_name(s)).kernel for s in names):
        try:
            import attnsim.kernels.launch  # noqa: F401
        except ImportError as exc:
            raise InputError("strategies", f"our kernels need attnsim.kernels.launch ({exc}); "
                                           f"run with --strategies {','.join(strategies.baselines())}") from None
    kept = []
    for s in names:
        reason = backend_available(spec_name(s)) if strategies.get(spec_name(s)).sdpa_backend else None
        if reason:
            log(f"dropping {s}: {reason}")
        else:
            kept.append(s)
    return tuple(kept)


def run_bench_to_csv(out_path, points, spec, names, timer: TimerConfig = TimerConfig(), resume: bool = False,
                     peak_read_gbps: float | None = None, progress: Callable[[int, int, str], None] | None = None,
                     log: Callable[[str], None] = lambda message: None, write_every_s: float = 5.0,
                     candidates=None) -> pd.DataFrame:
    """Run `names` on every workload of `points` on the GPU, planned for profile `spec`, and write the
    CSV (atomically, every `write_every_s` and at the end).

    With `resume`, the ok rows of an existing `out_path` are kept and not re-measured. Returns all
    rows; the caller decides what failures mean (the CLI exits 1).
    """
    import torch

    from attnsim.kernels import membw

    device_name = require_cuda()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    if sms != spec.sm_count:
        log(f"warning: the device has {sms} SMs, profile {spec.name} plans for {spec.sm_count}")
    names = usable_strategies(names, log)
    previous = load_previous(out_path) if resume and Path(out_path).exists() else pd.DataFrame(columns=COLUMNS)
    if peak_read_gbps is None:
        peak_read_gbps = membw.peak_read_gbps(timer=timer)
        log(f"measured HBM read bandwidth: {peak_read_gbps:.0f} GB/s (membw.peak_read_gbps)")
    config = BenchConfig(names, spec, device_name, peak_read_gbps, timer)
    rows, last_write = list(previous.to_dict("records")), [time.monotonic()]

    def on_point(point_rows: list[dict]) -> None:
        rows.extend(point_rows)
        if time.monotonic() - last_write[0] >= write_every_s:
            write_csv(pd.DataFrame(rows, columns=COLUMNS), out_path)
            last_write[0] = time.monotonic()

    run_sweep(points, config, done=done_keys(previous), on_point=on_point, progress=progress, candidates=candidates)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(frame, out_path)
    return frame
