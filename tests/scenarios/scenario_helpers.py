"""Helpers for scenario tests: parse a TOML text and get the problems it is refused with."""

from pathlib import Path

import pytest

from attnsim.scenarios.checks import ScenarioError
from attnsim.scenarios.loader import parse_scenario

DATA = Path(__file__).parent.parent / "data"
MINIMAL = 'models = ["llama-3.1-8b"]\ncontexts = ["1k"]\n'


def parse(text: str):
    return parse_scenario(text, "t.toml", Path("."))


def problems_of(text: str):
    """The problems a scenario text is refused with (fails the test when it is accepted)."""
    with pytest.raises(ScenarioError) as info:
        parse(text)
    return info.value.problems
