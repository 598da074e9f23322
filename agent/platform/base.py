"""The contract between the collectors and the OS backends.

A backend answers the questions only the operating system can answer; the collectors combine those
answers with what psutil knows on every OS and turn them into the wire format. Backends return these
neutral readings, never protocol payloads of their own, so one collector serves all three OSes.

``root`` is where a backend reads files from (``/`` in production, a fixture tree in tests);
backends that learn everything from commands or OS calls ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agent.protocol import (
    CONTROL_CHARACTERS,
    MAX_BATTERY_WH,
    MAX_TEXT,
    Battery,
    Disk,
    Monitor,
    OperatingSystem,
    Smbios,
)
from agent.session.view import SignedIn, SystemIdle

if TYPE_CHECKING:
    from agent.session.desk import Listener


@dataclass(frozen=True)
class HostFacts:
    """What the OS says about the machine that psutil cannot."""

    os: OperatingSystem
    machine_id: str | None = None
    cpu_model: str = ""
    smbios: Smbios = field(default_factory=Smbios)
    disks: tuple[Disk, ...] = ()
    batteries: tuple[Battery, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    link_speeds: tuple[tuple[str, int], ...] = ()  # (NIC name, Mb/s) where the OS reports it apart from psutil
    # NICs backed by hardware. Bridges, tunnels and container veths get new random MACs and would
    # make one machine look like many to identity matching. None: the OS cannot tell, keep them all.
    physical_nics: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RaplCounter:
    """One RAPL energy counter as the kernel exposes it; it wraps at ``max_energy_range_uj``."""

    zone: str  # sysfs zone, e.g. "intel-rapl:0" or "intel-rapl:0:2"
    name: str  # what it measures, e.g. "package-0" or "dram"
    energy_uj: int
    max_energy_range_uj: int


@dataclass(frozen=True)
class RaplReading:
    counters: tuple[RaplCounter, ...] = ()
    status: str = "ok"  # or why no counter could be read, e.g. "unavailable: permission"
    unreadable: tuple[str, ...] = ()  # zones left out, each with why: "dram (intel-rapl:0:2): permission"


@dataclass(frozen=True)
class BatteryDraw:
    """The system's draw from its battery at one instant.

    Only a discharging battery measures the machine: on AC the battery reports its charging rate
    (or 0), which says nothing about what the machine draws from the wall.
    """

    discharging: bool
    watts: float | None = None
    detail: str = ""  # which battery and which readings, e.g. "BAT0 current×voltage"


class Backend(Protocol):
    """One OS: each of linux.py, windows.py and macos.py provides these as module functions."""

    def host_facts(self, root: Path) -> HostFacts: ...

    def signed_in(self, root: Path) -> tuple[SignedIn, ...]:
        """The users signed in now, one entry per session, as the OS lists them."""
        ...

    def system_idle(self, root: Path) -> SystemIdle:
        """The OS's own measure of input idle at the sign-in screen; asked only while nobody is signed in."""
        ...

    def session_listener(self, address: str) -> Listener:
        """The service's end of the channel session helpers connect to (agent.session.desk)."""
        ...

    def slept_seconds(self) -> float:
        """Seconds spent suspended since boot: a counter that only moves while the machine sleeps."""
        ...

    def rapl(self, root: Path) -> RaplReading | None:
        """The package and DRAM counters; None where the machine or the OS exposes no RAPL."""
        ...

    def has_rapl(self, root: Path) -> bool:
        """Whether ``rapl`` has counters to read, found without reading them."""
        ...

    def has_battery(self, root: Path) -> bool: ...

    def battery_draw(self, root: Path) -> BatteryDraw | None:
        """None when the machine has no system battery."""
        ...

    def on_battery(self, root: Path) -> bool:
        """Whether the machine runs on its battery now (daytime sleep waits less); cheap enough to ask each minute."""
        ...


_CONTROLS = str.maketrans(dict.fromkeys(CONTROL_CHARACTERS))


def text_or_none(value: object, limit: int = MAX_TEXT) -> str | None:
    """An OS-reported string made safe for the wire: control characters removed, stripped, None when
    blank, cut to ``limit``.

    Firmware strings are unbounded, often padded, and sometimes carry NULs and other control bytes; the
    protocol refuses those and anything longer than ``MAX_TEXT``, and one bad vendor string must not
    cost the whole inventory.
    """
    if value is None:
        return None
    text = str(value).translate(_CONTROLS).strip()
    return text[:limit] if text else None


def battery(name: str, design_wh: float | None, full_wh: float | None) -> Battery:
    """A battery whose impossible figures are left out, each with the reason: a driver reporting in the
    wrong unit (4.7e13 µWh) costs that figure, never the inventory or the report it rides on."""
    figures: dict[str, float | None] = {"design_wh": design_wh, "full_wh": full_wh}
    notes = []
    for label, value in figures.items():
        if value is not None and not 0 <= value <= MAX_BATTERY_WH:
            figures[label] = None
            notes.append(f"{label} unavailable: {value:g} Wh is out of range")
    return Battery(name=text_or_none(name) or "battery", **figures, detail="; ".join(notes)[:MAX_TEXT])


def chassis_type(code: int | None) -> int | None:
    """An SMBIOS chassis type code (one byte), or None for anything firmware could not have meant."""
    return code if code is not None and 0 <= code <= 255 else None
