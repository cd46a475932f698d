"""Output paths checked before any work: a command that will fail to write fails first, not after
minutes of modelling or fitting, and a command with several outputs checks all of them before it
writes the first.

A path is writable when its suffix is one the command writes, it is not a folder (or, for a
folder output, not a file), the first existing folder above it is a folder in which a file can be
created (probed with a temporary that is removed at once), and an existing target is a regular file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from attnsim.errors import InputError
from attnsim.fileio import TEMP_MARK, real_target

FIGURE_SUFFIXES = (".png", ".svg")  # what every figure output is written as (reports/style.py)
MAX_PATH_BYTES = 4095  # Linux PATH_MAX less the terminating NUL
MAX_NAME_BYTES = 255  # one path component (NAME_MAX)


def _shown(path) -> str:
    text = str(path)
    return text if len(text) <= 100 else text[:50] + "..." + text[-40:]


def _check_length(path: Path, field: str) -> None:
    if len(os.fsencode(path)) > MAX_PATH_BYTES or any(len(os.fsencode(p)) > MAX_NAME_BYTES for p in path.parts):
        raise InputError(field, f"{_shown(path)}: path too long (at most {MAX_NAME_BYTES} bytes a name, "
                                f"{MAX_PATH_BYTES} in all)")


def _existing_ancestor(folder: Path) -> Path:
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_can_create_in(folder: Path, field: str, shown: str) -> None:
    """The first existing folder at or above `folder` is a folder where a file can be created."""
    existing = _existing_ancestor(folder)
    if not existing.is_dir():
        raise InputError(field, f"{shown}: {_shown(existing)} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".probe{TEMP_MARK}", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(field, f"{shown}: cannot write in {_shown(existing)} ({exc.strerror})") from None


def check_output_file(path, field: str, suffixes: Iterable[str] | None = None, what: str = "") -> Path:
    """A file output: known suffix, not a folder, an existing target a regular file, its folder writable."""
    target = Path(path)
    shown = _shown(path)
    _check_length(target, field)
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if target.suffix.lower() not in suffixes:
            kind = f"{what} files" if what else "files"
            names = [s or "no suffix" for s in suffixes]
            raise InputError(field, f"{shown}: {kind} end in {', '.join(names[:-1])} or {names[-1]}"
                             if len(names) > 1 else f"{shown}: {kind} end in {names[0]}")
    try:
        real = real_target(target)
        if real.is_dir() or str(path).endswith(os.sep):
            raise InputError(field, f"{shown} is a folder; give a file name")
        if real.exists() and not real.is_file():
            raise InputError(field, f"{shown} exists and is not a regular file")
        _check_can_create_in(real.parent, field, shown)
    except OSError as exc:
        raise InputError(field, f"{shown}: {exc.strerror}") from None
    return target


def check_output_folder(path, field: str, replaceable: Callable[[Path], str | None] | None = None) -> Path:
    """A folder output. Files are written inside it (`replaceable` None: the folder must be writable),
    or it is replaced whole (`replaceable(folder)` says why an existing folder may not be: None = may)."""
    target = Path(path)
    shown = _shown(path)
    _check_length(target, field)
    try:
        real = real_target(target)
        if real.exists() and not real.is_dir():
            raise InputError(field, f"{shown} is a file; give a folder")
        if replaceable is not None:
            _check_can_create_in(real.parent, field, shown)  # the new folder is made beside it, then renamed
            why = replaceable(real) if real.exists() else None
            if why:
                raise InputError(field, f"{shown} {why}; give a new or empty folder")
        else:
            _check_can_create_in(real, field, shown)
    except OSError as exc:
        raise InputError(field, f"{shown}: {exc.strerror}") from None
    return target


# --- outputs apart from inputs -------------------------------------------------------------------
# An output written onto an input destroys it: `validate --out-dir D --measurements D/validation.csv`
# replaced the measurements with their scores, `report --out R --measurements R/m.csv` deleted them
# with the old folder. Every command names its inputs and outputs here, after the outputs' own checks
# and before any work.

Named = tuple[str, object]  # (what names it in a message: an option or a field, a path or option value)


def _identity(path) -> tuple[Path, tuple[int, int] | None]:
    """(the path every symlink and '..' resolved, (device, inode) when the file exists): two names of
    one file agree on the first, hard links on the second."""
    real = Path(os.path.realpath(path))
    try:
        status = os.stat(real)
    except (OSError, ValueError):
        return real, None
    return real, (status.st_dev, status.st_ino)


def _input_files(inputs: Iterable[Named]) -> list[tuple[str, Path, tuple[Path, tuple | None]]]:
    """The inputs that name existing files; other values (a preset such as h100, None) read no file."""
    found = []
    for option, value in inputs:
        try:
            is_file = value is not None and str(value) != "" and os.path.isfile(value)
        except (OSError, ValueError):  # a name too long, a NUL byte: no file
            is_file = False
        if is_file:
            found.append((option, Path(value), _identity(value)))
    return found


def _same(a: tuple[Path, tuple | None], b: tuple[Path, tuple | None]) -> bool:
    return a[0] == b[0] or (a[1] is not None and a[1] == b[1])


def check_apart(inputs: Iterable[Named], outputs: Iterable[Named] = (), replaced: Iterable[Named] = ()) -> None:
    """No output lands on an input, nor on another output. `outputs` (field, file) may not be an input
    file under any name (the same path, `..` spellings, a symlink, a hard link); a `replaced` folder
    (field, folder), removed and written anew, may not be or hold one."""
    files = _input_files(inputs)
    written: list[tuple[str, tuple]] = []
    for field, path in outputs:
        if path is None:
            continue
        target = _identity(path)
        for option, given, identity in files:
            if _same(target, identity):
                raise InputError(field, f"{_shown(path)} is the input {_shown(given)} ({option}); "
                                        "writing it would destroy that input: give another output path")
        for other, identity in written:
            if _same(target, identity):
                raise InputError(field, f"{_shown(path)} is also the {other} output; give each output its own path")
        written.append((field, target))
    for field, folder in replaced:
        if folder is not None:
            _check_folder_apart(field, folder, files)


def _check_folder_apart(field: str, folder, files) -> None:
    real = Path(os.path.realpath(folder))
    for option, given, (input_real, _) in files:
        if input_real == real or input_real.is_relative_to(real):
            raise InputError(field, f"{_shown(folder)} holds the input {_shown(given)} ({option}) and would be "
                                    "replaced whole, deleting it: give another folder")
