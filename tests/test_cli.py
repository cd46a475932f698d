"""The `attnsim` command line: predict / occupancy / schedule output, and bad input as exactly one
line on stderr naming the field, exit status 2, no traceback and no file written."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from attnsim.simulator.datasheet import HBM_EFFICIENCY
from attnsim.simulator.partition.flashdecoding import num_splits_heuristic

from attnsim.cli import main, register_commands
from cli_helpers import json_items

cli = register_commands()

RECORD_FIELDS = ["gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "time_us",
                 "speedup_vs_fa2", "speedup_vs_flashdecoding", "grid", "splits", "achieved_gbps", "bw_fraction"]
DATASHEET = ["--gpu", "h100", "--calibration", "none"]
CTA_ROW = re.compile(r"^\s*\d+\s+\d+\.\d+\s")  # "cta start_us end_us tiles segments"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_predict_takes_fixed_chunks_for_balanced_and_last_arrival_stream_k():
    out = invoke("predict", *DATASHEET, "--batch", "4", "--q-heads", "32", "--kv-heads", "8", "--context", "16k",
                 "--strategy", "streamk,balanced", "--epilogue", "last", "--chunk-tokens", "512", "--max-splits", "16",
                 "--format", "json")
    records = {r["strategy"]: r for r in json_items(out)}
    assert set(records) == {"streamk", "balanced"}
    assert records["streamk"]["plan"]["options"] == {"epilogue": "last", "chunk_tokens": 512, "max_splits": 16}
    assert {"chunk_tokens": 512, "max_splits": 16}.items() <= records["balanced"]["plan"]["options"].items()


def test_strategy_and_strategies_are_one_option_in_every_command():
    """bench names it --strategies, predict / plan / plot --strategy; a user's habit from one works in the others."""
    args = ("--batch", "2", "--q-heads", "32", "--kv-heads", "8", "--context", "8k", "--format", "json")
    def untimed(text):  # the plan's search time differs from run to run
        drop = lambda v: {k: drop(x) for k, x in v.items() if not k.endswith("_ms")} if isinstance(v, dict) else \
            [drop(x) for x in v] if isinstance(v, list) else v
        return drop(json.loads(text))

    for command in ("predict", "plan"):
        assert untimed(invoke(command, *DATASHEET, *args, "--strategies", "fa2,streamk")) == \
            untimed(invoke(command, *DATASHEET, *args, "--strategy", "fa2,streamk"))
    estimate = ("bench", "--gpu", "h200", "--sweep", "quick", "--estimate")
    assert invoke(*estimate, "--strategy", "fa2") == invoke(*estimate, "--strategies", "fa2")


def test_predict_json_has_one_record_per_strategy_and_context():
    out = invoke("predict", *DATASHEET, "--batch", "1", "--q-heads", "32", "--kv-heads", "8",
                 "--context", "1k,64k", "--format", "json")
    records = json_items(out)
    assert [(r["strategy"], r["contexts"]) for r in records] == [
        (s, [c]) for c in (1024, 65536) for s in ("fa2", "flashdecoding", "streamk")]
    for r in records:
        assert set(RECORD_FIELDS) - {"context"} | {"contexts"} <= set(r)
        assert r["gpu"] == "h100-sxm" and (r["batch"], r["q_heads"], r["kv_heads"], r["head_dim"]) == (1, 32, 8, 128)
        assert r["time_us"] > 0 and 0 < r["bw_fraction"] <= 1
        assert r["achieved_gbps"] == pytest.approx(r["bw_fraction"] * 3350.0 * HBM_EFFICIENCY, rel=1e-2)
    by = {(r["strategy"], r["contexts"][0]): r for r in records}
    long = {s: by[(s, 65536)] for s in ("fa2", "flashdecoding", "streamk")}
    assert long["streamk"]["speedup_vs_fa2"] == pytest.approx(long["fa2"]["time_us"] / long["streamk"]["time_us"], rel=1e-3)
    # FA2's heuristic over the kernel's 64-token tiles (16 KB of K at d 128): bhm 8, n_blocks 1024
    assert long["flashdecoding"]["splits"] == num_splits_heuristic(8, 264, 1024)
    assert {r["profile_source"] for r in records} == {"datasheet"} and {r["q_len"] for r in records} == {1}
    assert long["fa2"]["grid"] == 8 and long["fa2"]["splits"] == 1


