"""The wire format between agent and controller.

Plain stdlib dataclasses so the agent stays light; the controller validates request bodies against
these very classes (pydantic understands stdlib dataclasses), so the two sides cannot drift apart.
Checks that need only the value itself live in ``__post_init__`` and run on both sides; checks that
need the controller's clock or database (a timestamp far in the future, a replayed sequence) live in
the controller.

Wire rules: JSON, timestamps as ISO 8601 with a UTC offset (naive ones are refused), energy in
joules, power in watts, durations in seconds. ``PROTOCOL_VERSION`` changes when a field changes
meaning or a required field is added; optional additions keep the version.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime

PROTOCOL_VERSION = 1

# Bounds that keep a hostile or broken sender from storing nonsense. Generous on purpose: they
# reject impossible values, not unusual ones.
MAX_TEXT = 255
MAX_ITEMS = 64
MAX_INTERVAL_SECONDS = 86_400
MAX_IDLE_SECONDS = 10 * 366 * 86_400  # ten years without input: beyond that a clock is wrong
MAX_WATTS = 100_000.0
MAX_BATCH_REPORTS = 500
MAX_WAKE_ORDERS = 10_000
# Counts and sequence numbers are stored as SQL BIGINT: nothing beyond a signed 64-bit value fits.
MAX_INT = 2**63 - 1
# Row ids (devices, wake orders, tokens…) are SQL INTEGER: nothing beyond a signed 32-bit value is one.
MAX_ID = 2**31 - 1
# C0 controls (tab and newline included: every text on the wire is one line), DEL and C1 controls.
CONTROL_CHARACTERS = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))


class PowerMethod(enum.StrEnum):
    """How an energy figure was obtained, best first (ARCHITECTURE.md: every figure carries its method)."""

    METERED = "metered"
    RAPL = "rapl"
    BATTERY = "battery"
    MODEL = "model"


METHOD_PRIORITY: tuple[PowerMethod, ...] = tuple(PowerMethod)


class PowerState(enum.StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    SLEEP = "sleep"
    OFF = "off"


class DeviceClass(enum.StrEnum):
    DESKTOP = "desktop"
    LAPTOP = "laptop"
    SERVER = "server"
    UNKNOWN = "unknown"


class ProtocolError(ValueError):
    """A payload that cannot be valid whatever the receiver's state."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ProtocolError(message)


