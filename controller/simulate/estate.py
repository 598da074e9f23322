"""A virtual school estate for demos and load tests: who the machines are, and what each does when.

Everything here is a pure function of a seed and a time range. The same ``--seed`` builds the same
devices (hostnames, serials, SMBIOS UUIDs, MACs, machine-ids), and a device's report for an interval
is the same however often, and in whatever order, it is asked for. That is what lets a re-run
continue where the last one stopped, lets the backfill of past days agree with what live reporting
would have said, and lets the tests pin the behaviour down.

The behaviour follows a school's day in the site's local time (Europe/London), so the clock changes
in March and October move reports in UTC, never the school day: machines come on 07:30–08:40, are
mostly in use in lessons, and are shut down, put to sleep or left on idle overnight according to
the habits of whoever uses them (DOMAIN.md: about 45% of a school's electricity is used out of
hours). Weekends keep whatever state Friday evening left. Term dates and holidays are not modelled.

The identity mistakes of real estates are here on purpose: a few white-box PCs with the firmware
placeholder "To be filled by O.E.M." for a serial, and a few cloned disk images (same machine-id and
SMBIOS UUID as a neighbour, different MACs), so `caretaker devices --conflicts` has something to show.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from agent.protocol import (
    Activity,
    Battery,
    Cpu,
    DeviceClass,
    Disk,
    EnergySample,
    Inventory,
    Nic,
    OperatingSystem,
    PowerAction,
    PowerMethod,
    PowerState,
    Report,
    Smbios,
)

MODELS_FILE = Path(__file__).with_name("models.json")
TIMEZONE = "Europe/London"
SLOT = timedelta(minutes=5)
AGENT_VERSION = "0.1.0-simulated"

# --- Sites ------------------------------------------------------------------------------------------

# Big sites take the first list, small ones the second; the first letters make hostname prefixes,
# so every name here starts with a different four letters.
LARGE_SITE_NAMES = (
    "Northgate Academy", "Riverside College", "Kingsmead School", "Oakfield Academy", "Westbrook College",
    "Ashcombe School", "Beaumont Academy", "St Aidan's High School", "Greenhill Academy", "Thornbury College",
)
SMALL_SITE_NAMES = (
    "Hillside Primary", "Meadowbank Primary", "Fernhill Infant School", "Larkrise Primary", "Church Lane Primary",
    "Elmtree Junior School", "Brookfield Primary", "Pinewood Primary", "Castleford Primary", "Willow Bank Primary",
)
# Relative sizes, the first site the biggest: a college, then primaries and secondaries alternating.
SITE_WEIGHTS = (4.0, 0.8, 2.5, 0.6, 1.8, 1.0, 3.0, 0.7, 2.2, 0.9)
LARGE_SITE_WEIGHT = 1.5

DESKTOPS_PER_ROOM = 15
LAPTOPS_PER_TROLLEY = 30
LAPTOP_SHARE = 0.25
SERVER_SHARE = 0.05


@dataclass(frozen=True)
class SitePlan:
    name: str
    prefix: str  # hostname prefix, e.g. "HILL"
    devices: int


def plan_sites(devices: int, sites: int) -> tuple[SitePlan, ...]:
    """``sites`` schools sharing ``devices`` machines: mixed sizes, the first site the biggest."""
    if sites < 1:
        raise ValueError("there must be at least one site")
    if devices < sites:
        raise ValueError(f"{devices} devices cannot fill {sites} sites: each site needs at least one")
    weights = [SITE_WEIGHTS[i % len(SITE_WEIGHTS)] for i in range(sites)]
    large, small = _names(LARGE_SITE_NAMES), _names(SMALL_SITE_NAMES)
    return tuple(SitePlan(*next(large if weight >= LARGE_SITE_WEIGHT else small), count)
                 for weight, count in zip(weights, _share_out(devices, weights), strict=True))


def _names(pool: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(name, hostname prefix) from ``pool``, numbered once it runs out ("Hillside Primary 2", "HIL2")."""
    for round_ in itertools.count(1):
        for name in pool:
            letters = "".join(c for c in name.upper() if c.isalpha())
            yield (name, letters[:4]) if round_ == 1 else (f"{name} {round_}", f"{letters[:3]}{round_}")


