"""Puts tests/ on sys.path (pytest's rootdir conftest rule), so test files share tests/cli_helpers.py.

Hypothesis runs without its per-example deadline (200 ms by default): the CI host runs the suite ~2.6x
slower than a workstation, and a property's speed is not what it tests."""

from hypothesis import settings

settings.register_profile("attnsim", deadline=None)
settings.load_profile("attnsim")
