"""Each platform's service definition, rendered by Ansible with example settings, says what the service
manager needs and runs a command line the agent (or the controller) accepts.

The Windows and macOS definitions cannot run here, so they are parsed as their service managers
parse them; the Linux agent unit also runs for real in test_estate.py.
"""

from __future__ import annotations

import plistlib
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
import yaml

from agent.cli import _parser as agent_parser
from controller.cli import app as controller_cli
from controller.settings import Settings
from tests.ansible.conftest import Ansible
from tests.ansible.units import command_line, parse_unit

HERE = Path(__file__).parent
EXAMPLE = yaml.safe_load((HERE / "example-vars.yml").read_text())


@pytest.fixture(scope="module")
def rendered(ansible: Ansible, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    result = ansible.run("ansible-playbook", "-i", "localhost,", str(HERE / "render.yml"), "-e", f"out={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def agent_arguments(argv: list[str]) -> dict[str, object]:
    """What the agent makes of a command line (after the program): argparse exits on anything it rejects."""
    return vars(agent_parser().parse_args(argv))


def test_the_macos_daemon_runs_the_agent_at_boot_and_again_after_a_failure(rendered: Path) -> None:
    daemon = plistlib.loads((rendered / "macos-org.caretaker.agent.plist").read_bytes())

    assert daemon["Label"] == "org.caretaker.agent"
    program, *argv = daemon["ProgramArguments"]
    assert program == "/usr/local/caretaker-agent/venv/bin/caretaker-agent"
    given = agent_arguments(argv)
    assert given["command"] == "run"
    assert given["controller"] == EXAMPLE["caretaker_agent_controller_url"]
    assert given["token"] is None and given["token_file"] == Path("/usr/local/etc/caretaker-agent/enrollment-token")
    assert given["interval"] == EXAMPLE["caretaker_agent_interval"]
    assert daemon["RunAtLoad"] is True
    assert daemon["KeepAlive"] == {"SuccessfulExit": False}
    assert daemon["WorkingDirectory"] == str(given["state_dir"])
    assert daemon["Umask"] == 0o077


def windows_argv(command_line: str) -> list[str]:
    """Split as the C runtime does for arguments without embedded quotes: spaces outside double quotes."""
    return shlex.split(command_line.replace("\\", "\\\\"))


def test_the_windows_service_runs_the_agent_from_its_venv_and_restarts_it_after_a_failure(rendered: Path) -> None:
    service = ET.parse(rendered / "windows-caretaker-agent-service.xml").getroot()

    assert service.tag == "service"
    assert service.findtext("id") == "caretaker-agent"
    assert service.findtext("executable") == r"C:\Program Files\Caretaker Agent\venv\Scripts\python.exe"
    module, name, *argv = windows_argv(service.findtext("arguments") or "")
    assert (module, name) == ("-m", "agent")
    given = agent_arguments(argv)
    assert given["command"] == "run"
    assert given["controller"] == EXAMPLE["caretaker_agent_controller_url"]
    assert given["ca_file"] == Path(r"C:\ProgramData\Caretaker Agent\ca.crt")
    assert given["token"] is None and given["token_file"] == Path(r"C:\ProgramData\Caretaker Agent\enrollment-token")
    assert given["state_dir"] == Path(r"C:\ProgramData\Caretaker Agent\state")
    assert service.findtext("startmode") == "Automatic"
    assert service.find("onfailure").get("action") == "restart"


def test_the_linux_unit_runs_the_agent_as_its_own_user_on_a_read_only_system(rendered: Path) -> None:
    unit = parse_unit((rendered / "linux-caretaker-agent.service").read_text())
    service = unit["Service"]

    privileged, argv = command_line(service["ExecStart"][0])
    assert not privileged
    assert argv[0] == "/opt/caretaker-agent/venv/bin/caretaker-agent"
    given = agent_arguments(argv[1:])
    assert given["command"] == "run" and given["token"] is None
    assert given["state_dir"] == Path("/var/lib/caretaker-agent")
    assert service["User"] == ["caretaker-agent"]
    assert service["StateDirectory"] == ["caretaker-agent"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["CapabilityBoundingSet"] == [""]
    assert service["Restart"] == ["on-failure"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_controller_unit_runs_a_command_line_the_controller_accepts(rendered: Path) -> None:
    service = parse_unit((rendered / "caretaker-controller.service").read_text())["Service"]

    privileged, argv = command_line(service["ExecStart"][0])
    assert not privileged and argv[0] == "/opt/caretaker/venv/bin/caretaker"
    assert argv[1] == "serve"
    serve = typer.main.get_command(controller_cli).commands["serve"]
    options = serve.make_context("serve", argv[2:]).params  # click exits on anything serve rejects
    assert options["port"] == EXAMPLE["caretaker_controller_port"]
    assert options["tls_cert"] == Path("/etc/caretaker/tls/server.crt")
    assert service["User"] == ["caretaker"]
    assert service["ProtectSystem"] == ["strict"]
    # Port 443 is below 1024: the one capability that needs, and no other.
    assert service["AmbientCapabilities"] == service["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]


def test_the_controller_settings_file_is_read_as_the_settings_it_means(rendered: Path) -> None:
    settings = Settings(_env_file=rendered / "controller.env")

    assert settings.database_url == EXAMPLE["caretaker_controller_database_url"]
    assert settings.data_dir == Path("/var/lib/caretaker")
    assert settings.agent_wheels_dir == Path("/opt/caretaker/agent-wheels")


def test_the_prometheus_scrape_job_reaches_the_controller_over_verified_https(
        rendered: Path, tmp_path: Path) -> None:
    snippet = rendered / "prometheus-scrape.yml"
    (job,) = yaml.safe_load(snippet.read_text())["scrape_configs"]

    assert job["scheme"] == "https"
    assert job["tls_config"]["ca_file"] == "/etc/caretaker/tls/ca.crt"
    assert job["static_configs"] == [{"targets": EXAMPLE["caretaker_controller_prometheus_targets"]}]
    promtool = shutil.which("promtool")
    if promtool:  # Prometheus itself accepts the job (CI installs it for the metrics tests)
        ca = tmp_path / "ca.crt"
        ca.write_text("")
        job["tls_config"]["ca_file"] = str(ca)
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
        result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
