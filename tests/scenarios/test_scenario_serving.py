"""Scenario files take the serving keys: tp, page_size, kv_dtype, q_len, and config.json models."""

import shutil
from pathlib import Path

import pytest

from attnsim.scenarios.checks import ScenarioError
from attnsim.scenarios.loader import load_scenario
from attnsim.scenarios.run import scenario_predictions

DATA = Path(__file__).parent.parent / "data"
SERVING = """
name = "serving"
gpus = ["h200"]
whatif_gpus = []
dtype = "bfloat16"
tp = 8
page_size = 16
kv_dtype = "fp8"
q_len = 4
models = ["meta-llama/Llama-3.1-70B", "llama-3.1-70b-config.json"]
batches = [16]
contexts = ["8k", "128k"]
"""


def write(tmp_path, text: str) -> Path:
    shutil.copy(DATA / "llama-3.1-70b-config.json", tmp_path)
    path = tmp_path / "serving.toml"
    path.write_text(text)
    return path


def test_serving_scenario_builds_sharded_paged_fp8_verify_cases(tmp_path):
    scenario = load_scenario(str(write(tmp_path, SERVING)))
    cases = scenario.cases()
    assert len(cases) == 4
    for case in cases:
        w = case.workload
        assert (w.q_heads, w.kv_heads, w.layers, w.page_size, w.kv_fp8, w.q_len) == (8, 1, 80, 16, True, 4)
    frame = scenario_predictions(scenario)
    assert ((frame["token_attention_us"] - frame["time_us"] * 80).abs() <= 0.1).all()


@pytest.mark.parametrize("line, field", [("tp = 3", "tp"), ("page_size = 24", "page_size"), ("q_len = 17", "q_len"),
                                         ('kv_dtype = "int4"', "kv_dtype")])
def test_bad_serving_keys_are_named(tmp_path, line, field):
    key = line.split()[0]
    text = "\n".join(l for l in SERVING.splitlines() if not l.startswith(key + " ")) + "\n" + line + "\n"
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(write(tmp_path, text)))
    assert any(p.field == field for p in err.value.problems), err.value.problems


def test_an_mla_config_in_a_scenario(tmp_path):
    """An MLA model's cases are MLA layers (one latent head per GPU at TP 8); an fp8 latent cache is
    refused by its key (bf16 first)."""
    shutil.copy(DATA / "mla-config.json", tmp_path)
    text = SERVING.replace('"llama-3.1-70b-config.json"', '"mla-config.json"').replace('kv_dtype = "fp8"', "")
    mla = [c.workload for c in load_scenario(str(write(tmp_path, text))).cases() if c.workload.is_mla]
    assert mla and all((w.q_heads, w.kv_heads, w.head_dim, w.kv_lora_rank) == (16, 1, 576, 512) for w in mla)
    fp8 = SERVING.replace('"llama-3.1-70b-config.json"', '"mla-config.json"')
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(write(tmp_path, fp8)))
    assert any(p.field == "kv_dtype" for p in err.value.problems), err.value.problems