def test_predict_csv_and_table_carry_the_record_fields():
    rows = list(csv.DictReader(io.StringIO(invoke("predict", *DATASHEET, "--context", "4k", "--format", "csv"))))
    assert len(rows) == 3 and set(RECORD_FIELDS) <= set(rows[0])
    assert [r["strategy"] for r in rows] == ["fa2", "flashdecoding", "streamk"]
    table = invoke("predict", *DATASHEET, "--context", "4k", "--strategy", "lean,fa2").splitlines()
    assert table[0].split() == RECORD_FIELDS[:8] + ["likely_us"] + RECORD_FIELDS[8:]  # + the error band's range
    assert [line.split()[1] for line in table[1:3]] == ["streamk", "fa2"]  # alias `lean` -> streamk
    assert table[3].startswith("* h100-sxm: datasheet profile")  # rows of a non-calibrated profile are marked


def test_predict_ragged_contexts_make_one_workload():
    records = json_items(invoke("predict", *DATASHEET, "--contexts", "1000,50000,3000", "--format", "json"))
    assert len(records) == 3
    assert all(r["contexts"] == [1000, 50000, 3000] for r in records) and {r["batch"] for r in records} == {3}
    table = invoke("predict", *DATASHEET, "--contexts", "1000,50000,3000")
    assert "ragged 3: 1000..50000" in table and "h100-sxm*" in table and "h100-sxm: datasheet profile" in table


def test_predict_out_writes_the_file(tmp_path):
    out = tmp_path / "sub" / "pred.csv"
    assert invoke("predict", *DATASHEET, "--context", "4k", "--format", "csv", "--out", str(out)) == ""
    assert out.read_text().splitlines()[0].split(",")[:3] == ["gpu", "strategy", "batch"]


def test_occupancy_json_matches_the_driver():
    out = json.loads(invoke("occupancy", *DATASHEET, "--threads", "128", "--regs", "96", "--smem", "40960",
                            "--format", "json"))
    # sm_90 driver answer: 5 CTAs, registers and shared memory both allow 5 (test_occupancy).
    assert out["blocks_per_sm"] == 5 and out["limiter"] == "registers"
    assert out["registers_limit"] == out["shared_memory_limit"] == 5
    assert out["resident_ctas"] == 5 * 132 and out["smem_per_cta_bytes"] == 41984 and out["regs_per_warp"] == 3072
    l40s = json.loads(invoke("occupancy", "--gpu", "l40s", "--threads", "512", "--regs", "32", "--format", "json"))
    assert (l40s["blocks_per_sm"], l40s["limiter"]) == (3, "warps")


