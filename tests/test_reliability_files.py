"""Issue 14: every bad input file (GPU profile, scenario, measurements or predictions CSV) and every
output path that cannot be written is refused before any work — exit 2, one line naming the field
(and the file, line, row or column where there is one), no traceback, no file written."""

import json

import pytest

from reliability_helpers import assert_refused, write_inputs

HEADER = "gpu,strategy,batch,q_heads,kv_heads,head_dim,context,dtype,time_us\n"
ROW = "NVIDIA H100 80GB HBM3,fa2,1,32,8,128,4096,float16,25.0\n"
PREDICTIONS = "gpu,strategy,batch,q_heads,kv_heads,head_dim,context,time_us,speedup_vs_fa2,floor_us\n"


def _profile(gpu: dict, **header) -> str:
    doc = {"format": "attnsim-profile", "version": 1, "model": "fluid-knee-v2", **header, "gpu": gpu}
    return json.dumps(doc)


def _kernel(**resources) -> dict:
    entry = {"threads": 256, "regs_per_thread": 64, "smem_bytes": 33792, **resources}
    return {"base": "h100", "kernels": {"lean_decode/d128/float16/m16/w8/s3/n64": entry}}


def _cost(**params) -> dict:
    return {"base": "h100", "cost": {"streamk": params}}


# file name -> content: profiles given with --gpu FILE (plain descriptions or versioned profiles)
PROFILES = {
    "threads_str.json": (json.dumps(_kernel(threads="x")), r"gpu.kernels.lean_decode/d128/float16/m16/w8/s3/n64.threads"),
    "threads_neg.json": (json.dumps(_kernel(threads=-128)), r"gpu.kernels.*\.threads: must be an integer"),
    "threads_none.json": (json.dumps({"base": "h100", "kernels": {"k": {"regs_per_thread": 1, "smem_bytes": 0}}}),
                          r"gpu.kernels.k.threads"),
    "knee_zero.json": (json.dumps(_cost(bw_knee=0)), r"gpu.cost.streamk.bw_knee: must be in \[0.1"),
    "scale_zero.json": (json.dumps(_cost(hbm_scale=0)), r"gpu.cost.streamk.hbm_scale: must be in \(0"),
    "rate_zero.json": (json.dumps(_cost(cta_stream_gbps_per_warp=0)), r"gpu.cost.streamk.cta_stream_gbps_per_warp"),
    "mma_zero.json": (json.dumps({"base": "h100", "cost": {"torch-flash-nosplit": {"mma_flop_per_sm_clock": 0}}}),
                      r"gpu.cost.torch-flash-nosplit.mma_flop_per_sm_clock: must be in \(0"),
    "cost_nan.json": ('{"base": "h100", "cost": {"fa2": {"launch_overhead_us": NaN}}}',
                      r"gpu.cost.fa2.launch_overhead_us: must be a finite number"),
    "cost_str.json": (json.dumps(_cost(cta_fixed_us="1")), r"gpu.cost.streamk.cta_fixed_us"),
    "huge_bw.json": (json.dumps({"base": "h100", "hbm_read_gbps": 1e300}), r"gpu.hbm_read_gbps: .*1e\+06"),
    "sm_count.json": (json.dumps({"base": "h100", "sm_count": 10**6}), r"gpu.sm_count: must be an integer in \[1, 1,024\]"),
    "cross.json": (json.dumps({"base": "h100", "max_threads_per_cta": 4096}), r"gpu.max_threads_per_cta: 4096 exceeds"),
    "cc.json": (json.dumps({"base": "h100", "compute_capability": [9]}), r"gpu.compute_capability"),
    "err_pct.json": ('{"base": "h100", "expected_error_pct": Infinity}', r"gpu.expected_error_pct"),
    "inf.toml": ('base = "h100"\nhbm_read_gbps = inf\n', r"gpu.hbm_read_gbps: must be a finite number"),
    "stale_at_end.json": ('{"gpu": {"base": "h100"}, "created": "x", "format": "attnsim-profile", "version": 0, '
                          '"model": "fluid-knee-v1"}', r"gpu: .*stale"),
    "other_format.json": (json.dumps({"format": "attnsim-compiled-kernels", "kernels": {}}), r"gpu: .*not an attnsim profile"),
    "profile_cost.json": (_profile(_cost(hbm_scale=-1)), r"gpu.cost.streamk.hbm_scale"),
    "binary.json": (b"\x89PNG\r\n\x1a\n\xff\xfe", r"gpu: .*not a text file"),
}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_bad_profile_file_is_refused(name, tmp_path, capsys):
    content, field = PROFILES[name]
    write_inputs(tmp_path, {name: content})
    assert_refused(f"predict --gpu {{inp}}/{name} --out {{out}}/p.csv", field, tmp_path, capsys)


