"""Recommendations on a fixture estate with known ages, warranties, battery wear and use: exact lists."""

from datetime import UTC, date, datetime

import pytest

from controller.lifecycle.embodied import Figure
from controller.lifecycle.recommend import GIB, DeviceFacts, Policy, Recommendation, recommend, windows11_cpu

TODAY = date(2026, 11, 23)
W10_ENDED = ("Windows 10 22H2 (Pro) security support ended on 2025-10-14 "
             "(https://learn.microsoft.com/lifecycle/products/windows-10-enterprise-and-education)")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RECENT = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
DESKTOP = Figure(280.0, 5.0, "test", "class")


def facts(device_id: int, hostname: str, device_class: str, **kw) -> DeviceFacts:
    base = {"site": "Hill Primary", "state": "deployed", "last_seen": RECENT, "memory_bytes": 8 * GIB}
    return DeviceFacts(device_id, hostname, device_class=device_class, **{**base, **kw})


ESTATE = [
    # Six years old and its CPU cannot run Windows 11: replace, and its Windows 10 support has ended.
    facts(1, "HILL-D01", "desktop", purchase_date=date(2020, 9, 1), os_name="Windows",
          os_version="Microsoft Windows 10 Pro 10.0.19045",
          cpu_model="Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz", has_ssd=False, embodied=DESKTOP),
    # Five and a half years old but a 10th-generation CPU on Windows 11: extend with RAM and an SSD.
    facts(2, "HILL-D02", "desktop", purchase_date=date(2021, 6, 1), os_name="Windows",
          os_version="Microsoft Windows 10 Education 10.0.26100",
          cpu_model="Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz", memory_bytes=4 * GIB, has_ssd=False,
          embodied=DESKTOP),
    # Old enough, but nobody knows its specification.
    facts(3, "HILL-D03", "desktop", purchase_date=date(2021, 1, 1), memory_bytes=None),
    # Young laptop: warranty ends in 53 days, battery worn to 55%.
    facts(4, "HILL-L01", "laptop", purchase_date=date(2024, 9, 1), warranty_end=date(2027, 1, 15),
          battery_health=0.55),
    # Not seen for 53 days while deployed.
    facts(5, "HILL-L02", "laptop", last_seen=datetime(2026, 10, 1, 12, 0, tzinfo=UTC)),
    # In use one and a half hours a week.
    facts(6, "HILL-L03", "laptop", active_hours_per_week=1.5),
    # Retired devices get no advice, however old.
    facts(7, "HILL-L04", "laptop", state="retired", purchase_date=date(2015, 1, 1), battery_health=0.2),
    # A healthy server with a warranty well ahead, and a laptop with a healthy battery used all week.
    facts(8, "HILL-S01", "server", purchase_date=date(2022, 3, 1), warranty_end=date(2027, 6, 1)),
    facts(9, "HILL-L05", "laptop", battery_health=0.81, active_hours_per_week=30.0),
    # A 2 GiB tablet is below the minimum for any current OS.
    facts(10, "HILL-T01", "tablet", purchase_date=date(2025, 2, 1), os_name="iPadOS", memory_bytes=2 * GIB),
    # In repair, unseen for months: expected, so not reported as missing.
    facts(11, "HILL-L06", "laptop", state="in_repair", last_seen=datetime(2026, 6, 1, tzinfo=UTC)),
]


def test_the_fixture_estate_gets_exactly_these_recommendations():
    got = recommend(ESTATE, Policy(), TODAY, NOW)
    site = "Hill Primary"
    assert got == [
        Recommendation(1, "HILL-D01", site, "refresh_due", "6.2 years old (desktop refresh at 5)"),
        Recommendation(1, "HILL-D01", site, "os_support_ended", W10_ENDED),
        Recommendation(1, "HILL-D01", site, "below_spec", "CPU Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz cannot run "
                       "Windows 11 (needs Intel 8th generation or AMD Zen+)"),
        Recommendation(2, "HILL-D02", site, "extend", "5.5 years old (desktop refresh at 5) but fit for 2 more "
                       "years: add RAM (4 → 8 GiB) and fit an SSD; avoids 112 kgCO2e of a replacement's "
                       "embodied carbon", 112.0),
        Recommendation(3, "HILL-D03", site, "refresh_due", "5.9 years old (desktop refresh at 5); its specification "
                       "is unknown: check whether it can be extended"),
        Recommendation(4, "HILL-L01", site, "warranty_ending", "warranty ends on 2027-01-15, in 53 days"),
        Recommendation(4, "HILL-L01", site, "battery_worn",
                       "battery holds 55% of its design capacity (replace below 60%)"),
        Recommendation(5, "HILL-L02", site, "not_seen",
                       "not seen for 53 days while deployed: find it, or record it lost or disposed"),
        Recommendation(6, "HILL-L03", site, "underused",
                       "in use 1.5 h a school week (under 2 h): redeploy it where it is needed"),
        Recommendation(10, "HILL-T01", site, "below_spec", "RAM 2 GiB, below the 4 GiB minimum"),
    ]


def test_the_policy_is_editable():
    policy = Policy(refresh_years={"desktop": 7, "laptop": 4}, notice_days=30, battery_min_health=0.5)
    kinds = [(r.hostname, r.kind) for r in recommend(ESTATE[:4], policy, TODAY, NOW)]
    assert kinds == [("HILL-D01", "os_support_ended"), ("HILL-D01", "below_spec")]


@pytest.mark.parametrize(("cpu", "runs_windows_11"), [
    ("Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz", False),
    ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", True),
    ("Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz", True),
    ("11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz", True),
    ("12th Gen Intel(R) Core(TM) i5-1235U", True),
    ("Intel(R) Core(TM) i5-2520M CPU @ 2.50GHz", False),
    ("Intel(R) Core(TM) i7 CPU 920 @ 2.67GHz", None),
    ("Intel(R) Core(TM) i5-650 CPU @ 3.20GHz", False),
    ("Intel(R) Core(TM) Ultra 5 125U", True),
    ("AMD Ryzen 5 1600 Six-Core Processor", False),
    ("AMD Ryzen 5 2600 Six-Core Processor", True),
    ("AMD Ryzen 5 2400G with Radeon Vega Graphics", False),
    ("AMD Ryzen 5 PRO 4650G with Radeon Graphics", True),
    ("Intel(R) Celeron(R) N4020 CPU @ 1.10GHz", None),
    (None, None),
])
def test_windows_11_cpu_support_is_read_from_the_model_name(cpu, runs_windows_11):
    assert windows11_cpu(cpu) is runs_windows_11
