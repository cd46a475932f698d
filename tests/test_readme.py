"""The README's numbers are what the current code prints: its generated parts (between
`<!-- readme_examples:NAME -->` markers) are re-rendered by scripts/readme_examples.py and compared."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "readme_examples.py"


@pytest.fixture(scope="module")
def examples():
    spec = importlib.util.spec_from_file_location("readme_examples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_what_the_code_prints(examples):
    diff = examples.stale_diff()
    assert not diff, f"README is stale; regenerate it with `{examples.REGENERATE}`:\n{diff}"


def test_every_generated_part_is_marked_and_rendered(examples):
    text = examples.README.read_text()
    names = [m.group("name") for m in examples.MARKED.finditer(text)]
    assert sorted(names) == sorted(examples.PARTS)  # each part once, none left unmarked
    stale = examples.MARKED.sub(lambda m: m.group(1) + "stale\n" + m.group(4), text)
    assert examples.render(stale) == text  # a part's whole body is regenerated, not patched


def test_a_broken_claim_stops_the_rendering(examples, monkeypatch):
    real = examples.serving_data

    def fp8_runs_one_cta_per_sm():
        data = real()
        data["fp8"] = [{**r, "grid": data["sms"]} for r in data["fp8"]]
        return data

    monkeypatch.setattr(examples, "serving_data", fp8_runs_one_cta_per_sm)
    with pytest.raises(examples.ClaimBroken, match="two CTAs per SM"):
        examples.render(examples.README.read_text())


def test_the_strategy_table_names_every_registry_entry(examples):
    """The README's opening table lists each registered strategy (a new entry cannot ship unnamed there)."""
    import re

    from attnsim import strategies

    table = next(p for p in examples.README.read_text().split("\n\n") if p.startswith("| strategy |"))
    named = {n for cell in re.findall(r"^\| ([^|]+) \|", table, re.M) for n in re.findall(r"`([\w-]+)`", cell)}
    assert set(strategies.REGISTRY) <= named, set(strategies.REGISTRY) - named
