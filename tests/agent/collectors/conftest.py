"""Fixture machines for the collector tests, and a way to read them as an unprivileged agent would.

The suite runs as root, and root reads every file whatever its mode, so a root-only sysfs
attribute cannot be simulated in-process. Instead the collector runs in a forked child that has
become ``nobody`` (or, when the suite itself is unprivileged, as the same user against mode 000),
on a copy of the fixture tree where the attribute has the mode the kernel gives it.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SYSFS = FIXTURES / "linux" / "sysfs"
NOBODY = 65534


@pytest.fixture
def machine(tmp_path: Path) -> Callable[[str], Path]:
    """A writable copy of one fixture machine's tree, to change between readings."""
    def copy(name: str) -> Path:
        return Path(shutil.copytree(SYSFS / name, tmp_path / name))
    return copy


@pytest.fixture
def unprivileged_machine() -> Iterator[Callable[[str, list[str]], Path]]:
    """A copy of a fixture machine that an unprivileged process can traverse, with ``root_only`` files
    made unreadable to it (mode 0400 as the kernel sets them, or 000 when we are not root)."""
    made: list[str] = []

    def copy(name: str, root_only: list[str]) -> Path:
        base = tempfile.mkdtemp(prefix="caretaker-unprivileged-")
        made.append(base)
        os.chmod(base, 0o755)
        root = Path(shutil.copytree(SYSFS / name, Path(base) / name))
        for relative in root_only:
            (root / relative).chmod(0o400 if os.geteuid() == 0 else 0o000)
        return root

    yield copy
    for base in made:
        shutil.rmtree(base)


def _run_unprivileged(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a forked child that has dropped root, its result pickled back.

    Forking after the imports, rather than starting a new interpreter as ``nobody``, is what lets
    this work where the interpreter itself lives somewhere only root may enter.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            payload = pickle.dumps(("ok", function(*args)))
        except BaseException as exc:  # report anything to the parent rather than die silently
            payload, status = pickle.dumps(("error", repr(exc))), 1
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome, value = pickle.loads(pipe.read())
    os.waitpid(pid, 0)
    assert outcome == "ok", value
    return value


@pytest.fixture
def run_unprivileged() -> Callable[..., Any]:
    """Calls a function as a user who cannot read root-only files, and returns what it returned."""
    return _run_unprivileged
