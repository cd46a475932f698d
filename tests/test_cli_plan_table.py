"""`attnsim plan --table`: a table written atomically with a schema version, whose every cell is the plan
`predict --strategy auto` runs at the bucket's edges; options that do not apply refused (exit 2)."""

from __future__ import annotations

import json

import pytest

from attnsim import plantable
from attnsim.cli import main
from attnsim.predict import predict_records
from attnsim.profiles import resolve_gpu
from attnsim.scenarios import models
from cli_helpers import run_cli

H200 = resolve_gpu("h200")
TABLE = ["plan", "--gpu", "h200", "--model", "meta-llama/Llama-3.1-70B", "--tp", "8", "--batch", "1,4,16",
         "--context", "1k,8k", "--page-size", "16", "--kv-dtype", "bf16,fp8"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "llama70b.json"
    main([*TABLE, "--table", str(path)])  # exits only on errors
    return path


def test_the_table_round_trips_and_every_cell_is_autos_plan(written):
    doc = json.loads(written.read_text())
    assert (doc["schema_version"], doc["kind"]) == (plantable.SCHEMA_VERSION, plantable.KIND)
    assert doc["batch_buckets"] == [1, 4, 16] and doc["context_buckets"] == [1024, 8192]
    assert doc["model"]["tp"] == 8 and doc["bucketing"] == plantable.BUCKETING
    table = plantable.load(written)
    shape = models.from_name("meta-llama/Llama-3.1-70B").sharded(8)
    for kv in ("bf16", "fp8"):
        for b in (1, 4, 16):
            for c in (1024, 8192):
                entry = table.lookup(b, c, 16, kv)
                w = shape.workload(b, c, "float16", 1, 16, kv)
                record = predict_records(w, H200, ["auto"])[0]
                assert (entry.spec, entry.time_us) == (record["plan_spec"], record["time_us"])
                assert {"strategy": entry.strategy, "options": dict(entry.options)} == record["plan"]
                assert entry.fits


def test_a_serving_loop_lookup_between_buckets(written):
    table = plantable.load(written)
    ragged = table.lookup(3, [500, 9000, 1200], 16, "float8_e4m3fn")  # batch 3 -> 4; mean 3567 -> 8k
    assert (ragged.batch, ragged.context) == (4, 8192)
    assert table.lookup(40, 100, 16, "bfloat16").batch == 16 and not table.covers(40, 100)


def test_written_atomically_over_an_old_table(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text("old")
    code, out, err = run_cli([*TABLE[:7], "--batch", "2", "--context", "4k", "--table", str(path)], capsys)
    assert code == 0, err
    assert out.startswith(f"wrote {path}: 1 cells") and "plantable.load" in out
    assert plantable.load(path).lookup(2, 4096).spec and sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


@pytest.mark.parametrize("extra,field", [
    (["--table", "t.txt"], "table"),
    (["--table", "t.json", "--contexts", "1000,2000"], "contexts"),
    (["--table", "t.json", "--engine", "sglang"], "engine"),
    (["--table", "t.json", "--format", "json"], "format"),
    (["--table", "t.json", "--page-size", "16,abc"], "page-size"),
    (["--table", "t.json", "--page-size", "24"], "page_size"),
    (["--table", "t.json", "--kv-dtype", "fp8,"], "kv-dtype"),
    (["--table", "t.json", "--kv-dtype", "int4"], "kv_dtype"),
    (["--table", "t.json", "--batch", "0,4"], "batch"),
    (["--table", "t.json", "--context", "1k:1M:1"], "context"),
])
def test_bad_table_options_exit_2_with_one_line(extra, field, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["plan", "--gpu", "h200", "--q-heads", "8", "--kv-heads", "1", *extra], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"attnsim: error: {field}:")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_batch_invariant_table_holds_one_plan_and_says_why(tmp_path):
    path = tmp_path / "invariant.json"
    main(["plan", "--gpu", "h200", "--q-heads", "16", "--kv-heads", "2", "--batch", "1,32", "--context", "1k,64k",
          "--batch-invariant", "--table", str(path)])
    doc = json.loads(path.read_text())
    (section,) = doc["sections"]
    specs = {cell["spec"] for cell in section["cells"]}
    assert len(specs) == 1 and section["batch_invariant"].startswith("batch-invariant: ")
    assert specs.pop() in section["batch_invariant"]
    assert plantable.load(path).lookup(7, [100, 200, 90000, 5, 6, 7, 8]).spec in section["batch_invariant"]
