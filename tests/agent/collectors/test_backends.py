"""Every OS backend answers every question the collectors ask, so no OS fails at run time for a
function only another OS had; and the dispatcher picks this OS's backend."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from agent import platform
from agent.collectors import COLLECTORS
from agent.platform import linux, macos, windows
from agent.platform.base import Backend

QUESTIONS = [name for name, member in inspect.getmembers(Backend, inspect.isfunction) if not name.startswith("_")]


@pytest.mark.parametrize("backend", [linux, windows, macos], ids=lambda module: module.__name__)
def test_backend_provides_every_function_of_the_contract(backend: ModuleType) -> None:
    assert "host_facts" in QUESTIONS and "slept_seconds" in QUESTIONS
    for name in QUESTIONS:
        expected = [p for p in inspect.signature(getattr(Backend, name)).parameters if p != "self"]
        assert callable(getattr(backend, name, None)), f"{backend.__name__} lacks {name}"
        assert list(inspect.signature(getattr(backend, name)).parameters) == expected


def test_this_linux_machine_gets_the_linux_backend() -> None:
    assert platform.current() is linux


@pytest.mark.parametrize("collector", COLLECTORS, ids=lambda module: module.__name__)
def test_every_active_collector_has_the_collector_interface(collector: ModuleType) -> None:
    assert isinstance(collector.PROVIDES, type)
    assert list(inspect.signature(collector.supported).parameters) == ["root"]
    assert inspect.signature(collector.collect).return_annotation in (collector.PROVIDES.__name__, collector.PROVIDES)
