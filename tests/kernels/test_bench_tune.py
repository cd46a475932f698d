"""`auto:tune=K` (bench/tune.py): the fastest measured of the model's K fastest plans runs, is checked and timed
again; candidates that fail are skipped. CPU: fake launchers and a fake timer that prices each plan spec."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from attnsim.bench import harness as bench, measure, results as bench_results
from attnsim.errors import InputError
from attnsim.kernels.reference import attention_reference
from attnsim.planner.choose import make_plan, tuning_specs
from attnsim.simulator.hardware import from_name
from attnsim.simulator.workload import DecodeWorkload

H200 = from_name("h200")
POINT = DecodeWorkload.build(2, 16, 2, 64, 3000)


class SpecLauncher:
    """Runs the reference (or a wrong output) and reports `plan` as what it ran."""

    def __init__(self, plan: str, wrong: bool = False):
        self.meta = {"plan": plan, "grid": 1}
        self.wrong = wrong

    def run(self, q, k, v, out=None):
        o = attention_reference(q, k, v, POINT.contexts).to(q.dtype) * (1.5 if self.wrong else 1.0)
        out[...] = o
        return out


def priced_timer(monkeypatch, prices: dict, row_us=lambda fn, config: 1.0):
    """Each tuning trial's µs is its launcher's price (a trial's call binds its launcher as a default), the
    row's own timing row_us; records the order of the trials."""
    timed = []

    def time_us(fn, config):
        if not fn.__defaults__:  # the row's timing of the chosen plan (harness.timed_call)
            return row_us(fn, config)
        launcher = fn.__defaults__[0]
        timed.append(launcher.meta["plan"])
        return prices.get(launcher.meta["plan"], 100.0)
    monkeypatch.setattr(measure, "replayable", lambda fn: fn)
    monkeypatch.setattr(measure, "time_us", time_us)
    return timed


def run(spec: str, wrong=(), raising=()):
    def prepare(plan, w, config):
        if plan in raising:
            raise RuntimeError("no kernel image")
        return SpecLauncher(plan, plan in wrong)
    config = bench.BenchConfig((spec,), H200, "fake-gpu", 4500.0, device="cpu")
    return bench.run_sweep([POINT], config, prepare=prepare, reference=attention_reference).iloc[0]


def test_tuning_specs_start_with_the_models_choice_and_resolve_to_themselves():
    specs = tuning_specs("auto:tune=4", POINT, H200)
    assert len(specs) == len(set(specs)) == 5
    assert specs[0] == make_plan("auto", POINT, H200).spec
    assert specs[4] == make_plan("auto:batch_invariant=1", POINT, H200).spec  # the chunked kernel's plan, last
    assert [make_plan(s, POINT, H200).spec for s in specs] == list(specs)
    assert tuning_specs("auto", POINT, H200) == (specs[0],)
    assert tuning_specs("fa2", POINT, H200) == ("fa2",)
    # without a GPU the tuned entry runs the model's own choice
    assert make_plan("auto:tune=4", POINT, H200).spec == specs[0]


def test_the_fastest_measured_plan_runs_and_the_row_says_what_was_timed(monkeypatch):
    specs = tuning_specs("auto:tune=3", POINT, H200)
    timed = priced_timer(monkeypatch, {specs[0]: 20.0, specs[1]: 18.0, specs[2]: 19.0, specs[3]: 18.5})
    row = run("auto:tune=3")
    assert row["status"] == "ok" and row["requested"] == "auto:tune=3"
    assert bench_results.spec_label(row) == specs[1]
    assert timed == list(specs) and len(specs) == 4
    assert row["tuned"] == f"{specs[0]} 20.00; {specs[1]} 18.00; {specs[2]} 19.00; {specs[3]} 18.50"
    assert row["time_us"] == 1.0  # timed again by the harness, not the least of the trials


def test_a_measured_tie_goes_to_the_models_order(monkeypatch):
    specs = tuning_specs("auto:tune=3", POINT, H200)
    priced_timer(monkeypatch, {specs[0]: 20.05, specs[1]: 20.0, specs[2]: 25.0})
    assert bench_results.spec_label(run("auto:tune=3")) == specs[0]  # 0.25% slower: within tune.TIE_PCT


def test_wrong_or_crashing_candidates_are_skipped(monkeypatch):
    specs = tuning_specs("auto:tune=3", POINT, H200)
    priced_timer(monkeypatch, {specs[0]: 10.0, specs[1]: 30.0, specs[2]: 5.0})
    row = run("auto:tune=3", wrong={specs[0]}, raising={specs[2]})
    assert row["status"] == "ok" and bench_results.spec_label(row) == specs[1]
    assert row["tuned"] == f"{specs[0]} wrong; {specs[1]} 30.00; {specs[2]} RuntimeError; {specs[3]} 100.00"
    failed = run("auto:tune=3", wrong=set(specs))
    assert failed["status"].startswith("error") and pd.isna(failed["time_us"])


def test_tune_is_checked_like_every_option():
    with pytest.raises(InputError, match="tune"):
        make_plan("auto:tune=0", POINT, H200)
    with pytest.raises(InputError, match="tune"):
        make_plan("splitkv:tune=3", POINT, H200)


def test_the_estimate_counts_the_tuning_runs():
    plain = bench.estimate_seconds([POINT], ("auto",))
    assert bench.estimate_seconds([POINT], ("auto:tune=3",)) > plain + 2 * (plain - bench.estimate_seconds([], ("auto",)))


def small_layer(batch, context, page, kv):
    return DecodeWorkload.build(batch, 16, 2, 64, context, page_size=page, kv_dtype=kv)


def test_a_tuned_plan_table_names_the_plan_that_won_and_still_loads(monkeypatch, tmp_path):
    from attnsim import plantable
    from attnsim.bench import tune_table as tt
    from attnsim.fileio import write_json
    from attnsim.planner.table import table_document
    from attnsim.simulator.partition.common import PlanConfig

    doc = table_document(small_layer, H200, [1, 2], [256, 3000], [(0, "")], PlanConfig(), {"model": {"name": "t"}})
    model_specs = [c["spec"] for c in doc["sections"][0]["cells"]]
    big = doc["sections"][0]["cells"][-1]
    monkeypatch.setattr(tt, "MAX_CELL_BYTES", tt.padded_kv_bytes(small_layer(2, 3000, 0, "")) - 1)  # the last: too big
    # each cell: the model's second-fastest plan measures fastest
    seconds = {tuning_specs("auto:tune=2", small_layer(c["batch"], c["context"], 0, ""), H200)[1]
               for c in doc["sections"][0]["cells"]}
    priced_timer(monkeypatch, {s: 5.0 for s in seconds})

    def prepare(plan, w, config):
        return SpecLauncherAt(plan, w)
    config = bench.BenchConfig((), H200, "fake-gpu", 4500.0, device="cpu")
    tt.tune_table(doc, small_layer, config, 2, prepare=prepare, reference=attention_reference)
    cells = doc["sections"][0]["cells"]
    assert doc["tuned"]["cells_timed"] == 3 and "auto:tune=2" in doc["tuned"]["plans_per_cell"]
    for cell, model_spec in zip(cells[:3], model_specs):
        assert cell["model_spec"] == model_spec and cell["spec"] in seconds and cell["spec"] != model_spec
        assert cell["time_us"] == 1.0 and cell["predicted_us"] > 0 and cell["tuned"].count(";") in (1, 2)
    assert big["spec"] == model_specs[3] and big["tuned"].startswith("not timed: K + V")
    write_json(tmp_path / "t.json", doc)
    entry = plantable.load(tmp_path / "t.json").lookup(1, [200])
    assert entry.spec == cells[0]["spec"] and entry.time_us == 1.0


class SpecLauncherAt(SpecLauncher):
    last = None  # the launcher that ran last (the harness's fake timer prices it)

    def __init__(self, plan, w):
        super().__init__(plan)
        self.w = w

    def run(self, q, k, v, out=None):
        SpecLauncherAt.last = self
        out[...] = attention_reference(q, k, v, self.w.contexts).to(q.dtype)
        return out


def test_a_batch_invariant_table_runs_the_invariant_plan_measured_best_in_every_cell(monkeypatch):
    from attnsim.bench import tune_invariant, tune_table as tt
    from attnsim.planner.table import table_document
    from attnsim.simulator.partition.common import PlanConfig

    doc = table_document(small_layer, H200, [1, 4], [512, 3000], [(0, "")], PlanConfig(batch_invariant=1),
                         {"model": {"name": "t"}, "options": {"batch_invariant": 1}})
    modelled = doc["sections"][0]["cells"][0]["spec"]
    first, second = tune_invariant.invariant_candidates(small_layer(1, 512, 0, "").modelled_layer(), H200, {}, 2)
    assert first == modelled  # the model's invariant choice is its best-scored plan
    prices = {first: 12.0, second: 10.0}  # the runner-up measures faster in every cell
    priced_timer(monkeypatch, prices,  # auto:tune's trials, and each row's own timing of the plan it chose
                 lambda fn, config: (fn(), prices.get(SpecLauncherAt.last.meta["plan"], 11.0))[1])
    config = bench.BenchConfig((), H200, "fake-gpu", 4500.0, device="cpu")
    tt.tune_table(doc, small_layer, config, 2, prepare=lambda plan, w, c: SpecLauncherAt(plan, w),
                  reference=attention_reference)
    section = doc["sections"][0]
    assert {c["spec"] for c in section["cells"]} == {second}
    assert all(c["model_spec"] == first and c["time_us"] == 10.0 for c in section["cells"])
    assert section["batch_invariant"].startswith(f"batch-invariant, measured: {second} runs in every cell")
    assert "over 4 timed cells" in section["batch_invariant"] and doc["tuned"]["cells_timed"] == 4

    # a candidate that fails everywhere: the model's choice stays and the section says why
    doc = table_document(small_layer, H200, [1], [512], [(0, "")], PlanConfig(batch_invariant=1),
                         {"model": {"name": "t"}, "options": {"batch_invariant": 1}})

    def prepare(plan, w, c):
        if plan == second:
            raise RuntimeError("no kernel image")
        return SpecLauncherAt(plan, w)
    tt.tune_table(doc, small_layer, config, 2, prepare=prepare, reference=attention_reference)
    section = doc["sections"][0]
    assert section["cells"][0]["spec"] == first and "not chosen by measurement" in section["batch_invariant"]


@pytest.mark.parametrize("args,message", [
    (["--context", "4k", "--tune", "3"], "use it with --table"),
    (["--table", "{t}", "--tune", "0"], "tune must be an integer >= 1"),
    (["--table", "{t}", "--tune", "3", "--strategy", "streamk"], "--strategy does not apply"),
    (["--table", "{t}", "--tune", "3"], "torch sees none here")])
def test_plan_tune_errors_are_one_line_naming_tune(args, message, tmp_path, monkeypatch, capsys):
    from cli_helpers import run_cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli(["plan", "--gpu", "h200", *[a.format(t=tmp_path / "t.json") for a in args]], capsys)
    assert code == 2 and err.startswith("attnsim: error: tune:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "t.json").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tuned_auto_on_the_gpu(tmp_path):
    from attnsim.bench.run import run_bench_to_csv

    df = run_bench_to_csv(tmp_path / "t.csv", [POINT], H200, ("auto", "auto:tune=3"))
    assert (df["status"] == "ok").all()
    row = df[df["requested"] == "auto:tune=3"].iloc[0]
    assert bench_results.spec_label(row) in tuning_specs("auto:tune=3", POINT, H200)
    assert row["tuned"].count(";") in (2, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_plan_table_tuned_on_the_gpu(tmp_path, capsys):
    from attnsim import plantable
    from cli_helpers import run_cli

    path = tmp_path / "t.json"
    code, out, err = run_cli(["plan", "--gpu", "h200", "--q-heads", "16", "--kv-heads", "2", "--head-dim", "64",
                              "--batch", "1,4", "--context", "1k,8k", "--table", str(path), "--tune", "2"], capsys)
    assert code == 0, err
    assert "4 of them timed on the GPU (the model's 2 fastest and the batch-invariant plan (auto:tune=2))" in out
    table = plantable.load(path)
    assert table.lookup(3, 5000).spec


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_batch_invariant_table_tuned_on_the_gpu(tmp_path, capsys):
    import json

    from cli_helpers import run_cli

    path = tmp_path / "t.json"
    code, out, err = run_cli(["plan", "--gpu", "h200", "--q-heads", "16", "--kv-heads", "2", "--head-dim", "64",
                              "--batch", "1,4", "--context", "1k,8k", "--table", str(path), "--tune", "2",
                              "--batch-invariant"], capsys)
    assert code == 0, err
    section = json.loads(path.read_text())["sections"][0]
    assert len({c["spec"] for c in section["cells"]}) == 1
    assert section["batch_invariant"].startswith("batch-invariant, measured:")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tuned_batch_invariant_auto_on_the_gpu(tmp_path, monkeypatch):
    from attnsim.bench import tune_invariant
    from attnsim.bench.run import run_bench_to_csv

    monkeypatch.setattr(tune_invariant, "RULE_BATCHES", (1, 4))
    monkeypatch.setattr(tune_invariant, "RULE_CONTEXTS", (1024, 8192))
    monkeypatch.setattr(tune_invariant, "_RULES", {})
    spec = "auto:batch_invariant=1,tune=2"
    df = run_bench_to_csv(tmp_path / "t.csv", [POINT, DecodeWorkload.build(5, 16, 2, 64, 700)], H200, (spec,))
    assert (df["status"] == "ok").all()
    assert df["tuned"].str.startswith("rule of the shape measured on 4 points").all()
    assert df["tuned"].nunique() == 1 and len({bench_results.spec_label(r) for _, r in df.iterrows()}) == 1
    assert bench_results.spec_label(df.iloc[0]) in tuning_specs(spec, POINT, H200)