def _share_out(total: int, weights: Sequence[float]) -> list[int]:
    """Integer shares of ``total`` in proportion to ``weights`` (largest remainder), at least one each."""
    spare = total - len(weights)
    exact = [spare * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: spare - sum(counts)]:
        counts[i] += 1
    return [c + 1 for c in counts]


# --- Devices ----------------------------------------------------------------------------------------


class Habit(enum.StrEnum):
    """What happens to a machine at the end of a day it was used."""

    SWITCHES_OFF = "switches off"
    OFTEN_LEFT_ON = "often left on"
    ALWAYS_ON = "never switched off"
    SLEEPS = "sleeps"  # laptops: lid closed, sleeps until next use (and between lessons)


# (habit, share of the class, chance of being left on idle after a school day).
HABITS: dict[DeviceClass, tuple[tuple[Habit, float, float], ...]] = {
    DeviceClass.DESKTOP: ((Habit.SWITCHES_OFF, 0.50, 0.05), (Habit.OFTEN_LEFT_ON, 0.35, 0.70),
                          (Habit.ALWAYS_ON, 0.15, 1.0)),
    DeviceClass.LAPTOP: ((Habit.SLEEPS, 0.55, 0.10), (Habit.SWITCHES_OFF, 0.35, 0.05),
                         (Habit.OFTEN_LEFT_ON, 0.10, 0.60)),
}
# People take more care on a Friday (and the site team does a sweep before the weekend).
FRIDAY_CARE = 0.6
# Chance that a machine is used at all on a school day (absence, a spare room, a laptop left in a bag).
USED_ON_A_SCHOOL_DAY = {DeviceClass.DESKTOP: 0.93, DeviceClass.LAPTOP: 0.85}

# Watts drawn (idle, active, asleep), per class; each device varies by up to ±15%.
WATTS: dict[DeviceClass, tuple[float, float, float]] = {
    DeviceClass.DESKTOP: (45.0, 70.0, 2.0),
    DeviceClass.LAPTOP: (12.0, 25.0, 1.5),
    DeviceClass.SERVER: (115.0, 140.0, 0.0),
}
# RAPL covers the CPU package and DRAM only: about 60–70% of wall power (DOMAIN.md).
RAPL_SHARE_OF_WALL = 0.65


@dataclass(frozen=True)
class Behaviour:
    """The part of a device its daily life depends on (small, so it is cheap to cache by)."""

    key: str  # unique in the estate, seed included
    device_class: DeviceClass
    habit: Habit | None  # None for servers: always on
    left_on_chance: float
    idle_watts: float
    active_watts: float
    sleep_watts: float
    timezone: str = TIMEZONE


class Rapl(enum.StrEnum):
    NONE = "none"  # not Linux, or no RAPL
    OK = "ok"  # the agent runs as root and reads it
    DENIED = "denied"  # only root may read it since CVE-2020-8694


@dataclass(frozen=True)
class VirtualDevice:
    """One machine of the estate, with everything its agent would report about itself."""

    site: str
    hostname: str
    device_class: DeviceClass
    vendor: str
    model: str
    serial: str
    smbios_uuid: str
    chassis_type: int
    machine_id: str
    nics: tuple[Nic, ...]
    os: OperatingSystem
    cpu: Cpu
    memory_bytes: int
    disks: tuple[Disk, ...]
    behaviour: Behaviour
    rapl: Rapl = Rapl.NONE
    battery: Battery | None = None
    clone_of: str | None = None  # hostname of the machine whose disk image this one was cloned from

    @property
    def idle_source(self) -> str:
        return {"Windows": "GetLastInputInfo", "Darwin": "HIDIdleTime"}.get(self.os.name, "logind")

    def inventory(self) -> Inventory:
        return Inventory(
            hostname=self.hostname, os=self.os, device_class=self.device_class, machine_id=self.machine_id,
            cpu=self.cpu, memory_bytes=self.memory_bytes, disks=self.disks, nics=self.nics,
            smbios=Smbios(vendor=self.vendor, model=self.model, serial=self.serial, uuid=self.smbios_uuid,
                          chassis_type=self.chassis_type),
            batteries=(self.battery,) if self.battery else (),
            agent_version=AGENT_VERSION,
        )


@dataclass(frozen=True)
class HardwareModel:
    vendor: str
    model: str
    device_class: DeviceClass
    chassis_type: int
    weight: int


