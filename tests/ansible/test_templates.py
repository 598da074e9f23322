"""Each platform's service definition, rendered by Ansible with example settings, says what the service
manager needs and runs a command line the agent (or the controller) accepts.

The Windows and macOS definitions cannot run here, so they are parsed as their service managers
parse them; the Linux agent unit also runs for real in test_estate.py.
"""

from __future__ import annotations

import configparser
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
from agent.labels import Labels, load_labels
from controller.cli import app as controller_cli
from controller.settings import Settings
from tests.ansible.conftest import Ansible, unavailable
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


def test_the_config_file_tells_the_cli_where_the_database_is(rendered: Path, monkeypatch) -> None:
    for name in ("CARETAKER_DATABASE_URL", "CARETAKER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARETAKER_CONFIG", str(rendered / "caretaker.toml"))
    settings = Settings()

    assert settings.resolved_database_url() == EXAMPLE["caretaker_controller_database_url"]
    assert settings.data_dir == Path("/var/lib/caretaker")


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


# --- the session helper, started at every user's sign-in ---------------------------------------------

def helper_arguments(argv: list[str]) -> dict[str, object]:
    """What ``caretaker-agent session-helper`` makes of a command line (after the program)."""
    given = agent_arguments(argv)
    assert given["command"] == "session-helper"
    return given


