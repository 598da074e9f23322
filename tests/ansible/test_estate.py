"""site.yml run for real against this machine over SSH, as a network manager runs it against a school.

Two inventory hosts are this machine: `controller-host` gets the controller role, `school-pc` the agent
role, which installs from the controller's own package index. systemd is not running here, so both
roles are told not to manage services, and the test starts each service's command itself, from the
installed unit, as the unit's user. The token reaches the agent through Ansible Vault.
"""

from __future__ import annotations

import configparser
import json
import os
import platform
import pwd
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.ansible.conftest import Ansible, PlaybookRun, SshTarget, unavailable
from tests.ansible.units import command_line, parse_unit
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow

SITE = "Test School"
AGENT_UNIT = Path("/etc/systemd/system/caretaker-agent.service")
CONTROLLER_UNIT = Path("/etc/systemd/system/caretaker-controller.service")
AGENT_VENV, CONTROLLER_VENV = Path("/opt/caretaker-agent/venv"), Path("/opt/caretaker/venv")
AGENT_STATE = Path("/var/lib/caretaker-agent")
HELPER_AUTOSTART = Path("/etc/xdg/autostart/caretaker-agent-session-helper.desktop")
AGENT_PATHS = (AGENT_UNIT, Path("/etc/tmpfiles.d/caretaker-agent.conf"), Path("/opt/caretaker-agent"),
               Path("/etc/caretaker-agent"), AGENT_STATE, HELPER_AUTOSTART)
CONTROLLER_PATHS = (CONTROLLER_UNIT, Path("/opt/caretaker"), Path("/etc/caretaker"), Path("/var/lib/caretaker"))
ACCOUNTS = ("caretaker-agent", "caretaker")
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Test-only: the controller asks agents for a report every second instead of every five minutes.
FAST = {"CARETAKER_REPORT_INTERVAL_SECONDS": "1"}


def wait_for(condition: Callable[[], bool], seconds: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, a value optionally in double quotes with \\" and \\\\ escapes (as systemd reads them)."""
    found = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        found[key.strip()] = value
    return found


class UnitProcess:
    """What systemd would run for a unit: its RuntimeDirectory= made for User=, ExecStartPre (as root when
    "+"), then ExecStart as User=; stopping it removes the runtime directory, as systemd does."""

    def __init__(self, unit: Path, log: Path, extra_env: dict[str, str] | None = None):
        self.settings = parse_unit(unit.read_text())["Service"]
        self.account = pwd.getpwnam(self.settings["User"][0])
        self.log = log
        self.env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "HOME": self.account.pw_dir,
                    "USER": self.account.pw_name, "LOGNAME": self.account.pw_name}
        for env_file in self.settings.get("EnvironmentFile", []):
            self.env.update(read_environment_file(Path(env_file)))
        self.env.update(extra_env or {})
        self.process: subprocess.Popen | None = None

    def as_user(self) -> dict[str, object]:
        umask = int(self.settings.get("UMask", ["0022"])[0], 8)
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": [], "umask": umask,
                "cwd": self.settings.get("WorkingDirectory", ["/"])[0], "env": self.env}

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        """A one-off command as the unit's user, e.g. the controller's CLI."""
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, **self.as_user())

    def _runtime_directories(self) -> list[Path]:
        return [Path("/run") / name for name in self.settings.get("RuntimeDirectory", [])]

    def start(self) -> None:
        mode = int(self.settings.get("RuntimeDirectoryMode", ["0755"])[0], 8)
        for path in self._runtime_directories():
            path.mkdir(mode=mode, exist_ok=True)
            os.chown(path, self.account.pw_uid, self.account.pw_gid)
            path.chmod(mode)
        for value in self.settings.get("ExecStartPre", []):
            privileged, argv = command_line(value)
            subprocess.run(argv, check=True, timeout=60, **({"env": self.env} if privileged else self.as_user()))
        _, argv = command_line(self.settings["ExecStart"][0])
        self.process = subprocess.Popen(argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, **self.as_user())

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self._runtime_directories():
            shutil.rmtree(path, ignore_errors=True)
        return self.process.returncode