@cache
def hardware_models() -> tuple[HardwareModel, ...]:
    """The curated catalogue shipped beside this module (Boavizta, ODbL: see models.NOTICE.md)."""
    data = json.loads(MODELS_FILE.read_text())
    return tuple(HardwareModel(m["vendor"], m["model"], DeviceClass(m["class"]), m["chassis_type"], m["weight"])
                 for m in data["models"])


WHITE_BOX = "To be filled by O.E.M."  # AMI firmware's placeholder for vendor, model and serial alike
WHITE_BOX_SHARE = 0.015
CLONES_PER_DEVICE = 1 / 150

CPUS: dict[DeviceClass, tuple[Cpu, ...]] = {
    DeviceClass.DESKTOP: (Cpu("Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz", 6, 12),
                          Cpu("Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz", 4, 8),
                          Cpu("Intel(R) Core(TM) i5-8500 CPU @ 3.00GHz", 6, 6),
                          Cpu("AMD Ryzen 5 PRO 4650G with Radeon Graphics", 6, 12)),
    DeviceClass.LAPTOP: (Cpu("Intel(R) Core(TM) i5-1135G7 @ 2.40GHz", 4, 8),
                         Cpu("Intel(R) Celeron(R) N4120 CPU @ 1.10GHz", 4, 4),
                         Cpu("AMD Ryzen 5 5625U with Radeon Graphics", 6, 12)),
    DeviceClass.SERVER: (Cpu("Intel(R) Xeon(R) Silver 4210R CPU @ 2.40GHz", 10, 20),
                         Cpu("Intel(R) Xeon(R) E-2234 CPU @ 3.60GHz", 4, 8)),
}
APPLE_CPU = Cpu("Apple M1", 8, 8)
MEMORY_GIB = {DeviceClass.DESKTOP: (8, 16), DeviceClass.LAPTOP: (4, 8, 8, 16), DeviceClass.SERVER: (32, 64, 128)}

WINDOWS_11 = OperatingSystem("Windows", "10.0.22631", "", "AMD64")
WINDOWS_10 = OperatingSystem("Windows", "10.0.19045", "", "AMD64")
WINDOWS_SERVER = OperatingSystem("Windows", "10.0.20348", "", "AMD64")
UBUNTU = OperatingSystem("Linux", "Ubuntu 22.04.4 LTS", "6.5.0-41-generic", "x86_64")
DEBIAN = OperatingSystem("Linux", "Debian GNU/Linux 12 (bookworm)", "6.1.0-21-amd64", "x86_64")
MACOS = OperatingSystem("Darwin", "14.5", "23.5.0", "arm64")
# (system, weight) per class; Apple hardware always runs macOS.
SYSTEMS: dict[DeviceClass, tuple[tuple[OperatingSystem, int], ...]] = {
    DeviceClass.DESKTOP: ((WINDOWS_11, 60), (WINDOWS_10, 30), (UBUNTU, 10)),
    DeviceClass.LAPTOP: ((WINDOWS_11, 85), (WINDOWS_10, 10), (UBUNTU, 5)),
    DeviceClass.SERVER: ((WINDOWS_SERVER, 50), (DEBIAN, 50)),
}

# OUIs of common NIC makers (universally administered, unicast). The low 24 bits come from a
# bijection of a counter, so no two simulated NICs share a MAC.
NIC_OUIS = ("00:e0:4c", "00:1b:21", "3c:97:0e", "a4:bb:6d")
_MAC_STEP = 0x9E3779  # odd: multiplying by it permutes 0 … 2²⁴−1
_SERIAL_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SERIAL_STEP = 0x9E3779B1  # coprime to 36, so it permutes 0 … 36ⁿ−1


def _mac(n: int, offset: int, oui: str) -> str:
    low = (n * _MAC_STEP + offset) % (1 << 24)
    return f"{oui}:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


def _code(n: int, offset: int, length: int) -> str:
    """``length`` base-36 characters, different for every ``n`` below 36**length."""
    value = (n * _SERIAL_STEP + offset) % 36 ** length
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 36)
        chars.append(_SERIAL_ALPHABET[digit])
    return "".join(reversed(chars))


