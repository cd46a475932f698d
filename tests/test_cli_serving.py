"""Serving options on the command line: --model (presets by Hugging Face name, config.json), --tp,
--page-size/--block-size, --kv-dtype/--kv-cache-dtype, --q-len 1..16, per-token totals; bad input
is one line naming the field with exit status 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from attnsim.profiles import resolve_gpu

from cli_helpers import json_items, run_cli

CONFIG = str(Path(__file__).parent / "data" / "llama-3.1-70b-config.json")
H200 = ["--gpu", "h200"]


def predict_json(capsys, *args) -> list[dict]:
    code, out, err = run_cli(["predict", *H200, "--format", "json", *args], capsys)
    assert code == 0, err
    return json_items(out)


def test_llama_70b_at_tp8_is_8_q_heads_1_kv_head_over_80_layers(capsys):
    records = predict_json(capsys, "--model", "meta-llama/Llama-3.1-70B", "--tp", "8", "--batch", "16",
                           "--context", "8k")
    assert {(r["q_heads"], r["kv_heads"], r["layers"]) for r in records} == {(8, 1, 80)}
    for r in records:
        assert r["token_attention_us"] == pytest.approx(80 * r["time_us"], abs=0.1)
    code, out, _ = run_cli(["predict", *H200, "--model", "meta-llama/Llama-3.1-70B", "--tp", "8"], capsys)
    header = out.splitlines()[0].split()
    assert code == 0 and {"layers", "token_attention_us"} <= set(header)


def test_config_json_path_and_its_dtype(capsys):
    records = predict_json(capsys, "--model", CONFIG, "--tp", "8", "--context", "4k")
    assert {(r["q_heads"], r["kv_heads"], r["layers"], r["dtype"]) for r in records} == {(8, 1, 80, "bfloat16")}
    assert {r["dtype"] for r in predict_json(capsys, "--model", CONFIG, "--dtype", "half")} == {"float16"}


def test_vllm_aliases_give_the_same_records(capsys):
    ours = predict_json(capsys, "--q-heads", "8", "--kv-heads", "1", "--page-size", "16", "--kv-dtype", "fp8",
                        "--dtype", "bfloat16", "--context", "32k")
    theirs = predict_json(capsys, "--q-heads", "8", "--kv-heads", "1", "--block-size", "16", "--kv-cache-dtype",
                          "fp8", "--dtype", "bf16", "--context", "32k")
    assert ours == theirs
    assert {(r["page_size"], r["kv_dtype"]) for r in ours} == {(16, "float8_e4m3fn")}


def test_raw_heads_shard_too(capsys):
    records = predict_json(capsys, "--q-heads", "64", "--kv-heads", "8", "--tp", "16", "--context", "4k")
    assert {(r["q_heads"], r["kv_heads"], r["layers"], r["token_attention_us"]) for r in records} == {(4, 1, None, None)}


def test_verify_and_serving_columns_in_the_table(capsys):
    code, out, _ = run_cli(["predict", *H200, "--q-heads", "8", "--kv-heads", "1", "--q-len", "8", "--page-size",
                            "16", "--kv-dtype", "fp8", "--context", "8k"], capsys)
    assert code == 0 and {"q_len", "page_size", "kv_dtype"} <= set(out.splitlines()[0].split())
    code, out, _ = run_cli(["predict", *H200, "--context", "8k"], capsys)
    assert not {"q_len", "page_size", "kv_dtype", "layers"} & set(out.splitlines()[0].split())


@pytest.mark.parametrize("args, field", [
    (["--model", "llama-3.1-70b", "--tp", "3"], "tp:"),
    (["--page-size", "0"], "page-size:"),
    (["--block-size", "24"], "page_size:"),
    (["--gpu", "a100", "--kv-dtype", "fp8"], "kv_dtype:"),
    (["--q-len", "17"], "q-len:"),
    (["--model", str(Path(__file__).parent / "data" / "mla-config.json"), "--kv-dtype", "fp8"], "kv_dtype:"),
    (["--kv-cache-dtype", "fp8_e5m2"], "kv_dtype:"),
    (["--q-len", "8", "--context", "4"], "contexts:"),
])
def test_bad_serving_input_is_one_line_naming_the_field(capsys, args, field):
    code, out, err = run_cli(["predict", *args], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and field in err, err


def test_bench_sweep_option(capsys):
    code, out, _ = run_cli(["bench", "--sweep", "paged", "--estimate", "--strategies", "fa2,flashdecoding,streamk"],
                           capsys)
    assert code == 0 and out.startswith("94 points")
    code, _, err = run_cli(["bench", "--quick", "--sweep", "qlen", "--estimate"], capsys)
    assert code == 2 and "sweep" in err


def test_validate_scores_the_serving_rows_of_a_sweep(tmp_path, capsys):
    """A paged row and its contiguous twin; --rows paged scores the paged one only, predicted as paged."""
    rows = [dict(gpu="H200", strategy="fa2", batch=4, q_heads=8, kv_heads=1, head_dim=128, context=8192, contexts="8192",
                 dtype="bfloat16", kv_dtype="bfloat16", page_size=page, q_len=1, time_us=t, status="ok")
            for page, t in ((16, 50.0), (0, 40.0))]
    path = tmp_path / "bench_paged.csv"
    path.write_text("\n".join([",".join(rows[0])] + [",".join(map(str, r.values())) for r in rows]) + "\n")
    results = {}
    for which in ("all", "paged"):
        code, out, err = run_cli(["validate", "--gpu", "h200", "--measurements", str(path), "--rows", which,
                                  "--format", "json"], capsys)
        assert code == 0, err
        results[which] = json.loads(out)["per_strategy"]["fa2"]
    assert (results["all"]["n"], results["paged"]["n"]) == (2, 1)


def paging_status() -> dict:
    """The shipped H200 profile's paging-term status per family of ours (the serving fit's record)."""
    terms = resolve_gpu("h200").serving_terms["terms"]
    return {name: terms[name]["paging"]["status"] for name in ("fa2", "flashdecoding", "streamk")}


def test_rows_with_unfitted_serving_terms_are_marked_in_the_table_csv_and_json(capsys):
    """16-token pages on the H200: a row is marked (†, csv/json `terms`, profile_source) exactly where
    its family's paging term stayed at its default in the profile's fit record."""
    status = paging_status()
    names = list(status)
    args = ["predict", *H200, "--context", "32k", "--page-size", "16", "--dtype", "bfloat16",
            "--strategy", ",".join(names)]
    code, out, _ = run_cli(args, capsys)
    lines = out.splitlines()
    rows = {line.split()[1]: line for line in lines[1:1 + len(names)]}
    assert code == 0 and sorted(rows) == sorted(names)
    assert {name: "†" in rows[name] for name in names} == {name: s == "default" for name, s in status.items()}
    footnote = "† h200: calibrated; paging terms at defaults; likely_us: the band of its regime (paged"
    assert (footnote in out) == ("default" in status.values())
    code, out, _ = run_cli([*args, "--format", "csv"], capsys)
    csv_rows = {r["strategy"]: r for r in csv.DictReader(io.StringIO(out))}
    assert {name: csv_rows[name]["terms"] for name in names} == {n: f"paging={s}" for n, s in status.items()}
    assert {r["band_regime"] for r in csv_rows.values()} == {"paged"}
    records = {r["strategy"]: r for r in predict_json(capsys, *args[3:])}
    assert {name: records[name]["terms"] for name in names} == {n: {"paging": s} for n, s in status.items()}
    assert {name: records[name]["profile_source"] for name in names} == {
        n: "calibrated" + ("; paging terms at defaults" if s == "default" else "") for n, s in status.items()}


def test_decode_rows_are_not_marked(capsys):
    code, out, _ = run_cli(["predict", *H200, "--context", "32k"], capsys)
    assert code == 0 and "†" not in out
    assert {(r["terms"], r["band_regime"]) for r in predict_json(capsys, "--context", "32k")} == {(None, "decode")}


@pytest.mark.parametrize("table, field", [
    ({"terms": {"fa2": {"paging": {"status": "measured", "basis": "x"}}}}, "gpu.serving_terms.terms.fa2.paging"),
    ({"terms": {"fa2": {"prefill": {"status": "fitted", "basis": "x"}}}}, "gpu.serving_terms.terms.fa2.prefill"),
    ({"bands": {"regimes": {"prefill": {}}}}, "gpu.serving_terms.bands.regimes.prefill"),
    ({"bands": {"regimes": {"fp8": {"fa2": [[5, -5]]}}}}, "gpu.serving_terms.bands.regimes.fp8.fa2"),
    ({"terms": [], "bands": {}}, "gpu.serving_terms.terms"),
    ({"notes": {}}, "gpu.serving_terms"),
])
def test_a_bad_serving_terms_table_is_refused_naming_the_field(capsys, tmp_path, table, field):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"base": "h200", "serving_terms": table}))
    code, _, err = run_cli(["predict", "--gpu", str(path), "--context", "4k"], capsys)
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1


def test_plan_and_schedule_headers_name_the_serving_features(capsys):
    serving = ["--q-heads", "8", "--kv-heads", "1", "--context", "32k", "--page-size", "16", "--kv-dtype", "fp8",
               "--q-len", "4", "--dtype", "bf16"]
    code, out, err = run_cli(["plan", *H200, *serving], capsys)
    assert code == 0, err
    assert out.splitlines()[0].endswith("bfloat16 (KV float8_e4m3fn, 16-token pages, q_len 4)")
    code, out, err = run_cli(["schedule", *H200, *serving, "--strategy", "streamk"], capsys)
    assert code == 0, err
    assert "bfloat16 (KV float8_e4m3fn, 16-token pages, q_len 4), tile" in out
    code, out, _ = run_cli(["plan", *H200, "--q-heads", "8", "--kv-heads", "1", "--context", "32k", "--kv-dtype",
                            "float16"], capsys)
    assert out.splitlines()[0].endswith("context 32768  float16")  # a KV of the query's dtype is plain decode
