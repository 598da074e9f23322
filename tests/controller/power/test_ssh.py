"""Agentless servers over SSH against a real OpenSSH server on loopback: a known host key is accepted,
an unknown or changed one refused, inventory lands in the register as a server, and a power action
sends the exact command (recorded by the server, not run) and is audited."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from controller.cli import app as cli
from controller.power import ssh
from controller.register.models import ActionRecord, Device, Site
from controller.timeutil import utcnow
from tests.conftest import free_port
from tests.controller.power import sshd as sshd_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd_server.Sshd]:
    running = sshd_server.start(tmp_path_factory.mktemp("sshd"), free_port())
    yield running
    sshd_server.stop(running)


def target(server: sshd_server.Sshd, known_hosts: Path | None = None, key: Path | None = None) -> ssh.SshTarget:
    return ssh.SshTarget("127.0.0.1", server.user, key or server.key, known_hosts or server.known_hosts, server.port)


def test_a_host_whose_key_is_in_known_hosts_gives_its_inventory(server):
    found = ssh.inventory(target(server))
    assert found.hostname == socket.gethostname()
    assert found.os.name == "Linux" and found.os.kernel == os.uname().release
    assert found.device_class == "server"
    assert found.memory_bytes == psutil.virtual_memory().total
    assert found.cpu is not None and found.cpu.threads == psutil.cpu_count()
    local_macs = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                  if a.family == psutil.AF_LINK and a.address != "00:00:00:00:00:00"}
    assert {nic.mac for nic in found.nics} <= local_macs and found.nics


def test_an_unknown_host_key_is_refused_with_a_one_line_reason(server):
    with pytest.raises(ssh.SshRefused) as refused:
        ssh.inventory(target(server, known_hosts=server.unknown_hosts))
    assert "host key unknown" in str(refused.value) and "\n" not in str(refused.value)


def test_a_changed_host_key_is_refused(server):
    with pytest.raises(ssh.SshRefused, match="host key CHANGED"):
        ssh.inventory(target(server, known_hosts=server.changed_hosts))


def test_a_key_the_server_does_not_accept_is_refused(server, tmp_path):
    stranger = tmp_path / "stranger"
    sshd_server.keygen(stranger)
    with pytest.raises(ssh.SshRefused, match="refused the key"):
        ssh.inventory(target(server, key=stranger))


def test_power_off_sends_the_exact_command_for_the_os_and_is_audited(server, engine):
    before = len(server.commands())
    outcome = ssh.power(target(server, key=server.power_key), "off")
    expected = "systemctl poweroff" if server.user == "root" else "sudo -n systemctl poweroff"
    assert server.commands()[before:] == [sshd_server.PROBE, expected]
    assert (outcome.command, outcome.status, outcome.hostname) == (expected, 0, socket.gethostname())
    with Session(engine) as session:
        session.add(Site(name="Hill"))
        session.flush()
        ssh.audit_power(session, "Hill", target(server), "off", outcome, "end of term", "cli", utcnow())
        session.commit()
        record = session.exec(select(ActionRecord)).one()
    assert (record.kind, record.outcome, record.mode, record.actor) == ("shutdown", "done", "force", "cli")
    assert record.details["command"] == expected and record.details["via"] == "ssh"


def test_cli_registers_the_host_as_a_server_of_the_site_and_refuses_a_changed_key(server, database_url, engine):
    runner = CliRunner()
    common = ["--user", server.user, "--key", str(server.key), "--port", str(server.port),
              "--database-url", database_url]
    with Session(engine) as session:
        session.add(Site(name="Hill"))
        session.commit()
    done = runner.invoke(cli, ["ssh", "inventory", "127.0.0.1", "--known-hosts", str(server.known_hosts),
                               "--site", "Hill", *common])
    assert done.exit_code == 0, done.output
    with Session(engine) as session:
        device = session.exec(select(Device)).one()
    assert (device.hostname, device.device_class) == (socket.gethostname(), "server")
    refused = runner.invoke(cli, ["ssh", "inventory", "127.0.0.1", "--known-hosts", str(server.changed_hosts),
                                  *common])
    assert refused.exit_code == 2
    assert refused.output.startswith("caretaker: error: ") and "host key CHANGED" in refused.output


def test_cli_power_records_a_refused_attempt_as_failed(server, database_url, engine):
    with Session(engine) as session:
        session.add(Site(name="Hill"))
        session.commit()
    result = CliRunner().invoke(cli, ["ssh", "power", "127.0.0.1", "reboot", "--user", server.user, "--key",
                                      str(server.power_key), "--known-hosts", str(server.unknown_hosts),
                                      "--port", str(server.port), "--site", "Hill", "--database-url", database_url])
    assert result.exit_code == 2 and "host key unknown" in result.output
    with Session(engine) as session:
        record = session.exec(select(ActionRecord)).one()
    assert (record.kind, record.outcome) == ("reboot", "failed") and "host key unknown" in record.details["error"]