def _serial(vendor: str, device_class: DeviceClass, n: int, offset: int) -> str:
    """A serial in the shape the vendor prints on its labels, unique in the estate."""
    if vendor.startswith("Dell"):
        return _code(n, offset, 7)  # service tag
    if vendor.upper() == "LENOVO" or vendor == "Lenovo":
        return "PF" + _code(n, offset, 6)
    if vendor.startswith("HP"):
        return {DeviceClass.DESKTOP: "CZC", DeviceClass.LAPTOP: "5CG"}.get(device_class, "CZJ") + _code(n, offset, 7)
    return "C02" + _code(n, offset, 7) + "Q6"


T = TypeVar("T")


def _weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


@dataclass
class _Builder:
    """Draws devices one after another from one seeded generator (so the estate follows from the seed)."""

    seed: int
    rng: random.Random = field(init=False)
    devices: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    nics: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.mac_offset = self.rng.randrange(1 << 24)
        self.serial_offset = self.rng.randrange(36 ** 6)

    def hardware(self, device_class: DeviceClass) -> HardwareModel:
        return _weighted(self.rng, [(m, m.weight) for m in hardware_models() if m.device_class is device_class])

    def device(self, site: SitePlan, hostname: str, hardware: HardwareModel, address: str) -> VirtualDevice:
        """One machine of ``hardware``'s model (rooms and laptop trolleys are bought as one batch)."""
        rng = self.rng
        n = next(self.devices)
        device_class = hardware.device_class
        if device_class is DeviceClass.DESKTOP and rng.random() < WHITE_BOX_SHARE:
            # The odd self-built PC: the firmware's placeholders were never filled in.
            vendor = model = serial = WHITE_BOX
            chassis = 3
        else:
            vendor, model, chassis = hardware.vendor, hardware.model, hardware.chassis_type
            serial = _serial(vendor, device_class, n, self.serial_offset)
        apple = vendor.startswith("Apple")
        system = MACOS if apple else _weighted(rng, SYSTEMS[device_class])
        board = uuid.UUID(int=rng.getrandbits(128), version=4)
        image = uuid.UUID(int=rng.getrandbits(128), version=4)
        machine_id = {"Windows": str(image), "Darwin": str(image).upper()}.get(system.name, image.hex)
        cpu = APPLE_CPU if apple else rng.choice(CPUS[device_class])
        memory = rng.choice(MEMORY_GIB[device_class]) * 2 ** 30
        disks = ((Disk("disk0", 1_200_000_000_000, False), Disk("disk1", 1_200_000_000_000, False))
                 if device_class is DeviceClass.SERVER else (Disk("disk0", rng.choice((256, 512)) * 10 ** 9, True),))
        nics = self._nics(system, device_class, address)
        rapl = Rapl.NONE
        if system.name == "Linux" and not apple:
            rapl = Rapl.OK if rng.random() < 0.5 else Rapl.DENIED
        return VirtualDevice(
            site=site.name, hostname=hostname, device_class=device_class, vendor=vendor, model=model,
            serial=serial, smbios_uuid=str(board), chassis_type=chassis, machine_id=machine_id, nics=nics,
            os=system, cpu=cpu, memory_bytes=memory, disks=disks,
            behaviour=self._behaviour(f"{self.seed}/{hostname}", device_class), rapl=rapl,
            battery=_battery(f"{self.seed}/{hostname}") if device_class is DeviceClass.LAPTOP else None,
        )

    def _nics(self, system: OperatingSystem, device_class: DeviceClass, address: str) -> tuple[Nic, ...]:
        names = {"Windows": ("Ethernet", "Wi-Fi"), "Darwin": ("en0", "en1")}.get(system.name,
                                                                                   ("enp0s31f6", "wlp0s20f3"))
        if device_class is DeviceClass.SERVER:
            names = ("Ethernet", "Ethernet 2") if system.name == "Windows" else ("eno1", "eno2")
        count = 1 if device_class is DeviceClass.DESKTOP else 2
        nics = []
        for i in range(count):
            oui = NIC_OUIS[self.rng.randrange(len(NIC_OUIS))]
            # A laptop's address is on its Wi-Fi; a server's on its first port.
            carries_address = i == (1 if device_class is DeviceClass.LAPTOP else 0)
            nics.append(Nic(names[i], _mac(next(self.nics), self.mac_offset, oui),
                            ipv4=(address,) if carries_address else (), speed_mbps=1000))
        return tuple(nics)

    def _behaviour(self, key: str, device_class: DeviceClass) -> Behaviour:
        idle, active, asleep = (w * self.rng.uniform(0.85, 1.15) for w in WATTS[device_class])
        habit, chance = None, 1.0
        if device_class in HABITS:
            habit, _share, chance = _weighted(self.rng, [((h, s, c), s) for h, s, c in HABITS[device_class]])
        return Behaviour(key, device_class, habit, chance, round(idle, 1), round(active, 1), round(asleep, 2))


