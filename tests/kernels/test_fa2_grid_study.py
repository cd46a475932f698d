"""The fa2 grid study (scripts/fa2_grid_study.py) times what it says: every point runs the grid it asks for, with
fa2 and split-KV at one split alike, and the KV bytes of a size are the same at every grid (within one token
per CTA)."""

from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu

from script_helpers import load_script

study = load_script("fa2_grid_study")


def test_every_point_runs_its_grid_at_the_sizes_bytes():
    gpu = resolve_gpu("h200")
    for head_dim, size in study.SIZES:
        for grid in study.GRIDS:
            w = study.workload(grid, head_dim, size)
            assert {make_plan(spec, w, gpu).schedule.grid for spec in study.SPECS} == {grid}
            assert size - grid * 4 * head_dim < w.kv_bytes() <= size
