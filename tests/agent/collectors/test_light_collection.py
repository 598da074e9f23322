"""Light collection: host facts are read at start, then hourly or when a cheap signal says the machine
changed; RAPL counters are read once per interval."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from agent.collectors import inventory, rapl
from agent.platform import facts, linux_power
from agent.platform.base import HostFacts
from agent.protocol import OperatingSystem

from .conftest import SYSFS

Address = namedtuple("Address", "family address")


class Reads:
    """A host-facts reader that counts its readings, and a clock the test moves."""

    def __init__(self) -> None:
        self.count = 0
        self.now = 0.0

    def read(self, root: Path) -> HostFacts:
        self.count += 1
        return HostFacts(os=OperatingSystem("Linux", f"reading {self.count}"))


def test_host_facts_are_read_at_start_then_hourly_or_when_the_machine_changed() -> None:
    reads = Reads()
    cache = facts.FactsCache(reads.read, lambda: reads.now)
    signal = inventory.change_signal("lab-07", 1_771_228_800.0, {"eth0": [Address(psutil.AF_LINK, "aa:bb")]})

    assert cache.get(Path("/"), signal).os.version == "reading 1"
    reads.now += 3599
    assert cache.get(Path("/"), signal).os.version == "reading 1"
    reads.now += 1
    assert cache.get(Path("/"), signal).os.version == "reading 2"  # an hour on
    rebooted = inventory.change_signal("lab-07", 1_771_315_200.0, {"eth0": [Address(psutil.AF_LINK, "aa:bb")]})
    assert cache.get(Path("/"), rebooted).os.version == "reading 3"
    docked = inventory.change_signal("lab-07", 1_771_315_200.0, {"eth0": [Address(psutil.AF_LINK, "aa:bb")],
                                                                  "usb0": [Address(psutil.AF_LINK, "cc:dd")]})
    assert cache.get(Path("/"), docked).os.version == "reading 4"
    renamed = inventory.change_signal("lab-08", 1_771_315_200.0, {"eth0": [Address(psutil.AF_LINK, "aa:bb")],
                                                                   "usb0": [Address(psutil.AF_LINK, "cc:dd")]})
    assert cache.get(Path("/"), renamed).os.version == "reading 5"
    assert reads.count == 5


def test_a_new_ip_address_is_not_a_change_of_the_machine() -> None:
    before = inventory.change_signal("lab-07", 1_771_228_800.0, {"eth0": [Address(psutil.AF_LINK, "aa:bb")]})
    after = inventory.change_signal("lab-07", 1_771_228_830.0, {"eth0": [Address(psutil.AF_LINK, "aa:bb"),
                                                                          Address(2, "10.12.0.8")]})
    assert before == after


def test_the_inventory_collector_reads_host_facts_through_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = Reads()
    monkeypatch.setattr(facts, "HOST_FACTS", facts.FactsCache(reads.read, lambda: reads.now))
    first, second = inventory.collect(SYSFS / "optiplex-7070"), inventory.collect(SYSFS / "optiplex-7070")
    assert reads.count == 1 and first.os.version == second.os.version == "reading 1"


def test_rapl_counters_are_read_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    read_text = Path.read_text

    def counting(path: Path, *args, **kwargs) -> str:
        if path.name == "energy_uj":
            opened.append(path.parent.name)
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    root = SYSFS / "thinkpad-t14"
    assert rapl.supported(root) and linux_power.has_rapl(root)
    assert opened == []  # finding the counters does not read them
    rapl.collect(root)
    assert opened == ["intel-rapl:0", "intel-rapl:0:2"]