def _battery(key: str) -> Battery:
    """A laptop battery some years into its life: full charge 70–100% of its design capacity.

    Drawn from a generator of its own, so the rest of the estate stays as earlier versions built it.
    """
    rng = random.Random(f"{key}|battery")
    design = rng.choice((42.0, 45.0, 51.0, 56.0))
    return Battery("BAT0", design, round(design * rng.uniform(0.7, 1.0), 1))


def _class_counts(count: int) -> tuple[int, int, int]:
    """(desktops, laptops, servers) for a site: about 70/25/5, a server once there are ten machines."""
    servers = max(1, round(count * SERVER_SHARE)) if count >= 10 else 0
    laptops = round(count * LAPTOP_SHARE)
    return count - laptops - servers, laptops, servers


def build_estate(sites: Sequence[SitePlan], seed: int) -> tuple[VirtualDevice, ...]:
    """Every device of every site, the same for the same plan and seed. Clones come last."""
    builder = _Builder(seed)
    estate: list[VirtualDevice] = []
    for number, site in enumerate(sites, start=1):
        desktops, laptops, servers = _class_counts(site.devices)
        for i in range(servers):
            estate.append(builder.device(site, f"{site.prefix}-SRV{i + 1:02d}", builder.hardware(DeviceClass.SERVER),
                                         f"10.{number}.1.{10 + i}"))
        for i in range(desktops):
            room, seat = divmod(i, DESKTOPS_PER_ROOM)
            if seat == 0:
                hardware = builder.hardware(DeviceClass.DESKTOP)
            estate.append(builder.device(site, f"{site.prefix}-R{room + 1:02d}-PC{seat + 1:02d}", hardware,
                                         f"10.{number}.{20 + room}.{10 + seat}"))
        for i in range(laptops):
            if i % LAPTOPS_PER_TROLLEY == 0:
                hardware = builder.hardware(DeviceClass.LAPTOP)
            estate.append(builder.device(site, f"{site.prefix}-LT{i + 1:03d}", hardware,
                                         f"10.{number}.{100 + i // 200}.{10 + i % 200}"))
    return _with_clones(estate, builder.rng)


def _with_clones(estate: list[VirtualDevice], rng: random.Random) -> tuple[VirtualDevice, ...]:
    """Turn a few desktops into copies of their neighbour's disk image (its machine-id and SMBIOS UUID:
    a template cloned with its firmware identity, as VDI pools and some imaging tools do)."""
    wanted = round(len(estate) * CLONES_PER_DEVICE) or (1 if len(estate) >= 10 else 0)
    candidates = [i for i in range(1, len(estate)) if _clonable(estate[i - 1], estate[i])]
    chosen: set[int] = set()
    for i in rng.sample(candidates, len(candidates)):
        if len(chosen) == wanted:
            break
        if i - 1 not in chosen and i + 1 not in chosen:
            chosen.add(i)
    clones = [dataclasses.replace(estate[i], machine_id=estate[i - 1].machine_id,
                                  smbios_uuid=estate[i - 1].smbios_uuid, clone_of=estate[i - 1].hostname)
              for i in sorted(chosen)]
    return tuple(d for i, d in enumerate(estate) if i not in chosen) + tuple(clones)


def _clonable(source: VirtualDevice, target: VirtualDevice) -> bool:
    """Neighbouring desktops of one model and system, with real serials (the serials tell the clones apart)."""
    return (source.site == target.site and source.device_class is target.device_class is DeviceClass.DESKTOP
            and source.model == target.model != WHITE_BOX and source.os == target.os)


# --- Behaviour --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    start: datetime  # UTC
    end: datetime  # UTC
    state: PowerState

    @property
    def awake(self) -> bool:
        return self.state in (PowerState.ACTIVE, PowerState.IDLE)


