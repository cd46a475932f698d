"""MLA on the command line (issue 23): `predict` and `plan` of DeepSeek-V3 by name and by config.json
at TP 8, per-step totals over its 61 MLA layers, the FlashMLA and vLLM-MLA rules with their regret,
and what is refused (with exit status 2 and one line naming the field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import json_items, run_cli

MLA_CONFIG = str(Path(__file__).parent / "data" / "mla-config.json")  # DeepSeek-V3's attention fields
H200 = ["--gpu", "h200"]
V3_TP8 = ["--model", "deepseek-ai/DeepSeek-V3", "--tp", "8", "--batch", "16", "--block-size", "64"]


@pytest.mark.parametrize("model", ["deepseek-ai/DeepSeek-V3", MLA_CONFIG])
def test_predict_deepseek_v3_at_tp8(capsys, model):
    code, out, err = run_cli(["predict", *H200, "--model", model, "--tp", "8", "--batch", "16", "--block-size",
                              "64", "--context", "8k,32k", "--format", "json"], capsys)
    assert code == 0, err
    records = json_items(out)
    assert {(r["q_heads"], r["kv_heads"], r["head_dim"], r["kv_lora_rank"], r["layers"], r["tp"])
            for r in records} == {(16, 1, 576, 512, 61, 8)}
    for r in records:
        assert r["token_attention_us"] == pytest.approx(61 * r["time_us"], abs=0.1)
        assert r["bound"] == "memory" and r["capacity_warning"] is None


def test_the_table_shows_the_latent_rank_and_the_step(capsys):
    code, out, _ = run_cli(["predict", *H200, *V3_TP8, "--context", "8k"], capsys)
    header = out.splitlines()[0].split()
    assert code == 0 and {"kv_lora_rank", "layers", "token_attention_us", "page_size"} <= set(header)


def test_plan_reports_the_mla_rules_and_their_regret(capsys):
    code, out, err = run_cli(["plan", *H200, *V3_TP8, "--context", "32k", "--format", "json"], capsys)
    assert code == 0, err
    (result,) = json_items(out, "plans")
    assert result["workload"]["kv_lora_rank"] == 512 and result["plan"]["bound"] in ("memory", "compute")
    rules = {h["name"]: h for h in result["heuristics"]}
    assert {"flashmla-rule", "vllm-mla-rule", "sglang-rule"} <= set(rules)
    assert rules["flashmla-rule"]["spec"].startswith("flashmla") and rules["vllm-mla-rule"]["spec"] == \
        "flashdecoding:splits=4"
    assert all(h["regret_pct"] >= 0 for h in rules.values())
    assert {b["name"] for b in result["baselines_not_modelled"]} == {"torch-flash", "torch-cudnn"}
    code, out, _ = run_cli(["plan", *H200, *V3_TP8, "--context", "32k"], capsys)
    assert "MLA: latent 512 + 64" in out and "flashmla-rule" in out


def test_plan_can_search_flashmla_alone(capsys):
    code, out, err = run_cli(["plan", *H200, *V3_TP8, "--context", "8k", "--strategy", "flashmla", "--format",
                              "json"], capsys)
    assert code == 0, err
    assert json_items(out, "plans")[0]["plan"]["strategy"] == "flashmla"


@pytest.mark.parametrize("args, field", [
    (["--model", MLA_CONFIG, "--kv-dtype", "fp8"], "kv_dtype:"),
    (["--model", "deepseek-v3", "--tp", "3"], "tp:"),
    (["--model", "deepseek-v3", "--strategy", "splitkv"], "strategy:"),
    (["--strategy", "flashmla"], "strategy:"),
])
def test_refused_in_one_line(capsys, args, field):
    code, out, err = run_cli(["predict", *H200, *args], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and field in err, err


def test_plan_refuses_a_strategy_without_an_mla_kernel(capsys):
    code, out, err = run_cli(["plan", *H200, "--model", "deepseek-v3", "--strategy", "splitkv"], capsys)
    assert code == 2 and err.startswith("attnsim: error: strategy:") and err.count("\n") == 1, err
