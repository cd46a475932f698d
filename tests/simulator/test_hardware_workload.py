"""Inputs enter through two doors, each validating with one message naming the field: GPU profiles
(presets or JSON/TOML files) and the DecodeWorkload."""

from __future__ import annotations

import dataclasses
import json

import pytest

from attnsim.errors import InputError
from attnsim.simulator.hardware import PRESETS, from_name, load_spec_file, spec_from_dict, spec_to_dict
from attnsim.simulator.workload import DecodeWorkload

H100 = PRESETS["h100-sxm"]


@pytest.mark.parametrize("name, preset", [("h100", "h100-sxm"), ("H100-SXM", "h100-sxm"), ("a100", "a100-80gb"),
                                          ("l40s", "l40s"), ("h200", "h200"), ("B200", "b200")])
def test_presets_by_name_or_alias(name, preset):
    assert from_name(name) is PRESETS[preset]


def test_preset_compute_capabilities():
    assert ([PRESETS[n].compute_capability for n in ("h100-sxm", "a100-80gb", "l40s", "b200")]
            == [(9, 0), (8, 0), (8, 9), (10, 0)])


def test_unknown_gpu_names_the_field():
    with pytest.raises(InputError) as err:
        from_name("rtx9999")
    assert err.value.field == "gpu" and "rtx9999" in str(err.value)


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        H100.sm_count = 1


@pytest.mark.parametrize("suffix, text", [
    (".json", '{"base": "h100", "sm_count": 100, "hbm_read_gbps": 3000}'),
    (".toml", 'base = "h100"\nsm_count = 100\nhbm_read_gbps = 3000\n'),
    (".toml", '[gpu]\nbase = "h100"\nsm_count = 100\nhbm_read_gbps = 3000\n'),
])
def test_profile_file_overrides_a_base_preset(tmp_path, suffix, text):
    path = tmp_path / f"gpu{suffix}"
    path.write_text(text)
    spec = load_spec_file(path)
    assert spec.sm_count == 100 and spec.hbm_read_gbps == 3000.0
    assert spec.max_warps_per_sm == H100.max_warps_per_sm and spec.compute_capability == (9, 0)


def test_profile_round_trips_through_plain_data(tmp_path):
    path = tmp_path / "full.json"
    path.write_text(json.dumps(spec_to_dict(PRESETS["l40s"])))
    assert load_spec_file(path) == PRESETS["l40s"]


BAD_PROFILES = [
    (".json", '{"base": "h100", "sm_count": ', "gpu"),  # not JSON
    (".toml", 'base = "h100"\nsm_count = [\n', "gpu"),  # not TOML
    (".json", "[1, 2]", "gpu"),  # not an object
    (".json", '{"gpu": 5}', "gpu"),
    (".json", '{"base": 5}', "gpu.base"),
    (".json", '{"base": "nope"}', "gpu"),
    (".json", '{"base": "h100", "sm_count": 1.5}', "gpu.sm_count"),  # sizes are integers
    (".json", '{"base": "h100", "sm_count": 0}', "gpu.sm_count"),
    (".json", '{"base": "h100", "sm_count": -4}', "gpu.sm_count"),
    (".json", '{"base": "h100", "sm_count": true}', "gpu.sm_count"),
    (".toml", 'base = "h100"\nsm_count = "many"\n', "gpu.sm_count"),
    (".json", '{"base": "h100", "smem_carveout_steps_kb": []}', "gpu.smem_carveout_steps_kb"),
    (".json", '{"base": "h100", "compute_capability": [9]}', "gpu.compute_capability"),
    (".json", '{"base": "h100", "name": 3}', "gpu.name"),
    (".json", '{"base": "h100", "warp_count": 3}', "gpu.warp_count"),  # unknown field
    (".json", '{"base": "h100", "cost": 5}', "gpu.cost"),
    (".toml", 'base = "h100"\n[cost]\nfa2 = 3\n', "gpu.cost.fa2"),
    (".json", '{"base": "h100", "cost": {"fa2": {"bw_knee": "x"}}}', "gpu.cost.fa2.bw_knee"),
    (".json", '{"base": "h100", "cost": {"fa2": {"knee": 2}}}', "gpu.cost.fa2.knee"),
    (".json", '{"name": "x", "sm_count": 10}', "gpu."),  # no base and fields missing
    (".json", '{"base": "h100", "profile_source": "measured"}', "gpu.profile_source"),
    (".json", '{"base": "h100", "expected_error_pct": -1}', "gpu.expected_error_pct"),
    (".toml", 'base = "h100"\nexpected_error_pct = "small"\n', "gpu.expected_error_pct"),
]


