"""Inventory: checked against this machine's own tools, and against fixture machines' sysfs trees."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.collectors import inventory
from agent.platform import linux
from agent.protocol import Battery, DeviceClass, Disk, Monitor, Smbios

from .conftest import SYSFS

THIS_MACHINE = Path("/")


@pytest.fixture(scope="module")
def here() -> inventory.Inventory:
    return inventory.collect(THIS_MACHINE)


def test_hostname_memory_and_cpu_are_this_machines(here: inventory.Inventory) -> None:
    assert here.hostname == socket.gethostname()
    assert here.memory_bytes == psutil.virtual_memory().total
    assert here.cpu is not None
    assert here.cpu.threads == os.cpu_count()


def test_boot_time_matches_the_kernels_btime(here: inventory.Inventory) -> None:
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                 if line.startswith("btime "))

    assert here.boot_time is not None
    assert abs((here.boot_time - datetime.fromtimestamp(btime, UTC)).total_seconds()) <= 2


def test_machine_id_and_distribution_come_from_etc(here: inventory.Inventory) -> None:
    assert here.machine_id == Path("/etc/machine-id").read_text().strip()
    pretty = next(line.split("=", 1)[1].strip().strip('"') for line in Path("/etc/os-release").read_text().splitlines()
                  if line.startswith("PRETTY_NAME="))
    assert here.os.name == "Linux"
    assert here.os.version == pretty
    assert here.os.kernel == os.uname().release


def test_nics_match_what_ip_reports(here: inventory.Inventory) -> None:
    links = {link["ifname"]: link for link in json.loads(
        subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout)}

    assert here.nics, "this machine has at least one NIC with a hardware address"
    for nic in here.nics:
        assert nic.mac == links[nic.name]["address"]
        assert nic.mac == (Path("/sys/class/net") / nic.name / "address").read_text().strip()
        ipv4 = {a["local"] for a in links[nic.name]["addr_info"] if a["family"] == "inet"}
        assert set(nic.ipv4) == ipv4
    assert "lo" not in {nic.name for nic in here.nics}


def test_disks_match_what_lsblk_reports(here: inventory.Inventory) -> None:
    listed = json.loads(subprocess.run(["lsblk", "-J", "-b", "-d", "-o", "NAME,SIZE,ROTA,TYPE"],
                                       capture_output=True, text=True, check=True).stdout)["blockdevices"]
    # util-linux prints rota as a JSON boolean since 2.37 and as "0"/"1" before.
    sizes = {device["name"]: (int(device["size"]), device["rota"] in (True, "1", 1)) for device in listed}

    for disk in here.disks:
        size, rotational = sizes[disk.name]
        assert disk.size_bytes == size
        assert disk.ssd is (not rotational)
    assert not any(disk.name.startswith(("loop", "zram")) for disk in here.disks)


def test_no_user_names_are_collected_for_nobody_signed_in(here: inventory.Inventory) -> None:
    assert here.user_count == len({user.name for user in psutil.users()})
    assert len(here.user_names) == here.user_count


def test_laptop_fixture_is_a_lenovo_laptop_with_its_battery_panel_and_ssd() -> None:
    facts = linux.host_facts(SYSFS / "thinkpad-t14")

    assert facts.smbios == Smbios(vendor="LENOVO", model="ThinkPad T14 Gen 1", serial="PF2K4Z1M",
                                  uuid="6f1c2d80-2b4a-11b2-a85c-c9d2e3f4a5b6", chassis_type=10)
    assert facts.batteries == (Battery(name="BAT0", design_wh=50.5, full_wh=45.21),)
    assert facts.monitors == (Monitor(vendor="AUO", model="B140HAN06.8", serial=None),)
    assert facts.disks == (Disk(name="nvme0n1", size_bytes=1000215216 * 512, ssd=True),)  # not loop0, not the USB stick
    assert facts.machine_id == "7d3f9a0c4e5b4c1f9a8e2b6d0c1f3e5a"
    assert facts.cpu_model == "Intel(R) Core(TM) i5-10310U CPU @ 1.70GHz"
    assert facts.os.version == "Ubuntu 22.04.4 LTS"
    assert facts.physical_nics == ("enp0s31f6", "wlp0s20f3")  # not docker0 or lo
    assert facts.link_speeds == ()  # the cable is unplugged: speed reads -1


def test_desktop_fixture_has_its_monitor_both_disks_and_a_gigabit_link() -> None:
    facts = linux.host_facts(SYSFS / "optiplex-7070")

    assert facts.smbios.chassis_type == 3
    assert facts.batteries == ()
    assert facts.monitors == (Monitor(vendor="DEL", model="DELL P2419H", serial="7MT0191R1SLL"),)
    assert facts.disks == (Disk(name="nvme0n1", size_bytes=500118192 * 512, ssd=True),
                           Disk(name="sda", size_bytes=1953525168 * 512, ssd=False))
    assert facts.link_speeds == (("eno1", 1000),)


def test_battery_reporting_charge_is_converted_with_its_design_voltage() -> None:
    facts = linux.host_facts(SYSFS / "latitude-5490")

    (bat0,) = facts.batteries
    assert bat0.design_wh == pytest.approx(3.684 * 11.4, abs=0.001)  # charge_full_design µAh × voltage_min_design µV
    assert bat0.full_wh == pytest.approx(3.31 * 11.4, abs=0.001)
    assert facts.os.version == "Linux Mint 21.3 (Virginia)"


@pytest.mark.parametrize(("machine_name", "expected"), [
    ("thinkpad-t14", DeviceClass.LAPTOP),
    ("optiplex-7070", DeviceClass.DESKTOP),
    ("poweredge-r740", DeviceClass.SERVER),
])
def test_collected_inventory_classifies_the_fixture_machine(machine_name: str, expected: DeviceClass) -> None:
    assert inventory.collect(SYSFS / machine_name).device_class is expected


@pytest.mark.parametrize(("chassis_type", "has_battery", "expected"), [
    (10, True, DeviceClass.LAPTOP),  # notebook
    (9, False, DeviceClass.LAPTOP),  # laptop, battery removed
    (31, True, DeviceClass.LAPTOP),  # convertible
    (3, False, DeviceClass.DESKTOP),
    (13, False, DeviceClass.DESKTOP),  # all in one
    (35, False, DeviceClass.DESKTOP),  # mini PC
    (3, True, DeviceClass.DESKTOP),  # a desktop on a UPS-like battery is still a desktop
    (23, False, DeviceClass.SERVER),  # rack mount
    (17, False, DeviceClass.SERVER),
    (None, True, DeviceClass.LAPTOP),  # no chassis type, but a battery
    (1, True, DeviceClass.LAPTOP),  # "Other" says nothing either
    (None, False, DeviceClass.UNKNOWN),
    (2, False, DeviceClass.UNKNOWN),
])
def test_device_class_from_chassis_type_and_battery(chassis_type: int | None, has_battery: bool,
                                                    expected: DeviceClass) -> None:
    assert inventory.device_class(chassis_type, has_battery) is expected


def test_dmi_serial_and_uuid_are_none_when_only_root_may_read_them(
        unprivileged_machine: Callable[[str, list[str]], Path], run_unprivileged: Callable[..., Any]) -> None:
    root = unprivileged_machine("thinkpad-t14", ["sys/class/dmi/id/product_serial", "sys/class/dmi/id/product_uuid"])

    smbios = run_unprivileged(linux.smbios, root)

    assert smbios == Smbios(vendor="LENOVO", model="ThinkPad T14 Gen 1", serial=None, uuid=None, chassis_type=10)


Address = namedtuple("Address", "family address netmask broadcast ptp")
Stats = namedtuple("Stats", "isup duplex speed mtu flags")


def test_nics_keep_physical_interfaces_and_normalise_their_addresses() -> None:
    addresses = {
        "Ethernet": [Address(psutil.AF_LINK, "D8-9E-F3-0A-1B-2C", None, None, None),
                     Address(socket.AF_INET, "10.20.30.40", "255.255.255.0", None, None),
                     Address(socket.AF_INET6, "fe80::1c2d:3e4f:5a6b:7c8d%12", None, None, None)],
        "vEthernet (WSL)": [Address(psutil.AF_LINK, "00-15-5D-11-22-33", None, None, None)],
        "Loopback Pseudo-Interface 1": [Address(socket.AF_INET, "127.0.0.1", "255.0.0.0", None, None)],
    }
    stats = {"Ethernet": Stats(True, 2, 1000, 1500, ""), "vEthernet (WSL)": Stats(True, 2, 10000, 1500, "")}

    nics = inventory.nics(addresses, stats, {}, physical=("Ethernet",))

    assert [(n.name, n.mac, n.ipv4, n.ipv6, n.speed_mbps) for n in nics] == [
        ("Ethernet", "d8:9e:f3:0a:1b:2c", ("10.20.30.40",), ("fe80::1c2d:3e4f:5a6b:7c8d",), 1000)]


def test_nics_without_a_physical_list_are_all_kept_and_sysfs_speed_wins() -> None:
    addresses = {"eth0": [Address(psutil.AF_LINK, "02:fc:00:00:00:01", None, None, None)],
                 "lo": [Address(psutil.AF_LINK, "00:00:00:00:00:00", None, None, None)]}
    stats = {"eth0": Stats(True, 2, 0, 1500, "")}

    nics = inventory.nics(addresses, stats, {"eth0": 2500}, physical=None)

    assert [(n.name, n.speed_mbps) for n in nics] == [("eth0", 2500)]
