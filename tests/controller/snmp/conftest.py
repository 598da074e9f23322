"""Fixtures for the SNMP tests: the real device recordings, credentials for them, and snmpsim.

snmpsim serves the real recordings in tests/fixtures/snmp/ (see its NOTICE.md) on loopback, one address per recording
(127.0.0.10, 127.0.0.11, …, all on one port), so credentials are per address as on a real network.
It comes from .ci/setup-snmpsim.sh (/opt/snmpsim, or $SNMPSIM_PREFIX). Locally a missing snmpsim
skips the integration tests; in CI (CI set) it fails them. As root, snmpsim must drop privileges to
nobody, so its data and cache live in a directory nobody can read, outside pytest's private tmp.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from controller.snmp.client import Target, Value
from controller.snmp.credentials import (
    AuthProtocol,
    CommunityCredential,
    CredentialStore,
    PrivProtocol,
    Rule,
    Secret,
    UsmCredential,
)
from controller.snmp.memory import MemoryAgent, MemoryClient, parse_snmprec
from controller.snmp.poller import Poller
from controller.snmp.profiles import load_profiles
from controller.snmp.pysnmp_client import PysnmpClient
from controller.snmp.readings import DevicePoll
from tests.conftest import BIN
from tests.controller.snmp.simulator import SNMPSIM, serving

RECORDINGS = Path(__file__).resolve().parents[2] / "fixtures" / "snmp"
NAMES = sorted(p.stem for p in RECORDINGS.glob("*.snmprec"))
V3_USER, V3_AUTH, V3_PRIV = "caretaker", "auth-key-for-tests", "priv-key-for-tests"


def community(name: str) -> CommunityCredential:
    """snmpsim's community for a recording is its file name; here it stands in for a real secret."""
    return CommunityCredential(f"{name}-ro", Secret(name, f"env:SNMP_{name.upper()}"))


def v3(context: str, priv: str = V3_PRIV, name: str = "v3") -> UsmCredential:
    return UsmCredential(name, V3_USER, AuthProtocol.SHA, Secret(V3_AUTH, "env:SNMP_AUTH"), PrivProtocol.AES,
                         Secret(priv, "env:SNMP_PRIV"), context)


def store_for(*rules: tuple[str, list]) -> CredentialStore:
    """A store with one exact-address rule per (address, credentials)."""
    credentials = {c.name: c for _, creds in rules for c in creds}
    return CredentialStore(credentials, tuple(Rule(None, a, tuple(c.name for c in creds)) for a, creds in rules))


def recording(name: str) -> MemoryAgent:
    return MemoryAgent(parse_snmprec((RECORDINGS / f"{name}.snmprec").read_text()), frozenset({name}))


def poll(name: str, at: datetime, changes: dict[str, Value] | None = None) -> DevicePoll:
    """One poll of a recording (optionally with some values changed) as if taken at ``at``."""
    agent = recording(name)
    agent = MemoryAgent({**agent.values, **(changes or {})}, agent.communities)
    client = MemoryClient({(address_of(name), 161): agent})
    store = store_for((address_of(name), [community(name)]))
    return asyncio.run(Poller(client, load_profiles(), store, clock=lambda: at).poll(address_of(name)))


@pytest.fixture
def memory_client() -> MemoryClient:
    """Every recording as an in-memory agent at its own loopback address, port 161."""
    return MemoryClient({(address_of(name), 161): recording(name) for name in NAMES})


def address_of(name: str) -> str:
    return f"127.0.0.{10 + NAMES.index(name)}"


@dataclass(frozen=True)
class Snmpsim:
    port: int
    log: Path

    def target(self, name: str, credential=None, timeout: float = 1.0) -> Target:
        return Target(address_of(name), credential or community(name), self.port, timeout, 1)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(target: Target) -> bool:
    async def ask() -> bool:
        async with PysnmpClient() as client:
            try:
                return bool(await client.get(target, ["1.3.6.1.2.1.1.2.0"]))
            except Exception:
                return False

    return asyncio.run(ask())