# Chance that a 5-minute slot of a school day sees someone at the machine, from each local time on.
LESSON_PLAN: tuple[tuple[time, float], ...] = (
    (time(0, 0), 0.0), (time(7, 30), 0.25), (time(8, 45), 0.8), (time(10, 45), 0.25), (time(11, 5), 0.8),
    (time(12, 15), 0.2), (time(13, 15), 0.8), (time(15, 15), 0.35), (time(16, 30), 0.1),
)
SCHOOL_DAY = (time(8, 0), time(16, 30))
SERVER_BACKUP = (time(1, 0), time(2, 30))
SERVER_BUSY_IN_SCHOOL_HOURS = 0.5
# A sleeping laptop's power setting: sleep after this long unused.
SLEEP_AFTER = timedelta(minutes=10)
_NIGHTS_LOOKED_BACK = 14
_INPUT_LOOKBACK = timedelta(days=2)


def is_school_day(day: date) -> bool:
    """Monday to Friday (term dates and holidays are not modelled)."""
    return day.weekday() < 5


def _rng(b: Behaviour, day: date, stream: str) -> random.Random:
    return random.Random(f"{b.key}|{day.isoformat()}|{stream}")


def _at(day: date, when: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, when, tzinfo=tz).astimezone(UTC)


def used_on(b: Behaviour, day: date) -> bool:
    """Whether anyone uses the machine that day (servers are always busy)."""
    if b.device_class not in USED_ON_A_SCHOOL_DAY:
        return True
    return is_school_day(day) and _rng(b, day, "used").random() < USED_ON_A_SCHOOL_DAY[b.device_class]


@lru_cache(maxsize=65536)
def night_state(b: Behaviour, day: date) -> PowerState:
    """The state the machine is in at the end of ``day``: off, asleep, or left on idle."""
    if b.habit is None:
        return PowerState.IDLE
    for back in range(_NIGHTS_LOOKED_BACK):
        earlier = day - timedelta(days=back)
        if used_on(b, earlier):
            care = FRIDAY_CARE if earlier.weekday() == 4 and b.habit is not Habit.ALWAYS_ON else 1.0
            if _rng(b, earlier, "night").random() < b.left_on_chance * care:
                return PowerState.IDLE
            return PowerState.SLEEP if b.habit is Habit.SLEEPS else PowerState.OFF
    return PowerState.OFF


@lru_cache(maxsize=65536)
def day_plan(b: Behaviour, day: date) -> tuple[Segment, ...]:
    """The machine's states over one local day, as contiguous UTC segments from midnight to midnight."""
    tz = ZoneInfo(b.timezone)
    midnight, next_midnight = _at(day, time(0), tz), _at(day + timedelta(days=1), time(0), tz)
    if b.habit is None:
        return _server_day(b, day, tz, midnight, next_midnight)
    carried = night_state(b, day - timedelta(days=1))
    if not used_on(b, day):
        return (Segment(midnight, next_midnight, carried),)
    rng = _rng(b, day, "day")
    first_use = _at(day, time(7, 30), tz) + SLOT * rng.randrange(15)
    last_use = _at(day, time(15, 20), tz) + SLOT * rng.randrange(27)
    intensity = rng.uniform(0.6, 1.1)
    states: list[tuple[datetime, PowerState]] = [(midnight, carried)]
    slot = first_use
    while slot < last_use:
        chance = _lesson_chance(slot.astimezone(tz).time()) * intensity
        # Whoever switches the machine on signs in: its first slot is in use, whatever the lesson plan says.
        used = rng.random() < chance or slot == first_use
        states.append((slot, PowerState.ACTIVE if used else PowerState.IDLE))
        slot += SLOT
    if b.habit is Habit.SLEEPS:
        states = _sleep_when_unused(states)
    states.append((last_use, night_state(b, day)))
    return _segments(states, next_midnight)