def test_the_linux_autostart_entry_starts_the_helper_in_every_desktop_session(rendered: Path) -> None:
    path = rendered / "linux-caretaker-agent-session-helper.desktop"
    entry = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    entry.optionxform = str  # keys are case-sensitive
    entry.read_string(path.read_text())

    assert dict(entry["Desktop Entry"]) == {
        "Type": "Application",
        "Name": "Caretaker session helper",
        "Comment": "Tells the Caretaker agent when this computer is in use, and shows its power-down warnings",
        "Exec": "/opt/caretaker-agent/venv/bin/caretaker-agent session-helper "
                "--session-address /run/caretaker-agent/session.sock",
        "Terminal": "false",
        "NoDisplay": "true",
        "X-GNOME-Autostart-enabled": "true",
        "X-GNOME-AutoRestart": "true",
        "X-KDE-autostart-phase": "2",
    }
    program, *argv = shlex.split(entry["Desktop Entry"]["Exec"])
    assert program == "/opt/caretaker-agent/venv/bin/caretaker-agent"
    assert helper_arguments(argv)["session_address"] == "/run/caretaker-agent/session.sock"
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        unavailable("desktop-file-validate is not installed (Debian package desktop-file-utils)")
    result = subprocess.run([validate, str(path)], capture_output=True, text=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_linux_agent_listens_where_the_helper_looks_in_a_directory_systemd_makes_for_it(rendered: Path) -> None:
    service = parse_unit((rendered / "linux-caretaker-agent.service").read_text())["Service"]
    _, argv = command_line(service["ExecStart"][0])
    assert agent_arguments(argv[1:])["session_address"] == "/run/caretaker-agent/session.sock"
    assert (service["RuntimeDirectory"], service["RuntimeDirectoryMode"]) == (["caretaker-agent"], ["0755"])
    assert "AF_UNIX" in service["RestrictAddressFamilies"][0].split()


def test_the_macos_launch_agent_starts_the_helper_in_every_gui_session(rendered: Path) -> None:
    agent = plistlib.loads((rendered / "macos-org.caretaker.agent.session-helper.plist").read_bytes())

    assert agent == {
        "Label": "org.caretaker.agent.session-helper",
        "ProgramArguments": ["/usr/local/caretaker-agent/venv/bin/caretaker-agent", "session-helper",
                             "--session-address", "/var/run/caretaker-agent/session.sock"],
        "LimitLoadToSessionType": "Aqua",
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 30,
    }
    assert helper_arguments(agent["ProgramArguments"][1:])["session_address"] == "/var/run/caretaker-agent/session.sock"
    daemon = plistlib.loads((rendered / "macos-org.caretaker.agent.plist").read_bytes())
    assert agent_arguments(daemon["ProgramArguments"][1:])["session_address"] == agent["ProgramArguments"][-1]


TASK = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"


def task_fields(element: ET.Element, prefix: str = "") -> dict[str, str]:
    """Every leaf of a Task Scheduler definition by its path, e.g. "Settings/ExecutionTimeLimit"."""
    fields = {}
    for child in element:
        path = f"{prefix}{child.tag.removeprefix(TASK)}"
        if len(child):
            fields.update(task_fields(child, path + "/"))
        else:
            fields[path] = (child.text or "").strip()
        fields.update({f"{path}@{name}": value for name, value in child.attrib.items()})
    return fields


def test_the_windows_logon_task_starts_the_helper_in_every_users_session_as_that_user(rendered: Path) -> None:
    task = ET.parse(rendered / "windows-caretaker-agent-session-helper.task.xml").getroot()

    assert (task.tag, task.get("version")) == (f"{TASK}Task", "1.2")
    assert task_fields(task) == {
        "RegistrationInfo/Author": "Caretaker",
        "RegistrationInfo/Description": "Tells the Caretaker agent when this PC is in use, and shows its "
                                        "power-down warnings.",
        "RegistrationInfo/URI": "\\Caretaker\\Session helper",
        "Triggers/LogonTrigger/Enabled": "true",  # no UserId: every user who signs in
        "Principals/Principal/GroupId": "S-1-5-32-545",  # BUILTIN\\Users: each runs as themselves
        "Principals/Principal/RunLevel": "LeastPrivilege",
        "Principals/Principal@id": "SignedInUser",
        "Settings/MultipleInstancesPolicy": "Parallel",  # one per signed-in user
        "Settings/DisallowStartIfOnBatteries": "false",
        "Settings/StopIfGoingOnBatteries": "false",
        "Settings/AllowHardTerminate": "true",
        "Settings/StartWhenAvailable": "false",
        "Settings/RunOnlyIfNetworkAvailable": "false",
        "Settings/IdleSettings/StopOnIdleEnd": "false",
        "Settings/IdleSettings/RestartOnIdle": "false",
        "Settings/AllowStartOnDemand": "true",
        "Settings/Enabled": "true",
        "Settings/Hidden": "true",
        "Settings/RunOnlyIfIdle": "false",
        "Settings/ExecutionTimeLimit": "PT0S",  # never stopped for running long
        "Settings/Priority": "5",
        "Settings/RestartOnFailure/Interval": "PT1M",
        "Settings/RestartOnFailure/Count": "3",
        "Actions@Context": "SignedInUser",
        "Actions/Exec/Command": "C:\\Program Files\\Caretaker Agent\\venv\\Scripts\\pythonw.exe",
        "Actions/Exec/Arguments": "-m agent session-helper --session-address \\\\.\\pipe\\caretaker-agent-session",
    }
    module, name, *argv = windows_argv(task.findtext(f"{TASK}Actions/{TASK}Exec/{TASK}Arguments") or "")
    assert (module, name) == ("-m", "agent")
    assert helper_arguments(argv)["session_address"] == "\\\\.\\pipe\\caretaker-agent-session"
    service = ET.parse(rendered / "windows-caretaker-agent-service.xml").getroot()
    _, _, *service_argv = windows_argv(service.findtext("arguments") or "")
    assert agent_arguments(service_argv)["session_address"] == "\\\\.\\pipe\\caretaker-agent-session"


def test_the_labels_file_from_group_vars_is_what_the_agent_reads(rendered: Path) -> None:
    assert load_labels(rendered / "linux-labels.toml") == Labels("Sports Hall", ("signage", 'exam "room"'))
    service = parse_unit((rendered / "linux-caretaker-agent.service").read_text())["Service"]
    _, argv = command_line(service["ExecStart"][0])
    assert agent_arguments(argv[1:])["labels_file"] == Path("/etc/caretaker-agent/labels.toml")
