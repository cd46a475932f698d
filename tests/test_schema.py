"""The JSON documents of `predict` and `plan` (attnsim/schema.py): versioned, `contexts` always a list,
null where a field does not apply, the plan as an object next to its spec; CSV stays flat."""

from __future__ import annotations

import csv
import io

import pytest

from plan_helpers import parse_spec as parse_plan_spec
from attnsim.schema import SCHEMA_VERSION, document_text, flat
from cli_helpers import json_items, run_cli

H200 = ["--gpu", "h200"]
SERVING = [*H200, "--model", "llama-3.1-70b", "--tp", "8", "--batch", "4", "--page-size", "16", "--kv-dtype", "fp8",
           "--dtype", "bfloat16"]


def predict(capsys, *args, fmt="json"):
    code, out, err = run_cli(["predict", *args, "--format", fmt], capsys)
    assert code == 0, err
    return json_items(out) if fmt == "json" else out


@pytest.mark.parametrize("context_args, lengths", [
    (["--context", "8k"], [8192] * 3),  # a uniform batch repeats its length
    (["--contexts", "1000,50000,3000"], [1000, 50000, 3000]),
    (["--batch", "1", "--context", "4k"], [4096]),
])
def test_contexts_is_one_length_per_sequence_always_a_list(capsys, context_args, lengths):
    batch = [] if "--contexts" in context_args or "--batch" in context_args else ["--batch", "3"]
    for record in predict(capsys, *H200, *batch, *context_args):
        assert record["contexts"] == lengths and record["batch"] == len(lengths) and "context" not in record


def test_not_applicable_is_null_not_zero(capsys):
    records = {r["strategy"]: r for r in predict(capsys, *H200, "--context", "32k",
                                                 "--strategy", "fa2,flashdecoding,streamk,hybrid,balanced")}
    assert records["fa2"]["splits"] == 1 and records["flashdecoding"]["splits"] > 1
    assert {records[s]["splits"] for s in ("streamk", "hybrid", "balanced")} == {None}  # each output cut its own way
    assert {r["page_size"] for r in records.values()} == {None}  # contiguous cache
    assert {(r["layers"], r["token_attention_us"], r["tp"]) for r in records.values()} == {(None, None, 1)}
    paged = predict(capsys, *SERVING, "--context", "8k", "--strategy", "streamk")
    assert [(r["page_size"], r["tp"], r["layers"]) for r in paged] == [(16, 8, 80)]


def test_the_plan_is_an_object_next_to_its_spec(capsys):
    records = predict(capsys, *SERVING, "--context", "8k,128k", "--strategy", "auto,flashdecoding",
                      "--splits", "4")
    for record in records:
        name, options = parse_plan_spec(record["plan_spec"])
        assert record["plan"] == {"strategy": name, "options": options}
    autos = [r for r in records if r["strategy"] == "auto"]
    assert autos and all(r["plan"]["strategy"] != "auto" for r in autos)  # the plan that runs, not `auto`
    fd = next(r for r in records if r["strategy"] == "flashdecoding")
    assert fd["plan"] == {"strategy": "flashdecoding", "options": {"splits": 4}} and fd["splits"] == 4


def test_plan_json_is_a_list_of_results_with_the_same_workload_fields(capsys):
    code, out, err = run_cli(["plan", *SERVING, "--context", "8k,32k", "--format", "json"], capsys)
    assert code == 0, err
    plans = json_items(out, "plans")
    assert [p["workload"]["contexts"] for p in plans] == [[8192] * 4, [32768] * 4]
    assert {(p["workload"]["page_size"], p["workload"]["tp"]) for p in plans} == {(16, 8)}
    for p in plans:
        chosen = p["plan"]
        name, options = parse_plan_spec(chosen["spec"])
        assert (name, options) == (chosen["strategy"], chosen["options"])
        assert chosen["splits"] is None or chosen["splits"] >= 1
    code, out, _ = run_cli(["plan", *H200, "--context", "4k", "--format", "json"], capsys)
    assert len(json_items(out, "plans")) == 1  # one workload: still a list


def test_csv_stays_flat(capsys):
    text = predict(capsys, *SERVING, "--contexts", "1000,9000,3000,70000", "--strategy", "streamk,flashdecoding",
                   fmt="csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["context"] for r in rows] == ["1000;9000;3000;70000"] * 2
    assert [r["splits"] for r in rows][0] == "" and rows[1]["splits"].isdigit()  # null: an empty cell; ints stay ints
    assert {(r["page_size"], r["tp"], r["layers"]) for r in rows} == {("16", "8", "80")}
    streamk, fd = rows  # the plan column: the concrete plan spec that would run (strategy + its deciding options)
    assert streamk["plan"] == f"streamk:grid={streamk['grid']}" and fd["plan"] == f"flashdecoding:splits={fd['splits']}"
    assert "contexts" not in rows[0] and "plan_spec" not in rows[0]


def test_document_text_keeps_number_lists_on_one_line():
    text = document_text({"schema_version": SCHEMA_VERSION, "kind": "x", "x": [{"contexts": [1, 2, 3], "a": "b"}]})
    assert '"contexts": [1, 2, 3],' in text and text.count("\n") == 9
    with pytest.raises(ValueError):
        document_text({"x": [float("nan")]})
    assert flat({"contexts": [5, 5], "plan": {"strategy": "fa2", "options": {}}, "plan_spec": "fa2"}) == {
        "context": 5, "plan": "fa2"}
