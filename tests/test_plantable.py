"""attnsim.plantable: importable with the standard library alone; lookups at the bucket edges; every
malformed table and out-of-range lookup refused with a PlanTableError naming its field."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from attnsim import plantable
from attnsim.plantable import PlanTableError

ROOT = Path(__file__).resolve().parent.parent
BATCHES, CONTEXTS = [1, 4, 16], [1024, 8192]


def cell(batch: int, context: int, splits: int = 8) -> dict:
    return {"batch": batch, "context": context, "strategy": "splitkv", "options": {"splits": splits},
            "spec": f"splitkv:splits={splits}", "time_us": 10.0 + batch + context / 1024, "fits": True}


def table(sections=None, **changes) -> dict:
    """A hand-made table: splits = batch x 100 + context // 1024, so a cell names its bucket."""
    grid = [cell(b, c, b * 100 + c // 1024) for b in BATCHES for c in CONTEXTS]
    data = {"schema_version": 1, "kind": "plan-table", "batch_buckets": BATCHES, "context_buckets": CONTEXTS,
            "sections": sections if sections is not None else [
                {"page_size": 16, "kv_dtype": "bfloat16", "kv_dtype_names": ["bfloat16", "bf16"], "cells": grid}]}
    return {**data, **changes}


def loaded(data: dict, tmp_path) -> plantable.PlanTable:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    return plantable.load(path)


def test_importable_without_numpy_torch_or_the_rest_of_attnsim(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(table()))
    code = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('numpy', 'torch', 'pandas', 'triton', 'click', 'matplotlib'):
            raise ImportError('refused: ' + name)
sys.meta_path.insert(0, Refuse())
from attnsim import plantable
entry = plantable.load({str(path)!r}).lookup(4, [900, 1100, 1000, 1024])
extra = sorted(m for m in sys.modules if m.startswith('attnsim') and m not in ('attnsim', 'attnsim.plantable'))
print(entry.spec, extra)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.split() == ["splitkv:splits=401", "[]"]


@pytest.mark.parametrize("batch,contexts,bucket", [
    (1, 1024, (1, 1024)), (1, 1, (1, 1024)), (2, [1024, 1024], (4, 1024)), (4, [1024, 1025, 1023, 1024], (4, 1024)),
    (4, [1024, 1025, 1025, 1024], (4, 8192)),  # mean ceil(4098 / 4) = 1025: above the 1k edge
    (5, 8192, (16, 8192)), (16, 8193, (16, 8192)), (17, 100, (16, 1024)), (300, 10**6, (16, 8192)),
])
def test_lookup_takes_the_nearest_bucket_above(batch, contexts, bucket, tmp_path):
    t = loaded(table(), tmp_path)
    entry = t.lookup(batch, contexts)
    assert (entry.batch, entry.context) == bucket
    assert dict(entry.options) == {"splits": bucket[0] * 100 + bucket[1] // 1024}
    assert t.covers(batch, contexts) == (batch <= 16 and (contexts if isinstance(contexts, int)
                                                          else -(-sum(contexts) // len(contexts))) <= 8192)
    with pytest.raises(TypeError):
        entry.options["splits"] = 1  # read-only


def test_sections_by_page_size_and_kv_dtype_names(tmp_path):
    base = table()["sections"][0]
    fp8 = {**base, "kv_dtype": "float8_e4m3fn", "kv_dtype_names": ["float8_e4m3fn", "fp8"],
           "cells": [{**c, "spec": "streamk:grid=264", "strategy": "streamk", "options": {"grid": 264}}
                     for c in base["cells"]]}
    contiguous = {**base, "page_size": None}
    t = loaded(table(sections=[base, fp8, contiguous]), tmp_path)
    assert t.lookup(4, 1000, 16, "bf16").strategy == "splitkv" and t.lookup(4, 1000, 16, "FP8").strategy == "streamk"
    assert t.lookup(4, 1000, 0, "bfloat16").strategy == "splitkv"
    assert t.lookup(4, 1000, kv_dtype="fp8").spec == "streamk:grid=264"
    for page, kv, field in ((None, None, "page_size"), (16, None, "kv_dtype"), (32, "bf16", "page_size"),
                            (16, "float16", "kv_dtype"), (None, "bf16", "page_size")):
        with pytest.raises(PlanTableError, match=f"^{field}: "):
            t.lookup(4, 1000, page, kv)


@pytest.mark.parametrize("batch,contexts,field", [
    (0, 1000, "batch"), (True, 1000, "batch"), (2.0, 1000, "batch"), (3, [1000, 2000], "contexts"),
    (2, [1000, 0], "contexts"), (1, "abc", "contexts"), (1, 0, "contexts"), (1, None, "contexts"),
])
def test_bad_lookups_name_their_field(batch, contexts, field, tmp_path):
    with pytest.raises(PlanTableError, match=f"^{field}: "):
        loaded(table(), tmp_path).lookup(batch, contexts)


def broken(mutate):
    data = table()
    mutate(data)
    return data


@pytest.mark.parametrize("data,field", [
    (table(kind="plans"), "kind"), (table(schema_version=2), "schema_version"),
    (table(batch_buckets=[1, 16, 4]), "batch_buckets"), (table(context_buckets=[]), "context_buckets"),
    (table(batch_buckets=[1, 4, 16.0]), r"batch_buckets\[2\]"), (table(sections=[]), "sections"),
    (broken(lambda d: d["sections"][0]["cells"].pop()), r"sections\[0\]\.cells"),
    (broken(lambda d: d["sections"][0]["cells"].append(cell(1, 1024))), r"sections\[0\]\.cells\[6\]"),
    (broken(lambda d: d["sections"][0]["cells"][2]["options"].update(splits="8")), r"sections\[0\]\.cells\[2\]\.options\.splits"),
    (broken(lambda d: d["sections"][0]["cells"][1].update(time_us=-1)), r"sections\[0\]\.cells\[1\]\.time_us"),
    (broken(lambda d: d["sections"][0]["cells"][1].update(fits=1)), r"sections\[0\]\.cells\[1\]\.fits"),
    (broken(lambda d: d["sections"][0].update(kv_dtype_names=[])), r"sections\[0\]\.kv_dtype_names"),
    (broken(lambda d: d["sections"].append(d["sections"][0])), r"sections\[1\]"),
    ([1, 2], "table"),
])
def test_malformed_tables_are_refused_naming_the_field(data, field, tmp_path):
    with pytest.raises(PlanTableError, match=f"^{field}: "):
        loaded(data, tmp_path)


def test_unreadable_files(tmp_path):
    with pytest.raises(PlanTableError, match="^path: cannot read"):
        plantable.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PlanTableError, match=r"^table: .* is not JSON \(line 1"):
        plantable.load(tmp_path / "bad.json")
    (tmp_path / "nan.json").write_text(re.sub(r'"time_us": [0-9.]+', '"time_us": NaN', json.dumps(table()), count=1))
    with pytest.raises(PlanTableError, match="^table: NaN"):
        plantable.load(tmp_path / "nan.json")
