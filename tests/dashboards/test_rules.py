"""The recording rules and alerts in dashboards/prometheus/ are valid and do what their unit tests say.

``promtool check rules`` catches syntax and bad PromQL; ``promtool test rules`` runs the unit tests in
dashboards/prometheus/tests/ (series in, exact samples and alerts out).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.dashboards.promtools import RULE_FILES, RULES_DIR, program

UNIT_TESTS = sorted((RULES_DIR / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([program("promtool"), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)


def test_the_rule_files_pass_promtool_check():
    checked = promtool("check", "rules", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("SUCCESS") == len(RULE_FILES)


def test_every_alert_has_a_unit_test():
    tested = "".join(path.read_text() for path in UNIT_TESTS)
    alerts = [line.split(":", 1)[1].strip() for line in (RULES_DIR / "alerts.yml").read_text().splitlines()
              if line.strip().startswith("- alert:")]
    assert alerts
    assert [alert for alert in alerts if f"alertname: {alert}" not in tested] == []


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda path: path.name)
def test_the_rules_unit_tests_pass(unit_test):
    result = promtool("test", "rules", str(unit_test.relative_to(RULES_DIR)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