@pytest.mark.parametrize("suffix, text, field", BAD_PROFILES)
def test_malformed_profiles_are_refused_naming_the_field(tmp_path, suffix, text, field):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_spec_file(path)
    assert err.value.field.startswith(field)
    assert "\n" not in str(err.value)


FITTED = {"fa2": {"launch_overhead_us": 4.0}}  # a calibrated or transferred profile carries its families


@pytest.mark.parametrize("data, expected", [
    ({"base": "h100"}, "datasheet"),
    ({"base": "h100", "source": "calibrated 2026-11-25 on X", "cost": FITTED}, "calibrated"),  # older than the field
    ({"base": "h100", "source": "transferred from h100-sxm (..)", "cost": FITTED}, "transferred"),
    ({"base": "h100", "source": "my numbers"}, "datasheet"),
    ({"base": "h100", "source": "calibrated x", "profile_source": "datasheet"}, "datasheet"),  # explicit wins
])
def test_profile_source_is_read_or_derived_from_the_source_text(data, expected):
    assert spec_from_dict(data, "test").profile_source == expected


def test_spec_from_dict_refuses_non_tables():
    with pytest.raises(InputError):
        spec_from_dict(["h100"], "test")


# ---- workload ----

def test_uniform_and_ragged_workloads():
    w = DecodeWorkload.build(3, 32, 8, 128, 4096)
    assert w.contexts == (4096,) * 3 and not w.is_ragged and w.group == 4 and w.context_label == "4096"
    r = DecodeWorkload.build(3, 32, 8, 128, [1000, 50000, 3000])
    assert r.is_ragged and r.max_context == 50000 and r.context_label == "1000;50000;3000"


def test_kv_bytes_reads_k_and_v_once_per_kv_head():
    # K and V: 2 x (1000 + 3) tokens x 8 kv-heads x 128 x 2 B.
    w = DecodeWorkload.build(2, 32, 8, 128, [1000, 3], dtype="bf16")
    assert w.kv_bytes() == 2 * 1003 * 8 * 128 * 2 and w.dtype == "bfloat16"


@pytest.mark.parametrize("kwargs, field", [
    (dict(batch=0), "batch"), (dict(batch=-1), "batch"), (dict(batch=1.5), "batch"), (dict(batch=True), "batch"),
    (dict(q_heads=0), "q_heads"), (dict(kv_heads=0), "kv_heads"), (dict(q_heads=32, kv_heads=5), "q_heads"),
    (dict(head_dim=100), "head_dim"), (dict(head_dim=0), "head_dim"),
    (dict(context=0), "context"), (dict(context=2.5), "context"), (dict(context=[10, 0]), "contexts"),
    (dict(context=[10, 20, 30]), "contexts"), (dict(q_len=0), "q_len"), (dict(dtype="int8"), "dtype"),
    (dict(tp=0), "tp"), (dict(tp=True), "tp"),
])
def test_invalid_workloads_name_the_field(kwargs, field):
    args = dict(batch=2, q_heads=32, kv_heads=8, head_dim=128, context=1000) | kwargs
    with pytest.raises(InputError) as err:
        DecodeWorkload.build(**args)
    assert err.value.field == field
