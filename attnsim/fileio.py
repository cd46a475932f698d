"""Atomic writes: a file or a whole folder is written as a temporary next to its target, then renamed
onto it, so a reader (or a killed run) sees the old output or the new one, never half of one.

- A file keeps the mode of the file it replaces; writing through a symlink writes the link's target
  (the link stays a link).
- A folder (`atomic_dir`) is swapped in whole: the old folder is renamed aside and removed after the
  new one took its name, with SIGINT/SIGTERM held back (while our handlers are installed) between
  the two renames.
- Every temporary is registered; `removing_temporaries_on_signals` (installed by the CLI's main)
  makes SIGINT/SIGTERM remove them before the process ends.
- A signal's exit is sticky: library code that swallows the exception the handler raised (C code
  that clears errors raised in a Python callback) cannot go on to rename a folder whose files the
  handler removed; every later temporary or rename raises the exit again.
"""

from __future__ import annotations

import _thread
import json
import os
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

TEMP_MARK = ".attnsim-tmp-"  # in every temporary's name: ".index.html.attnsim-tmp-x1y2"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_TEMPORARIES: set[Path] = set()  # alive in this process: files and folders


_held = [0]  # depth of _signals_held sections
_pending: list[int] = []  # signals that arrived inside one
_aborted: list[int] = []  # the signal that ended this run (its temporaries are gone); nothing more is renamed


@contextmanager
def _signals_held():
    """SIGINT/SIGTERM wait (handled on exit) while a temporary is created and registered, or renamed.
    Python runs signal handlers in the main thread between bytecodes, so deferring in the handler
    holds even when another thread (a BLAS or OpenMP pool) received the signal."""
    _held[0] += 1
    try:
        yield
    finally:
        _held[0] -= 1
        if not _held[0] and _pending:
            signum = _pending[0]
            _pending.clear()
            _on_signal(signum, None)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            path.unlink()
        except OSError:
            pass
    _TEMPORARIES.discard(path)


def remove_temporaries() -> None:
    for path in list(_TEMPORARIES):
        _remove(path)


def _on_signal(signum, frame) -> None:
    if _held[0]:
        _pending.append(signum)
        return
    for sig in _SIGNALS:  # a second signal must not interrupt the clean-up
        signal.signal(sig, signal.SIG_IGN)
    if not _aborted:  # else: raised again after a finalizer swallowed it, the clean-up is done
        _aborted[:] = [signum]
        remove_temporaries()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _unraisable_hook(previous):
    """sys.unraisablehook while our handlers are installed (`previous`: every other exception). The handler
    may run inside a finalizer (a weakref callback the garbage collector ran), which swallows its exit and
    prints a traceback: the signal is sent again instead, from a thread, so the main thread exits in the
    code it runs next."""

    def hook(unraisable) -> None:
        if _aborted and isinstance(unraisable.exc_value, (SystemExit, KeyboardInterrupt)):
            signal.signal(_aborted[0], _on_signal)
            _thread.start_new_thread(_send_again, (_aborted[0],))  # threading.Thread.start would wait here
            return
        previous(unraisable)

    return hook


def _send_again(signum: int) -> None:
    time.sleep(0.01)  # the main thread leaves the hook first
    os.kill(os.getpid(), signum)


def raise_if_aborted() -> None:
    """Exit (status 128 + signal) if a signal ended this run and its exception was swallowed."""
    if _aborted:
        remove_temporaries()
        raise SystemExit(128 + _aborted[0])


@contextmanager
def removing_temporaries_on_signals():
    """While active (main thread only), SIGINT/SIGTERM remove every temporary, then end the run
    (KeyboardInterrupt / SystemExit(128 + signal)); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous, previous_hook = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}, sys.unraisablehook
    sys.unraisablehook = _unraisable_hook(previous_hook)
    _aborted.clear()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_hook
        _aborted.clear()


def real_target(target: str | Path) -> Path:
    """The path a write lands on: a symlink's (final) target, so the link itself is kept."""
    return Path(os.path.realpath(target))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode_for(target: Path, default: int) -> int:
    """The mode of the file or folder being replaced, else what a plain open()/mkdir() would give."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return default & ~_umask()


@contextmanager
def atomic_path(target: str | Path):
    """Yields a temporary path next to `target`; renamed onto it only if the block succeeds."""
    real = real_target(target)
    raise_if_aborted()  # else mkdir would bring back a temporary folder the handler removed
    real.parent.mkdir(parents=True, exist_ok=True)
    with _signals_held():
        fd, name = tempfile.mkstemp(prefix=f".{real.name}{TEMP_MARK}", suffix=real.suffix, dir=real.parent)
        tmp = Path(name)
        _TEMPORARIES.add(tmp)
    os.close(fd)
    os.chmod(tmp, _mode_for(real, 0o666))  # mkstemp makes 0600
    try:
        yield tmp
        with _signals_held():
            raise_if_aborted()
            os.replace(tmp, real)
            _TEMPORARIES.discard(tmp)
    finally:
        _remove(tmp)


@contextmanager
def atomic_dir(target: str | Path):
    """Yields a temporary folder next to `target`; when the block succeeds it replaces `target`
    whole (files of an older folder do not survive beside the new ones)."""
    real = real_target(target)
    raise_if_aborted()
    real.parent.mkdir(parents=True, exist_ok=True)
    with _signals_held():
        tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}{TEMP_MARK}", dir=real.parent))
        _TEMPORARIES.add(tmp)
    os.chmod(tmp, _mode_for(real, 0o777))  # mkdtemp makes 0700
    try:
        yield tmp
        _swap_in(tmp, real)
    finally:
        _remove(tmp)


def _swap_in(new: Path, target: Path) -> None:
    """Rename `new` onto `target`; an existing `target` is renamed aside first and then removed."""
    old = target.with_name(f".{target.name}{TEMP_MARK}old-{secrets.token_hex(4)}")
    with _signals_held():
        raise_if_aborted()
        moved = target.exists()
        if moved:
            _TEMPORARIES.add(old)
            os.rename(target, old)
        try:
            os.rename(new, target)
        except OSError:
            if moved:
                os.rename(old, target)  # put the old folder back
                _TEMPORARIES.discard(old)
            raise
        _TEMPORARIES.discard(new)
    _remove(old)


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def json_text(data, indent: int = 2) -> str:
    """JSON that parsers accept: NaN or infinity anywhere is a ValueError, never written."""
    return json.dumps(data, indent=indent, allow_nan=False)


def write_json(target: str | Path, data, indent: int = 2) -> None:
    write_text(target, json_text(data, indent) + "\n")


def save_figure(fig, target: str | Path, **kwargs) -> None:
    """fig.savefig, atomically; the format follows the target's suffix (png, svg, pdf)."""
    fmt = Path(target).suffix.lstrip(".") or "png"
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)
