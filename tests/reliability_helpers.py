"""Running one bad input and checking the promise: exit 2, one line 'attnsim: error: FIELD...', no
traceback, nothing written (tests/ is on sys.path, see conftest.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from cli_helpers import run_cli

from attnsim.fileio import TEMP_MARK


DATA = Path(__file__).parent / "data"
SHIPPED_H100 = Path(__file__).parent.parent / "attnsim" / "profiles" / "h100.json"


def expand(command: str, tmp_path: Path) -> list[str]:
    """'predict --out {out}/p.csv --gpu {inp}/x.json': {out} an empty folder for outputs, {inp} the
    test's input files, {sdpa} a small measurements file, {h100} the shipped H100 profile."""
    return shlex.split(command.format(out=tmp_path / "out", inp=tmp_path / "in", sdpa=DATA / "sdpa_small.csv",
                                      h100=SHIPPED_H100))


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def contents_under(folder: Path) -> dict[str, bytes | None]:
    """Every name under `folder` with the bytes of regular files (None: a folder, fifo or dangling link)."""
    return {name: (folder / name).read_bytes() if (folder / name).is_file() else None for name in files_under(folder)}


def assert_refused(command: str, field: str, tmp_path: Path, capsys) -> str:
    """Runs `attnsim COMMAND` in-process; returns the error line after checking the promise: inputs
    byte for byte as they were, and nothing written (also where a test placed links in {out})."""
    (tmp_path / "out").mkdir(exist_ok=True)
    inputs_before, outputs_before = contents_under(tmp_path / "in"), contents_under(tmp_path / "out")
    code, out, err = run_cli(expand(command, tmp_path), capsys)
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("attnsim: error: "), lines[0]
    assert re.search(field, lines[0]), lines[0]
    assert "Traceback" not in err and out == ""
    assert contents_under(tmp_path / "out") == outputs_before, "no output file is written"
    assert contents_under(tmp_path / "in") == inputs_before, "inputs are untouched"
    assert not [p for p in tmp_path.rglob("*") if TEMP_MARK in p.name], "no temporary is left"
    return lines[0]


def write_inputs(tmp_path: Path, files: dict[str, str | bytes]) -> None:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
