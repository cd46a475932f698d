"""Issue 22: measurement CSVs with serving and plan columns. Every cell the model reads is type-checked
by column and line (a word was a traceback, a fraction was truncated into another workload), and rows
the model cannot score are never dropped or scored with another GPU's profile without a word:
`validate` refuses them unless --skip-unscorable, then lists them; report and plot name them."""

import json

import pytest

from cli_helpers import run_cli
from reliability_helpers import assert_refused, write_inputs

HEADER = "gpu,strategy,batch,q_heads,kv_heads,head_dim,context,dtype,time_us"
H100 = "NVIDIA H100 80GB HBM3"
ROW = f"{H100},fa2,1,32,8,128,4096,float16,25.0"


def _csv(extra_columns: str = "", *rows: str) -> str:
    return HEADER + (f",{extra_columns}" if extra_columns else "") + "\n" + "".join(r + "\n" for r in rows)


BAD_CELLS = {  # id: (CSV, the error line of `validate`)
    "q_len-a-word": (_csv("q_len", ROW + ",abc"), r"measurements.q_len: m.csv line 2: 'abc' must be an integer in \[1, 16\]"),
    "q_len-a-fraction": (_csv("q_len", ROW + ",1", ROW.replace("4096", "8192") + ",2.5"),
                         r"measurements.q_len: m.csv line 3: 2.5 must be an integer"),
    "q_len-zero": (_csv("q_len", ROW + ",0"), r"measurements.q_len: m.csv line 2: 0 must be"),
    "q_len-above-verify": (_csv("q_len", ROW + ",17"), r"measurements.q_len: .*17 must be an integer in \[1, 16\]"),
    "q_len-infinite": (_csv("q_len", ROW + ",inf"), r"measurements.q_len: .*inf must be"),
    "q_len-boolean": (_csv("q_len", ROW + ",True"), r"measurements.q_len: .*True must be"),
    "page_size-a-fraction": (_csv("page_size", ROW + ",16.5"), r"measurements.page_size: .*16.5 must be an integer"),
    "page_size-a-word": (_csv("page_size", ROW + ",sixteen"), r"measurements.page_size: .*'sixteen'"),
    "grid-a-fraction": (_csv("grid", ROW.replace("fa2", "streamk") + ",132.5"), r"measurements.grid: .*132.5"),
    "splits-a-word": (_csv("splits", ROW.replace("fa2", "flashdecoding") + ",many"), r"measurements.splits: .*'many'"),
    "num_warps-above-a-cta": (_csv("num_warps", ROW + ",64"), r"measurements.num_warps: .*64 must be an integer in \[1, 32\]"),
    "kv_tile-huge": (_csv("kv_tile", ROW + ",1e9"), r"measurements.kv_tile: .*must be an integer in \[1, 4,096\]"),
    "n_regs-negative": (_csv("n_regs", ROW + ",-1"), r"measurements.n_regs: .*-1 must be"),
    "column-named-twice": (_csv("time_us", ROW + ",99.0"), r"measurements: m.csv: column 'time_us' appears twice"),
    "header-repeated-mid-file": (_csv("", ROW, HEADER), r"measurements.batch: m.csv line 3: 'batch'"),
    "a-row-of-commas": (_csv("", ROW, ",,,,,,,,"), r"measurements.gpu: m.csv line 3: .*must not be empty"),
    "unicode-strategy": (_csv("", ROW, ROW.replace("fa2", "strëamk").replace("4096", "8192")),
                         r"measurements.strategy: m.csv line 3 names strategy 'strëamk', which attnsim does not model"),
    "strategy-of-a-newer-attnsim": (_csv("", ROW.replace("fa2", "flash-attn-3")),
                                    r"measurements.strategy: .*'flash-attn-3'.*--skip-unscorable"),
    "gpu-naming-no-known-gpu": (_csv("", ROW.replace(H100, "Z9000")),
                                r"measurements.gpu: m.csv line 2 was measured on 'Z9000', which names no known GPU"),
    "two-unscorable-rows-counted": (_csv("", ROW.replace("fa2", "x1"), ROW.replace("fa2", "x2")),
                                    r"measurements.strategy: .*line 2 .*; 2 rows cannot be scored"),
}


@pytest.mark.parametrize("case", sorted(BAD_CELLS))
def test_validate_refuses_a_bad_or_unscorable_row(case, tmp_path, capsys):
    content, field = BAD_CELLS[case]
    write_inputs(tmp_path, {"m.csv": content})
    assert_refused("validate --measurements {inp}/m.csv --out-dir {out}/v", field, tmp_path, capsys)


