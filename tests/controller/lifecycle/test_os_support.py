"""End of OS support from what agents really send: the inventory captures in tests/fixtures/<os>/ run
through the agent's own platform parsers, then looked up in controller/lifecycle/data/os_support.yaml."""

from __future__ import annotations

from datetime import date

import pytest

from agent.platform.macos import parse_sw_vers
from agent.platform.windows import parse_host_facts
from controller.lifecycle.os_support import describe, support_end
from controller.lifecycle.recommend import DeviceFacts, Kind, Policy, recommend
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures"


def windows(name: str) -> tuple[str, str]:
    facts = parse_host_facts((FIXTURES / "windows" / "inventory" / f"{name}.json").read_text(), "AMD64")
    return facts.os.name, facts.os.version


def macos(name: str) -> tuple[str, str]:
    return "Darwin", parse_sw_vers((FIXTURES / "macos" / "sw_vers" / f"{name}.txt").read_text())


def test_a_windows_10_pro_agent_is_past_support_from_14_october_2025_unless_enrolled_in_esu():
    reported = windows("thinkpad-x13")
    assert reported == ("Windows", "Microsoft Windows 10 Pro 10.0.19045")
    assert describe(*reported).text == "Windows 10 Pro, build 19045"
    assert support_end(*reported).ends == date(2025, 10, 14)
    assert support_end(*reported, esu=True).ends == date(2028, 10, 10)


def test_windows_11_says_windows_10_in_its_caption_and_is_named_by_its_build():
    reported = windows("optiplex-7090")
    assert reported == ("Windows", "Microsoft Windows 11 Education 10.0.22631")
    assert describe(*reported).text == "Windows 11 Education, build 22631"
    assert describe("Windows", "Microsoft Windows 10 Education 10.0.22631").family == "Windows 11"
    assert support_end(*reported).ends == date(2026, 11, 10)  # 23H2, Enterprise and Education
    assert support_end("Windows", "Microsoft Windows 10 Pro 10.0.22631").ends == date(2025, 11, 11)  # Home/Pro
    assert support_end("Windows", "Microsoft Windows 11 Pro Education 10.0.26100").ends == date(2026, 10, 13)


@pytest.mark.parametrize("build, enterprise, consumer", [
    (22000, date(2024, 10, 8), date(2023, 10, 10)), (22621, date(2025, 10, 14), date(2024, 10, 8)),
    (22631, date(2026, 11, 10), date(2025, 11, 11)), (26100, date(2027, 10, 12), date(2026, 10, 13))])
def test_each_windows_11_release_ends_by_edition_group(build, enterprise, consumer):
    assert support_end("Windows", f"Microsoft Windows 11 Enterprise 10.0.{build}").ends == enterprise
    assert support_end("Windows", f"Microsoft Windows 11 Home 10.0.{build}").ends == consumer


def test_servers_and_unknown_releases_have_no_date_rather_than_a_wrong_one():
    assert support_end(*windows("hyper-v-guest")) is None  # Windows Server 2022
    assert describe(*windows("hyper-v-guest")).family == "Windows Server"
    assert support_end("Linux", "Ubuntu 24.04.1 LTS") is None


def test_macs_are_named_by_their_marketing_name_and_darwin_23_is_macos_14():
    assert describe(*macos("macbook-air-m2")).family == "macOS 14"
    assert describe("Darwin", "23.4.0").text == "macOS 14 (Darwin 23)"
    assert support_end("Darwin", "macOS 13.6.7 (22G720)").ends == date(2025, 9, 15)


def test_every_device_past_or_within_six_months_of_its_date_is_recommended_with_the_reason():
    def device(n: int, version: str, esu: bool = False) -> DeviceFacts:
        return DeviceFacts(n, f"PC{n}", "Hill", "desktop", "deployed", os_name="Windows", os_version=version,
                           os_esu=esu)

    today = date(2026, 6, 1)
    found = {r.device_id: (r.kind, r.reason) for r in recommend([
        device(1, "Microsoft Windows 10 Education 10.0.19045"),
        device(2, "Microsoft Windows 10 Education 10.0.19045", esu=True),
        device(3, "Microsoft Windows 11 Pro 10.0.26100"),  # 13 Oct 2026: 134 days away
        device(4, "Microsoft Windows 11 Education 10.0.26100"),  # 12 Oct 2027: well ahead
    ], Policy(), today, None)}
    assert found[1][0] == Kind.OS_SUPPORT_ENDED and "Windows 10 22H2 (Education) security support ended on " \
                                                    "2025-10-14" in found[1][1]
    assert 2 not in found  # ESU to October 2028
    assert found[3] == (Kind.OS_SUPPORT_ENDING, "Windows 11 24H2 (Pro) security support ends on 2026-10-13, in "
                        "134 days (https://learn.microsoft.com/lifecycle/products/windows-11-enterprise-and-education)")
    assert 4 not in found
