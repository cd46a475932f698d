"""`plan --engine`: each engine's settings replay its own rule (the default) and its knob's values on
our kernels, named with the engine's real flags; the recommendation keeps the default unless a setting
is predicted faster beyond the tie band; text and JSON; bad input refused."""

from __future__ import annotations

import dataclasses

import pytest

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.planner import engines, heuristics
from attnsim.planner.search import Evaluator, search
from attnsim.predict import predict_one
from attnsim.profiles import resolve_gpu
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from cli_helpers import json_items, run_cli

H200, B200 = resolve_gpu("h200"), resolve_gpu("b200")  # compute capability 9.0 and 10.0
WORKLOADS = (DecodeWorkload.build(1, 32, 8, 128, 4096), DecodeWorkload.build(16, 8, 1, 128, 32768, page_size=16),
             DecodeWorkload.build(3, 32, 8, 64, [700, 20000, 3000]))
# Each engine's own rule (registry HEURISTICS) as its default, where it has one of the ones modelled.
OWN_RULE = {"sglang": "sglang-rule", "flashinfer": "flashinfer-rule", "fa3": "fa3-rule"}
# The knobs' names as the engines' sources spell them (planner/engines.py cites each).
KNOWN_KNOBS = {"--triton-attention-num-kv-splits", "--enable-deterministic-inference",
               "SGLANG_TRITON_DECODE_SPLIT_TILE_SIZE", "disable_split_kv", "fixed_split_size", "num_splits",
               "--attention-backend", "--attention-config.flash_attn_max_num_splits_for_cuda_graph",
               "VLLM_BATCH_INVARIANT"}


def advice(name, w, gpu=H200):
    return engines.engine_advice(name, search(w, gpu))


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: f"b{w.batch}-{w.context_label[:12]}")
@pytest.mark.parametrize("name", list(engines.ENGINES))
def test_settings_replay_the_engines_rules_on_our_plans(name, w):
    a = advice(name, w)
    result = search(w, H200)
    assert a.best_plan.spec == result.chosen.spec and sum(s.default for s in a.settings) == 1
    if name in OWN_RULE:
        assert a.default.plan.spec == next(h.plan.spec for h in result.heuristics if h.name == OWN_RULE[name])
    for s in a.settings:
        assert s.plan.time_us == predict_one(s.plan.spec, w, H200).total_us  # the model's prediction, bit for bit
        assert set(dict(s.knobs)) <= KNOWN_KNOBS and (s.knobs or s.default)
        assert strategies.get(s.plan.strategy).candidate
    rows = [(s.group, s.plan.spec) for s in a.settings if not s.invariant]
    assert len(rows) == len(set(rows))  # one row per plan of each knob


def test_vllm_defaults_by_compute_capability():
    """FLASH_ATTN (FA3, split cap 32 under full CUDA graphs) first on Hopper; FLASHINFER first on 10.x."""
    w = WORKLOADS[2]
    hopper, blackwell = advice("vllm", w), advice("vllm", w, B200)
    assert dict(hopper.default.knobs) == {"--attention-backend": "FLASH_ATTN"} and "= 32" in hopper.default.text
    ev = Evaluator(w, H200, PlanConfig())
    fa3_32 = engines.replay(ev, "fa3_chunk", heuristics.fa3_chunk(ev.context(engines.entry_of("fa3_chunk")), 32))
    assert hopper.default.plan.spec == fa3_32.spec
    assert dict(blackwell.default.knobs) == {"--attention-backend": "FLASHINFER"}
    assert blackwell.default.plan.spec == next(h.plan.spec for h in search(w, B200).heuristics
                                               if h.name == "flashinfer-rule")


def test_the_recommendation_keeps_the_default_within_the_band():
    a = advice("sglang", WORKLOADS[1])  # 16 x 32k, paged: the cap of 16 splits is predicted 4.5% faster than 8
    band = a.tie_band_pct / 100
    fastest = min((s for s in a.settings if not s.invariant), key=lambda s: s.plan.time_us)
    assert a.keep_default == (a.default.plan.time_us <= fastest.plan.time_us * (1 + band))
    assert a.recommended is (a.default if a.keep_default else fastest) and not a.recommended.invariant
    wide = dataclasses.replace(a, tie_band_pct=1000.0)
    assert wide.keep_default and wide.recommended is wide.default
    narrow = dataclasses.replace(a, tie_band_pct=0.0)
    assert narrow.recommended is fastest or fastest.default


def test_determinism_modes_are_shown_never_recommended():
    a = advice("sglang", WORKLOADS[0])
    (deterministic,) = [s for s in a.settings if s.invariant]
    assert deterministic.plan.spec == "balanced:chunk_tokens=256"  # SGLANG_TRITON_DECODE_SPLIT_TILE_SIZE = 256
    fast = dataclasses.replace(deterministic, plan=dataclasses.replace(deterministic.plan, time_us=0.001))
    rigged = dataclasses.replace(a, settings=tuple(fast if s is deterministic else s for s in a.settings))
    assert rigged.recommended is not fast


def test_plan_engine_sglang_text_and_json(capsys):
    args = ["plan", "--gpu", "h200", "--model", "meta-llama/Llama-3.1-70B", "--tp", "8", "--batch", "16",
            "--page-size", "16", "--context", "32k", "--engine", "sglang"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    block = out[out.index("engine sglang:"):]
    assert "--triton-attention-num-kv-splits 8  [default]" in block and "\n  set: " in block
    assert "against the planner's choice" in block and "vs choice" in block
    code, out, err = run_cli([*args, "--format", "json"], capsys)
    (data,) = json_items(out, "plans")
    (engine,) = data["engines"]
    assert engine["engine"] == "sglang" and engine["choice"]["spec"] == data["plan"]["spec"]
    assert engine["default"]["knobs"] == {"--triton-attention-num-kv-splits": 8}
    assert all(s["vs_choice_pct"] >= -0.01 for s in engine["settings"])  # the choice is searched over them all
    assert engine["recommended"]["set"] in engine["verdict"] or engine["keep_default"]


def test_every_engine_and_a_list(capsys):
    code, out, err = run_cli(["plan", "--gpu", "h200", "--context", "8k", "--engine", "vllm,fa3,flashinfer,sglang",
                              "--format", "json"], capsys)
    assert code == 0, err
    assert [e["engine"] for e in json_items(out, "plans")[0]["engines"]] == ["vllm", "fa3", "flashinfer", "sglang"]


@pytest.mark.parametrize("value", ["trtllm", "sglang,", "", "vllm,,fa3"])
def test_bad_engine_exits_2_with_one_line(value, capsys):
    code, out, err = run_cli(["plan", "--gpu", "h200", "--context", "4k", "--engine", value], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("attnsim: error: engine:")
    with pytest.raises(InputError):
        engines.parse_engines(value)


@pytest.mark.parametrize("head_dim, warned", [(160, True), (96, True), (128, False), (256, False)])
def test_flashinfer_advice_warns_of_a_head_dim_it_may_not_run(head_dim, warned):
    w = DecodeWorkload.build(4, 32, 8, head_dim, 16384)
    for name in ("flashinfer", "vllm"):
        notes = advice(name, w).notes
        assert any(f"head dim {head_dim}:" in n for n in notes) == warned, (name, notes)
    assert not any("head dim" in n for n in advice("fa3", w).notes + advice("sglang", w).notes)