def _server_day(b: Behaviour, day: date, tz: ZoneInfo, midnight: datetime, next_midnight: datetime
                ) -> tuple[Segment, ...]:
    rng = _rng(b, day, "day")
    states = [(midnight, PowerState.IDLE), (_at(day, SERVER_BACKUP[0], tz), PowerState.ACTIVE),
              (_at(day, SERVER_BACKUP[1], tz), PowerState.IDLE)]
    if is_school_day(day):
        slot, end = _at(day, SCHOOL_DAY[0], tz), _at(day, SCHOOL_DAY[1], tz)
        while slot < end:
            busy = rng.random() < SERVER_BUSY_IN_SCHOOL_HOURS
            states.append((slot, PowerState.ACTIVE if busy else PowerState.IDLE))
            slot += SLOT
        states.append((end, PowerState.IDLE))
    return _segments(states, next_midnight)


def _lesson_chance(local: time) -> float:
    chance = 0.0
    for start, p in LESSON_PLAN:
        if local >= start:
            chance = p
    return chance


def _sleep_when_unused(states: list[tuple[datetime, PowerState]]) -> list[tuple[datetime, PowerState]]:
    """A laptop that sleeps does so once it has been idle for SLEEP_AFTER, until it is next used."""
    out: list[tuple[datetime, PowerState]] = []
    idle_since: datetime | None = None
    for when, state in states:
        if state is PowerState.IDLE:
            idle_since = idle_since or when
            if when - idle_since >= SLEEP_AFTER:
                state = PowerState.SLEEP
        else:
            idle_since = None
        out.append((when, state))
    return out


def _segments(states: list[tuple[datetime, PowerState]], end: datetime) -> tuple[Segment, ...]:
    """(start, state) changes, in time order, merged into contiguous segments ending at ``end``."""
    segments: list[Segment] = []
    for (when, state), (until, _next) in zip(states, [*states[1:], (end, None)], strict=True):
        if until <= when:
            continue
        if segments and segments[-1].state is state:
            segments[-1] = Segment(segments[-1].start, until, state)
        else:
            segments.append(Segment(when, until, state))
    return tuple(segments)


def segments_between(b: Behaviour, start: datetime, end: datetime) -> Iterator[Segment]:
    """The machine's segments clipped to [start, end)."""
    tz = ZoneInfo(b.timezone)
    day = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    while day <= last:
        for segment in day_plan(b, day):
            if segment.end > start and segment.start < end:
                yield Segment(max(segment.start, start), min(segment.end, end), segment.state)
        day += timedelta(days=1)


@dataclass(frozen=True)
class Usage:
    """What a machine did over an interval, trimmed to the part its agent was running for."""

    start: datetime  # first moment awake
    end: datetime  # last moment awake
    active_seconds: float
    idle_seconds: float
    slept_seconds: float  # asleep between ``start`` and ``end``
    since_input: float  # seconds since the last user input, at ``end``


def usage(b: Behaviour, start: datetime, end: datetime, pieces: Sequence[Segment] | None = None) -> Usage | None:
    """The machine's use of [start, end), or None if it was never awake (off or asleep: no report).
    ``pieces``: what it did, when that is not its own habits (a power policy switched it off)."""
    pieces = list(segments_between(b, start, end)) if pieces is None else pieces
    awake = [p for p in pieces if p.awake]
    if not awake:
        return None
    first, last = awake[0].start, awake[-1].end
    totals = dict.fromkeys(PowerState, 0.0)
    for piece in pieces:
        if piece.start >= first and piece.end <= last:
            totals[piece.state] += (piece.end - piece.start).total_seconds()
    return Usage(first, last, totals[PowerState.ACTIVE], totals[PowerState.IDLE], totals[PowerState.SLEEP],
                 since_input(b, last))


def since_input(b: Behaviour, at: datetime) -> float:
    """Seconds from the end of the last ACTIVE stretch to ``at`` (looking back two days at most)."""
    day = at.astimezone(ZoneInfo(b.timezone)).date()
    for back in range(3):
        for segment in reversed(day_plan(b, day - timedelta(days=back))):
            if segment.state is PowerState.ACTIVE and segment.start < at:
                if segment.end >= at:  # in use right now: input seconds ago
                    return random.Random(f"{b.key}|{at.isoformat()}|input").uniform(0, 90)
                return (at - segment.end).total_seconds()
    return float(_INPUT_LOOKBACK.total_seconds())


LEFT_RUNNING_CHANCE = 0.05  # of a device, on a given day, having a watched process (a render, a recording) running


