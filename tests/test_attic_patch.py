"""docs/attic/lsum-land.patch is the fp8 kernel change waiting for an H200 to land (docs/kernels.md, "The
landing, step by step"): a checkout holds main only, so the patch is the change. It must still apply to
this tree, or the next session's landing starts by rewriting it: a commit that touches the files it
changes (kernels/tiles.py, simulator/terms.py, profiles/kernels_sm90.json) re-cuts it in the same step.
Landed, the patch and this test go together."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATCH = ROOT / "docs" / "attic" / "lsum-land.patch"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_pending_landing_patch_applies_to_this_tree():
    result = subprocess.run(["git", "apply", "--check", str(PATCH)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_landed_files_keep_the_400_line_limit():
    # the recreated patch left tiles.py at 401 lines: landed, test_registry's limit would have failed the CI
    numstat = subprocess.run(["git", "apply", "--numstat", str(PATCH)], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    for line in numstat.splitlines():
        added, deleted, path = line.split("\t")
        if path.endswith(".py"):
            lines = len((ROOT / path).read_text().splitlines()) + int(added) - int(deleted)
            assert lines <= 400, f"{path}: {lines} lines once the patch lands"
