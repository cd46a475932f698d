"""Puts tests/ on sys.path (pytest's rootdir conftest rule), so test files share tests/cli_helpers.py.

Hypothesis runs without its per-example deadline (200 ms by default): a busy CI host can run the suite
several times slower than usual (one run took 26 min against the usual 6-7), and a property's speed is not
what it tests."""

from hypothesis import settings

settings.register_profile("attnsim", deadline=None)
settings.load_profile("attnsim")
