"""`attnsim plan`: the choice as text and as JSON a serving engine can consume; `auto` in predict;
bad options exit 2 with one line naming the field."""

from __future__ import annotations

import pytest

from cli_helpers import json_items, run_cli

H200 = ["--gpu", "h200"]
SHAPE = ["--batch", "1", "--q-heads", "32", "--kv-heads", "8", "--context", "4k"]


def test_help_has_examples(capsys):
    code, out, _ = run_cli(["plan", "--help"], capsys)
    assert code == 0 and "Examples:" in out and "attnsim plan --gpu h200" in out and "--batch-invariant" in out


def test_json_is_the_plan_in_full(capsys):
    code, out, err = run_cli(["plan", *H200, *SHAPE, "--format", "json"], capsys)
    assert code == 0, err
    (data,) = json_items(out, "plans")
    plan = data["plan"]
    assert plan["spec"].startswith(plan["strategy"]) and plan["time_us"] > 0 and 0 < plan["bw_fraction"] <= 1
    assert plan["launches"][0]["name"] == "attention" and plan["launches"][0]["grid"] == plan["grid"]
    assert {"threads", "regs_per_thread", "smem_bytes", "family"} <= set(plan["launches"][0])
    assert data["tie_band_pct"] > 0 and data["tie_band_source"]
    assert {h["name"] for h in data["heuristics"]} == {"fa2-rule", "fa3-rule", "flashinfer-rule", "lean-rule",
                                                      "sglang-rule", "cutlass-rule"}
    assert all(h["regret_pct"] >= data["fastest"]["regret_pct"] for h in data["heuristics"]) and data["runners_up"]
    assert data["baselines"] and all("verdict" in b for b in data["baselines"])
    assert data["search"]["candidates"] >= 30 and data["workload"]["contexts"] == [4096]


def test_table_names_the_choice_and_the_heuristics(capsys):
    code, out, _ = run_cli(["plan", *H200, *SHAPE], capsys)
    assert code == 0 and out.startswith("h200") and "chosen:" in out and "tie band:" in out
    assert "fa2-rule" in out and "cutlass-rule" in out and "searched" in out


def test_predict_auto_shows_the_plan_column(capsys):
    code, out, _ = run_cli(["predict", *H200, *SHAPE, "--strategy", "auto,streamk"], capsys)
    header, auto_row = out.splitlines()[:2]
    assert code == 0 and header.split()[:3] == ["gpu", "strategy", "plan"] and auto_row.split()[1] == "auto"
    code, out, _ = run_cli(["plan", *H200, *SHAPE, "--format", "json"], capsys)
    assert auto_row.split()[2] == json_items(out, "plans")[0]["plan"]["spec"]


@pytest.mark.parametrize("args,field", [
    (["--strategy", "streamk", "--grid", "999"], "grid"),
    (["--splits", "1000"], "splits"),
    (["--strategy", "nope"], "strategy"),
    (["--strategy", "torch-flash"], "strategy"),
    (["--format", "csv"], "format"),
])
def test_bad_options_exit_2_with_one_line(args, field, capsys):
    code, out, err = run_cli(["plan", *H200, *SHAPE, *args], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"attnsim: error: {field}:")


def test_batch_invariant_explains_the_fixed_split_size(capsys):
    """The text and JSON say which fixed split size runs, that it is fixed for the model shape, and its
    predicted regret over the grid; another batch of the same shape gets the same plan."""
    invariant = ["--q-heads", "32", "--kv-heads", "8", "--batch-invariant"]
    code, out, err = run_cli(["plan", *H200, "--contexts", "512,9000,70000", *invariant], capsys)
    assert code == 0 and err.startswith("batch-invariant: choosing the fixed plan of each model shape"), err
    chosen = out.split("chosen: ")[1].split()[0]
    why = out.split("why: ")[1].splitlines()[0]
    assert why.startswith("batch-invariant: every sequence cut alone into") and chosen in why
    assert "fixed for this model shape and GPU" in why and "% mean, p95" in why
    assert ("-token chunks" in why) == ("chunk_tokens=" in chosen) and "costs" in out
    assert "one fixed chunk instead: balanced:chunk_tokens=" in out and "no split instead: fa2" in out
    code, out, err = run_cli(["plan", *H200, "--batch", "64", "--context", "3k", *invariant, "--format", "json"], capsys)
    (data,) = json_items(out, "plans")
    assert code == 0 and data["batch_invariant"] and data["plan"]["spec"] == chosen and data["why"] == why
    fixed = data["invariant_plan"]
    assert fixed["spec"] == chosen and fixed["grid_points"] > 20
    text_mean = float(why.split("% mean")[0].rsplit("(", 1)[1])  # the text's 1 decimal of JSON's 2
    assert abs(text_mean - fixed["mean_regret_pct"]) <= 0.051
    rules = fixed["engine_rules"]  # what FlashInfer's fixed split size / no split would cost on the grid
    assert set(rules) == {"one fixed chunk", "no split"} and rules["no split"]["spec"] == "fa2"
    assert all(r["mean_regret_pct"] >= fixed["mean_regret_pct"] - 0.5 for r in rules.values())
    assert fixed["length_rule_bound_pct"] <= fixed["mean_regret_pct"]
    code, out, _ = run_cli(["plan", *H200, *SHAPE, "--format", "json"], capsys)
    assert "invariant_plan" not in json_items(out, "plans")[0]


def test_the_text_says_how_a_gpu_settles_the_ties(capsys):
    """Tied plans: the text names auto:tune (bench/tune.py); batch-invariant mode (one fixed plan) does not."""
    args = ["plan", "--gpu", "h200", "--batch", "2", "--q-heads", "32", "--kv-heads", "32", "--head-dim", "64",
            "--context", "2048"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "other plan(s) within" in out
    assert "on a GPU: `bench --strategies auto:tune=3` times the 3 fastest plans" in out
    code, out, _ = run_cli([*args, "--batch-invariant"], capsys)
    assert code == 0 and "auto:tune" not in out

