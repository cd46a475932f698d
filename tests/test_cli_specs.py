"""Plan specs where a command shows one plan a strategy (predict, schedule, plot timeline): the spec that
`plan`, bench CSVs and reports print ('streamk:grid=198') is what runs, the same plan as its flags."""

from __future__ import annotations

from click.testing import CliRunner

from attnsim.cli import register_commands
from cli_helpers import json_items

cli = register_commands()
WORKLOAD = ["--gpu", "h200", "--batch", "4", "--q-heads", "32", "--kv-heads", "8", "--context", "16k"]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def records(*args: str) -> dict[str, dict]:
    return {r["strategy"]: r for r in json_items(invoke("predict", *WORKLOAD, *args, "--format", "json"))}


def test_a_spec_runs_the_plan_its_flags_run():
    by_spec = records("--strategy", "fa2,streamk:grid=198,splitkv:chunk_tokens=512,max_splits=16")
    by_flags = {**records("--strategy", "streamk", "--grid", "198"),
                **records("--strategy", "splitkv", "--chunk-tokens", "512", "--max-splits", "16")}
    for name in ("streamk", "splitkv"):
        assert by_spec[name]["time_us"] == by_flags[name]["time_us"]
        assert by_spec[name]["plan_spec"] == by_flags[name]["plan_spec"]
    assert by_spec["streamk"]["grid"] == 198
    assert by_spec["splitkv"]["plan_spec"] == "splitkv:chunk_tokens=512,max_splits=16"
    default = records("--strategy", "streamk")["streamk"]
    assert default["grid"] != 198 and default["time_us"] != by_spec["streamk"]["time_us"]


def test_speedups_stay_against_the_default_bases_when_a_base_is_given_a_spec():
    tiled = records("--strategy", "fa2:kv_tile_tokens=32,flashdecoding")
    plain = records("--strategy", "fa2,flashdecoding")
    assert tiled["fa2"]["plan_spec"] == "fa2:kv_tile_tokens=32"
    assert tiled["fa2"]["time_us"] != plain["fa2"]["time_us"]
    ratio = plain["fa2"]["time_us"] / tiled["fa2"]["time_us"]
    assert abs(tiled["fa2"]["speedup_vs_fa2"] - ratio) < 1e-3  # against the default fa2, not itself
    assert tiled["flashdecoding"]["speedup_vs_fa2"] == plain["flashdecoding"]["speedup_vs_fa2"]


def test_the_table_names_the_plan_a_spec_gave():
    table = invoke("predict", *WORKLOAD, "--strategy", "fa2,splitkv:splits=8")
    assert "splitkv:splits=8" in table
    assert "plan" not in invoke("predict", *WORKLOAD, "--strategy", "fa2,splitkv").splitlines()[0].split()


def test_schedule_and_timeline_take_a_spec(tmp_path):
    contexts = ["--gpu", "h200", "--contexts", "700,9000"]
    by_spec = invoke("schedule", *contexts, "--strategy", "splitkv:chunk_tokens=512,max_splits=16")
    by_flags = invoke("schedule", *contexts, "--strategy", "splitkv", "--chunk-tokens", "512", "--max-splits", "16")
    assert by_spec == by_flags
    assert "(grid 22)" in invoke("schedule", *contexts, "--strategy", "streamk:grid=22")
    out = tmp_path / "t.png"
    CliRunner().invoke(cli, ["plot", "timeline", *contexts, "--strategy", "streamk:grid=22,fa2", "--out", str(out)],
                       catch_exceptions=False)
    assert out.stat().st_size > 0
