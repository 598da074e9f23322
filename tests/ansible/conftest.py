"""Ansible, and this machine as an Ansible target: an OpenSSH server on loopback and a sudoer to log in as.

Ansible comes from CARETAKER_ANSIBLE_VENV (default /opt/caretaker-ci/ansible-venv, which
.ci/setup-ansible.sh makes) or else from PATH. Without it, or without root, sshd and sudo, these
tests skip with the reason, except in CI (CI set), where that is a failure.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import psutil
import pytest

from tests.conftest import REPO, free_port

ANSIBLE_DIR = REPO / "ansible"
ANSIBLE_VENV = Path(os.environ.get("CARETAKER_ANSIBLE_VENV", "/opt/caretaker-ci/ansible-venv"))
SSHD = Path("/usr/sbin/sshd")
TEST_USER = "caretaker-ci"
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)", re.MULTILINE)


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the Ansible tests (.ci/setup-ansible.sh installs what they need)")
    pytest.skip(reason)


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str

    def changed(self) -> dict[str, int]:
        """Tasks reported changed, by host, from the play recap."""
        return {m["host"]: int(m["changed"]) for m in RECAP.finditer(self.output)}

    def changed_tasks(self) -> list[str]:
        """The "TASK [...]" headers followed by a "changed:" line: what to look at when a run changed things."""
        tasks, current = [], ""
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                current = line
            elif line.startswith("changed:") and current not in tasks:
                tasks.append(current)
        return tasks


@dataclass
class Ansible:
    """The Ansible command-line tools, run with a private ANSIBLE_HOME and the repository's ansible.cfg."""

    bin: Path
    home: Path
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
                    "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "ANSIBLE_HOME": str(self.home),
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.home / "cp"),
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}

    def run(self, tool: str, *args: str, cwd: Path = ANSIBLE_DIR, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / tool), *args], capture_output=True, text=True, env=self.env, cwd=cwd,
                              timeout=timeout)

    def playbook(self, *args: str) -> PlaybookRun:
        result = self.run("ansible-playbook", *args)
        return PlaybookRun(result.returncode, result.stdout + result.stderr)


def find_ansible_bin() -> Path | None:
    if (ANSIBLE_VENV / "bin" / "ansible-playbook").exists():
        return ANSIBLE_VENV / "bin"
    found = shutil.which("ansible-playbook")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> Ansible:
    bin_dir = find_ansible_bin()
    if bin_dir is None:
        unavailable(f"ansible-playbook is neither in {ANSIBLE_VENV}/bin nor on PATH")
    return Ansible(bin_dir, tmp_path_factory.mktemp("ansible-home"))


@dataclass(frozen=True)
class SshTarget:
    """This machine, as Ansible reaches a school PC: over SSH as an unprivileged user who may sudo."""

    port: int
    user: str
    key: Path
    known_hosts: Path

    def host_vars(self) -> dict[str, object]:
        return {"ansible_host": "127.0.0.1", "ansible_port": self.port, "ansible_user": self.user,
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes",
                "ansible_python_interpreter": "/usr/bin/python3"}


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


def _test_user() -> pwd.struct_passwd:
    """A login that only our key opens ("*" is no password, yet not a locked account) and that may sudo."""
    try:
        account = pwd.getpwnam(TEST_USER)
    except KeyError:
        _run("useradd", "--create-home", "--shell", "/bin/bash", TEST_USER)
        _run("usermod", "--password", "*", TEST_USER)
        account = pwd.getpwnam(TEST_USER)
    sudoers = Path(f"/etc/sudoers.d/{TEST_USER}")
    sudoers.write_text(f"{TEST_USER} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    return account


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def ssh_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshTarget]:
    """An sshd of our own on 127.0.0.1, stopped afterwards (the test user stays, as CI needs it again)."""
    if os.geteuid() != 0:
        unavailable("the Ansible run needs root: it starts sshd and adds a test user who may sudo")
    for tool in (SSHD, Path("/usr/bin/sudo"), Path("/usr/bin/ssh"), Path("/usr/bin/ssh-keygen")):
        if not tool.exists():
            unavailable(f"{tool} is missing (apt-get install openssh-server sudo)")
    directory = tmp_path_factory.mktemp("sshd")
    account = _test_user()
    key, host_key = directory / "id_ed25519", directory / "host_ed25519"
    for path in (key, host_key):
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path))
    ssh_dir = Path(account.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(Path(f"{key}.pub").read_text())
    for path in (ssh_dir, authorized):
        os.chown(path, account.pw_uid, account.pw_gid)
    authorized.chmod(0o600)

    port = free_port()
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {Path(f'{host_key}.pub').read_text()}")
    config = directory / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {directory / 'sshd.pid'}
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers {TEST_USER}
Subsystem sftp internal-sftp
""")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = directory / "sshd.log"
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        yield SshTarget(port, TEST_USER, key, known_hosts)
    finally:
        # Sessions first, while sshd can still reap them; Ansible's persistent connections end with them.
        sessions = psutil.Process(process.pid).children(recursive=True)
        for session in sessions:
            session.terminate()
        psutil.wait_procs(sessions, timeout=10)
        process.terminate()
        process.wait(timeout=15)
