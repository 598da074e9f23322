"""The OpenAPI contract tells the truth: schemathesis fuzzes every operation of a real controller (on
PostgreSQL, the stricter backend) as a network manager, and fails on any server error, any status code,
content type or header the route does not declare, or any body that does not match its schema.

Bounded in examples and time so it costs CI about a minute.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, ControllerProcess, start_controller

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_operation_answers_as_its_schema_says(database_url: str, tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis", path=str(BIN))
    assert schemathesis, "schemathesis is in the test extras (pyproject.toml)"
    controller: ControllerProcess = start_controller(database_url, tmp_path)
    try:
        controller.cli("token", "create", "--site", "Hillside Primary")
        token = controller.cli("apitoken", "create", "contract", "--role", "network_manager").stdout.strip()
        run = subprocess.run(
            [schemathesis, "run", f"{controller.url}/openapi.json", "--header", f"Authorization: Bearer {token}",
             "--checks", CHECKS, "--max-examples", "20", "--max-time", "60", "--workers", "2",
             "--request-timeout", "20", "--seed", "13", "--no-color",
             # Its coverage phase crashes on this operation's raw CSV body (a KeyError inside schemathesis
             # 4.32); the attack tests send that route bad bodies themselves.
             "--exclude-path", "/api/v1/assets/import"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)  # its cache stays out of the repository
    finally:
        controller.stop()
    (tmp_path / "schemathesis.out").write_text(run.stdout)
    failures = run.stdout[run.stdout.find("FAILURES"):][:6000] if "FAILURES" in run.stdout else run.stdout[-3000:]
    assert run.returncode == 0, failures
    assert "Traceback" not in controller.log.read_text(), controller.log.read_text()[-4000:]