@pytest.mark.parametrize("command, field", [
    ("predict --calibration {inp}/p.json", r"gpu.cost.streamk.hbm_scale"),
    ("report --scenario default --calibration {inp}/p.json --out {out}/r", r"gpu.cost.streamk.hbm_scale"),
    ("validate --measurements {sdpa} --calibration {inp}/p.json --out-dir {out}/v", r"gpu.cost.streamk.hbm_scale"),
])
def test_bad_profile_is_refused_wherever_it_enters(command, field, tmp_path, capsys):
    write_inputs(tmp_path, {"p.json": _profile(_cost(hbm_scale=0))})
    assert_refused(command, field, tmp_path, capsys)


def _calibration(**data) -> str:
    base = {"bandwidth": [{"num_ctas": n, "num_warps": 4, "read_gbps": 16.0 * n} for n in (1, 132)],
            "points": [{"gpu": "h100", "strategy": "fa2", "batch": 1, "q_heads": 32, "kv_heads": 8, "head_dim": 128,
                        "context": 4096, "dtype": "float16", "time_us": 20.0}],
            "kernels": {}, "launch_overhead_us": 4.0}
    return _profile({"base": "h100"}, device={"name": "test"}, calibration_data={**base, **data})


@pytest.mark.parametrize("content, field", [
    (_profile({"base": "h100"}, calibration_data={}), r"from-data: .*holds no calibration data"),
    (_calibration(bandwidth=[{"num_ctas": 1, "num_warps": 4, "read_gbps": -1}] * 2), r"from-data.bandwidth\[0\].read_gbps"),
    (_calibration(launch_overhead_us="4"), r"from-data.launch_overhead_us"),
    (_calibration(points=[{"gpu": "h100", "strategy": "fa2", "batch": 2.5, "q_heads": 32, "kv_heads": 8,
                           "head_dim": 128, "context": 4096, "dtype": "float16", "time_us": 20.0}]),
     r"from-data.points.batch: .* 2.5 must be an integer"),
    (_calibration(kernels={"k": {"threads": 0, "regs_per_thread": 1, "smem_bytes": 0}}), r"gpu.kernels.k.threads"),
    (_profile({"base": "h100"}, version=2), r"from-data: .*stale"),
], ids=["no-data", "bandwidth", "overhead", "points", "kernels", "stale"])
def test_calibrate_from_data_refuses_bad_data_before_the_fit(content, field, tmp_path, capsys):
    write_inputs(tmp_path, {"p.json": content})
    assert_refused("calibrate --from-data {inp}/p.json --out {out}/p.json", field, tmp_path, capsys)


def test_quick_calibration_refuses_a_bad_bandwidth_curve(tmp_path, capsys):
    write_inputs(tmp_path, {"p.json": _calibration(bandwidth=[{"num_ctas": 1, "num_warps": 4, "read_gbps": "x"}] * 2)})
    assert_refused("calibrate --quick --gpu h200 --from-data {inp}/p.json --out {out}/p.json",
                   r"from-data.bandwidth\[0\].read_gbps: must be a finite number", tmp_path, capsys)


