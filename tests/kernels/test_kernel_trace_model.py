"""scripts/kernel_trace_model.py reads kernel_trace.py's files as written: points in the order they were traced,
the median repetition of each, and the first wave / later CTAs cut at the resident slots."""

from __future__ import annotations

import numpy as np

from attnsim.fileio import write_text
from script_helpers import load_script

km = load_script("kernel_trace_model")


def test_traces_split_into_points_and_the_median_repetition_is_taken(tmp_path):
    write_text(tmp_path / "kernel_trace_points.csv", "set,spec,plan,grid\nx,fa2,fa2,2\nx,fa2,fa2,3\n")
    rows = ["set,spec,plan,rep,cta,sm,start_ns,end_ns"]
    for point, grid in ((0, 2), (1, 3)):
        for rep, span in enumerate((5000, 9000, 7000)):
            rows += [f"x,fa2,fa2,{rep},{c},{c},0,{span - 1000 * c + point}" for c in range(grid)]
    write_text(tmp_path / "kernel_trace.csv", "\n".join(rows) + "\n")
    points, traces = km.load(tmp_path)
    assert traces.groupby("point").cta.max().tolist() == [1, 2]
    run = km.median_run(traces[traces.point == 1])
    assert run[:, 2].max() == 7.001  # the 7,000 ns repetition (of 5, 9, 7 µs), in µs


def test_the_shape_cuts_the_first_wave_at_the_slots():
    start = np.array([0, 0, 0, 0, 6.0, 7.0])
    end = np.array([10, 8, 9, 10, 12, 13.0])
    shape = km.shape_of(start, end, 4)
    assert shape["span"] == 13 and shape["end_p50"] == 9.5 and shape["tail_start"] == 6.5
    assert np.isnan(km.shape_of(start[:4], end[:4], 4)["tail_start"])