def test_an_h100_row_is_not_scored_with_the_h200_profile(tmp_path, capsys):
    write_inputs(tmp_path, {"m.csv": _csv("", ROW)})
    assert_refused("validate --gpu h200 --measurements {inp}/m.csv --skip-unscorable",
                   r"measurements: m.csv: no rows left to score \(--rows all; 1 left out", tmp_path, capsys)


def test_a_row_filter_keeps_the_file_line_in_messages(tmp_path, capsys):
    content = _csv("page_size", ROW + ",0", ROW.replace(H100, "Z9000") + ",16")
    write_inputs(tmp_path, {"m.csv": content})
    assert_refused("validate --measurements {inp}/m.csv --rows paged", r"measurements.gpu: m.csv line 3 ", tmp_path, capsys)


@pytest.mark.parametrize("command, field", [
    ("plot validation --measurements {inp}/m.csv --gpu h200 --out {out}/v.png", r"measurements.gpu: m.csv line 2 "
                                                                               r"was measured on 'Z9000'"),
    ("calibrate --gpu h100 --from-data {inp}/d.json --out {out}/p.json", r"from-data.points.q_len: .*2.5 must be"),
], ids=["plot-validation-unknown-gpu", "calibration-points-q_len"])
def test_other_commands_refuse_the_same_rows(command, field, tmp_path, capsys):
    point = dict(gpu=H100, strategy="fa2", batch=1, q_heads=32, kv_heads=8, head_dim=128, context=4096,
                 dtype="float16", time_us=25.0, q_len=2.5)
    data = {"device": {"name": H100}, "calibration_data": {
        "bandwidth": [{"num_ctas": n, "num_warps": 4, "read_gbps": min(16.0 * n, 3000.0)} for n in (1, 8, 132, 264)],
        "points": [point], "kernels": {}, "launch_overhead_us": 4.0}, "format": "attnsim-calibration-data"}
    write_inputs(tmp_path, {"m.csv": _csv("", ROW.replace(H100, "Z9000")), "d.json": json.dumps(data)})
    assert_refused(command, field, tmp_path, capsys)


def test_skip_unscorable_lists_the_rows_it_leaves_out(tmp_path, capsys):
    path = tmp_path / "m.csv"
    path.write_text(_csv("", ROW, ROW.replace("fa2", "strëamk"), ROW.replace(H100, "NVIDIA H200")))
    code, out, err = run_cli(["validate", "--measurements", str(path), "--skip-unscorable", "--format", "json"], capsys)
    assert code == 0, err
    assert err.startswith("note: skipped 2 row(s) of m.csv") and "line 3 names strategy 'strëamk'" in err
    skipped = json.loads(out)["skipped_rows"]
    assert [s["line"] for s in skipped] == [3, 4] and "'NVIDIA H200'" in skipped[1]["reason"]
    assert json.loads(out)["per_strategy"]["fa2"]["n"] == 1


def test_aliases_and_a_byte_order_mark_are_read(tmp_path, capsys):
    """An Excel export starts with a BOM; 'lean' and 'FA2' name registry strategies (once dropped)."""
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv("", ROW.replace("fa2", "lean"), ROW.replace("fa2", "FA2")).encode())
    code, out, err = run_cli(["validate", "--measurements", str(path), "--format", "json"], capsys)
    assert code == 0, err
    assert sorted(json.loads(out)["per_strategy"]) == ["fa2", "streamk"]


def test_plot_validation_names_the_rows_it_leaves_out(tmp_path, capsys):
    path = tmp_path / "m.csv"
    path.write_text(_csv("", ROW, ROW.replace("fa2", "flash-attn-3")))
    code, _, err = run_cli(["plot", "validation", "--measurements", str(path), "--out", str(tmp_path / "v.png")],
                           capsys)
    assert code == 0, err
    assert "note: skipped 1 row(s) of m.csv" in err and "line 3 names strategy 'flash-attn-3'" in err
    assert (tmp_path / "v.png").is_file()


def test_report_names_the_rows_it_leaves_out(tmp_path, capsys):
    """A validation CSV (predicted_us given) with a row of a strategy attnsim does not model."""
    path, scenario = tmp_path / "v.csv", tmp_path / "tiny.toml"
    path.write_text(_csv("predicted_us", ROW + ",24.0", ROW.replace("fa2", "flash-attn-3") + ",20.0"))
    scenario.write_text('models = ["llama-3.2-1b"]\ncontexts = ["1k"]\nwhatif_gpus = []\n')
    code, _, err = run_cli(["report", "--scenario", str(scenario), "--measurements", str(path),
                            "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert "note: skipped 1 row(s) of v.csv" in err and "line 3 names strategy 'flash-attn-3'" in err
    assert "flash-attn-3" not in (tmp_path / "r" / "index.html").read_text()
