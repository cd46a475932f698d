"""scripts/cudnn_geometry.py: the chrome-trace parsing, proven on a synthetic Kineto trace (no GPU)."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cudnn_geometry.py"
spec = importlib.util.spec_from_file_location("cudnn_geometry", SCRIPT)
geo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(geo)

R0, R1 = "geom|0|torch-cudnn|0", "geom|0|torch-cudnn|1"


def _trace() -> dict:
    """Two profiled calls shaped like torch 2.x Kineto output, plus the noise around them."""
    kernel = {"ph": "X", "cat": "kernel", "pid": 0, "tid": 7}
    return {"schemaVersion": 1, "traceEvents": [
        {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "python"}},
        # warm-up call outside every range: must be ignored
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 10, "dur": 3, "args": {"correlation": 1}},
        {**kernel, "name": "warmup_kernel", "ts": 20, "dur": 5, "args": {"correlation": 1, "grid": [1, 1, 1]}},
        # call 0: range on the CPU; its GPU mirror (gpu_user_annotation) must not count as a range
        {"ph": "X", "cat": "user_annotation", "name": R0, "ts": 1000, "dur": 100, "args": {}},
        {"ph": "X", "cat": "gpu_user_annotation", "name": R0, "ts": 1005, "dur": 400, "args": {}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::_scaled_dot_product_cudnn_attention", "ts": 1002, "dur": 90},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernelExC", "ts": 1010, "dur": 4,
         "args": {"correlation": 7}},
        {"ph": "X", "cat": "cuda_driver", "name": "cuLaunchKernelEx", "ts": 1050, "dur": 4, "args": {"correlation": 8}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaMemsetAsync", "ts": 1005, "dur": 2, "args": {"correlation": 6}},
        {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "ts": 1100, "dur": 1.5, "args": {"correlation": 6}},
        # the GPU ran these after the CPU range closed: the launch's correlation places them
        {**kernel, "name": "sdpa_main", "ts": 1200, "dur": 40.25, "args": {
            "correlation": 7, "registers per thread": 168, "shared memory": 215040, "grid": [132, 1, 1],
            "block": [384, 1, 1], "est. achieved occupancy %": 9, "blocks per SM": 1.0}},
        {**kernel, "name": "sdpa_combine", "ts": 1250, "dur": 3, "args": {
            "correlation": 8, "registers per thread": "40", "static shared memory": 1024,
            "dynamic shared memory": 2048, "grid": "[32, 4, 1]", "block": {"x": 128, "y": 1, "z": 1}}},
        # call 1: no launch event recorded: placed by the kernel's own timestamp
        {"ph": "X", "cat": "user_annotation", "name": R1, "ts": 2000, "dur": 500, "args": {}},
        {**kernel, "name": "Memset (Device)", "cat": "gpu_memset", "ts": 2010, "dur": 1.0, "args": {}},
        {**kernel, "name": "sdpa_main", "ts": 2100, "dur": 39.75, "args": {"grid": [132, 1, 1]}},
        {**kernel, "name": "sdpa_combine", "ts": 2150, "dur": 3.5, "args": {}},
        {"ph": "X", "cat": "user_annotation", "name": "not_ours", "ts": 3000, "dur": 50, "args": {}},
        {**kernel, "name": "unrelated", "ts": 3010, "dur": 1, "args": {}},
    ]}


@pytest.fixture
def parsed(tmp_path):
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(_trace()))
    return geo.kernels_by_range(json.loads(path.read_text()))


def test_kernels_are_assigned_to_their_ranges_in_start_order(parsed):
    assert set(parsed) == {R0, R1}
    assert [k["name"] for k in parsed[R0]] == ["Memset (Device)", "sdpa_main", "sdpa_combine"]
    assert [k["name"] for k in parsed[R1]] == ["Memset (Device)", "sdpa_main", "sdpa_combine"]


def test_geometry_fields_from_kineto_args(parsed):
    main, combine = parsed[R0][1], parsed[R0][2]
    assert (main["grid_x"], main["grid_y"], main["grid_z"]) == (132, 1, 1)
    assert (main["block_x"], main["block_y"], main["block_z"]) == (384, 1, 1)
    assert (main["regs"], main["smem_total"], main["occupancy_pct"]) == (168, 215040, 9)
    assert main["smem_static"] is None and main["smem_dynamic"] is None  # Kineto sums them
    assert main["duration_us"] == 40.25
    # string grid, dict block, string regs, static/dynamic apart -> total is their sum
    assert (combine["grid_x"], combine["grid_y"], combine["grid_z"]) == (32, 4, 1)
    assert (combine["block_x"], combine["regs"]) == (128, 40)
    assert (combine["smem_static"], combine["smem_dynamic"], combine["smem_total"]) == (1024, 2048, 3072)


def test_missing_keys_are_none_not_errors(parsed):
    memset, combine = parsed[R1][0], parsed[R1][2]
    assert memset["grid_x"] is None and memset["regs"] is None and memset["smem_total"] is None
    assert combine["block_x"] is None and combine["duration_us"] == 3.5
    assert geo.kernel_record({"name": "k"})["duration_us"] is None


def test_a_bare_event_list_is_accepted():
    assert [k["name"] for k in geo.kernels_by_range(_trace()["traceEvents"])[R0]][1] == "sdpa_main"


def test_per_call_takes_the_median_over_agreeing_reps(parsed):
    calls, status = geo.per_call([parsed[R0], parsed[R1], parsed[R1]])
    assert status == "ok"
    assert [c["name"] for c in calls] == ["Memset (Device)", "sdpa_main", "sdpa_combine"]
    assert calls[1]["duration_us"] == 39.75 and calls[1]["reps"] == 3
    assert calls[1]["grid_x"] == 132  # geometry from the first agreeing rep


def test_per_call_reports_disagreement_and_emptiness(parsed):
    odd = parsed[R0][1:]
    calls, status = geo.per_call([parsed[R0], parsed[R1], odd])
    assert status == "ok: 2/3 reps agree" and len(calls) == 3
    assert geo.per_call([[], []]) == ([], "error: no kernels captured")


def test_fallback_walks_function_events():
    kernel = lambda name, us: SimpleNamespace(name=name, duration=us)  # noqa: E731
    main = SimpleNamespace(name="aten::main", kernels=[kernel("k_main", 40.0)], cpu_children=[])
    sdpa = SimpleNamespace(name="aten::sdpa", kernels=[kernel("k_memset", 1.0)], cpu_children=[main])
    fill = SimpleNamespace(name="aten::fill_", kernels=[kernel("k_combine", 3.0)], cpu_children=[])
    rng = SimpleNamespace(name=R0, kernels=[], cpu_children=[sdpa, fill])
    other = SimpleNamespace(name="other", kernels=[kernel("x", 1.0)], cpu_children=[])
    found = geo.kernels_from_function_events([rng, sdpa, main, fill, other], R0)
    assert [k["name"] for k in found] == ["k_memset", "k_main", "k_combine"]  # ops in start order
    assert [k["duration_us"] for k in found] == [1.0, 40.0, 3.0]


def test_sweep_points_respect_the_kv_cap_and_priority():
    quick, full = geo.sweep_points(True), geo.sweep_points(False)
    assert len(quick) == 12 and len(full) == len(set(full)) == 356
    for b, hq, hkv, d, c, dt in full:
        assert 2 * b * hkv * c * d * 2 <= geo.MAX_KV_BYTES and hq % hkv == 0
    first_d64 = next(i for i, p in enumerate(full) if p[3] == 64)
    assert all(p[3] == 128 and p[5] == "float16" for p in full[:first_d64])


def test_summary_smoke(parsed):
    calls, status = geo.per_call([parsed[R0], parsed[R1]])
    rows = [{**geo._keys((1, 32, 8, 128, 8192, "float16"), "torch-cudnn"), "kernel_index": j, **c, "status": status}
            for j, c in enumerate(calls)]
    rows.append({**geo._keys((64, 128, 128, 128, 131072, "float16"), "torch-cudnn"), "status": "skipped: time budget"})
    text = geo.summarize(rows)
    assert "torch-cudnn: 1 workloads captured" in text and "3:132+32x4x1" in text
    assert "block 384 regs 168 smem 215040" in text and "skipped: time budget" in text
    names_only = [{**rows[0], "grid_x": None, "grid_y": None, "grid_z": None, "status": "ok: names only"}]
    cell = geo.summarize(names_only).splitlines()[-1].split()[5]  # b, hq/hkv, |, 512, 2048, 8192
    assert cell == "1:"  # a call without geometry shows its launch count only


THRESHOLDS = Path(__file__).resolve().parents[2] / "scripts" / "cudnn_thresholds.py"
_tspec = importlib.util.spec_from_file_location("cudnn_thresholds", THRESHOLDS)
thr = importlib.util.module_from_spec(_tspec)
_tspec.loader.exec_module(thr)


def _bh(point) -> int:
    b, hq, hkv = point[:3]
    return b * hkv * -(-(hq // hkv) // 16)


def test_threshold_points_pin_the_uncertain_edges_and_stay_off_the_other_sweeps():
    from attnsim.bench.calibration import calibration_sweep
    from attnsim.bench.sweep import standard_sweep
    from attnsim.simulator.workload import DecodeWorkload

    points = thr.threshold_points()
    assert len(points) == len(set(points)) <= 80
    workloads = [DecodeWorkload.build(*p[:5], dtype=p[5]) for p in points]  # valid shapes
    assert all(2 * b * hkv * c * d * 2 <= geo.MAX_KV_BYTES for b, hq, hkv, d, c, dt in points)
    wanted = {1, 2, 3, 5, 6, 7, 12, 24, 33, 48, 64, 65, 66, 67, 96, 100, 104, 105, 106, 110, 128}
    assert wanted <= {_bh(p) for p in points if p[3:] in ((128, 16384, "float16"), (128, 32768, "float16"))}
    assert {513, 640, 641, 1536, 3000, 5000, 100000} <= {p[4] for p in points if _bh(p) == 2}
    others = {(w.batch, w.q_heads, w.kv_heads, w.head_dim, w.contexts, w.dtype)
              for sweep in (standard_sweep(), standard_sweep("bfloat16"), calibration_sweep()) for w in sweep}
    assert not others & {(w.batch, w.q_heads, w.kv_heads, w.head_dim, w.contexts, w.dtype) for w in workloads}


def test_plan_check_flags_a_call_the_plan_does_not_reproduce():
    keys = geo._keys((1, 16, 2, 128, 16384, "float16"), "torch-cudnn")  # bh 2: 64 splits and a reduction
    rows = [{**keys, "kernel_index": 0, "grid_x": 64, "status": "ok"}, {**keys, "kernel_index": 1, "grid_x": 1, "status": "ok"}]
    assert thr.plan_check(rows).endswith("0 of 1 captured calls differ from the plan")
    rows[0]["grid_x"] = 32
    text = thr.plan_check(rows)
    assert "MISMATCH" in text and text.endswith("1 of 1 captured calls differ from the plan")
