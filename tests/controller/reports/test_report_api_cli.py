"""Reports through the real controller's API and the real `caretaker report` command.

Read-only roles may download; an auditor only for the sites granted; unknown names are 404, malformed
periods and formats 400. The CLI writes the file, or says in one line what is wrong and exits 2.
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import httpx
import pytest
from pypdf import PdfReader
from sqlmodel import Session

from controller import migrate
from controller.db import make_engine
from tests.conftest import BIN, start_controller
from tests.controller.reports import estate
from tests.controller.reports.estate import TRUST, WEEK


def caretaker(*args: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "caretaker"), *args, "--database-url", database_url], capture_output=True,
                          text=True, timeout=120)


def token(database_url: str, role: str, *sites: str) -> str:
    site_args = [a for s in sites for a in ("--site", s)]
    result = caretaker("apitoken", "create", f"{role}-reports", "--role", role, *site_args, database_url=database_url)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split()[-1]


@pytest.fixture
def served(session, database_url, policy_dir, tmp_path):
    running = start_controller(database_url, tmp_path, env={"CARETAKER_POLICY_DIR": str(policy_dir)})
    yield running
    running.stop()


def get(served, path: str, bearer: str | None, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.get(f"{served.url}/api/v1/reports/{path}", params=params, headers=headers, timeout=120)


def test_reports_download_by_role_and_granted_site(served, database_url):
    bursar = token(database_url, "bursar")
    auditor = token(database_url, "auditor", "Brook Academy")
    manager = token(database_url, "network_manager")

    csv = get(served, "bursar", bursar, site="Brook Academy", period=WEEK, format="csv")
    assert csv.status_code == 200, csv.text
    assert csv.headers["content-type"] == "application/zip"
    assert 'filename="caretaker-bursar-brook-academy-2025-11-10-to-2025-11-16.zip"' in csv.headers[
        "content-disposition"]
    sites = zipfile.ZipFile(io.BytesIO(csv.content)).read("sites.csv").decode("utf-8-sig").splitlines()
    assert sites[-1].startswith("Total,1,3.4,1.01,0.6")  # 168 h × 20 W = 3.36 kWh; × 30 p; × 0.177 kg

    pack = get(served, "audit", manager, trust=TRUST, period=WEEK, format="json")
    assert pack.status_code == 200, pack.text
    assert sum(s["kwh"] for s in pack.json()["secr"]) == pytest.approx(2.52 + 1.064 + 3.36)

    assert get(served, "bursar", auditor, site="Brook Academy", period=WEEK).status_code == 200
    refused = get(served, "audit", auditor, trust=TRUST, period=WEEK)
    assert refused.status_code == 403 and "Oakfield Primary" in refused.json()["detail"]
    assert get(served, "bursar", auditor, site="Oakfield Primary", period=WEEK).status_code == 403
    assert get(served, "bursar", None, site="Brook Academy", period=WEEK).status_code == 401


def test_bad_report_requests_are_4xx_with_a_reason(served, database_url):
    bursar = token(database_url, "bursar")
    cases = [
        (dict(site="Nowhere", period=WEEK), 404, "no site called 'Nowhere'"),
        (dict(trust="Nobody", period=WEEK), 404, "no site belongs to a trust called 'Nobody'"),
        (dict(site="Brook Academy", period="2025-27"), 400, "27 does not follow 2025"),
        (dict(site="Brook Academy", period=WEEK, format="docx"), 400, "not 'docx'"),
        (dict(site="Brook Academy", trust=TRUST, period=WEEK), 400, "one of them"),
    ]
    for params, status, reason in cases:
        answer = get(served, "bursar", bursar, **params)
        assert (answer.status_code, reason in answer.json()["detail"]) == (status, True), (params, answer.text)
    assert get(served, "audit", bursar, trust=TRUST, period=WEEK, format="json").status_code == 200
    assert get(served, "bursar", bursar, site="Brook Academy", period=WEEK, format="json").status_code == 400


def test_the_cli_writes_a_pdf_a_bursar_can_read(session, database_url, policy_dir, tmp_path):
    out = tmp_path / "report.pdf"
    result = caretaker("report", "bursar", "--trust", TRUST, "--period", WEEK, "--format", "pdf", "--out", str(out),
                       "--policies", str(policy_dir), database_url=database_url)
    assert result.returncode == 0, result.stderr
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(out).pages)
    assert "extend power-down to Hall (Brook Academy): about £40.86 and 24.1 kgCO2e a year" in text


def test_the_cli_writes_an_audit_pack_as_json(session, database_url, policy_dir, tmp_path):
    out = tmp_path / "pack.json"
    result = caretaker("report", "audit", "--trust", TRUST, "--period", WEEK, "--format", "json", "--out", str(out),
                       "--policies", str(policy_dir), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["secr"][0]["site"] == "Brook Academy"


CLI_MISTAKES = [
    (["bursar", "--site", "Nowhere", "--period", "2025-26"], "no site called 'Nowhere'"),
    (["bursar", "--site", "Brook Academy", "--period", "2025/26"], "period '2025/26' is not FY2025-26"),
    (["bursar", "--period", "2025-26"], "give --site or --trust (one of them)"),
    (["bursar", "--site", "Brook Academy", "--period", "2025-26", "--format", "json"],
     "a bursar report comes as html, pdf, csv, not 'json'"),
    (["audit", "--trust", TRUST, "--period", "spring-2031"], "no spring term starting in 2031"),
]


def test_the_cli_says_what_is_wrong_in_one_line(tmp_path, policy_dir):
    """Mistakes do not depend on the backend, so this runs once, on SQLite (each case is a process)."""
    database_url = f"sqlite:///{tmp_path / 'caretaker.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with Session(engine) as session:
        estate.build(session)
        session.commit()
    engine.dispose()
    out = tmp_path / "never.html"
    for args, message in CLI_MISTAKES:
        result = caretaker("report", *args, "--out", str(out), "--policies", str(policy_dir),
                           database_url=database_url)
        assert result.returncode == 2, args
        assert result.stderr.startswith(f"caretaker: error: {message}"), result.stderr
        assert result.stderr.count("\n") == 1 and not out.exists(), result.stderr
