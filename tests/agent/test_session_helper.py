"""The real agent service and real session helpers, as separate processes over the Unix socket.

The service is ``caretaker-agent run`` (root, as the test suite runs) reporting to a TLS controller
double that hands it a warn-mode power-down window. Who is signed in comes from a utmp that glibc
writes (under ``--root``): "caretaker-pupil" on tty7. Helpers are ``python3 -m agent session-helper``
run by the system's own Python, with no third-party package on its path (the helper is stdlib only),
as local users of their own: the signed-in pupil, or another user. The pupil's helper reads its idle
time from a real X server (Xvfb). Its warning window is a script given as ``--dialog-command`` that
records what it was asked to show and answers as a person would; power commands go through a
recorder (``--power-command-wrapper``), so nothing is powered off.

The failure modes the service must survive, each of which keeps the machine on and says why: no
helper, a helper that never reports, one that crashes, one that lies, and another user's helper.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.protocol import (
    AgentSchedule,
    BatchAck,
    EnforcementMode,
    IdleCriteria,
    PowerActionKind,
    ScheduleIntent,
    ScheduleWindow,
    WarningSettings,
    to_wire,
)
from agent.session import wire
from tests.agent.test_client import TOKEN, Answer, FakeController, Pki, Seen
from tests.agent.utmp import write_session
from tests.conftest import REPO

BIN = Path(sys.executable).parent
SYSTEM_PYTHON = Path("/usr/bin/python3")
PUPIL, OTHER = "caretaker-pupil", "caretaker-other"
RECORDER = """\
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[2:]) + "\\n")
"""
DIALOG = """\
import json, sys, time
record, answer, *shown = sys.argv[1:]
with open(record, "a", encoding="utf-8") as log:
    log.write(json.dumps(shown) + "\\n")
if answer == "postpone":
    print("postpone", flush=True)
else:
    time.sleep(float(shown[shown.index("--seconds") + 1]))