def build_wheel(workdir: Path, version: str) -> Path:
    """A wheel of this checkout at ``version``, built from a copy so the checkout gains no build/ files."""
    source = workdir / f"src-{version}"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("agent", "controller"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = source / "pyproject.toml"
    current = tomllib.loads(pyproject.read_text())["project"]["version"]
    pyproject.write_text(pyproject.read_text().replace(f'version = "{current}"', f'version = "{version}"', 1))
    dist = workdir / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist),
                    str(source)], check=True, capture_output=True, timeout=300)
    return dist / f"caretaker-{version}-py3-none-any.whl"


def installed_version(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "python"), "-I", "-c", "import importlib.metadata as m; "
                           "print(m.version('caretaker'))"], capture_output=True, text=True, check=True).stdout.strip()


@dataclass
class Estate:
    """The inventory, what each run of site.yml said, and the controller the test started from its unit."""

    ansible: Ansible
    inventory: Path
    vault_password: Path
    workdir: Path
    version: str
    upgrade_version: str
    controller_port: int
    first_controller_run: PlaybookRun
    first_agent_run: PlaybookRun
    controller: UnitProcess

    def site(self, *args: str) -> PlaybookRun:
        return self.ansible.playbook("-i", str(self.inventory), "--vault-password-file", str(self.vault_password),
                                     "site.yml", *args)

    def cli(self, *args: str) -> object:
        """The installed controller's own CLI, as its service user, read as JSON."""
        return json.loads(self.controller.run([str(CONTROLLER_VENV / "bin" / "caretaker"), *args, "--json"]).stdout)

    def devices(self) -> list[dict]:
        return self.cli("devices")  # type: ignore[return-value]

    def start_controller(self) -> None:
        self.controller.start()
        verify = ssl.create_default_context(cafile=str(self.workdir / "ca.crt"))

        def healthy() -> bool:
            try:
                return httpx.get(f"https://127.0.0.1:{self.controller_port}/healthz", verify=verify,
                                 timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the controller to answer over HTTPS")

    def restart_controller(self) -> None:
        self.controller.stop()
        self.start_controller()


def write_inventory(path: Path, target: SshTarget, workdir: Path, wheel: Path, version: str, port: int) -> None:
    machine = platform.machine()
    inventory = {"all": {"children": {
        "caretaker_controller": {"hosts": {"controller-host": {
            **target.host_vars(),
            "caretaker_controller_version": version,
            "caretaker_controller_wheel": str(wheel),
            "caretaker_controller_host": "127.0.0.1",
            "caretaker_controller_port": port,
            "caretaker_controller_tls_names": ["127.0.0.1", "localhost"],
            "caretaker_controller_ca_fetch_dest": str(workdir / "ca.crt"),
            "caretaker_controller_agent_platforms": [f"manylinux2014_{machine}"],
            "caretaker_controller_manage_service": False,
        }}},
        "caretaker_agents": {"children": {"test_school": {"hosts": {"school-pc": {
            **target.host_vars(),
            "caretaker_agent_controller_url": f"https://127.0.0.1:{port}",
            "caretaker_agent_ca_cert": f"{{{{ lookup('ansible.builtin.file', '{workdir / 'ca.crt'}') }}}}",
            "caretaker_agent_version": version,
            "caretaker_agent_site": SITE,
            "caretaker_agent_interval": 1,
            "caretaker_agent_manage_service": False,
        }}}}},
    }}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "hosts.yml").write_text(yaml.safe_dump(inventory))


def vault_token(ansible: Ansible, password_file: Path, token: str) -> str:
    """The token as a network manager keeps it: `ansible-vault encrypt_string`, pasted into group_vars."""
    result = subprocess.run([str(ansible.bin / "ansible-vault"), "encrypt_string", "--vault-password-file",
                             str(password_file), "--stdin-name", "caretaker_agent_enrollment_token"],
                            input=token, capture_output=True, text=True, env=ansible.env, timeout=60, check=True)
    assert token not in result.stdout
    return result.stdout


def remove_everything(ansible: Ansible, inventory: Path, password: Path) -> None:
    """Leave the machine as it was, even after a failed test: the agent by its role, the controller by hand."""
    if any(path.exists() for path in AGENT_PATHS) or account_exists("caretaker-agent"):
        ansible.playbook("-i", str(inventory), "--vault-password-file", str(password), "site.yml",
                         "--limit", "school-pc", "-e", "caretaker_agent_state=absent")
    for path in CONTROLLER_PATHS:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if account_exists("caretaker"):
        subprocess.run(["userdel", "caretaker"], check=False, capture_output=True)
        subprocess.run(["groupdel", "caretaker"], check=False, capture_output=True)


@pytest.fixture(scope="module")
def estate(ansible: Ansible, ssh_target: SshTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    already = [str(p) for p in (*AGENT_PATHS, *CONTROLLER_PATHS) if p.exists()] + [a for a in ACCOUNTS
                                                                                     if account_exists(a)]
    if already:
        unavailable(f"this machine already has {', '.join(already)}; the test installs and removes them")
    workdir = tmp_path_factory.mktemp("estate")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    upgrade_version = f"{version}.post1"
    wheel = build_wheel(workdir, version)
    build_wheel(workdir, upgrade_version)
    inventory, password = workdir / "inventory", workdir / "vault-password"
    password.write_text(os.urandom(16).hex())
    port = free_port()
    write_inventory(inventory, ssh_target, workdir, wheel, version, port)
    controller: UnitProcess | None = None
    try:
        first_controller_run = ansible.playbook("-i", str(inventory), "site.yml", "--limit", "controller-host")
        assert first_controller_run.returncode == 0, first_controller_run.output
        controller = UnitProcess(CONTROLLER_UNIT, workdir / "controller.log", FAST)
        estate = Estate(ansible, inventory, password, workdir, version, upgrade_version, port, first_controller_run,
                        PlaybookRun(-1, ""), controller)
        estate.start_controller()
        token = estate.cli("token", "create", "--site", SITE)["token"]  # type: ignore[index]
        group_vars = inventory / "group_vars"
        group_vars.mkdir()
        (group_vars / "test_school.yml").write_text(vault_token(ansible, password, token))
        estate.first_agent_run = estate.site("--limit", "school-pc")
        assert estate.first_agent_run.returncode == 0, estate.first_agent_run.output
        yield estate
    finally:
        if controller is not None:
            controller.stop()
        remove_everything(ansible, inventory, password)


def verify_unit(unit: Path) -> None:
    """`systemd-analyze verify`, where systemd is installed, with nothing to say about the unit."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert unit.name not in result.stdout + result.stderr, result.stdout + result.stderr


def agent_reports(estate: Estate) -> tuple[int, list[dict]]:
    """(reports the controller counted from this machine's agents, those agents)."""
    (device,) = [d for d in estate.devices() if d["site"] == SITE]
    agents = estate.cli("device", "show", str(device["id"]))["agents"]  # type: ignore[index]
    return sum(a["reports"] for a in agents), agents


def run_agent_service_until_it_reports(estate: Estate, log: Path) -> list[dict]:
    """Start the agent's ExecStart as its unit would, wait for new reports, stop it like systemd does."""
    before, _ = agent_reports(estate)
    agent = UnitProcess(AGENT_UNIT, log)
    agent.start()
    try:
        wait_for(lambda: agent_reports(estate)[0] >= before + 2, 60, "reports from the agent's service command")
    finally:
        returncode = agent.stop()
    assert returncode == 0, log.read_text()[-2000:]
    assert "reporting to" in log.read_text()
    return agent_reports(estate)[1]


def test_the_controller_role_installs_a_controller_that_serves_agents_over_https(estate: Estate) -> None:
    assert estate.first_controller_run.changed()["controller-host"] > 0
    verify_unit(CONTROLLER_UNIT)
    assert pwd.getpwuid((CONTROLLER_VENV.parent / "agent-wheels").stat().st_uid).pw_name == "root"
    index = httpx.get(f"https://127.0.0.1:{estate.controller_port}/api/v1/downloads/agent/simple/",
                      verify=ssl.create_default_context(cafile=str(estate.workdir / "ca.crt")))
    for project in ("caretaker", "psutil", "wakeonlan"):
        assert f'href="{project}/"' in index.text


def test_the_agent_role_installs_from_the_controller_enrols_and_its_unit_runs_the_agent(
        estate: Estate, tmp_path: Path) -> None:
    assert estate.first_agent_run.changed()["school-pc"] > 0
    assert installed_version(AGENT_VENV) == estate.version
    (device,) = estate.devices()
    assert device["site"] == SITE
    token_file = Path("/etc/caretaker-agent/enrollment-token")
    assert (token_file.stat().st_mode & 0o777, token_file.owner(), token_file.group()) == (
        0o640, "root", "caretaker-agent")
    credentials = AGENT_STATE / "credentials.json"
    assert (credentials.stat().st_mode & 0o777, credentials.owner()) == (0o600, "caretaker-agent")
    verify_unit(AGENT_UNIT)

    agents = run_agent_service_until_it_reports(estate, tmp_path / "agent.log")

    assert len(agents) == 1, "the service reuses the enrolment the role made; it does not enrol again"


def test_the_session_helper_that_starts_at_sign_in_reaches_the_installed_agent_as_its_user(
        estate: Estate, ssh_target: SshTarget, tmp_path: Path) -> None:
    assert (HELPER_AUTOSTART.stat().st_mode & 0o777, HELPER_AUTOSTART.owner()) == (0o644, "root")
    entry = configparser.ConfigParser(interpolation=None)
    entry.read_string(HELPER_AUTOSTART.read_text())
    log = tmp_path / "agent.log"
    agent = UnitProcess(AGENT_UNIT, log)
    agent.start()
    user = pwd.getpwnam(ssh_target.user)  # signed in, as a desktop starts its autostart entries
    helper = subprocess.Popen(shlex.split(entry["Desktop Entry"]["Exec"]), user=user.pw_uid, group=user.pw_gid,
                              extra_groups=[], cwd=user.pw_dir, env={"PATH": SYSTEMD_PATH, "HOME": user.pw_dir},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: f"session helper of {ssh_target.user} connected" in log.read_text(), 60,
                 "the helper to reach the agent")
    except AssertionError as missing:
        helper.terminate()
        raise AssertionError(f"{missing}; the helper said {helper.communicate(timeout=15)[1]!r}; "
                             f"the agent's log ends {log.read_text()[-1500:]!r}") from None
    finally:
        helper.terminate()
        helper.wait(timeout=15)
        agent.stop()
    assert helper.returncode == 0  # a clean stop when the session ends


def test_a_second_run_of_site_yml_changes_nothing(estate: Estate) -> None:
    second = estate.site()

    assert second.returncode == 0, second.output
    assert second.changed() == {"controller-host": 0, "school-pc": 0}, second.changed_tasks()


def test_raising_the_version_upgrades_controller_and_agent_in_place_and_the_agent_stays_enrolled(
        estate: Estate, tmp_path: Path) -> None:
    enrolled = json.loads((AGENT_STATE / "credentials.json").read_text())["agent_id"]
    wheel = estate.workdir / "dist" / f"caretaker-{estate.upgrade_version}-py3-none-any.whl"

    upgrade = estate.site("-e", f"caretaker_controller_version={estate.upgrade_version}",
                          "-e", f"caretaker_controller_wheel={wheel}",
                          "-e", f"caretaker_agent_version={estate.upgrade_version}")

    assert upgrade.returncode == 0, upgrade.output
    assert installed_version(CONTROLLER_VENV) == estate.upgrade_version, upgrade.output
    assert installed_version(AGENT_VENV) == estate.upgrade_version, upgrade.output
    assert json.loads((AGENT_STATE / "credentials.json").read_text())["agent_id"] == enrolled
    estate.restart_controller()  # as the role's handler would, had systemd been running
    agents = run_agent_service_until_it_reports(estate, tmp_path / "agent.log")
    assert [a["id"] for a in agents] == [enrolled]


def test_a_machine_enrolled_in_another_school_than_its_group_fails_the_play_and_says_why(estate: Estate) -> None:
    misfiled = estate.site("--limit", "school-pc", "-e", json.dumps({"caretaker_agent_site": "Riverside School"}))

    assert misfiled.returncode != 0
    message = misfiled.output.replace('\\"', '"')  # the message as printed, quotes and all
    assert f'enrolled in site "{SITE}" but its inventory group says "Riverside School"' in message
    assert AGENT_STATE.joinpath("credentials.json").exists(), "the enrolment is left for a person to sort out"


def test_state_absent_removes_the_agent_and_removing_it_again_changes_nothing(estate: Estate) -> None:
    removal = estate.site("--limit", "school-pc", "-e", "caretaker_agent_state=absent")

    assert removal.returncode == 0, removal.output
    assert removal.changed()["school-pc"] > 0
    assert [str(p) for p in AGENT_PATHS if p.exists()] == []
    assert not account_exists("caretaker-agent")
    again = estate.site("--limit", "school-pc", "-e", "caretaker_agent_state=absent")
    assert again.returncode == 0, again.output
    assert again.changed() == {"school-pc": 0}, again.changed_tasks()
