"""Wake readiness parsers on captured tool output (tests/fixtures/<os>/...), table-driven, and the Linux
check over a sysfs tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collectors import wake
from agent.platform import linux_wake, macos_wake, windows_wake
from agent.platform.wake import for_platform
from agent.protocol import WakeReadiness

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture(*parts: str) -> str:
    return (FIXTURES.joinpath(*parts)).read_text(encoding="utf-8")


@pytest.mark.parametrize(("machine", "wake_on"), [
    ("optiplex-7070-e1000e", "g"),
    ("latitude-5490-disabled", "d"),
    ("nuc-r8169-all", "pumbg"),
    ("proxmox-virtio-none", None),
])
def test_ethtool_wake_on_is_read_from_the_current_setting_not_the_supported_list(machine, wake_on):
    assert linux_wake.parse_ethtool_wake_on(fixture("linux", "ethtool", machine)) == wake_on


@pytest.mark.parametrize(("wakeup", "wake_on", "armed"), [
    (True, "g", True), (None, "g", True), (True, None, True),
    (False, "g", False), (True, "d", False), (None, "pumb", False),
    (None, None, None),
])
def test_a_nic_is_armed_only_when_neither_the_kernel_nor_the_nic_says_no(wakeup, wake_on, armed):
    assert linux_wake.nic_armed(wakeup, wake_on) is armed


def test_linux_reads_the_kernel_wakeup_switch_of_each_wired_nic(tmp_path):
    net = tmp_path / "sys/class/net"
    for name, state in (("eno1", "disabled\n"), ("enp2s0", "enabled\n")):
        (net / name / "device/power").mkdir(parents=True)
        (net / name / "device/power/wakeup").write_text(state)
    (net / "wlp3s0/device/power").mkdir(parents=True)
    (net / "wlp3s0/wireless").mkdir()
    (net / "lo").mkdir()
    reading = linux_wake.wake_readiness(tmp_path)
    assert reading.nic_armed is True  # enp2s0 may wake the machine
    assert reading.detail == "eno1: wakeup disabled, Wake-on ?; enp2s0: wakeup enabled, Wake-on ?"
    (net / "enp2s0/device/power/wakeup").write_text("disabled\n")
    assert linux_wake.wake_readiness(tmp_path).nic_armed is False
    assert linux_wake.wake_readiness(tmp_path / "nothing") == WakeReadiness(nic_armed=None, detail="")


@pytest.mark.parametrize(("machine", "fast_startup", "modern_standby", "nic_armed"), [
    ("optiplex-7090", True, False, True),
    ("surface-laptop-4", False, True, True),
    ("thinkpad-x13-none", True, False, False),
])
def test_windows_fast_startup_modern_standby_and_armed_nic(machine, fast_startup, modern_standby, nic_armed):
    assert windows_wake.parse_hiberboot(fixture("windows", "wake", machine, "reg-hiberboot.txt")) is fast_startup
    assert windows_wake.parse_sleep_states(fixture("windows", "wake", machine, "powercfg-a.txt")) is modern_standby
    assert windows_wake.parse_wake_armed(fixture("windows", "wake", machine, "powercfg-wake-armed.txt")) is nic_armed


def test_windows_output_it_cannot_read_is_unknown_not_false():
    assert windows_wake.parse_hiberboot("ERROR: The system was unable to find the specified registry key") is None
    assert windows_wake.parse_sleep_states("Les états de veille suivants sont disponibles") is None
    assert windows_wake.parse_wake_armed("") is None


@pytest.mark.parametrize(("machine", "armed"), [("imac-2019-womp-on", True), ("macbook-air-m1-womp-off", False)])
def test_macos_wake_for_network_access(machine, armed):
    assert macos_wake.parse_pmset_womp(fixture("macos", "pmset", machine)) is armed


def test_each_os_has_its_checks_and_others_have_none():
    assert for_platform("linux") is linux_wake
    assert for_platform("win32") is windows_wake
    assert for_platform("darwin") is macos_wake
    assert for_platform("sunos5") is None


def test_the_collector_keeps_a_reading_for_an_hour_rather_than_running_tools_every_report(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(linux_wake, "wake_readiness", lambda root: calls.append(root) or WakeReadiness(nic_armed=True))
    monkeypatch.setattr(wake, "for_platform", lambda: linux_wake)
    wake._cache.clear()
    assert wake.collect(tmp_path) == wake.collect(tmp_path) == WakeReadiness(nic_armed=True)
    assert calls == [tmp_path]
