"""`attnsim calibrate`: measure the GPU and fit a profile (or refit --from-data, no GPU)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import click
import pandas as pd

from attnsim import limits
from attnsim.errors import InputError
from attnsim.fileio import write_json
from attnsim.pathcheck import Named, check_apart, check_output_file
from attnsim.simulator import floor, hardware
from attnsim.simulator.profile_io import (check_profile_document, missing_as_null, read_json, read_profile_document,
                                          save_profile)
from attnsim.validation.calibration_data import QUICK_KEYS, check_calibration_data
from attnsim.validation.fit import calibrate_spec, fit_owners, fit_workers
from attnsim.validation.measurements import drop_unscorable, load_measurements

DATA_FORMAT = "attnsim-calibration-data"  # the raw measurements written before the fit


def require_cuda(command: str, offline_option: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise InputError("gpu", f"`attnsim {command}` measures on a CUDA GPU and none is available here; "
                                f"{offline_option} works from saved measurements")


@click.command()
@click.option("--gpu", default="h100", show_default=True, help="Preset the profile is based on (SM count, limits).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Profile JSON to write.")
@click.option("--from-data", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Refit from the calibration data inside an existing profile (no GPU needed).")
@click.option("--measure-only", is_flag=True, help="Write the measurements (OUT with .data.json) and stop.")
@click.option("--rep-ms", default=20.0, show_default=True,
              help="do_bench repetition time per point at most (ms); each point takes what its residual needs.")
@click.option("--budget", "budget_s", default=None, type=float,
              help="GPU seconds the full calibration may take [default: 180]; its points are chosen by what they "
                   "tell the fit per second (validation/point_selection.py).")
@click.option("--plan-only", is_flag=True, help="Print the points the budget buys, with their estimated cost, and "
                                                "stop (no GPU needed, nothing written).")
@click.option("--transfer-from", default=None,
              help="Build the profile from another GPU's calibrated profile (a preset that ships one, or a file) "
                   "and the --gpu datasheet; no GPU needed (with --quick: the source of the kernel costs).")
@click.option("--quick", is_flag=True, help="Measure only the bandwidth curve and the launch overhead (~15 s of "
                                            "GPU time); kernel costs are transferred (from --transfer-from, "
                                            "default: the nearest calibrated profile of another GPU).")
@click.option("--add-points", "add_points", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Bench CSV whose ok rows join the calibration points (repeatable), e.g. "
                   "`attnsim bench --sweep cal-serving` rows, which fit the paged / fp8 / tile-math cost fields; "
                   "kept in the profile's calibration data, so a refit --from-data keeps them.")
def calibrate(gpu, out_path, from_data, measure_only, rep_ms, budget_s, plan_only, transfer_from, quick, add_points):
    """Measure the GPU, fit the cost model, write a versioned profile (GPU; --budget, 3 minutes by default).

    \b
    Measures HBM read bandwidth vs CTAs and warps, the launch overhead, the floor (a pure read under the
    bench's timer) of 0.5 MiB-4 GiB reads, and the points of a calibration set disjoint from the
    benchmark sweep (our kernels and their option variants, PyTorch's flash and cuDNN backends) chosen
    within --budget: every cost family first, then each regime in its share of the set, within a regime
    the points that tell the fit most per GPU second, each timed for as long as its residual needs;
    cross-checks the occupancy calculator against the driver. Then fits the cost parameters
    (Levenberg-Marquardt on relative error) and writes the profile atomically.

    \b
    Examples:
      attnsim calibrate --gpu h200 --out profile.json
      attnsim calibrate --gpu h200 --budget 60 --plan-only --out profile.json  # what 60 s buys
      attnsim calibrate --from-data attnsim/profiles/h200.json --out refit.json
      attnsim calibrate --transfer-from h100 --gpu h200 --out h200_from_h100.json   # no GPU
      attnsim calibrate --quick --gpu h200 --out quick.json                         # ~15 s on the GPU
      attnsim calibrate --gpu h200 --from-data results/h200/calibration_data.json \
          --add-points results/h200/cal_serving.csv --out attnsim/profiles/h200.json
      attnsim predict --calibration profile.json --context 64k
    """
    base = hardware.from_name(gpu)
    raw = _check_arguments(base, out_path, from_data, measure_only, rep_ms, transfer_from, quick, add_points)
    budget_s = _check_budget(budget_s, plan_only, from_data, transfer_from, quick, measure_only)
    if plan_only:
        click.echo("\n".join(_plan(base, budget_s, rep_ms).summary()))
    elif quick:
        _quick(base, out_path, from_data, transfer_from, rep_ms)
    elif transfer_from:
        from attnsim.profiles import write_transferred_profile

        spec = write_transferred_profile(transfer_from, base.name, out_path)
        click.echo(f"wrote {out_path}: {spec.source} (expected error ~{spec.expected_error_pct:.0f}%)")
    else:
        _fit(base, out_path, raw, from_data, measure_only, rep_ms, budget_s, add_points)


def _check_budget(budget_s, plan_only, from_data, transfer_from, quick, measure_only) -> float:
    """--budget and --plan-only apply to the full calibration on the GPU: the seconds (default 180)."""
    from attnsim.validation.calibration_plan import DEFAULT_BUDGET_S, MAX_BUDGET_S

    offline = "--from-data" if from_data else "--transfer-from" if transfer_from else "--quick" if quick else None
    for name, given in (("budget", budget_s is not None), ("plan-only", plan_only)):
        if given and offline:
            raise InputError(name, f"applies to the full calibration on the GPU, not with {offline}")
    if plan_only and measure_only:
        raise InputError("plan-only", "stops before measuring; --measure-only measures")
    return DEFAULT_BUDGET_S if budget_s is None else limits.check_positive(budget_s, "budget", MAX_BUDGET_S)


def _plan(base, budget_s, rep_ms: float = 20.0):
    """The points the budget buys (validation/calibration_plan.py), each timer capped at --rep-ms."""
    from attnsim.kernels.timing import TimerConfig
    from attnsim.validation.calibration_plan import plan_calibration

    return plan_calibration(base, budget_s, timer=TimerConfig(rep_ms=rep_ms))


def _check_arguments(base, out_path, from_data, measure_only, rep_ms, transfer_from, quick, add_points) -> Path:
    """Every option and output checked before any work; returns where the full calibration keeps its
    raw measurements (OUT with .data.json)."""
    if add_points and (quick or transfer_from):
        raise InputError("add-points", "adds points to a fit; --quick and --transfer-from fit no kernel costs")
    check_output_file(out_path, "out", (".json",), "profile")
    limits.check_positive(rep_ms, "rep-ms", limits.MAX_TIMER_MS)
    if measure_only and (from_data or transfer_from or quick):
        raise InputError("measure-only", "applies to the full calibration on the GPU, not with --from-data, "
                                         "--transfer-from or --quick")
    if transfer_from:
        _check_transfer_source(transfer_from)
    raw = Path(out_path).with_suffix(".data.json")
    measures_all = not (from_data or quick or transfer_from)
    if measures_all:
        check_output_file(raw, "out")
    check_apart(_inputs(base, from_data, transfer_from, quick, add_points),
                [("out", out_path)] + ([("out", raw)] if measures_all else []))
    return raw


def _fit(base, out_path, raw: Path, from_data, measure_only, rep_ms, budget_s, add_points) -> None:
    """The full calibration: measure on the GPU (kept in `raw` first: a refit needs no GPU) or read
    --from-data, add --add-points rows, check it all, fit every cost family, write the profile."""
    added = [row for path in add_points for row in _added_points(path, base)]  # checked before measuring
    doc = _data_document(from_data, "calibrate", lambda: _measure(base, _plan(base, budget_s, rep_ms), rep_ms))
    if not from_data:
        write_json(raw, {**doc, "calibration_data": missing_as_null(doc["calibration_data"])}, indent=1)
        click.echo(f"wrote {raw} (measurements; refit with --from-data)", err=True)
        if measure_only:
            return
    if added:
        data = doc["calibration_data"]
        doc = {**doc, "calibration_data": {**data, "points": data["points"] + added}}
    device, points = check_calibration_data(doc, from_data or raw, target=base)
    data = doc["calibration_data"]
    created = _now()
    source = f"calibrated {created[:10]} on {device.get('name', '?')}"
    started = time.perf_counter()
    spec, report = calibrate_spec(base, pd.DataFrame(data["bandwidth"]), points, data["kernels"],
                                  data["launch_overhead_us"], source,
                                  progress=lambda s, r: click.echo(f"fit {s}: {r['points']} points, "
                                                                   f"MAPE {r['mape_pct']:.2f}%", err=True))
    spec = with_floor(spec, data.get("floors"), source)
    report["fit_s"] = round(time.perf_counter() - started, 1)  # CPU time after the GPU is done with
    click.echo(_fitted_line(report), err=True)
    report["occupancy_crosscheck"] = data.get("occupancy_crosscheck", [])
    save_profile(out_path, spec, device, report, data, created)
    click.echo(f"wrote {out_path}: {source}, HBM read {spec.hbm_read_gbps:.0f} GB/s")


def with_floor(spec, floors: list[dict] | None, source: str):
    """The spec with its floor model fitted on the measured floors (simulator/floor.py); data measured before
    calibrate measured them (no `floors`) keeps the datasheet's."""
    if not floors:
        return spec
    model = floor.fit([r["read_bytes"] for r in floors], [r["floor_us"] for r in floors],
                      f"fitted on {len(floors)} floors {source}")
    return dataclasses.replace(spec, read_floor=model.to_dict())


def _fitted_line(report: dict) -> str:
    """'fitted 11 families (6 fits, 6 processes) in 41.2 s': the fit's wall time, next to the measuring
    time, is what a user waits for. A fit: a strategy's families, or its MLA families ('fa2-mla')."""
    jobs = {key: families for key, (_, families, _) in fit_owners().items() if key in report}
    families = sum(len(f) for f in jobs.values())
    return (f"fitted {families} families ({len(jobs)} fits, {_count(fit_workers(len(jobs)), 'process')}) "
            f"in {report['fit_s']:.1f} s")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es"


def _added_points(path, base) -> list[dict]:
    """The ok rows of a bench CSV as calibration points (each row records its kernel's resources);
    missing values as None, so the profile's calibration data stays plain JSON. Checked as measurements
    are (cells by line and column; strategies attnsim models, measured on the profile's GPU: another
    GPU's would be fitted into this one's costs)."""
    from attnsim.bench.results import load_previous

    drop_unscorable(load_measurements(path, "add-points"), base, path, "add-points")  # refused, not left out
    try:
        rows = load_previous(path)
    except InputError as exc:  # load_previous speaks of bench --out
        raise InputError("add-points", exc.message) from None
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def _quick(base, out_path, from_data, transfer_from, rep_ms) -> None:
    """--quick: the target's bandwidth curve and launch overhead (measured now, or from --from-data)
    applied to a transfer of another GPU's calibrated profile (attnsim.simulator.quick)."""
    from attnsim.profiles import quick_source, transfer_from as transfer
    from attnsim.simulator.quick import quick_profile

    source = transfer_from or quick_source(base)
    source_doc = _quick_source_document(source)  # before measuring: a bad source costs no GPU time
    doc = _data_document(from_data, "calibrate --quick", lambda: _measure_quick(base, rep_ms))
    device, _ = check_calibration_data(doc, from_data or "the measurements", keys=QUICK_KEYS, target=base)
    data = doc["calibration_data"]
    transferred, report = transfer(source, base.name)
    created = _now()
    text = (f"transferred from {source}, quick-calibrated {created[:10]} on {device.get('name', '?')} "
            "(bandwidth curve and launch overhead measured)")
    spec, report = quick_profile(transferred, report, source_doc, data["bandwidth"], data["launch_overhead_us"], text)
    keep = {"bandwidth": data["bandwidth"], "launch_overhead_us": data["launch_overhead_us"]}
    save_profile(out_path, spec, device, {}, keep, created, transfer=report)
    click.echo(f"wrote {out_path}: {text}; HBM read {spec.hbm_read_gbps:.0f} GB/s")


def _quick_source_document(source: str) -> dict:
    """The profile a quick calibration scales from: its own bandwidth curve and launch overhead are
    checked as the target's are (a transferred or hand-written profile has none)."""
    from attnsim.simulator.hardware import spec_from_dict
    from attnsim.profiles import source_profile_path

    path = source_profile_path(source)
    doc = read_profile_document(path, "transfer-from")
    check_calibration_data(doc, path, "transfer-from", QUICK_KEYS, target=spec_from_dict(doc["gpu"], str(path)))
    return doc


def _measure_quick(base, rep_ms) -> tuple[dict, dict]:
    from attnsim.bench import calibration as cal
    from attnsim.kernels.timing import TimerConfig

    timer = TimerConfig(warmup_ms=10.0, rep_ms=min(rep_ms, 10.0))
    device = cal.device_info()
    with click.progressbar(length=len(cal.BANDWIDTH_CTAS) * len(cal.BANDWIDTH_WARPS), label="quick calibration",
                           file=click.get_text_stream("stderr")) as bar:
        bandwidth = cal.measure_bandwidth_curve(timer, progress=lambda: bar.update(1))
    return {"bandwidth": bandwidth, "launch_overhead_us": cal.measure_launch_overhead_us(timer)}, device


def _inputs(base, from_data, transfer_from, quick, add_points) -> list[Named]:
    """The files calibrate reads, which its outputs may not overwrite: --from-data, --add-points, and
    the calibrated profile a transfer or a quick calibration takes its kernel costs from."""
    from attnsim.profiles import quick_source, source_profile_path

    named = [("--from-data", from_data)] + [("--add-points", path) for path in add_points]
    if transfer_from:
        named.append(("--transfer-from", source_profile_path(transfer_from)))
    elif quick:
        named.append(("the profile --quick transfers from", source_profile_path(quick_source(base))))
    return named


def _check_transfer_source(source: str) -> None:
    """--transfer-from names a preset that ships a profile, or a profile file (format and version checked)."""
    from attnsim.profiles import source_profile_path

    try:
        read_profile_document(source_profile_path(source), "transfer-from")
    except InputError as exc:
        raise InputError("transfer-from", exc.message) from None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _data_document(from_data, command: str, measure) -> dict:
    """{device, calibration_data}: read from --from-data (checked by the caller), else measured on the
    GPU by `measure`."""
    if from_data:
        return _read_data(from_data)
    require_cuda(command, "--from-data FILE")
    data, device = measure()
    return {"format": DATA_FORMAT, "device": device, "calibration_data": data}


def _read_data(path) -> dict:
    """A profile (format and version checked), or the raw measurements `calibrate` writes before fitting."""
    doc = read_json(path, "from-data")
    if not (isinstance(doc, dict) and doc.get("format") == DATA_FORMAT):
        check_profile_document(doc, path, "from-data")
    return doc


def _measure(base, plan, rep_ms) -> tuple[dict, dict]:
    """The bandwidth curve, the launch overhead and the planned points, with progress and an ETA from
    the points' estimated costs (scaled by the pace the run keeps)."""
    from attnsim.bench import calibration as cal
    from attnsim.kernels.timing import TimerConfig
    from attnsim.validation.point_cost import BANDWIDTH_POINT_S, seconds_label

    timer = TimerConfig(warmup_ms=25.0, rep_ms=rep_ms)  # the curve and the empty kernel
    device = cal.device_info()
    if device["sm_count"] != base.sm_count:
        raise InputError("gpu", f"the device has {device['sm_count']} SMs, preset {base.name} {base.sm_count}")
    for line in plan.summary():
        click.echo(line, err=True)
    curve = len(cal.BANDWIDTH_CTAS) * len(cal.BANDWIDTH_WARPS) + len(cal.FLOOR_BYTES)
    costs = [BANDWIDTH_POINT_S] * curve + [p.cost_s for p in plan.points]
    progress = _Progress(costs)
    started = progress.started
    bandwidth = cal.measure_bandwidth_curve(timer, progress=progress.step)
    overhead = cal.measure_launch_overhead_us(timer)
    floors = cal.measure_floors(progress=progress.step)
    peak = max(r["read_gbps"] for r in bandwidth)
    rows, kernels, checks = cal.measure_kernel_points(base, plan.measurement_plan(), device["name"], peak,
                                                      progress=progress.step)
    measured_s = time.perf_counter() - started
    click.echo(f"measured {len(rows)} points in {seconds_label(measured_s)} (estimated "
               f"{seconds_label(plan.selection.total_s - plan.selection.start_s)} after the start)", err=True)
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        click.echo(f"warning: {len(failed)} calibration points failed or were unavailable; fitting the rest",
                   err=True)
    return {"bandwidth": bandwidth, "launch_overhead_us": overhead, "floors": floors, "points": rows,
            "kernels": kernels, "occupancy_crosscheck": checks, "timer": timer.name, "plan": plan.records(),
            "budget_s": plan.selection.budget_s, "measured_s": round(measured_s, 1)}, device


class _Progress:
    """'calibrating 120/680 points, ~1 min 5 s left' on stderr: redrawn in place on a terminal, one line
    per tenth of the run otherwise (logs). The ETA: calibration_plan.remaining_s."""

    def __init__(self, costs_s: list[float]):
        self.costs_s, self.done, self.started = costs_s, 0, time.perf_counter()
        self.tty = click.get_text_stream("stderr").isatty()
        self.next_line = 1

    def step(self, *_) -> None:
        from attnsim.validation.calibration_plan import remaining_s
        from attnsim.validation.point_cost import seconds_label

        self.done += 1
        total, last = len(self.costs_s), self.done == len(self.costs_s)
        if not (self.tty or last or self.done >= self.next_line):
            return
        self.next_line = self.done + max(1, total // 10)
        left = remaining_s(self.costs_s, self.done, time.perf_counter() - self.started)
        text = f"calibrating {self.done}/{total} points, ~{seconds_label(left)} left"
        click.echo("\r" + text if self.tty else text, err=True, nl=last or not self.tty)
