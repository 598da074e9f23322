"""Wake-on-LAN across subnets with real agent processes relaying for a real controller.

Each agent runs on this machine but reports, through ``--inventory-overlay``, a NIC on a subnet of its
own inside 127.0.0.0/8 (a distinct device: hostname, machine-id, SMBIOS and MAC of its own). The
controller is told its own subnet is elsewhere, so it cannot send directly and must order a relay.
Packets for 127.x.255.255 reach a UDP listener on this host, which checks them byte for byte.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from controller import tls
from controller.db import make_engine
from controller.power.models import WakeRequest
from controller.power.wake import WakeConfig, request_wakes, select_devices
from controller.register.models import Agent, Device, Site
from controller.timeutil import utcnow
from tests.conftest import BIN, ControllerProcess, start_controller
from tests.controller.power.builders import magic

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    sock.settimeout(30)
    yield sock
    sock.close()


@pytest.fixture
def controller(database_url: str, tmp_path: Path, listener: socket.socket) -> Iterator[ControllerProcess]:
    ca, ca_key = tls.create_ca(tmp_path, "Test school CA")
    cert, key = tls.issue_server_certificate(ca, ca_key, ["127.0.0.1"], tmp_path)
    env = {"CARETAKER_REPORT_INTERVAL_SECONDS": "1", "CARETAKER_RELAY_REPORT_INTERVAL_SECONDS": "1",
           "CARETAKER_RELAY_SILENCE_SECONDS": "3", "CARETAKER_WAKE_PORT": str(listener.getsockname()[1]),
           "CARETAKER_WAKE_LOCAL_NETWORKS": '["198.51.100.0/24"]', "CARETAKER_RELAY_ELECTION_SECONDS": "1"}
    running = start_controller(database_url, tmp_path, tls=(cert, key, ca), env=env)
    running.ca = ca
    yield running
    running.stop()


class Agents:
    """`caretaker-agent run` processes, each posing as its own machine on its own subnet."""

    def __init__(self, controller: ControllerProcess, workdir: Path):
        self.controller = controller
        self.workdir = workdir
        self.token = controller.cli("token", "create", "--site", "Hill", "--uses", "10").stdout.strip()
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, hostname: str, mac: str, address: str, prefix: int, device_class: str = "desktop") -> None:
        state = self.workdir / hostname
        state.mkdir()
        overlay = state.parent / f"{hostname}.json"
        overlay.write_text(json.dumps({
            "hostname": hostname, "machine_id": f"machine-{hostname}", "device_class": device_class,
            "smbios": {"vendor": "Dell Inc.", "model": "OptiPlex 7010", "serial": f"SN-{hostname}",
                       "uuid": f"uuid-{hostname}"},
            "nics": [{"name": "eth0", "mac": mac, "ipv4": [address], "ipv4_prefixes": [prefix]}]}))
        log = (self.workdir / f"{hostname}.log").open("ab")
        self.processes[hostname] = subprocess.Popen(
            [str(BIN / "caretaker-agent"), "run", "--controller", self.controller.url, "--token", self.token,
             "--ca-file", str(self.controller.ca), "--state-dir", str(state), "--interval", "1",
             "--inventory-overlay", str(overlay)], stdout=log, stderr=subprocess.STDOUT)

    def kill(self, hostname: str) -> None:
        process = self.processes[hostname]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)


@pytest.fixture
def agents(controller: ControllerProcess, tmp_path: Path) -> Iterator[Agents]:
    running = Agents(controller, tmp_path)
    yield running
    running.stop()


class Register:
    def __init__(self, database_url: str):
        self.engine = make_engine(database_url)

    def add_target(self, hostname: str, mac: str, address: str, prefix: int) -> None:
        """A machine without a running agent, as its agent last reported it (asleep now)."""
        with Session(self.engine) as session:
            site = session.exec(select(Site).where(Site.name == "Hill")).one()
            session.add(Device(site_id=site.id, hostname=hostname, device_class="desktop", inventory={
                "hostname": hostname, "os": {"name": "Windows", "version": "11"},
                "nics": [{"name": "eth0", "mac": mac, "ipv4": [address], "ipv4_prefixes": [prefix]}]}))
            session.commit()

    def agent_of(self, hostname: str) -> str | None:
        with Session(self.engine) as session:
            return session.exec(select(Agent.id).join(Device, Device.id == Agent.device_id)
                                .where(Device.hostname == hostname, Agent.last_seen.is_not(None))).first()

    def wake_of(self, hostname: str) -> WakeRequest | None:
        with Session(self.engine) as session:
            return session.exec(select(WakeRequest).join(Device, Device.id == WakeRequest.device_id)
                                .where(Device.hostname == hostname)).first()

    def sent_by(self, hostname: str) -> str | None:
        wake = self.wake_of(hostname)
        return wake.sent_by if wake is not None and wake.status == "sent" else None


@pytest.fixture
def register(controller: ControllerProcess) -> Iterator[Register]:
    opened = Register(controller.database_url)
    yield opened
    opened.engine.dispose()


def wake(register: Register, hostname: str) -> None:
    """As `caretaker wake HOSTNAME` does (tested on its own), without a CLI process per wake."""
    with Session(register.engine) as session:
        devices = select_devices(session, hostname)
        assert request_wakes(session, devices, "relay test", "test", utcnow(), WakeConfig()).queued
        session.commit()


def test_each_subnet_is_woken_by_the_agent_on_that_subnet(controller, agents, register, listener):
    agents.start("HILL-A-RELAY", "02:00:00:00:0a:01", "127.11.0.2", 16)
    agents.start("HILL-B-RELAY", "02:00:00:00:0b:01", "127.12.0.2", 16)
    relay_a = wait_for(lambda: register.agent_of("HILL-A-RELAY"), 30, "agent A to report")
    relay_b = wait_for(lambda: register.agent_of("HILL-B-RELAY"), 30, "agent B to report")
    register.add_target("HILL-A-PC", "02:00:00:00:0a:99", "127.11.0.50", 16)
    register.add_target("HILL-B-PC", "02:00:00:00:0b:99", "127.12.0.50", 16)
    time.sleep(1.5)  # one election after both agents have reported

    wake(register, "HILL-A-PC")
    assert listener.recvfrom(1024)[0] == magic("02:00:00:00:0a:99")
    assert wait_for(lambda: register.sent_by("HILL-A-PC"), 20, "A's relay to report it sent") == f"agent:{relay_a}"
    wake(register, "HILL-B-PC")
    assert listener.recvfrom(1024)[0] == magic("02:00:00:00:0b:99")
    assert wait_for(lambda: register.sent_by("HILL-B-PC"), 20, "B's relay to report it sent") == f"agent:{relay_b}"
    assert register.wake_of("HILL-A-PC").route == register.wake_of("HILL-B-PC").route == "relay"


def test_when_the_primary_relay_falls_silent_the_standby_takes_over(controller, agents, register, listener):
    agents.start("HILL-SRV", "02:00:00:00:0c:01", "127.13.0.2", 16, device_class="server")  # servers lead
    agents.start("HILL-PC-STANDBY", "02:00:00:00:0c:02", "127.13.0.3", 16)
    primary = wait_for(lambda: register.agent_of("HILL-SRV"), 30, "the server's agent to report")
    standby = wait_for(lambda: register.agent_of("HILL-PC-STANDBY"), 30, "the desktop's agent to report")
    register.add_target("HILL-PC-1", "02:00:00:00:0c:91", "127.13.0.91", 16)
    register.add_target("HILL-PC-2", "02:00:00:00:0c:92", "127.13.0.92", 16)
    time.sleep(1.5)

    wake(register, "HILL-PC-1")
    assert listener.recvfrom(1024)[0] == magic("02:00:00:00:0c:91")
    assert wait_for(lambda: register.sent_by("HILL-PC-1"), 20, "the primary to report") == f"agent:{primary}"

    agents.kill("HILL-SRV")
    time.sleep(3 + 1.5)  # silent longer than relay_silence_seconds, then one election
    wake(register, "HILL-PC-2")
    assert listener.recvfrom(1024)[0] == magic("02:00:00:00:0c:92")
    assert wait_for(lambda: register.sent_by("HILL-PC-2"), 20, "the standby to report") == f"agent:{standby}"
