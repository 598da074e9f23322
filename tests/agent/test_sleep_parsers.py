"""What holds a machine awake, and whether updates install, read from each OS tool's own output.

Fixtures are in tests/fixtures/insomnia/ (README there says which are real captures and which are written
from each tool's documented format)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.platform import linux_sleep, macos_sleep, windows_sleep
from agent.protocol import HolderKind, SleepHolder, UpdateStatus

FIXTURES = Path(__file__).parent.parent / "fixtures" / "insomnia"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("parse", "name", "expected"), [
    (windows_sleep.parse_powercfg_requests, "windows_powercfg_requests.txt", (
        SleepHolder(HolderKind.DISPLAY, "Video Wake Lock", "msedge.exe"),
        SleepHolder(HolderKind.SYSTEM, "An audio stream is currently in use.", ""),
        SleepHolder(HolderKind.SYSTEM, "Video Wake Lock", "msedge.exe"),
        SleepHolder(HolderKind.SYSTEM, "svchost.exe (wuauserv)", "svchost.exe (wuauserv)"),
        SleepHolder(HolderKind.EXECUTION, "Playing audio", "Microsoft.Media.Player.exe"))),
    (windows_sleep.parse_powercfg_requests, "windows_powercfg_requests_none.txt", ()),
    (macos_sleep.parse_pmset_assertions, "macos_pmset_assertions.txt", (
        SleepHolder(HolderKind.SYSTEM, "com.apple.audio.BuiltInSpeakerDevice.context.preventuseridlesleep",
                    "coreaudiod", 412),
        SleepHolder(HolderKind.DISPLAY, "Zoom meeting in progress", "zoom.us", 1880),
        SleepHolder(HolderKind.NETWORK, "Time Machine backup to school-nas", "backupd", 97))),
    (linux_sleep.parse_systemd_inhibit, "linux_systemd_inhibit.txt", (
        SleepHolder(HolderKind.IDLE, "teacher: Fullscreen video", "gnome-shell", 7311),
        SleepHolder(HolderKind.IDLE, "Firefox: audio-playing", "firefox", 9120),
        SleepHolder(HolderKind.SYSTEM, "Firefox: audio-playing", "firefox", 9120),
        SleepHolder(HolderKind.SYSTEM, "backup: Nightly backup to the school NAS", "borg", 4410))),
    (linux_sleep.parse_systemd_inhibit, "", ()),
])
def test_each_os_names_what_holds_the_machine_awake_and_delay_locks_do_not_count(parse, name, expected):
    assert parse(fixture(name) if name else "Failed to connect to bus: No such file or directory\n") == expected


@pytest.mark.parametrize(("reading", "expected"), [
    (lambda: windows_sleep.parse_standby_timeout(fixture("windows_powercfg_query_standby_never.txt")), 0),
    (lambda: windows_sleep.parse_standby_timeout(fixture("windows_powercfg_query_standby_60min.txt")), 3600),
    (lambda: windows_sleep.parse_standby_timeout("Invalid Parameters -- try \"/?\" for help"), None),
    (lambda: macos_sleep.parse_pmset_sleep(fixture("macos_pmset_g.txt")), 0),
    (lambda: macos_sleep.parse_pmset_sleep(" sleep                20\n displaysleep 10\n"), 20),
    (lambda: linux_sleep.parse_idle_action([fixture("linux_logind.conf")]), "ignore"),
    (lambda: linux_sleep.parse_idle_action([fixture("linux_logind.conf"), fixture("linux_logind_school.conf")]),
     "suspend"),
    (lambda: linux_sleep.parse_unit_masked(fixture("linux_systemctl_show_masked.txt")), True),
    (lambda: linux_sleep.parse_unit_masked("LoadState=loaded\nLoadState=loaded\n"), False),
], ids=["windows-never", "windows-60min", "windows-error", "macos-never", "macos-20", "linux-default",
        "linux-dropin-suspends", "linux-masked", "linux-loaded"])
def test_whether_the_os_would_ever_sleep_on_its_own(reading, expected):
    assert reading() == expected


@pytest.mark.parametrize(("masked", "action", "expected"), [
    (True, "suspend", False), (False, "suspend", True), (False, "ignore", None), (None, "hibernate", True)])
def test_linux_sleep_timer_is_false_only_when_sleep_is_masked_and_unknown_when_left_to_the_desktop(masked, action,
                                                                                                   expected):
    assert linux_sleep.sleep_timer_set(masked, action) is expected


def test_a_lock_in_proc_locks_is_found_by_device_and_inode_real_capture():
    held = linux_sleep.parse_proc_locks(fixture("linux_proc_locks.txt"))
    assert held[(254, 0, 2146448)] == 25436
    assert held[(0xfe, 0, 1450211)] == 3785
    assert (254, 0, 1) not in held


@pytest.mark.parametrize(("name", "expected"), [
    ("linux_needrestart_b.txt", True), ("linux_needrestart_b_current.txt", False)])
def test_needrestart_says_whether_a_newer_kernel_waits_for_a_reboot(name, expected):
    assert linux_sleep.parse_needrestart(fixture(name)) is expected


def test_linux_update_status_puts_the_evidence_together():
    status = linux_sleep.update_status("linux-image-6.1.0-27-amd64\nlibc6\n", "/var/lib/dpkg/lock-frontend held "
                                       "(pid 812)", "unattended-upgr running (pid 812)", None)
    assert status == UpdateStatus(installing=True, reboot_pending=True, detail=(
        "unattended-upgr running (pid 812); /var/lib/dpkg/lock-frontend held (pid 812); "
        "/run/reboot-required (linux-image-6.1.0-27-amd64, libc6)"))
    assert linux_sleep.update_status(None, None, None, False) == UpdateStatus(False, False, "")


def test_windows_reboot_keys_and_macos_available_updates():
    assert windows_sleep.parse_reg_query(fixture("windows_reg_query_rebootrequired.txt")) is True
    assert windows_sleep.parse_reg_query(None) is False
    assert macos_sleep.parse_softwareupdate_list(fixture("macos_softwareupdate_list.txt")) == (2, 1)