def _require_snmpsim() -> None:
    if not SNMPSIM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{SNMPSIM} is missing; CI must run .ci/setup-snmpsim.sh first")
        pytest.skip(f"snmpsim is not installed at {SNMPSIM} (run .ci/setup-snmpsim.sh)")


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[Snmpsim]:
    """Every recording at its own address, its community its file name, plus the v3 user."""
    _require_snmpsim()
    port = _free_udp_port()
    server = Snmpsim(port, Path())
    v3_args = [f"--v3-user={V3_USER}", f"--v3-auth-key={V3_AUTH}", "--v3-auth-proto=SHA",
               f"--v3-priv-key={V3_PRIV}", "--v3-priv-proto=AES"]
    try:
        with serving({f"{n}.snmprec": RECORDINGS / f"{n}.snmprec" for n in NAMES},
                     [f"{address_of(n)}:{port}" for n in NAMES],
                     lambda: _answers(server.target(NAMES[-1], timeout=0.5)), v3_args) as log:
            yield Snmpsim(port, log)
    except RuntimeError as exc:
        pytest.fail(str(exc))


#: A school's subnet: seven devices answering one community (a server no profile knows more of than
#: that it is a host, and a three-switch stack among them), the other seven addresses silent.
SUBNET, SCHOOL = "127.0.1.0/28", "hillside-ro-2026"  # the community; the credential is named "school"
SUBNET_NAMES = ("apc_ap8853", "advantech_eki-7712g-4fp", "konica_c250i", "sentry4", "XMG1915-10EP", "aix_net-snmp",
                "iosxe_c9200l")
SILENT = "127.0.1.8"
ANSWERED = f"{len(SUBNET_NAMES)} of 14 address(es) answered"


@dataclass(frozen=True)
class Subnet:
    port: int
    addresses: dict[str, str]  # recording name -> address


@pytest.fixture(scope="session")
def school_subnet() -> Iterator[Subnet]:
    """One snmpsim per device (see simulator.py), each answering the school's community."""
    _require_snmpsim()
    subnet = Subnet(_free_udp_port(), {n: f"127.0.1.{i + 1}" for i, n in enumerate(SUBNET_NAMES)})
    school = CommunityCredential("school", Secret(SCHOOL, "env:SNMP_SCHOOL"))
    try:
        with ExitStack() as running:
            for name, address in subnet.addresses.items():
                target = Target(address, school, subnet.port, 0.5, 0)
                running.enter_context(serving({f"{SCHOOL}.snmprec": RECORDINGS / f"{name}.snmprec"},
                                              [f"{address}:{subnet.port}"], lambda t=target: _answers(t)))
            yield subnet
    except RuntimeError as exc:
        pytest.fail(str(exc))


STALE = "last-years-community"


def caretaker(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), "snmp", *args, "--database-url", database_url],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "SNMP_SCHOOL": SCHOOL, "SNMP_STALE": STALE})


@pytest.fixture
def subnet_credentials(tmp_path: Path) -> Path:
    """The stale community first, so every address shows it is asked in order and kept to its subnet."""
    path = tmp_path / "snmp-credentials.yaml"
    path.write_text("credentials:\n"
                    "  stale: {version: 2c, community: env:SNMP_STALE}\n"
                    "  school: {version: 2c, community: env:SNMP_SCHOOL}\n"
                    f"targets:\n  - {{subnet: {SUBNET}, use: [stale, school]}}\n")
    return path


def discover(database_url: str, subnet: Subnet, credentials: Path, *more: str) -> list[dict]:
    """`caretaker snmp discover` of the school subnet, checked to have found its seven devices."""
    found = caretaker(database_url, "discover", SUBNET, "--port", str(subnet.port), "--credentials", str(credentials),
                      "--site", "Hillside", "--timeout", "2", "--retries", "1", "--json", *more)
    assert found.returncode == 0, found.stderr
    assert found.stderr.strip().endswith(ANSWERED)
    return json.loads(found.stdout)
