"""Fixtures for the agent's tests against a controller double that speaks real TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.test_client import FakeController, Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def controller(pki: Pki) -> Iterator[FakeController]:
    """Named like the suite's real-controller fixture on purpose: tests here read the same way."""
    with FakeController(pki.cert_file, pki.key_file) as running:
        yield running
