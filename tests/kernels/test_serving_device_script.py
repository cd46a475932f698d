"""scripts/serving_kernels_device.py on the CPU: its stages plan on the H200 profile, a stage resumes
from an earlier CSV and stops starting points at its budget, its tables pair fp8 with bf16 twins
and paged with contiguous rows; and scripts/sass_accounting.py's SASS reading (tile loop, index
order) on a hand-written listing. The timed runs themselves need the GPU."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from attnsim.bench.harness import check_pinned_plans
from attnsim.bench.results import COLUMNS, point_key
from attnsim.profiles import resolve_gpu

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str):
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


device_script = _load("serving_kernels_device")


def _fake_row(spec: str, w, time_us: float) -> dict:
    return {"requested": spec, "strategy": spec.split(":")[0], "options": "", "batch": w.batch, "q_heads": w.q_heads,
            "kv_heads": w.kv_heads, "head_dim": w.head_dim, "context": w.max_context, "contexts": w.context_label,
            "dtype": w.dtype, "kv_dtype": w.cache_dtype, "page_size": w.page_size, "q_len": w.q_len,
            "time_us": time_us, "kv_bytes": w.kv_bytes(), "bw_fraction": 0.5, "vs_floor": 1.2, "max_rel_err": 1e-3,
            "status": "ok"}


class FakeSweep:
    """Stands in for the bench harness: rows with a time from the point, records what it was asked."""

    def __init__(self, specs):
        self.specs, self.calls = specs, []

    def __call__(self, points, done, on_point):
        self.calls.append(points)
        for w in points:
            fp8 = w.cache_dtype.startswith("float8")
            on_point([_fake_row(s, w, w.kv_bytes() / 1e6 * (1.0 if fp8 else 1.0) + w.page_size)
                      for s in self.specs if point_key(s, w) not in done])


def test_every_stage_plans_on_the_h200_profile():
    for name, stage in device_script.stages().items():
        assert stage.points and stage.specs, name
        check_pinned_plans(stage.specs, list(stage.points), resolve_gpu("h200"))


def test_fp8_stage_pairs_each_point_with_its_bf16_twin_and_spans_256_MB():
    points = device_script.stages()["fp8"].points
    fp8 = [w for w in points if w.kv_fp8]
    assert len(fp8) * 2 == len(points)
    assert max(w.kv_bytes() for w in fp8) >= 256 << 20
    assert {w.max_context for w in fp8} == {2048, 8192, 32768, 131072}


def test_a_stage_stops_at_its_budget_and_resumes_from_its_csv(tmp_path):
    stage = device_script.stages()["paged"]
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir(), second.mkdir()
    sweep = FakeSweep(stage.specs)
    df = device_script.run_stage("paged", first, None, budget_s=-1.0, sweep=sweep, log=lambda m: None)
    assert df.empty and not sweep.calls  # a spent budget starts nothing
    df = device_script.run_stage("paged", first, None, budget_s=1e9, sweep=sweep, log=lambda m: None)
    assert len(df) == len(stage.points) * len(stage.specs)
    resumed = FakeSweep(stage.specs)
    again = device_script.run_stage("paged", second, first, budget_s=1e9, sweep=resumed, log=lambda m: None)
    assert not resumed.calls and len(again) == len(df)  # everything was ok already
    partial = pd.read_csv(first / "serving_paged.csv").iloc[: len(stage.specs) * 3]
    partial.to_csv(first / "serving_paged.csv", index=False)
    resumed = FakeSweep(stage.specs)
    again = device_script.run_stage("paged", second, first, budget_s=1e9, sweep=resumed, log=lambda m: None)
    assert len(resumed.calls) == len(stage.points) - 3 and len(again) == len(df)


def test_tables_pair_fp8_with_bf16_and_paged_with_contiguous(tmp_path):
    stage = device_script.stages()["fp8"]
    device_script.run_stage("fp8", tmp_path, None, 1e9, FakeSweep(stage.specs), log=lambda m: None)
    paged = device_script.stages()["paged"]
    device_script.run_stage("paged", tmp_path, None, 1e9, FakeSweep(paged.specs), log=lambda m: None)
    df = pd.concat([pd.read_csv(p) for p in tmp_path.glob("serving_*.csv")], ignore_index=True)
    speedup = device_script.fp8_table(df)["speedup"]
    assert speedup.between(1.99, 2.01).all()  # the fake times are the bytes: fp8 moves half
    paging = device_script.paging_table(df)
    assert set(paging.index.get_level_values("page_size")) == {16, 32, 64}
    assert (paging["median"] > 1.0).all()  # the fake adds the page size to the time
    assert "paged / contiguous" in device_script.summary(tmp_path)


SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_1:
        /*0010*/                   LDS R4, [R2+0x11800] ;
        /*0020*/                   LDGSTS.E.BYPASS.128 [R3], desc[UR4][R6.64], P0 ;
        /*0030*/                   HMMA.16816.F32 R8, R12, R14, R8 ;
        /*0040*/               @P1 LDGSTS.E [R5+0x11800], desc[UR4][R10.64], !P0 ;
        /*0050*/               @P0 BRA `(.L_x_1) ;
        /*0060*/                   EXIT ;
"""


def test_sass_reading_finds_the_tile_loop_and_where_the_page_index_is_loaded():
    sass = _load("sass_accounting")
    loop = sass.tile_loop(sass.instructions(SASS))
    assert [sass.opcode(t) for t in loop] == ["LDS", "LDGSTS.E.BYPASS.128", "HMMA.16816.F32", "LDGSTS.E", "BRA"]
    assert sass.index_first(loop) is False  # the index load follows this tile's K/V load: a later tile's
    assert sass.index_first(loop[3:] + loop[:3]) is True
    assert sass.classify("F2FP.F16.E4M3.UNPACK_B") == "e4m3->f16x2" and sass.classify("LDS.U8") == "shared byte load"
    assert sass.Variant.parse("streamk:d128:bfloat16:g8:q2:p16:fp8:n64:s4") == sass.Variant(
        "streamk", 128, "bfloat16", 8, 2, 16, "fp8", 64, 4)


def test_stage_csv_has_the_bench_columns(tmp_path):
    stage = device_script.stages()["paged-fp8"]
    df = device_script.run_stage("paged-fp8", tmp_path, None, 1e9, FakeSweep(stage.specs), log=lambda m: None)
    assert list(pd.read_csv(tmp_path / "serving_paged-fp8.csv").columns) == COLUMNS
    assert (df["kv_dtype"] == "float8_e4m3fn").all()


@pytest.mark.parametrize("argv", [["--stage", "fp8"], ["--out", "x"]])
def test_stage_needs_stage_and_out(argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["serving_kernels_device.py", *argv])
    with pytest.raises(SystemExit):
        device_script.main()
