"""The report tells the serving story: the planner's choice (its plan named) beside the partitionings,
the PyTorch baselines where they run the case, per-step totals over a model's layers, and the
serving settings in the page's header. Checked on the generated HTML and its CSV."""

from __future__ import annotations

import csv
from html.parser import HTMLParser

import pytest

from attnsim import strategies
from plan_helpers import parse_spec as parse_plan_spec
from attnsim.cli import main
from attnsim.profiles import resolve_gpu
from report_helpers import SMALL_TOML

SERVING_TOML = '''title = "serving"
models = ["llama-3.1-70b"]
tp = 8
page_size = 16
kv_dtype = "fp8"
dtype = "bfloat16"
batches = [16]
contexts = ["8k", "64k"]
gpus = ["h200"]
whatif_gpus = ["h100", "h200"]  # the default list has the A100, which has no fp8
'''
RAW_TOML = '''title = "raw"
contexts = ["4k", "32k"]
gpus = ["h100"]
[[shapes]]
name = "gqa-8"
q_heads = 32
kv_heads = 8
head_dim = 128
'''


class Page(HTMLParser):
    """Tables (caption, header, rows) by section, the header's meta line, and the page's text."""

    def __init__(self):
        super().__init__()
        self.tables, self.text, self.meta = [], [], ""
        self._section, self._caption, self._cell, self._in_meta = "", "", None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs["id"]
        elif tag == "table":
            self.tables.append({"section": self._section, "caption": self._caption.strip(), "header": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell = [tag, ""]
        elif tag in ("h3", "summary"):
            self._caption = ""
        elif tag == "div" and attrs.get("class") == "meta":
            self._in_meta = True

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell:
            kind, text = self._cell
            table = self.tables[-1]
            (table["header"] if kind == "th" else table["rows"][-1]).append(text.strip())
            self._cell = None
        elif tag == "div":
            self._in_meta = False
        elif tag == "table":
            self.tables[-1]["rows"] = [r for r in self.tables[-1]["rows"] if r]

    def handle_data(self, data):
        self.text.append(data)
        self._caption += data
        if self._cell is not None:
            self._cell[1] += data
        if self._in_meta:
            self.meta += data

    def table(self, section: str, caption_start: str) -> dict:
        return next(t for t in self.tables if t["section"] == section and t["caption"].startswith(caption_start))

    def has_table(self, section: str, caption_start: str) -> bool:
        return any(t["section"] == section and t["caption"].startswith(caption_start) for t in self.tables)


def report(folder, toml: str) -> tuple[Page, list[dict]]:
    """`attnsim report` of a scenario file (no what-if): the parsed page and its predictions.csv."""
    (folder / "s.toml").write_text(toml)
    try:
        main(["report", "--scenario", str(folder / "s.toml"), "--out", str(folder / "r"), "--no-whatif"])
    except SystemExit as exc:  # main() exits only on errors
        raise AssertionError(f"report failed with status {exc.code}") from None
    page = Page()
    page.feed((folder / "r" / "index.html").read_text())
    with open(folder / "r" / "predictions.csv") as f:
        return page, list(csv.DictReader(f))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return report(tmp_path_factory.mktemp("small"), SMALL_TOML)


def rows_as_dicts(table: dict) -> list[dict]:
    return [dict(zip(table["header"], row)) for row in table["rows"]]


def test_the_planner_and_the_baselines_beside_the_partitionings(small):
    page, records = small
    uniform = page.table("speedup", "Table: every uniform case")
    for name in ("fa2", "flashdecoding", "streamk", "auto", "torch-flash", "torch-cudnn"):
        assert f"{name} µs" in uniform["header"], uniform["header"]
    by_case = {(r["batch"], r["context"]): r["plan"] for r in records if r["strategy"] == "auto" and r["mix"] == "uniform"}
    for row in rows_as_dicts(uniform):
        name, _ = parse_plan_spec(row["planner's plan"])  # a plan spec, of a plan our kernels run
        assert strategies.get(name).candidate
        assert row["fastest"] != "auto" and (not row["fastest"].startswith("auto") or row["planner's plan"] in row["fastest"])
    assert sorted(by_case.values()) == sorted(r["planner's plan"] for r in rows_as_dicts(uniform))
    ragged = page.table("ragged", "")  # SDPA has no per-sequence lengths: no baseline on the ragged mix
    assert "auto µs" in ragged["header"] and not any(h.startswith("torch-") for h in ragged["header"])
    text = "".join(page.text)
    assert "torch-flash left out of 1 of 4 cases (SDPA has no per-sequence lengths)" in text
    assert "The planner (auto) runs" in text


def test_per_step_totals_over_the_models_layers(small, tmp_path):
    page, records = small
    steps = rows_as_dicts(page.table("speedup", "Attention per decode step"))
    per_layer = {(r["strategy"], r["context"]): float(r["time_us"]) for r in records if r["mix"] == "uniform"}
    contexts = {"1k": "1024", "8k": "8192", "64k": "65536"}
    assert len(steps) == 3 and {s["layers"] for s in steps} == {"32"}
    for row in steps:
        for name in ("fa2", "streamk", "auto"):
            step_us = float(row[f"{name} µs/step"].replace(",", ""))
            assert step_us == pytest.approx(32 * per_layer[(name, contexts[row["context"]])], rel=1e-3)
    assert "One decode step through all 32 layers at 64k" in "".join(page.text)
    raw, _ = report(tmp_path, RAW_TOML)  # a shape without layers: per layer only
    assert not raw.has_table("speedup", "Attention per decode step")


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    return report(tmp_path_factory.mktemp("serving"), SERVING_TOML)


def test_the_serving_settings_head_the_page(serving):
    page, records = serving
    settings = "TP 8 · q/o bfloat16 · KV cache fp8, paged in 16-token pages · decode (1 new token per sequence)"
    assert settings in page.meta and settings in "".join(page.text).split("Summary", 2)[2]  # the summary's note too
    uniform = page.table("speedup", "Table: every uniform case")
    assert not any(h.startswith("torch-") for h in uniform["header"])  # SDPA reads no page table, no fp8 cache
    assert "torch-cudnn left out of 2 of 2 cases (SDPA reads a contiguous K/V" in "".join(page.text)
    assert {(r["tp"], r["page_size"], r["kv_dtype"]) for r in records} == {("8", "16", "float8_e4m3fn")}
    assert [s["layers"] for s in rows_as_dicts(page.table("speedup", "Attention per decode step"))] == ["80", "80"]


def test_the_header_badges_serving_terms_not_fitted_on_the_gpu(serving, small):
    """fp8 in 16-token pages on the H200: the terms of a strategy that the serving fit left at their
    defaults (the profile's fit record: fa2's paging) are badged in the header; the CSV names each term's status."""
    page, records = serving
    terms = ("paging", "tile-math", "fp8-dequant")
    left = {name: [t for t in terms if status[t]["status"] == "default"]
            for name, status in resolve_gpu("h200").serving_terms["terms"].items() if name in ("fa2", "flashdecoding")}
    strategy, at_default = next((name, ts) for name, ts in left.items() if ts)
    status = resolve_gpu("h200").serving_terms["terms"][strategy]
    assert f"{', '.join(at_default)} terms at defaults" in page.meta
    ours = [r for r in records if r["strategy"] == strategy]
    assert ours and all(r["terms"] == ";".join(f"{t}={status[t]['status']}" for t in terms) for r in ours)
    assert all(r["band_regime"] == "paged+fp8" and r["profile_source"].startswith("calibrated;") for r in ours)
    decode_page, decode_records = small
    assert "terms at defaults" not in decode_page.meta
    assert {r["terms"] for r in decode_records} == {""} and {r["band_regime"] for r in decode_records} == {"decode"}