"""


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the session helper tests")
    pytest.skip(reason)


def wait_for(condition: Callable[[], object], seconds: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, pwd.struct_passwd]]:
    """Two local users the helpers run as; made for the test (and removed) where they do not exist."""
    if os.geteuid() != 0:
        unavailable("the session helper tests need root: they add local users and run helpers as them")
    if not SYSTEM_PYTHON.exists() or subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; sys.exit(sys.version_info "
                                                     "< (3, 11))"]).returncode:
        unavailable(f"{SYSTEM_PYTHON} (3.11 or newer) runs the helpers as plain users")
    made = []
    for name in (PUPIL, OTHER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            continue
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        made.append(name)
    yield {name: pwd.getpwnam(name) for name in (PUPIL, OTHER)}
    for name in made:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A real X server, which any local user may use, for the pupil's idle time."""
    if not shutil.which("Xvfb"):
        unavailable("Xvfb is not installed (Debian package xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def schedule(now: datetime) -> AgentSchedule:
    """Power down, warning first, from an hour ago for two hours; idle means a process nobody runs, so
    only the people signed in stand between the machine and the power-down."""
    start = now.replace(microsecond=0) - timedelta(hours=1)
    return AgentSchedule(
        version="v-warn", timezone="Europe/London", valid_until=now + timedelta(days=1), policy="northgate",
        windows=(ScheduleWindow(start, start + timedelta(hours=3), ScheduleIntent.POWER_DOWN, PowerActionKind.SHUTDOWN,
                                EnforcementMode.WARN, "out_of_hours"),),
        idle=IdleCriteria(processes_absent=("caretaker-no-such-process",)),
        warning=WarningSettings(countdown_minutes=10, deferral_minutes=10, max_deferrals=2))


@dataclass
class Machine:
    """One service process, its controller double, and the helpers started against it."""

    workdir: Path  # world-traversable: helpers run as other users
    controller: FakeController
    pki: Pki
    users: dict[str, pwd.struct_passwd]
    display: str
    offering: bool = False  # whether the controller hands out the schedule yet
    schedule: AgentSchedule = field(default_factory=lambda: schedule(datetime.now(UTC)))
    service: subprocess.Popen | None = None
    helpers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.workdir / "run" / "session.sock"

    @property
    def log(self) -> Path:
        return self.workdir / "agent.log"

    def respond(self, seen: Seen) -> Answer:
        answer = self.controller.healthy(seen)
        if self.offering and seen.path.endswith("/reports"):
            ack = BatchAck(accepted=tuple(answer.body["accepted"]), report_interval_seconds=1,
                           schedule=self.schedule)
            return Answer(200, to_wire(ack))
        return answer

    def start(self, signed_in: tuple[str, ...] = (PUPIL,)) -> None:
        utmp = self.workdir / "root" / "run" / "utmp"
        utmp.parent.mkdir(parents=True)
        utmp.touch()
        for user in signed_in:
            write_session(utmp, user, "tty7", ":0")
        recorder = self.workdir / "recorder.py"
        recorder.write_text(RECORDER)
        self.controller.interval = 1
        self.controller.respond = self.respond
        self.service = subprocess.Popen(
            [str(BIN / "caretaker-agent"), "run", "--controller", self.controller.url, "--token", TOKEN,
             "--ca-file", str(self.pki.ca_file), "--state-dir", str(self.workdir / "state"), "--interval", "1",
             "--root", str(self.workdir / "root"), "--session-address", str(self.socket),
             "--power-command-wrapper", f"{sys.executable} {recorder} {self.workdir / 'ran.jsonl'}"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_for(self.socket.exists, what="the service's session socket")

    def helper(self, user: str, dialog_answer: str = "ignore", argv: list[str] | None = None) -> subprocess.Popen:
        """The real helper (or ``argv``, a hostile stand-in) as ``user``, in the pupil's X display."""
        account = self.users[user]
        dialog = self.workdir / "dialog.py"
        dialog.write_text(DIALOG)
        command = argv or [str(SYSTEM_PYTHON), "-m", "agent", "session-helper", "--session-address", str(self.socket),
                           "--dialog-command",
                           f"{SYSTEM_PYTHON} {dialog} {self.workdir / 'shown.jsonl'} {dialog_answer}"]
        process = subprocess.Popen(command, user=account.pw_uid, group=account.pw_gid, extra_groups=[], cwd="/",
                                   env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "DISPLAY": self.display,
                                        "PYTHONDONTWRITEBYTECODE": "1"},
                                   stdout=subprocess.DEVNULL, stderr=(self.workdir / f"helper-{user}.log").open("ab"))
        self.helpers.append(process)
        return process

    def connected(self, user: str, reported: bool = True) -> None:
        """Wait until the service has greeted ``user``'s helper (and had its first report, by default)."""
        wait_for(lambda: f"session helper of {user} connected" in self.log.read_text(), what=f"{user}'s helper")
        if reported:
            time.sleep(1.5)  # it reports every second (the service's interval)

    def actions(self) -> list[tuple[str, str]]:
        return [(a["outcome"], a["reason"]) for seen in self.controller.requests if seen.path.endswith("/reports")
                for report in seen.body["reports"] for a in report["actions"]]

    def shown(self) -> list[list[str]]:
        path = self.workdir / "shown.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def ran(self) -> list[list[str]]:
        path = self.workdir / "ran.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> None:
        for process in [*self.helpers, self.service]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.helpers, self.service]:
            if process is not None:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def machine(users, display, controller: FakeController, pki: Pki) -> Iterator[Machine]:
    workdir = Path(tempfile.mkdtemp(prefix="caretaker-sessions-"))
    workdir.chmod(0o755)
    (workdir / "run").mkdir(mode=0o755)
    (workdir / "shown.jsonl").touch()
    os.chmod(workdir / "shown.jsonl", 0o666)  # the dialog runs as the pupil
    running = Machine(workdir, controller, pki, users, display)
    yield running
    running.stop()
    shutil.rmtree(workdir)


KEPT_ON = ("skipped", f"kept on: idle unknown: {PUPIL} (tty7) signed in and no session helper answers; "
                      "retry in 30 min")


def test_the_pupils_helper_is_warned_and_pressing_postpone_defers_the_power_down(machine: Machine) -> None:
    machine.start()
    machine.helper(PUPIL, dialog_answer="postpone")
    machine.connected(PUPIL)
    machine.offering = True
    wait_for(lambda: len(machine.actions()) >= 2, what="the warning and the postponement")

    warned, deferred = machine.actions()[:2]
    assert warned == ("warned", "warned the signed-in user (1 session(s)): shutdown in 10 min "
                                "(none of caretaker-no-such-process)")
    assert deferred == ("deferred", f"deferred by user (1 of 2: {PUPIL} pressed Postpone): 10 more min")
    first = machine.shown()[0]
    assert first[first.index("--title") + 1] == "Caretaker"
    assert first[first.index("--message") + 1].startswith("This computer will shut down in 10 minutes")
    assert first[first.index("--postpone-label") + 1] == "Postpone 10 min"
    assert int(first[first.index("--seconds") + 1]) in (599, 600)
    wait_for(lambda: len(machine.shown()) >= 2, what="the warning shown again after the postponement")
    assert machine.ran() == []


@pytest.mark.parametrize("who", ["nobody", OTHER], ids=["no helper", "another user's helper"])
def test_without_the_pupils_own_helper_the_machine_stays_on_and_says_why(machine: Machine, who: str) -> None:
    machine.start()
    if who == OTHER:
        machine.helper(OTHER)
        machine.connected(OTHER)
    machine.offering = True
    wait_for(machine.actions, what="the enforcer's decision")

    assert machine.actions() == [KEPT_ON]
    assert machine.ran() == [] and machine.shown() == []


def test_a_helper_that_never_reports_counts_as_absent(machine: Machine) -> None:
    silent = (f"import socket, time; s = socket.socket(socket.AF_UNIX); s.connect({str(machine.socket)!r}); "
              "time.sleep(60)")
    machine.start()
    machine.helper(PUPIL, argv=[str(SYSTEM_PYTHON), "-c", silent])
    machine.connected(PUPIL)
    machine.offering = True
    wait_for(machine.actions, what="the enforcer's decision")

    assert machine.actions() == [KEPT_ON]


def test_a_helper_that_lies_about_idle_time_is_dropped_and_the_machine_stays_on(machine: Machine) -> None:
    states = b"".join(wire.encode(wire.state(idle, False)) for idle in (10, 40_000))
    liar = (f"import socket, time; s = socket.socket(socket.AF_UNIX); s.connect({str(machine.socket)!r}); "
            f"s.recv(100); s.sendall({states!r}); time.sleep(60)")
    machine.start()
    machine.helper(PUPIL, argv=[str(SYSTEM_PYTHON), "-c", liar])
    wait_for(lambda: "idle time grew by" in machine.log.read_text(), what="the liar to be dropped")
    machine.offering = True
    wait_for(machine.actions, what="the enforcer's decision")

    assert machine.actions() == [KEPT_ON]
    assert f"session helper of {PUPIL} (pid " in machine.log.read_text()


def test_a_helper_that_crashes_during_the_warning_withdraws_it_and_the_machine_stays_on(machine: Machine) -> None:
    machine.start()
    helper = machine.helper(PUPIL)
    machine.connected(PUPIL)
    machine.offering = True
    wait_for(machine.actions, what="the warning")
    helper.kill()  # SIGKILL: no goodbye
    wait_for(lambda: len(machine.actions()) >= 2, what="the enforcer to notice")

    assert [outcome for outcome, _ in machine.actions()] == ["warned", "skipped"]
    assert machine.actions()[1][1] == (f"kept on: warning withdrawn: {PUPIL} (tty7) signed in and no session "
                                       "helper answers; retry in 30 min")
    assert machine.ran() == []


def test_at_the_sign_in_screen_no_helper_is_needed_and_the_machine_powers_down(machine: Machine) -> None:
    machine.start(signed_in=())
    machine.offering = True
    wait_for(machine.actions, what="the power-down on the next report")

    assert machine.ran() == [["systemctl", "poweroff"]]
    assert machine.actions()[0] == ("done", "shutdown (warn): none of caretaker-no-such-process")