SCENARIO = 'models = ["llama-3.1-8b"]\n'
SCENARIOS = {
    "binary": (b"\xff\xfe\x00binary", r"scenario: .* is not a text \(TOML\) file"),
    "per_octave": (SCENARIO + 'contexts = { from = "1k", to = "64k", per_octave = 1000 }\n',
                   r"line 2: contexts.per_octave: .*limit of 64"),
    "octave_points": (SCENARIO + 'contexts = { from = 1, to = "1M", per_octave = 16 }\n',
                      r"contexts.per_octave: 321 points .*limit of 64"),
    "ragged_batch": (SCENARIO + '[[ragged]]\nbatch = 100000000\n', r"line 3: ragged\[0\].batch: .*limit of 4,096"),
    "ragged_values": (SCENARIO + '[[ragged]]\ndistribution = "fixed"\nvalues = [' + ",".join(["1"] * 5000) + "]\n",
                      r"ragged\[0\].values: 5,000 .*limit of 4,096"),
    "sigma_nan": (SCENARIO + '[[ragged]]\nbatch = 4\nsigma = nan\n', r"ragged\[0\].sigma: must be a finite"),
    "weights_nan": (SCENARIO + '[[ragged]]\ndistribution = "choice"\nbatch = 2\nvalues = [1, 2]\nweights = [nan, 1]\n',
                    r"ragged\[0\].weights: must be finite"),
    "context_digits": (SCENARIO + 'contexts = ["1k", "99999999999999999999"]\n', r"contexts\[1\]: .*limit of 33,554,432"),
    "batch_big": (SCENARIO + 'contexts = ["1k"]\nbatches = [1000000]\n', r"batches\[0\]: .*limit of 4,096"),
    "panels": ('models = ["llama-3.1-8b", "qwen2.5-7b"]\ncontexts = ["1k"]\nbatches = [1,2,3,4,5,6,7,8,9]\n',
               r"models: 18 figure panels .*limit of 12"),
    "cases": ('models = ["llama-3.1-8b"]\nbatches = [1,2,3,4,5,6,7,8,9,10,11,12]\n'
              'contexts = { from = 1, to = "2M", per_octave = 3 }\n', r"contexts: 732 cases .*limit of 512"),
    "simulations": ('models = ["llama-3.1-8b"]\nbatches = [1,2,3,4,5,6]\n'
                    'contexts = { from = 1, to = "64k", per_octave = 3 }\n', r"contexts: 11,316 simulations .*limit of 4,096"),
    "work": ('models = ["llama-2-7b"]\nbatches = [4096]\ncontexts = { from = "1k", to = "16k", per_octave = 2 }\n',
             r"scenario: .*outputs to model .*limit of 16,777,216"),
    "timeline": ('models = ["llama-2-7b"]\nbatches = [4096]\ncontexts = ["1k"]\nwhatif_gpus = []\n'
                 '[timeline]\nbatch = 4096\ncontext = "1k"\n', r"timeline: .*CTAs to draw .*limit of 65,536"),
    "q_len": (SCENARIO + 'contexts = ["1k"]\nq_len = 100000\n', r"q_len: .*limit of 16"),
    "gpus": (SCENARIO + 'contexts = ["1k"]\ngpus = ["h100","h100","h100","h100","h100","h100","h100","h100","h100"]\n',
             r"gpus: 9 .*limit of 8"),
    "heads": ('contexts = ["1k"]\n[[shapes]]\nq_heads = 5000\nkv_heads = 8\nhead_dim = 128\n', r"shapes\[0\].q_heads"),
    "timeline_context": (SCENARIO + 'contexts = ["1k"]\n[timeline]\ncontext = "9999999999999999999999"\n',
                         r"timeline.context: .*limit"),
    "gpu_file": (SCENARIO + 'contexts = ["1k"]\ngpus = ["bad.json"]\n', r"line 3: gpus\[0\]: gpu.cost.streamk.hbm_scale"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("command", ["scenarios --check {inp}/s.toml", "report --scenario {inp}/s.toml --out {out}/r"])
def test_bad_scenario_is_refused_by_check_and_report_alike(name, command, tmp_path, capsys):
    content, field = SCENARIOS[name]
    write_inputs(tmp_path, {"s.toml": content, "bad.json": json.dumps(_cost(hbm_scale=0))})
    assert_refused(command, field, tmp_path, capsys)


MEASUREMENTS = {
    "inf.csv": (HEADER + ROW.replace("25.0", "inf"), r"measurements.time_us: inf.csv line 2: inf must be a finite"),
    "tiny.csv": (HEADER + ROW + ROW.replace("25.0", "1e-300"), r"measurements.time_us: tiny.csv line 3: 1e-300"),
    "fraction.csv": (HEADER + ROW.replace(",1,32,", ",2.5,32,"), r"measurements.batch: fraction.csv line 2: 2.5"),
    "huge_batch.csv": (HEADER + ROW.replace(",1,32,", ",1e12,32,"), r"measurements.batch: .*4,096"),
    "other_gpu.csv": (HEADER + ROW + ROW.replace("H100 80GB HBM3", "A100-SXM4-80GB"),
                      r"measurements.gpu: other_gpu.csv line 3 was measured on 'NVIDIA A100-SXM4-80GB'"),
    "empty.csv": ("", r"measurements: .*empty.csv is empty"),
    "binary.csv": (b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00", r"measurements: .* is not a text CSV file"),
    "header.csv": (HEADER, r"measurements: .*header.csv has a header but no rows"),
    "context.csv": (HEADER + ROW.replace(",4096,", ",4k?,"), r"measurements.context: context.csv line 2: '4k\?'"),
    "columns.csv": ("gpu,strategy,time_us\nh100,fa2,3\n", r"measurements: .*lacks column\(s\) batch"),
    "splits.csv": (HEADER.strip() + ",splits\n" + ROW.replace("fa2", "flashdecoding").strip() + ",1e30\n",
                   r"measurements.splits: splits.csv line 2: 1e\+30 must be an integer"),
    "strategy.csv": (HEADER + ROW.replace(",fa2,", ",,"), r"measurements.strategy: strategy.csv line 2"),
    "ragged.csv": (HEADER.strip() + ",contexts\n" + ROW.strip() + ",1;2;x\n", r"measurements.contexts: ragged.csv line 2"),
    "nan_time.csv": (HEADER + ROW.replace("25.0", "nan"), r"measurements.time_us: .*nan"),
    "repeat.csv": (HEADER + ROW + ROW.replace("4096", "8192") + ROW.replace("25.0", "26.0"),
                   r"measurements: repeat.csv line 4 repeats line 2"),
}


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_bad_measurements_are_refused_by_validate(name, tmp_path, capsys):
    content, field = MEASUREMENTS[name]
    write_inputs(tmp_path, {name: content})
    assert_refused(f"validate --measurements {{inp}}/{name} --out-dir {{out}}/v", field, tmp_path, capsys)


def test_more_rows_than_the_limit_are_refused(tmp_path, capsys):
    write_inputs(tmp_path, {"many.csv": HEADER + ROW * 5_001})
    assert_refused("validate --measurements {inp}/many.csv", r"measurements: .*more than 5,000 rows", tmp_path, capsys)


@pytest.mark.parametrize("command, files, field", [
    ("plot validation --measurements {inp}/m.csv --gpu h100 --out {out}/v.png",
     {"m.csv": HEADER + ROW.replace("25.0", "-3")}, r"measurements.time_us: m.csv line 2: -3"),
    ("report --scenario default --measurements {inp}/m.csv --out {out}/r",
     {"m.csv": HEADER + ROW.replace("NVIDIA H100 80GB HBM3", "Z9000")}, r"measurements.gpu: unknown GPU 'Z9000'"),
    ("plot speedup --input {inp}/p.csv --out {out}/s.png", {"p.csv": PREDICTIONS}, r"input: .*has a header but no rows"),
    ("plot speedup --input {inp}/p.csv --out {out}/s.png", {"p.csv": ""}, r"input: .*is empty"),
    ("plot speedup --input {inp}/p.csv --out {out}/s.png", {"p.csv": b"\xff\xd8\xff\xe0\x00"}, r"input: .*not a text CSV"),
    ("plot speedup --input {inp}/p.csv --out {out}/s.png",
     {"p.csv": PREDICTIONS + "h100,fa2,1,32,8,128,4096,-5,1,2\n"}, r"input.time_us: p.csv line 2: -5"),
    ("plot speedup --input {inp}/p.csv --out {out}/s.png",
     {"p.csv": PREDICTIONS + "".join(f"h100,fa2,{b},32,8,128,4096,5,1,2\n" for b in range(1, 14))},
     r"input: 13 figure panels .*limit of 12"),
], ids=["plot-validation", "report-measurements", "speedup-header", "speedup-empty", "speedup-binary",
        "speedup-negative", "speedup-panels"])
def test_bad_csv_inputs_of_plot_and_report(command, files, field, tmp_path, capsys):
    write_inputs(tmp_path, files)
    assert_refused(command, field, tmp_path, capsys)


LONG = "x" * 300
BAD_OUTPUTS = [
    ("predict --out /proc/p.csv", r"out: /proc/p.csv: cannot write in /proc"),
    ("predict --out {inp}/file.txt/p.csv", r"out: .*file.txt is a file, not a folder"),
    ("predict --out {out}/p.png", r"out: .*text files end in .txt, .csv"),
    (f"predict --out {{out}}/{LONG}.csv", r"out: .*path too long"),
    ("predict --out {out}/p.csv --plot {out}/p.xyz", r"plot: .*figure files end in .png or .svg"),
    ("predict --out {out}/p.csv --plot /proc/x.png", r"plot: /proc/x.png: cannot write in /proc"),
    ("predict --out {inp}/fifo", r"out: .*fifo exists and is not a regular file"),
    ("schedule --plot {inp}/file.txt/g.png", r"plot: .*is a file, not a folder"),
    ("plot speedup --out {out}/s.jpg", r"out: .*figure files end in .png or .svg"),
    ("plot occupancy --out /proc/o.png", r"out: /proc/o.png: cannot write"),
    ("validate --measurements {sdpa} --out-dir {inp}/file.txt/v", r"out-dir: .*is a file, not a folder"),
    ("validate --measurements {sdpa} --out-dir /proc/v", r"out-dir: /proc/v: cannot write in /proc"),
    ("validate --measurements {sdpa} --out-dir {inp}/dir", r"out-dir: .*validation.csv is a folder"),
    ("report --scenario default --out {inp}/notes", r"out: .*notes exists and is not an attnsim report"),
    ("report --scenario default --out /proc/r", r"out: /proc/r: cannot write in /proc"),
    ("calibrate --from-data {h100} --out /proc/p.json", r"out: /proc/p.json: cannot write in /proc"),
    ("bench --out /proc/b.csv", r"out: /proc/b.csv: cannot write"),
]


@pytest.mark.parametrize("command, field", BAD_OUTPUTS, ids=[c[:50] for c, _ in BAD_OUTPUTS])
def test_output_that_cannot_be_written_is_refused_first(command, field, tmp_path, capsys):
    import os

    write_inputs(tmp_path, {"file.txt": "not a folder", "notes/todo.txt": "mine", "dir/validation.csv/x": "x"})
    os.mkfifo(tmp_path / "in" / "fifo")
    assert_refused(command, field, tmp_path, capsys)
