"""A small scenario modelled once per session; the report tests draw and tabulate its frames."""

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from attnsim.scenarios.loader import parse_scenario
from attnsim.validation.measured import measured_frame
from attnsim.scenarios.run import occupancy_frame, scenario_predictions, timeline_results
from attnsim.simulator.hardware import from_name
from report_helpers import DATA, SMALL_TOML



@pytest.fixture(scope="session")
def small():
    return parse_scenario(SMALL_TOML, "small.toml", Path("."))


@pytest.fixture(scope="session")
def predictions(small):
    return scenario_predictions(small)


@pytest.fixture(scope="session")
def whatif(small):
    return scenario_predictions(small, small.whatif_gpus)


@pytest.fixture(scope="session")
def occupancy(small):
    return occupancy_frame(small, small.whatif_gpus)


@pytest.fixture(scope="session")
def timelines(small):
    return timeline_results(small)[1]


@pytest.fixture(scope="session")
def measurements():
    return measured_frame(DATA / "sdpa_small.csv", from_name("h100"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