def left_running(b: Behaviour, watched: tuple[str, ...], at: datetime) -> tuple[str, ...]:
    """Which of the schedule's ``processes_absent`` names run on the machine at ``at``: now and then one of
    them is left running for the whole day (a student's overnight render), the same all day."""
    day = at.astimezone(ZoneInfo(b.timezone)).date()
    return tuple(name for name in watched if random.Random(f"{b.key}|{day}|{name}").random() < LEFT_RUNNING_CHANCE)


def report_for(device: VirtualDevice, seq: int, start: datetime, end: datetime,
               with_inventory: bool = False, pieces: Sequence[Segment] | None = None,
               actions: Sequence[PowerAction] = (), watched: tuple[str, ...] = ()) -> Report | None:
    """The report the device's agent sends for [start, end), or None when it was off or asleep throughout.

    ``pieces`` are its states when a policy changed them; ``actions`` what its enforcer did since the last
    report; ``watched`` the process names the device's schedule waits on (the report says which of them run)."""
    b = device.behaviour
    use = usage(b, start, end, pieces)
    if use is None:
        return None
    rng = random.Random(f"{b.key}|{start.isoformat()}|report")
    awake = use.active_seconds + use.idle_seconds
    state = PowerState.ACTIVE if use.active_seconds > 0 else PowerState.IDLE
    busy = rng.uniform(15, 45) if b.device_class is not DeviceClass.SERVER else rng.uniform(30, 70)
    quiet = rng.uniform(1, 5) if b.device_class is not DeviceClass.SERVER else rng.uniform(3, 12)
    cpu = (busy * use.active_seconds + quiet * use.idle_seconds) / awake
    joules = b.idle_watts * use.idle_seconds + b.active_watts * use.active_seconds
    detail = f"{b.device_class.value} {b.idle_watts:.0f}-{b.active_watts:.0f} W by activity"
    energy = [EnergySample(PowerMethod.MODEL, state, awake, round(joules, 1), detail=detail)]
    if use.slept_seconds > 0:
        energy.append(EnergySample(PowerMethod.MODEL, PowerState.SLEEP, use.slept_seconds,
                                   round(b.sleep_watts * use.slept_seconds, 1), detail=f"asleep {b.sleep_watts} W"))
    if device.rapl is Rapl.OK:
        energy.append(EnergySample(PowerMethod.RAPL, state, awake,
                                   round(joules * RAPL_SHARE_OF_WALL * rng.uniform(0.95, 1.05), 1),
                                   detail="package-0+dram"))
    elif device.rapl is Rapl.DENIED:
        energy.append(EnergySample(PowerMethod.RAPL, state, awake, None, status="unavailable: permission",
                                   detail="intel-rapl:0"))
    memory = round(rng.uniform(20, 45) if b.device_class is DeviceClass.SERVER else rng.uniform(35, 75), 1)
    signed_in = b.device_class is not DeviceClass.SERVER and use.since_input < 2 * 3600
    return Report(
        seq=seq, start=use.start, end=use.end,
        activity=Activity(state=state, cpu_percent=round(cpu, 1), idle_seconds=round(use.since_input, 1),
                          idle_source=device.idle_source, sessions=1 if signed_in else 0,
                          slept_seconds=use.slept_seconds, processes_watched=watched,
                          processes_running=left_running(b, watched, use.end), memory_percent=memory),
        energy=tuple(energy), inventory=device.inventory() if with_inventory else None, actions=tuple(actions),
    )


def phase(device: VirtualDevice, interval: int) -> int:
    """Seconds past each interval boundary at which this device reports, so a site does not report at once."""
    return random.Random(f"{device.behaviour.key}|phase").randrange(interval)


def boundaries(device: VirtualDevice, start: datetime, end: datetime, interval: int) -> Iterator[datetime]:
    """The device's report times in (start, end]: every ``interval`` seconds at its own phase."""
    step = timedelta(seconds=interval)
    epoch = datetime(2000, 1, 3, tzinfo=UTC) + timedelta(seconds=phase(device, interval))
    first = epoch + step * ((start - epoch) // step + 1)
    while first <= end:
        yield first
        first += step


def previous_boundary(device: VirtualDevice, at: datetime, interval: int) -> datetime:
    """The device's last report time at or before ``at``."""
    step = timedelta(seconds=interval)
    epoch = datetime(2000, 1, 3, tzinfo=UTC) + timedelta(seconds=phase(device, interval))
    return epoch + step * ((at - epoch) // step)
