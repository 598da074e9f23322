"""The real ``caretaker-agent`` entry point, run as a process the way an operator or a service runs it."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import credentials
from agent.credentials import Credentials
from agent.protocol import Report, from_wire
from agent.spool import Spool
from tests.agent.test_client import SECRET, TOKEN, Answer, FakeController, Pki

BIN = Path(sys.executable).parent
AGENT = [str(BIN / "caretaker-agent")]


def agent(*args: str, command: list[str] = AGENT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


def pending(state: Path) -> list[int]:
    with Spool(state / "spool.sqlite3", max_bytes=1 << 30) as spool:
        return [seq for seq, _ in spool.oldest(10_000)]


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)





def enrolled(state: Path, controller_url: str) -> None:
    """Leave credentials in ``state`` as an earlier enrolment would have."""
    credentials.save(state / "credentials.json",
                     Credentials(controller=controller_url, agent_id="ag-7", secret=SECRET, device_id=7, site="north"))


# --- collect --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [AGENT, [sys.executable, "-m", "agent"]], ids=["script", "python -m"])
def test_collect_prints_the_report_it_would_send_and_touches_nothing(tmp_path: Path, command: list[str]) -> None:
    state = tmp_path / "state"

    result = agent("collect", "--root", "/", "--state-dir", str(state), command=command)

    assert result.returncode == 0, result.stderr
    report = from_wire(Report, json.loads(result.stdout))
    assert report.inventory is not None
    assert report.inventory.hostname
    assert not state.exists(), "collect creates no spool and no credentials"


# --- refusing to start ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "once"])
def test_with_no_controller_and_no_credentials_it_explains_in_one_line(tmp_path: Path, command: str) -> None:
    result = agent(command, "--state-dir", str(tmp_path))

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--controller" in result.stderr


def test_a_controller_but_nothing_to_enrol_with_asks_for_a_token(tmp_path: Path) -> None:
    result = agent("once", "--controller", "https://controller.school.example", "--state-dir", str(tmp_path))

    assert result.returncode == 2
    assert "--token" in result.stderr


def test_plain_http_is_refused_before_the_token_goes_anywhere(tmp_path: Path) -> None:
    result = agent("once", "--controller", "http://controller.school.example", "--token", TOKEN,
                   "--state-dir", str(tmp_path))

    assert result.returncode == 2
    assert "https://" in result.stderr
    assert TOKEN not in result.stderr


def test_credentials_for_another_controller_do_not_count(tmp_path: Path, controller: FakeController) -> None:
    enrolled(tmp_path, "https://old-controller.school.example")

    result = agent("once", "--controller", controller.url, "--state-dir", str(tmp_path))

    assert result.returncode == 2
    assert "--token" in result.stderr
    assert controller.requests == []


# --- once -----------------------------------------------------------------------------------------


def test_once_enrols_delivers_and_keeps_the_credentials_private(
        tmp_path: Path, controller: FakeController, pki: Pki) -> None:
    state = tmp_path / "state"

    result = agent("once", "--controller", controller.url, "--token", TOKEN, "--ca-file", str(pki.ca_file),
                   "--state-dir", str(state))

    assert result.returncode == 0, result.stderr
    assert len(controller.reports_received()) == 1
    assert pending(state) == []
    creds_file = state / "credentials.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    stored = credentials.load(creds_file)
    assert stored is not None and stored.agent_id == "ag-7" and stored.controller == controller.url
    for secret in (TOKEN, SECRET):
        assert secret not in result.stdout + result.stderr


def test_once_again_reuses_the_stored_controller_and_credentials(
        tmp_path: Path, controller: FakeController, pki: Pki) -> None:
    enrolled(tmp_path, controller.url)

    result = agent("once", "--ca-file", str(pki.ca_file), "--state-dir", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert [seen.path for seen in controller.requests] == ["/api/v1/agent/reports"]
    assert controller.requests[0].headers["Authorization"] == f"Bearer ag-7:{SECRET}"


def test_once_fails_in_one_line_and_keeps_the_report_when_the_controller_is_down(
        tmp_path: Path, controller: FakeController, pki: Pki) -> None:
    enrolled(tmp_path, controller.url)
    controller.respond = lambda _seen: Answer(503, {"detail": "database is restarting"})

    result = agent("once", "--ca-file", str(pki.ca_file), "--state-dir", str(tmp_path))

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "503" in result.stderr and "stays spooled" in result.stderr
    assert len(pending(tmp_path)) == 1


def test_once_refuses_a_controller_whose_certificate_it_cannot_verify(
        tmp_path: Path, controller: FakeController, pki: Pki) -> None:
    result = agent("once", "--controller", controller.url, "--token", TOKEN, "--ca-file", str(pki.other_ca_file),
                   "--state-dir", str(tmp_path))

    assert result.returncode == 1
    assert "certificate" in result.stderr
    assert controller.requests == []
    assert not (tmp_path / "credentials.json").exists()


def test_once_enrols_with_a_token_read_from_a_file_and_never_shows_it(
        tmp_path: Path, controller: FakeController, pki: Pki) -> None:
    token_file = tmp_path / "enrollment-token"
    token_file.write_text(f"{TOKEN}\n")  # as an editor or `echo` leaves it

    result = agent("once", "--controller", controller.url, "--token-file", str(token_file),
                   "--ca-file", str(pki.ca_file), "--state-dir", str(tmp_path / "state"))

    assert result.returncode == 0, result.stderr
    enrol = next(seen for seen in controller.requests if seen.path == "/api/v1/agent/enroll")
    assert enrol.body["token"] == TOKEN
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("content", [None, "  \n"], ids=["missing", "empty"])
def test_a_token_file_that_holds_no_token_is_refused_in_one_line(
        tmp_path: Path, controller: FakeController, pki: Pki, content: str | None) -> None:
    token_file = tmp_path / "enrollment-token"
    if content is not None:
        token_file.write_text(content)

    result = agent("once", "--controller", controller.url, "--token-file", str(token_file),
                   "--ca-file", str(pki.ca_file), "--state-dir", str(tmp_path / "state"))

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert str(token_file) in result.stderr
    assert controller.requests == []


def test_a_token_and_a_token_file_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)

    result = agent("once", "--controller", "https://controller.school.example", "--token", TOKEN,
                   "--token-file", str(tmp_path / "token"), "--state-dir", str(tmp_path))

    assert result.returncode == 2
    assert "not allowed with" in result.stderr


# --- run ------------------------------------------------------------------------------------------


def test_run_enrols_reports_every_interval_and_stops_cleanly_on_sigterm(
        tmp_path: Path, controller: FakeController, pki: Pki) -> None:
    controller.interval = 1
    state = tmp_path / "state"
    process = subprocess.Popen([*AGENT, "run", "--controller", controller.url, "--token", TOKEN,
                                "--ca-file", str(pki.ca_file), "--state-dir", str(state), "--interval", "1",
                                "--session-address", str(tmp_path / "session.sock")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(controller.reports_received()) >= 3)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)

    assert process.returncode == 0, err
    received = controller.reports_received()
    assert received == list(range(received[0], received[0] + len(received)))
    assert [s.path for s in controller.requests].count("/api/v1/agent/enroll") == 1
    for secret in (TOKEN, SECRET):
        assert secret not in out + err


def test_run_keeps_collecting_while_the_controller_is_away_and_stops_on_sigint(
        tmp_path: Path, pki: Pki) -> None:
    with FakeController(pki.cert_file, pki.key_file) as gone:
        url = gone.url
    enrolled(tmp_path, url)
    process = subprocess.Popen([*AGENT, "run", "--ca-file", str(pki.ca_file), "--state-dir", str(tmp_path),
                                "--interval", "1", "--session-address", str(tmp_path / "session.sock")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "spool.sqlite3").exists() and len(pending(tmp_path)) >= 2)
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=15)

    assert process.returncode == 0, err
    assert "cannot reach" in err
    assert len(pending(tmp_path)) >= 2