def _aware(name: str, value: datetime | None) -> None:
    if value is not None:
        _require(value.tzinfo is not None and value.utcoffset() is not None,
                 f"{name} must carry a UTC offset, e.g. 2026-02-16T18:30:00+00:00")


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a control character: a NUL ends a C string, PostgreSQL refuses to store one,
    and the rest forge lines in logs, CSV exports and terminals."""
    return not CONTROL_CHARACTERS.isdisjoint(value)


def _text(name: str, value: str | None, limit: int = MAX_TEXT) -> None:
    if value is not None:
        _require(len(value) <= limit, f"{name} is longer than {limit} characters")
        _require(not has_control_characters(value), f"{name} contains a control character")


def _count(name: str, value: int | None, limit: int = MAX_INT) -> None:
    _require(value is None or 0 <= value <= limit, f"{name} must be between 0 and {limit}")


def _items(name: str, values: tuple, limit: int = MAX_ITEMS) -> None:
    _require(len(values) <= limit, f"{name} has more than {limit} entries")


@dataclass(frozen=True)
class OperatingSystem:
    name: str  # "Linux", "Windows", "Darwin"
    version: str  # distribution or product version, e.g. "Debian GNU/Linux 12", "10.0.22631"
    kernel: str = ""
    arch: str = ""

    def __post_init__(self) -> None:
        for f in ("name", "version", "kernel", "arch"):
            _text(f"os.{f}", getattr(self, f))


@dataclass(frozen=True)
class Cpu:
    model: str
    cores: int  # physical
    threads: int  # logical

    def __post_init__(self) -> None:
        _text("cpu.model", self.model)
        _require(0 <= self.cores <= 4096 and 0 <= self.threads <= 8192, "cpu core counts are out of range")


@dataclass(frozen=True)
class Disk:
    name: str
    size_bytes: int
    ssd: bool | None = None  # None: the OS does not say

    def __post_init__(self) -> None:
        _text("disk.name", self.name)
        _count("disk.size_bytes", self.size_bytes)


@dataclass(frozen=True)
class Nic:
    name: str
    mac: str  # lower-case, colon-separated
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    speed_mbps: int | None = None
    # Prefix length of each ipv4 address, in the same order (empty: not known); it puts the machine in
    # a subnet, which is how wake-on-LAN finds a relay on the target's own network.
    ipv4_prefixes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _text("nic.name", self.name)
        _text("nic.mac", self.mac, 64)
        _items("nic.ipv4", self.ipv4)
        for address in (*self.ipv4, *self.ipv6):
            _text("nic address", address, 64)
        _count("nic.speed_mbps", self.speed_mbps, 10_000_000)
        _require(not self.ipv4_prefixes or len(self.ipv4_prefixes) == len(self.ipv4),
                 "nic.ipv4_prefixes must give one prefix length per ipv4 address")
        _require(all(0 <= p <= 32 for p in self.ipv4_prefixes), "nic.ipv4_prefixes must be between 0 and 32")
        _items("nic.ipv6", self.ipv6)


@dataclass(frozen=True)
class Smbios:
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    uuid: str | None = None
    chassis_type: int | None = None  # SMBIOS chassis type code (3 desktop, 9/10 laptop, 23 rack server…)

    def __post_init__(self) -> None:
        for f in ("vendor", "model", "serial", "uuid"):
            _text(f"smbios.{f}", getattr(self, f))
        _count("smbios.chassis_type", self.chassis_type, 255)


MAX_BATTERY_WH = 10_000.0


@dataclass(frozen=True)
class Battery:
    name: str
    design_wh: float | None = None
    full_wh: float | None = None  # full-charge capacity now; full/design is the wear figure
    detail: str = ""  # why a figure is missing, e.g. "design_wh unavailable: 47000000 Wh is out of range"

    def __post_init__(self) -> None:
        _text("battery.name", self.name)
        _text("battery.detail", self.detail)
        for f in ("design_wh", "full_wh"):
            value = getattr(self, f)
            _require(value is None or 0 <= value <= MAX_BATTERY_WH, f"battery.{f} is out of range")


@dataclass(frozen=True)
class Monitor:
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None

    def __post_init__(self) -> None:
        for f in ("vendor", "model", "serial"):
            _text(f"monitor.{f}", getattr(self, f))


@dataclass(frozen=True)
class WakeReadiness:
    """What would stop this machine waking from a magic packet, found while it was up.

    None means the check could not be made here (not this OS, or no permission); the controller then
    lists a failed wake's cause as unknown rather than guessing.
    """

    fast_startup: bool | None = None  # Windows HiberbootEnabled: "shut down" is a hibernate the NIC may not wake
    modern_standby: bool | None = None  # Windows S0 low-power idle: no S3 sleep for the NIC to wake from
    nic_armed: bool | None = None  # at least one wired NIC armed for wake
    detail: str = ""

    def __post_init__(self) -> None:
        _text("wake.detail", self.detail)


@dataclass(frozen=True)
class Inventory:
    """What the machine is. Sent at start, when it changes, and daily."""

    hostname: str
    os: OperatingSystem
    device_class: DeviceClass = DeviceClass.UNKNOWN
    machine_id: str | None = None  # /etc/machine-id, MachineGuid, IOPlatformUUID: cloned images share it
    cpu: Cpu | None = None
    memory_bytes: int | None = None
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    smbios: Smbios = field(default_factory=Smbios)
    batteries: tuple[Battery, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    boot_time: datetime | None = None
    user_count: int = 0
    user_names: tuple[str, ...] = ()  # empty unless the site configured the agent to send them
    agent_version: str = ""
    wake: WakeReadiness | None = None
    # The machine's own labels from the agent's labels file (agent/labels.py): policies name rooms and tags.
    room: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _text("hostname", self.hostname)
        _text("room", self.room, 100)
        for tag in self.tags:
            _text("tags", tag, 100)
            _require(bool(tag.strip()), "a tag must not be empty")
        _require(bool(self.hostname.strip()), "hostname must not be empty")
        _text("machine_id", self.machine_id)
        _text("agent_version", self.agent_version)
        _count("memory_bytes", self.memory_bytes)
        for user in self.user_names:
            _text("user_names", user)
        _require(0 <= self.user_count <= 10_000, "user_count is out of range")
        for name in ("disks", "nics", "batteries", "monitors", "user_names", "tags"):
            _items(name, getattr(self, name))
        _aware("boot_time", self.boot_time)


@dataclass(frozen=True)
class Activity:
    """What the machine was doing over the interval."""

    state: PowerState  # ACTIVE or IDLE for the awake part of the interval
    cpu_percent: float  # mean utilisation over the interval, 0-100 across all CPUs
    idle_seconds: float | None = None  # seconds since the last user input at the end; None: not knowable
    idle_source: str = ""  # "logind", "x11", "tty", "GetLastInputInfo", "HIDIdleTime"
    sessions: int = 0  # signed-in user sessions at the end of the interval
    slept_seconds: float = 0.0  # time inside the interval the machine spent suspended
    # The names of the schedule's ``processes_absent`` criterion the agent looked for at the end of the
    # interval, and which of them were running. Only these names leave the machine, never its process
    # list. Nothing watched (older agents, or no such criterion): the controller cannot say.
    processes_watched: tuple[str, ...] = ()
    processes_running: tuple[str, ...] = ()
    # Share of physical memory in use at the end of the interval, 0-100; None: an older agent. Servers'
    # right-sizing (controller.lifecycle.rightsize) asks how much of their memory they use.
    memory_percent: float | None = None

    def __post_init__(self) -> None:
        _require(0.0 <= self.cpu_percent <= 100.0, "cpu_percent must be between 0 and 100")
        _require(self.memory_percent is None or 0.0 <= self.memory_percent <= 100.0,
                 "memory_percent must be between 0 and 100")
        _require(self.idle_seconds is None or 0 <= self.idle_seconds <= MAX_IDLE_SECONDS,
                 f"idle_seconds must be between 0 and {MAX_IDLE_SECONDS}")
        _require(0 <= self.sessions <= 10_000, "sessions is out of range")
        _require(0 <= self.slept_seconds <= MAX_INTERVAL_SECONDS, "slept_seconds is out of range")
        _text("idle_source", self.idle_source, 32)
        for name in ("processes_watched", "processes_running"):
            _items(f"activity.{name}", getattr(self, name))
            for process in getattr(self, name):
                _text(f"activity.{name}[]", process)
        watched = {name.casefold() for name in self.processes_watched}
        _require(all(name.casefold() in watched for name in self.processes_running),
                 "activity.processes_running names a process that is not in processes_watched")


@dataclass(frozen=True)
class EnergySample:
    """Energy drawn over part of an interval, measured or estimated one way.

    A report may carry several samples for the same time (RAPL and the model estimate, say); the
    controller accounts the best available method and keeps the others for calibration.
    ``status`` is "ok" or why there is no figure, e.g. "unavailable: permission" for a RAPL counter
    only root may read: never a silent zero.
    """

    method: PowerMethod
    state: PowerState
    seconds: float
    joules: float | None = None
    status: str = "ok"
    detail: str = ""  # e.g. "package-0+dram", "BAT0 current×voltage", "desktop 38-65 W by CPU load"

    def __post_init__(self) -> None:
        _require(0 <= self.seconds <= MAX_INTERVAL_SECONDS, "energy seconds out of range")
        _text("energy.status", self.status, 64)
        _text("energy.detail", self.detail, 128)
        if self.status == "ok":
            _require(self.joules is not None, "an energy sample with status ok needs joules")
        if self.joules is not None:
            _require(self.joules >= 0, "energy must not be negative")
            _require(self.joules <= MAX_WATTS * max(self.seconds, 1.0), "energy is impossibly large for its duration")

    @property
    def usable(self) -> bool:
        return self.status == "ok" and self.joules is not None


# --- power policy: the schedule the controller sends, the actions the agent reports -----------------

class ScheduleIntent(enum.StrEnum):
    KEEP_ON = "keep_on"
    POWER_DOWN = "power_down"  # once the device is idle, as the schedule's idle criteria say


class EnforcementMode(enum.StrEnum):
    OBSERVE = "observe"  # record what would be done, never act
    PASSIVE = "passive"  # skip while a user is signed in; try again after retry_minutes
    WARN = "warn"  # warn the signed-in user, who may defer a few times, then act
    FORCE = "force"  # act once idle, signed-in user or not


class PowerActionKind(enum.StrEnum):
    SHUTDOWN = "shutdown"
    SLEEP = "sleep"
    HIBERNATE = "hibernate"


class DeferralReason(enum.StrEnum):
    """Why a power-down was put off: a named choice, so the audit can count them."""

    USER = "user"  # the signed-in user pressed Postpone or kept working through the countdown
    UPDATES_INSTALLING = "updates_installing"  # cutting power mid-install can leave a machine unbootable


class ActionOutcome(enum.StrEnum):
    OBSERVED = "observed"  # observe mode: would have acted
    WARNED = "warned"  # a countdown warning went to the signed-in user
    DONE = "done"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    FAILED = "failed"


MAX_SCHEDULE_WINDOWS = 256
MAX_ACTIONS = 64


@dataclass(frozen=True)
class IdleCriteria:
    """What idle means; every criterion given must hold, and one the agent cannot read fails safe."""

    minutes_without_input: int | None = None
    cpu_below_percent: float | None = None
    processes_absent: tuple[str, ...] = ()
    no_signed_in_session: bool = False

    def __post_init__(self) -> None:
        _items("idle.processes_absent", self.processes_absent)


@dataclass(frozen=True)
class WarningSettings:
    countdown_minutes: int = 10
    deferral_minutes: int = 10
    max_deferrals: int = 2


@dataclass(frozen=True)
class DaytimeSleep:
    """In a keep-on window (school hours): sleep once input has been idle this long, on mains or on battery.

    None for a power source means no daytime sleep on it. An agent that does not know this field keeps
    the machine on, which is the safe way to be wrong.
    """

    mains_idle_minutes: int | None = None
    battery_idle_minutes: int | None = None

    def __post_init__(self) -> None:
        for minutes in (self.mains_idle_minutes, self.battery_idle_minutes):
            _require(minutes is None or 1 <= minutes <= 24 * 60, "daytime sleep minutes must be 1 to 1440")

    def minutes(self, on_battery: bool) -> int | None:
        return self.battery_idle_minutes if on_battery else self.mains_idle_minutes


@dataclass(frozen=True)
class ScheduleWindow:
    """From ``start`` to ``end`` the device should stay on, or power down once idle (``intent``).

    A keep-on window with ``daytime_sleep`` (school hours) still lets the machine sleep once idle, in ``mode``.
    """

    start: datetime
    end: datetime
    intent: ScheduleIntent
    action: PowerActionKind | None = None
    mode: EnforcementMode | None = None
    reason: str = ""  # the rule that decided, e.g. "out_of_hours", "exam_window: GCSE maths"
    daytime_sleep: DaytimeSleep | None = None
    # A maintenance window that ends early once the OS updates it was kept on for have installed: the agent
    # then carries out the power-down window that follows at once instead of waiting out the minutes.
    until_updates_done: bool = False

    def __post_init__(self) -> None:
        _aware("window.start", self.start)
        _aware("window.end", self.end)
        _require(self.start < self.end, "a schedule window must end after it starts")
        _require(self.intent is ScheduleIntent.KEEP_ON or self.action is not None,
                 "a power-down window needs an action")
        _text("window.reason", self.reason)


@dataclass(frozen=True)
class AgentSchedule:
    """The device's power schedule; the agent enforces the latest one it holds until ``valid_until``.

    ``start_offset_seconds`` staggers a site's power-downs: the agent waits that long into a
    power-down window before acting, so a site's devices do not all act in the same minute.
    """

    version: str
    timezone: str
    valid_until: datetime
    policy: str | None = None
    windows: tuple[ScheduleWindow, ...] = ()
    idle: IdleCriteria | None = None
    warning: WarningSettings | None = None
    retry_minutes: int = 30
    start_offset_seconds: int = 0

    def __post_init__(self) -> None:
        _text("schedule.version", self.version, 64)
        _aware("schedule.valid_until", self.valid_until)
        _items("schedule.windows", self.windows, MAX_SCHEDULE_WINDOWS)
        _require(0 <= self.start_offset_seconds <= MAX_INTERVAL_SECONDS, "start_offset_seconds is out of range")
        _require(1 <= self.retry_minutes <= 24 * 60, "retry_minutes is out of range")

    def window_at(self, at: datetime) -> ScheduleWindow | None:
        return next((w for w in self.windows if w.start <= at < w.end), None)


@dataclass(frozen=True)
class PowerAction:
    """What the agent did about its schedule, or would have done, and why (the audit log's source)."""

    at: datetime
    kind: PowerActionKind
    outcome: ActionOutcome
    mode: EnforcementMode
    reason: str  # e.g. "idle 22 min, cpu 1.2%", "skipped: user signed in", "deferred by user (1 of 2)"
    until: datetime | None = None  # end of the power-down window: when the device is next needed
    policy: str | None = None
    deferred_for: DeferralReason | None = None  # with outcome deferred: whose reason put it off

    def __post_init__(self) -> None:
        _aware("action.at", self.at)
        _aware("action.until", self.until)
        _text("action.reason", self.reason, 500)
        _text("action.policy", self.policy)


class HolderKind(enum.StrEnum):
    """What an OS says it is keeping awake for someone, in one vocabulary across the three OSes."""

    SYSTEM = "system"  # system sleep: Windows SYSTEM, macOS PreventUserIdleSystemSleep, logind "sleep" block
    DISPLAY = "display"  # display (on Windows, the system with it): Windows DISPLAY, macOS PreventUserIdleDisplaySleep
    IDLE = "idle"  # the session never counts as idle: logind "idle" block
    EXECUTION = "execution"  # Windows EXECUTION: a process asks to keep running
    AWAY_MODE = "away_mode"  # Windows AWAYMODE: "sleep" only blanks screen and sound
    NETWORK = "network"  # macOS NetworkClientActive: a network client (backup, sync) is at work


@dataclass(frozen=True)
class SleepHolder:
    """One request, assertion or inhibitor holding the machine awake, as the OS names it."""

    kind: HolderKind
    what: str  # the holder as the OS names it: "Playing audio", "caffeinate command-line tool"
    process: str = ""  # the program holding it, when the OS says: "msedge.exe", "caffeinate"
    pid: int | None = None

    def __post_init__(self) -> None:
        _text("holder.what", self.what)
        _text("holder.process", self.process)
        _count("holder.pid", self.pid, MAX_ID)


@dataclass(frozen=True)
class Insomnia:
    """What keeps the machine from sleeping on its own: the holders, and whether the OS would sleep at all.

    Looked at only while the machine is idle and at most every few minutes (the OS tools are not free);
    a report without one means the agent did not look in that interval, not that nothing held it.
    """

    holders: tuple[SleepHolder, ...] = ()
    sleep_timer_set: bool | None = None  # False: the OS never sleeps on its own; None: could not tell
    detail: str = ""  # what could not be read, e.g. "powercfg /requests needs administrator rights"

    def __post_init__(self) -> None:
        _items("insomnia.holders", self.holders)
        _text("insomnia.detail", self.detail)


@dataclass(frozen=True)
class UpdateStatus:
    """Whether OS updates are installing now, or have installed and wait for a restart (None: cannot tell)."""

    installing: bool | None = None
    reboot_pending: bool | None = None
    detail: str = ""  # the evidence: "unattended-upgr running (pid 812)", "/run/reboot-required"

    def __post_init__(self) -> None:
        _text("updates.detail", self.detail)


@dataclass(frozen=True)
class Report:
    """One interval of one machine. ``seq`` is the agent's own counter: (agent, seq) is unique."""

    seq: int
    start: datetime
    end: datetime
    activity: Activity
    energy: tuple[EnergySample, ...] = ()
    inventory: Inventory | None = None
    actions: tuple[PowerAction, ...] = ()  # power actions taken or skipped since the previous report
    relayed_wakes: tuple[int, ...] = ()  # ids of wake orders this agent sent as a relay since its last report
    insomnia: Insomnia | None = None  # what held the machine awake, when the agent looked in this interval
    updates: UpdateStatus | None = None  # the OS update state, on the first report and whenever it changes

    def __post_init__(self) -> None:
        _require(1 <= self.seq <= MAX_INT, f"seq must be a positive integer up to {MAX_INT}")
        _items("relayed_wakes", self.relayed_wakes, MAX_WAKE_ORDERS)
        _require(all(1 <= w <= MAX_ID for w in self.relayed_wakes), f"relayed wake ids run from 1 to {MAX_ID}")
        _items("actions", self.actions, MAX_ACTIONS)
        _aware("start", self.start)
        _aware("end", self.end)
        span = (self.end - self.start).total_seconds()
        _require(0 < span <= MAX_INTERVAL_SECONDS, f"a report must cover between 0 and {MAX_INTERVAL_SECONDS} seconds")
        _require(self.activity.slept_seconds <= span + 1, "slept_seconds is longer than the interval")
        _items("energy", self.energy, 16)
        for sample in self.energy:
            _require(sample.seconds <= span + 1, "an energy sample is longer than its interval")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class ReportBatch:
    protocol_version: int
    reports: tuple[Report, ...]
    schedule_version: str | None = None  # the power schedule the agent holds; the reply omits an unchanged one
    # The instant the agent's schedule should start from, when that is not now: a replay of past days (the
    # simulator building history) asks for the day its reports reach. Real agents leave it out.
    schedule_from: datetime | None = None

    def __post_init__(self) -> None:
        _aware("schedule_from", self.schedule_from)
        _require(self.protocol_version == PROTOCOL_VERSION,
                 f"protocol version {self.protocol_version} is not supported; this side speaks {PROTOCOL_VERSION}")
        _require(1 <= len(self.reports) <= MAX_BATCH_REPORTS, f"a batch holds 1 to {MAX_BATCH_REPORTS} reports")
        seqs = [r.seq for r in self.reports]
        _require(len(set(seqs)) == len(seqs), "a batch repeats a sequence number")


@dataclass(frozen=True)
class WakeOrder:
    """A magic packet a relay agent is asked to send on its own subnet, ``delay_seconds`` after it gets
    the order (so a wave keeps its pace through the relay)."""

    wake_id: int
    mac: str
    address: str  # where to send: the subnet's broadcast address
    port: int = 9
    delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        _text("wake.mac", self.mac, 64)
        _text("wake.address", self.address, 64)
        _require(0 < self.port < 65536, "wake.port must be a UDP port")
        _require(0 <= self.delay_seconds <= MAX_INTERVAL_SECONDS, "wake.delay_seconds is out of range")


@dataclass(frozen=True)
class RejectedReport:
    """A report the controller will never accept (it overlaps one already stored, draws more than any
    machine of its class can, ends in the future…), and why. Retrying it cannot help."""

    seq: int
    reason: str


@dataclass(frozen=True)
class BatchAck:
    """The controller's answer: every seq in ``accepted``, ``duplicate`` or ``rejected`` is settled and safe
    to delete; one rejected report never holds back the others in its batch."""

    accepted: tuple[int, ...] = ()
    duplicate: tuple[int, ...] = ()
    report_interval_seconds: int = 300
    wake_orders: tuple[WakeOrder, ...] = ()  # only for an agent elected wake relay of its subnet
    schedule: AgentSchedule | None = None  # None: no change (older controllers never send one)
    rejected: tuple[RejectedReport, ...] = ()  # older controllers refused a whole batch with 422 instead


@dataclass(frozen=True)
class EnrollRequest:
    protocol_version: int
    token: str
    inventory: Inventory

    def __post_init__(self) -> None:
        _require(self.protocol_version == PROTOCOL_VERSION,
                 f"protocol version {self.protocol_version} is not supported; this side speaks {PROTOCOL_VERSION}")
        _text("token", self.token, 128)


@dataclass(frozen=True)
class EnrollResponse:
    agent_id: str
    secret: str
    device_id: int
    site: str
    report_interval_seconds: int = 300


# --- JSON codec for the agent side (the controller uses pydantic on the same classes) ---------------

JsonValue = typing.Any


def to_wire(value: object) -> JsonValue:
    """A dataclass tree as JSON-ready builtins."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_wire(v) for v in value]
    return value


T = typing.TypeVar("T")


def from_wire(cls: type[T], data: JsonValue) -> T:
    """Build ``cls`` from JSON builtins, checking types as it goes; raises ProtocolError."""
    return typing.cast(T, _convert(cls, data, cls.__name__))


def _convert(tp: typing.Any, data: JsonValue, path: str) -> typing.Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(option, data, path)
            except ProtocolError as exc:
                errors.append(str(exc))
        raise ProtocolError(errors[0] if errors else f"{path}: unexpected null")
    if origin is tuple:
        _require(isinstance(data, list), f"{path}: expected a list")
        (item_type, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(item_type, v, f"{path}[{i}]") for i, v in enumerate(data))
    if dataclasses.is_dataclass(tp):
        _require(isinstance(data, dict), f"{path}: expected an object")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{path}.{f.name}")
            else:
                _require(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
                         f"{path}.{f.name}: missing")
        try:
            return tp(**kwargs)
        except ProtocolError as exc:
            raise ProtocolError(f"{path}: {exc}") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except ValueError:
            raise ProtocolError(f"{path}: {data!r} is not one of {[m.value for m in tp]}") from None
    if tp is datetime:
        _require(isinstance(data, str), f"{path}: expected an ISO 8601 timestamp")
        try:
            return datetime.fromisoformat(data)
        except ValueError:
            raise ProtocolError(f"{path}: {data!r} is not an ISO 8601 timestamp") from None
    if tp is float:
        _require(isinstance(data, int | float) and not isinstance(data, bool), f"{path}: expected a number")
        return float(data)
    if tp is int:
        _require(isinstance(data, int) and not isinstance(data, bool), f"{path}: expected an integer")
        return data
    if tp in (str, bool):
        _require(isinstance(data, tp), f"{path}: expected {tp.__name__}")
        return data
    raise ProtocolError(f"{path}: unsupported type {tp!r}")
