"""Puts tests/ on sys.path (pytest's rootdir conftest rule), so test files share tests/cli_helpers.py."""