def test_schedule_summary_lists_ctas_and_fixups(tmp_path):
    plot = tmp_path / "gantt.png"
    result = CliRunner().invoke(cli, ["schedule", *DATASHEET, "--strategy", "streamk", "--batch", "1",
                                      "--q-heads", "1", "--context", "1024", "--grid", "2",
                                      "--plot", str(plot)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("streamk on h100-sxm")
    assert "attention (grid 2)" in lines[1]
    cta_rows = [line.split() for line in lines if CTA_ROW.match(line)]
    # 16 tiles of 64 tokens: program 0 holds tiles 8-15 (a partial), program 1 tiles 0-7 and hosts the merge.
    assert [(row[0], row[3], row[4], row[5]) for row in cta_rows] == [("0", "8", "0/0:8+8", "partial"),
                                                                      ("1", "8", "0/0:0+8", "host")]
    assert any("host CTA 1 <- [0]" in line for line in lines)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_schedule_lists_at_most_max_ctas():
    out = invoke("schedule", *DATASHEET, "--strategy", "fa2", "--batch", "4", "--context", "2k", "--max-ctas", "5")
    cta_rows = [line for line in out.splitlines() if CTA_ROW.match(line)]
    assert len(cta_rows) == 5 and "123 more CTAs" in out  # 4 x 32 = 128 CTAs


BAD_INPUT = [
    (["predict", "--batch", "0"], "batch"),
    (["predict", "--batch", "1.5"], "batch"),
    (["predict", "--batch", "-3"], "batch"),
    (["predict", "--context", "0"], "context"),
    (["predict", "--context", "4k,x"], "context"),
    (["predict", "--q-heads", "32", "--kv-heads", "5"], "q[-_]heads"),
    (["predict", "--head-dim", "100"], "head[-_]dim"),
    (["predict", "--head-dim", "abc"], "head[-_]dim"),
    (["predict", "--q-len", "0"], "q[-_]len"),
    (["predict", "--contexts", "1000,x"], "contexts"),
    (["predict", "--batch", "2", "--contexts", "1,2,3"], "contexts"),
    (["predict", "--gpu", "rtx9999"], "gpu"),
    (["predict", "--strategy", "streamk", "--grid", "100000"], "grid"),
    (["predict", "--strategy", "nope"], "strategy"),
    (["predict", "--splits", "0"], "splits"),
    (["predict", "--strategy", "streamk", "--chunk-tokens", "512"], "chunk_tokens.*--epilogue last"),
    (["predict", "--strategy", "fa2", "--max-splits", "4"], "max-splits"),
    (["predict", "--strategy", "balanced", "--chunk-tokens", "100"], "chunk_tokens"),
    (["predict", "--format", "xml"], "format"),
    (["predict", "--model", "nope"], "model"),
    (["schedule", "--strategy", "nope"], "strategy"),
    (["predict", "--strategy", "streamk:grid=198,streamk:grid=66"], "strategy"),  # one plan a strategy
    (["predict", "--strategy", "streamk:grid=198", "--grid", "66"], "grid"),  # spec and flag disagree
    (["predict", "--strategy", "fa2:grid=198"], "strategy"),  # an option fa2 does not take
    (["schedule", "--strategy", "streamk:grid=397"], "grid"),
    (["plan", "--strategy", "streamk:grid=132"], "strategy"),  # plan searches strategies: names only
    (["schedule", "--context", "1k,2k"], "context"),
    (["schedule", "--strategy", "streamk", "--grid", "397"], "grid"),  # h100 default kernel: 396
    (["occupancy", "--threads", "1.5", "--regs", "32"], "threads"),
    (["occupancy", "--threads", "128", "--regs", "x"], "regs"),
    (["occupancy", "--threads", "128", "--regs", "32", "--format", "csv"], "format"),
]
BAD_PROFILES = {
    "syntax.json": ('{"base": "h100", ', "gpu"),
    "syntax.toml": ('base = "h100"\nsm_count = [\n', "gpu"),
    "notable.json": ('{"gpu": 5}', "gpu"),
    "field.toml": ('base = "h100"\nsm_count = 1.5\n', "gpu.sm_count"),
    "unknown.json": ('{"base": "h100", "warp_count": 3}', "gpu.warp_count"),
}


def _run_main(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _assert_one_line_error(code, err, field):
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("attnsim: error: ")
    assert re.search(field, lines[0]), lines[0]
    assert "Traceback" not in err


def _with_outputs(args, tmp_path):
    """Append the command's file outputs, to check none is written on error."""
    if args[0] == "predict":
        return args + ["--out", str(tmp_path / "out.csv")]
    if args[0] == "schedule":
        return args + ["--plot", str(tmp_path / "out.png")]
    return args


@pytest.mark.parametrize("args, field", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_naming_the_field(args, field, capsys, tmp_path):
    code, out, err = _run_main(_with_outputs(args, tmp_path), capsys)
    _assert_one_line_error(code, err, field)
    assert out == ""
    assert list(tmp_path.iterdir()) == [], "no file is written"


@pytest.mark.parametrize("name", sorted(BAD_PROFILES))
def test_malformed_profile_files(name, capsys, tmp_path):
    text, field = BAD_PROFILES[name]
    profile = tmp_path / name
    profile.write_text(text)
    out_path = tmp_path / "out.csv"
    code, out, err = _run_main(["predict", "--gpu", str(profile), "--out", str(out_path)], capsys)
    _assert_one_line_error(code, err, field)
    assert not out_path.exists()


def test_occupancy_that_cannot_launch_prints_limits_then_fails(capsys):
    code, out, err = _run_main(["occupancy", "--threads", "2000", "--regs", "32", "--format", "json"], capsys)
    _assert_one_line_error(code, err, "resources")
    assert "2000 threads > 1024" in err
    assert json.loads(out)["blocks_per_sm"] == 0


@pytest.mark.parametrize("args, field", [
    (["predict", "--batch", "0"], "batch"),
    (["predict", "--gpu", "rtx9999"], "gpu"),
    (["predict", "--strategy", "streamk", "--grid", "100000"], "grid"),
    (["predict", "--no-such-option"], "no-such-option"),
])
def test_the_installed_entry_point_exits_2_without_traceback(args, field):
    proc = subprocess.run([sys.executable, "-m", "attnsim", *args], capture_output=True, text=True, timeout=120)
    _assert_one_line_error(proc.returncode, proc.stderr, field)
    assert proc.stdout == ""
