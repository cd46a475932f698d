"""Issue 22, the serving engineer's questions on the command line: context sweeps as ranges (bounded
by the work they ask for), whether the KV cache fits, and baselines left out where SDPA cannot run."""

import json

import pytest

from cli_helpers import json_items, run_cli

from attnsim.errors import InputError
from attnsim.planner.search import search
from attnsim.predict import not_modelled, predict_records
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload
from attnsim.units import parse_size, parse_sweep

SERVING_70B = "--gpu h200 --model meta-llama/Llama-3.1-70B --tp 8"


@pytest.mark.parametrize("text, values", [
    ("1k:4k:1k", [1024, 2048, 3072, 4096]),  # stop included
    ("1k:2500:1k", [1024, 2048]),  # a stop the steps do not reach is not added
    ("4k:4k:1k", [4096]),
    ("1.5M,1.5k,1k:2k:1k", [1572864, 1536, 1024, 2048]),
    ("0.5k", [512]),
])
def test_context_sweeps(text, values):
    assert parse_sweep(text, "context", maximum=1 << 25) == values
    assert len(parse_sweep("1k:256k:1k", "context")) == 256


def test_fractions_must_give_whole_tokens_everywhere():
    assert parse_size("1.5M", "batch") == 1572864 and parse_size("2.25k", "x") == 2304
    with pytest.raises(InputError, match="not a whole number"):
        parse_size("0.3k", "batch")


def test_256_contexts_in_one_predict(capsys):
    """Its speed is scripts/bench_predict.py's figure (a benchmark prints; a timed test flakes on a slow CI)."""
    code, out, err = run_cli(["predict", "--context", "1k:256k:1k", "--format", "json"], capsys)
    records = json_items(out)
    assert code == 0 and err == ""
    counts = {s: sum(r["strategy"] == s for r in records) for s in {r["strategy"] for r in records}}
    assert counts == {"fa2": 256, "flashdecoding": 256, "streamk": 256}
    assert sorted({r["contexts"][0] for r in records}) == list(range(1024, 262145, 1024))


@pytest.mark.parametrize("batch, context, warned", [("256", "1M", True), ("32", "128k", True), ("16", "32k", False)])
def test_capacity_warning_in_every_format(batch, context, warned, capsys):
    base = ["predict", *SERVING_70B.split(), "--batch", batch, "--context", context, "--strategy", "streamk"]
    code, out, err = run_cli(base + ["--format", "json"], capsys)
    record = json_items(out)[0]
    assert code == 0 and (record["capacity_warning"] is not None) == warned
    assert ("attnsim: warning: 1 of 1 workloads do not fit" in err) == warned
    _, csv_out, _ = run_cli(base + ["--format", "csv"], capsys)
    assert "capacity_warning" in csv_out.splitlines()[0] and ("GiB of memory" in csv_out) == warned
    _, table, _ = run_cli(base, capsys)
    assert ("kv_cache_gib" in table.splitlines()[0]) == warned  # the column appears where a row does not fit
    _, plan, _ = run_cli(["plan", *SERVING_70B.split(), "--batch", batch, "--context", context], capsys)
    assert ("WARNING: the workload does not fit" in plan) == warned


def test_a_sweep_says_how_many_do_not_fit(capsys):
    code, _, err = run_cli(["predict", *SERVING_70B.split(), "--batch", "16", "--context", "32k:256k:32k"], capsys)
    assert code == 0
    assert "attnsim: warning: 1 of 8 workloads do not fit the GPU's memory; the largest, batch 16 x context " \
           "262144 on h200: KV cache 160.0 GiB per GPU (80 layers)" in err  # 224k: 140.0 GiB, just under 140.4


def test_sdpa_baselines_are_left_out_where_sdpa_cannot_run(capsys):
    code, out, err = run_cli(["predict", *SERVING_70B.split(), "--page-size", "16", "--kv-dtype", "fp8",
                              "--strategy", "streamk,torch-flash,torch-cudnn", "--format", "json"], capsys)
    assert code == 0 and [r["strategy"] for r in json_items(out)] == ["streamk"]
    assert err.count("left out (not modelled)") == 2 and "a paged cache is not its input" in err
    _, out, err = run_cli(["predict", *SERVING_70B.split(), "--strategy", "streamk,torch-flash", "--format", "json"],
                          capsys)
    assert [r["strategy"] for r in json_items(out)] == ["streamk", "torch-flash"] and err == ""


@pytest.mark.parametrize("kw, why", [(dict(page_size=16), "paged"), (dict(kv_dtype="fp8"), "float8_e4m3fn"),
                                     (dict(q_len=4), "q_len 1")])
def test_records_and_the_planner_never_use_a_baseline_that_cannot_run(kw, why):
    w = DecodeWorkload.build(4, 8, 1, 128, 32768, **kw)
    gpu = resolve_gpu("h200")
    assert {r["strategy"] for r in predict_records(w, gpu, ["streamk", "torch-flash", "torch-cudnn"])} == {"streamk"}
    reasons = not_modelled(w, ["torch-flash", "torch-cudnn", "streamk"])
    assert set(reasons) == {"torch-flash", "torch-cudnn"} and all(why in r for r in reasons.values())
    assert search(w, gpu).baselines == ()  # nothing to compare against
    contiguous = DecodeWorkload.build(4, 8, 1, 128, 32768)
    assert {b.name for b in search(contiguous, gpu).baselines} == {"torch-flash", "torch-cudnn"}


def test_plan_json_names_the_step_and_what_is_not_compared(capsys):
    code, out, _ = run_cli(["plan", "--gpu", "h200", "--model", "gemma-2-9b", "--context", "64k", "--format", "json"],
                           capsys)
    data = json_items(out, "plans")[0]
    assert code == 0 and data["step"]["window_layers"] == 21 and data["step"]["capacity_warning"] is None
    assert data["baselines_not_modelled"] == [{"name": "torch-cudnn", "reason": "torch-cudnn takes head_dim <= 128"}]
