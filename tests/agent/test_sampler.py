"""The sampler: interval boundaries, the active/idle rule, every energy method labelled, time asleep,
and when inventory rides along. Real collectors read fixture machines; only the clock and the
activity counters (CPU time, input idle, time asleep) are scripted, since they are what a test
must control."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.collectors import battery, inventory, rapl
from agent.collectors.activity import ActivityReading
from agent.config import AgentConfig
from agent.platform import facts
from agent.platform.base import BatteryDraw, RaplCounter, RaplReading
from agent.protocol import MAX_INTERVAL_SECONDS, DeviceClass, EnergySample, Inventory, PowerMethod, PowerState
from agent.sampler import (
    PowerModelError,
    Sampler,
    activity_state,
    battery_sample,
    inventory_fingerprint,
    load_power_models,
    rapl_sample,
)

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "linux" / "sysfs"
T0 = datetime(2026, 2, 16, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ScriptedActivity:
    """Stands in for the activity collector: the test moves its counters as the machine would."""

    PROVIDES = ActivityReading

    def __init__(self) -> None:
        self.reading = ActivityReading(cpu_busy_seconds=1000.0, cpu_total_seconds=10_000.0, idle_seconds=None,
                                       idle_source="", sessions=0, slept_seconds=0.0)

    def supported(self, root: Path) -> bool:
        return True

    def collect(self, root: Path) -> ActivityReading:
        return self.reading

    def work(self, cpu_percent: float, cpu_seconds: float = 100.0, idle_seconds: float | None = None,
             slept: float = 0.0, sessions: int = 0) -> None:
        before = self.reading
        self.reading = replace(before, cpu_busy_seconds=before.cpu_busy_seconds + cpu_seconds * cpu_percent / 100,
                               cpu_total_seconds=before.cpu_total_seconds + cpu_seconds,
                               idle_seconds=idle_seconds, idle_source="logind" if idle_seconds is not None else "",
                               sessions=sessions, slept_seconds=before.slept_seconds + slept)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def activity() -> ScriptedActivity:
    return ScriptedActivity()


def machine(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(SYSFS / name, tmp_path / name))


def sampler(root: Path, clock: FakeClock, activity: ScriptedActivity, **settings: object) -> Sampler:
    config = AgentConfig(root=root, **settings)  # type: ignore[arg-type]
    return Sampler(config, clock, collectors=(inventory, activity, rapl, battery))


def by_method(samples: tuple[EnergySample, ...]) -> dict[tuple[PowerMethod, PowerState], EnergySample]:
    return {(sample.method, sample.state): sample for sample in samples}


# --- interval boundaries -------------------------------------------------------------------------

def test_first_report_covers_the_time_since_the_sampler_was_created(
        clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "optiplex-7070", clock, activity)
    clock.advance(300)
    activity.work(cpu_percent=10)

    report = s.report(1)

    assert (report.seq, report.start, report.end) == (1, T0, T0 + timedelta(seconds=300))


def test_each_report_starts_where_the_previous_one_ended(clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "optiplex-7070", clock, activity)
    ends = []
    for seq, seconds in enumerate((300, 297, 305), start=1):
        clock.advance(seconds)
        activity.work(cpu_percent=10)
        report = s.report(seq)
        assert report.start == (ends[-1] if ends else T0)
        ends.append(report.end)

    assert ends == [T0 + timedelta(seconds=300), T0 + timedelta(seconds=597), T0 + timedelta(seconds=902)]


def test_a_weekend_asleep_is_cut_to_the_longest_interval_the_protocol_takes(
        clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "optiplex-7070", clock, activity)
    clock.advance(60 * 3600)
    activity.work(cpu_percent=5, slept=60 * 3600 - 120)

    report = s.report(1)

    assert report.seconds == MAX_INTERVAL_SECONDS
    assert report.activity.slept_seconds == MAX_INTERVAL_SECONDS
    assert report.start == clock.now - timedelta(seconds=MAX_INTERVAL_SECONDS)


# --- the active/idle rule -------------------------------------------------------------------------

@pytest.mark.parametrize(("cpu_percent", "idle_seconds", "state"), [
    pytest.param(5.0, 30.0, PowerState.ACTIVE, id="input half a minute ago"),
    pytest.param(5.0, 600.0, PowerState.ACTIVE, id="input exactly at the threshold"),
    pytest.param(5.0, 900.0, PowerState.IDLE, id="no input for 15 minutes, quiet CPU"),
    pytest.param(50.0, 900.0, PowerState.ACTIVE, id="nobody there but the CPU is busy"),
    pytest.param(20.0, None, PowerState.IDLE, id="CPU at the threshold is not above it"),
    pytest.param(5.0, None, PowerState.IDLE, id="idle time unknowable, quiet CPU"),
])
def test_state_rule(cpu_percent: float, idle_seconds: float | None, state: PowerState) -> None:
    config = AgentConfig(idle_threshold_seconds=600, busy_cpu_percent=20.0)

    assert activity_state(cpu_percent, idle_seconds, config) is state


def test_report_state_comes_from_the_intervals_mean_cpu_and_last_input(
        clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "optiplex-7070", clock, activity, idle_threshold_seconds=600, busy_cpu_percent=20.0)
    clock.advance(300)
    activity.work(cpu_percent=5, idle_seconds=1200, sessions=1)
    quiet = s.report(1)
    clock.advance(300)
    activity.work(cpu_percent=35, idle_seconds=1500, sessions=1)
    busy = s.report(2)

    assert (quiet.activity.state, quiet.activity.cpu_percent) == (PowerState.IDLE, 5.0)
    assert (quiet.activity.idle_seconds, quiet.activity.idle_source, quiet.activity.sessions) == (1200, "logind", 1)
    assert (busy.activity.state, busy.activity.cpu_percent) == (PowerState.ACTIVE, 35.0)


def test_the_share_of_memory_in_use_at_the_end_of_the_interval_is_reported(
        clock: FakeClock, activity: ScriptedActivity) -> None:
    """Servers' right-sizing asks how much of its memory a machine uses: the reading at the interval's end."""
    s = sampler(SYSFS / "optiplex-7070", clock, activity)
    clock.advance(300)
    activity.reading = replace(activity.reading, memory_percent=63.5)
    assert s.report(1).activity.memory_percent == 63.5


# --- energy ------------------------------------------------------------------------------------------

def test_desktop_without_battery_or_rapl_is_estimated_by_the_model_alone(
        clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "optiplex-7070", clock, activity)
    clock.advance(300)
    activity.work(cpu_percent=30)

    (sample,) = s.report(1).energy

    assert (sample.method, sample.state, sample.seconds, sample.status) == (
        PowerMethod.MODEL, PowerState.ACTIVE, 300, "ok")
    assert sample.joules == pytest.approx((50 + (110 - 50) * 0.30) * 300)  # desktop: 50 W idle, 110 W flat out
    assert sample.detail == "desktop 50-110 W by CPU load"


def test_laptop_on_battery_reports_rapl_battery_and_model_side_by_side(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    root = machine(tmp_path, "thinkpad-t14")
    s = sampler(root, clock, activity)
    powercap = root / "sys/class/powercap"
    (powercap / "intel-rapl:0/energy_uj").write_text(f"{48215342917 + 1_500_000_000}\n")  # +1500 J package
    (powercap / "intel-rapl:0:2/energy_uj").write_text(f"{9876543210 + 90_000_000}\n")  # +90 J DRAM
    (powercap / "intel-rapl:0:0/energy_uj").write_text(f"{20123456789 + 999_000_000}\n")  # core: inside the package
    (root / "sys/class/power_supply/BAT0/power_now").write_text("10123000\n")  # 8.123 W before, 10.123 W now
    clock.advance(300)
    activity.work(cpu_percent=10)

    energy = by_method(s.report(1).energy)

    assert set(energy) == {(PowerMethod.RAPL, PowerState.IDLE), (PowerMethod.BATTERY, PowerState.IDLE),
                           (PowerMethod.MODEL, PowerState.IDLE)}
    assert energy[PowerMethod.RAPL, PowerState.IDLE].joules == pytest.approx(1590.0)
    assert energy[PowerMethod.RAPL, PowerState.IDLE].detail == "package-0+dram"
    assert energy[PowerMethod.BATTERY, PowerState.IDLE].joules == pytest.approx((8.123 + 10.123) / 2 * 300)
    assert energy[PowerMethod.MODEL, PowerState.IDLE].joules == pytest.approx((15 + 30 * 0.10) * 300)
    assert all(sample.seconds == 300 for sample in energy.values())


def test_rapl_counter_wrapping_inside_an_interval_is_still_counted(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    root = machine(tmp_path, "poweredge-r740")
    package = root / "sys/class/powercap/intel-rapl:0"
    top = int((package / "max_energy_range_uj").read_text())
    (package / "energy_uj").write_text(f"{top - 7_000_000}\n")
    s = sampler(root, clock, activity)
    (package / "energy_uj").write_text("3000000\n")
    for zone in ("intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"):  # the other zones count on: +1 J each
        counter = root / "sys/class/powercap" / zone / "energy_uj"
        counter.write_text(f"{int(counter.read_text()) + 1_000_000}\n")
    clock.advance(300)
    activity.work(cpu_percent=10)

    sample = by_method(s.report(1).energy)[PowerMethod.RAPL, PowerState.IDLE]

    assert sample.joules == pytest.approx(13.0)  # 7 J to the top and 3 J after, 3 J elsewhere
    assert sample.detail == "package-0+dram+package-1+dram"


def test_one_frozen_counter_is_left_out_by_name_and_the_moving_ones_count(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    root = machine(tmp_path, "poweredge-r740")
    s = sampler(root, clock, activity)
    for zone in ("intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1"):  # package-1's DRAM stands still
        counter = root / "sys/class/powercap" / zone / "energy_uj"
        counter.write_text(f"{int(counter.read_text()) + 2_000_000}\n")
    clock.advance(300)

    sample = by_method(s.report(1).energy)[PowerMethod.RAPL, PowerState.IDLE]

    assert (sample.status, sample.joules) == ("ok", pytest.approx(6.0))
    assert sample.detail == "package-0+dram+package-1; left out dram (intel-rapl:1:0): counter not advancing"


def test_charging_laptop_says_its_battery_is_no_measurement(
        clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "elitebook-840-g5", clock, activity)
    clock.advance(300)
    activity.work(cpu_percent=10)

    sample = by_method(s.report(1).energy)[PowerMethod.BATTERY, PowerState.IDLE]

    assert (sample.status, sample.joules, sample.usable) == ("unavailable: on AC", None, False)


def test_rapl_that_only_root_may_read_is_reported_unavailable_not_zero() -> None:
    denied = RaplReading(status="unavailable: permission")

    sample = rapl_sample(denied, denied, 300, PowerState.IDLE, slept=False)

    assert (sample.method, sample.status, sample.joules) == (PowerMethod.RAPL, "unavailable: permission", None)


def package(energy_uj: int) -> RaplReading:
    return RaplReading(counters=(RaplCounter("intel-rapl:0", "package-0", energy_uj, 262_143_328_850),))


@pytest.mark.parametrize(("previous", "current", "slept", "status", "joules"), [
    pytest.param(None, package(5_000_000), False, "unavailable: first reading", None, id="no earlier counter"),
    pytest.param(package(1_000_000), package(5_000_000), False, "ok", 4.0, id="counted"),
    pytest.param(package(9_000_000_000), package(2_000_000), True, "unavailable: counter reset by suspend", None,
                 id="counter went back across a suspend"),
    pytest.param(package(262_143_328_850 - 1_000_000), package(2_000_000), False, "ok", 3.0, id="wrapped"),
    pytest.param(package(5_000_000), package(5_000_000), False, "unavailable: counter not advancing", None,
                 id="frozen counter"),
])
def test_rapl_sample(previous: RaplReading | None, current: RaplReading, slept: bool, status: str,
                     joules: float | None) -> None:
    sample = rapl_sample(previous, current, 300, PowerState.ACTIVE, slept=slept)

    assert (sample.status, sample.joules) == (status, joules)


@pytest.mark.parametrize(("previous", "status"), [
    (None, "unavailable: first reading"),
    (BatteryDraw(discharging=False, detail="BAT0 Charging"), "unavailable: on AC for part of the interval"),
])
def test_battery_unplugged_during_the_interval_measured_only_part_of_it(previous: BatteryDraw | None,
                                                                        status: str) -> None:
    now = BatteryDraw(discharging=True, watts=9.0, detail="BAT0 power_now")

    assert battery_sample(previous, now, 300, PowerState.IDLE).status == status


def test_a_battery_rate_no_machine_could_draw_costs_that_figure_not_the_report() -> None:
    # A driver giving power_now in mW rather than µW would read as a million times too much.
    absurd = BatteryDraw(discharging=True, watts=8.123e6, detail="BAT0 power_now")

    sample = battery_sample(absurd, absurd, 300, PowerState.IDLE)

    assert (sample.status, sample.joules) == ("unavailable: implausible reading", None)


# --- bad readings: each costs its own figure, never the report ------------------------------------------
# Copies of the real captures in tests/fixtures/linux/sysfs with one value made bad, as broken drivers and
# firmware make them (the bad values are ours; everything else is the captured machine).


def test_a_battery_capacity_in_the_wrong_unit_costs_that_figure_and_the_machine_still_reports(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    root = machine(tmp_path, "thinkpad-t14")
    (root / "sys/class/power_supply/BAT0/energy_full_design").write_text("47000000000000000\n")  # 4.7e13 Wh
    s = sampler(root, clock, activity)
    clock.advance(300)

    report = s.report(1)

    (bat0,) = report.inventory.batteries
    assert (bat0.design_wh, bat0.full_wh) == (None, 45.21)
    assert bat0.detail == "design_wh unavailable: 4.7e+10 Wh is out of range"
    assert {sample.method for sample in report.energy} >= {PowerMethod.MODEL, PowerMethod.BATTERY}


def test_a_rapl_counter_that_does_not_move_is_unavailable_not_zero_joules(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    root = machine(tmp_path, "thinkpad-t14")  # nothing advances the captured counters between readings
    s = sampler(root, clock, activity)
    clock.advance(300)
    activity.work(cpu_percent=40)

    rapl_energy = by_method(s.report(1).energy)[PowerMethod.RAPL, PowerState.ACTIVE]

    assert (rapl_energy.status, rapl_energy.joules) == ("unavailable: counter not advancing", None)
    assert rapl_energy.detail == "package-0+dram"


def test_an_unreadable_dram_zone_is_named_and_the_package_still_counts(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    root = machine(tmp_path, "thinkpad-t14")
    powercap = root / "sys/class/powercap"
    (powercap / "intel-rapl:0:2/energy_uj").write_text("\n")  # the driver returned nothing
    s = sampler(root, clock, activity)
    (powercap / "intel-rapl:0/energy_uj").write_text(f"{48215342917 + 1_500_000_000}\n")
    clock.advance(300)

    rapl_energy = by_method(s.report(1).energy)[PowerMethod.RAPL, PowerState.IDLE]

    assert (rapl_energy.status, rapl_energy.joules) == ("ok", pytest.approx(1500.0))
    assert rapl_energy.detail == "package-0; left out dram (intel-rapl:0:2): unreadable counter"


def test_control_characters_from_firmware_strings_are_stripped_from_the_inventory(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    root = machine(tmp_path, "thinkpad-t14")
    dmi = root / "sys/class/dmi/id"
    (dmi / "product_version").write_text("ThinkPad\x00 T14\x1b[2J Gen 1\x07\n")
    (dmi / "product_serial").write_text("PF2\tABCDE\x85\n")
    (dmi / "chassis_type").write_text("4096\n")  # not a one-byte SMBIOS code
    s = sampler(root, clock, activity)
    clock.advance(300)

    smbios = s.report(1).inventory.smbios

    assert (smbios.model, smbios.serial, smbios.chassis_type) == ("ThinkPad T14[2J Gen 1", "PF2ABCDE", None)


# --- sleep ---------------------------------------------------------------------------------------------

def test_time_asleep_is_reported_and_estimated_at_sleep_watts(clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "optiplex-7070", clock, activity)
    clock.advance(300)
    activity.work(cpu_percent=10)
    s.report(1)
    clock.advance(3600 + 300)  # an hour suspended inside a five-minute interval
    activity.work(cpu_percent=10, slept=3600)

    report = s.report(2)
    energy = by_method(report.energy)

    assert report.activity.slept_seconds == 3600
    assert energy[PowerMethod.MODEL, PowerState.SLEEP].seconds == 3600
    assert energy[PowerMethod.MODEL, PowerState.SLEEP].joules == pytest.approx(3 * 3600)  # desktop sleep: 3 W
    assert energy[PowerMethod.MODEL, PowerState.IDLE].seconds == 300
    assert energy[PowerMethod.MODEL, PowerState.IDLE].joules == pytest.approx((50 + 60 * 0.10) * 300)


def test_measured_methods_cover_only_the_time_awake(clock: FakeClock, activity: ScriptedActivity) -> None:
    s = sampler(SYSFS / "thinkpad-t14", clock, activity)
    clock.advance(1800)
    activity.work(cpu_percent=10, slept=1500)

    energy = by_method(s.report(1).energy)

    assert energy[PowerMethod.RAPL, PowerState.IDLE].seconds == 300
    assert energy[PowerMethod.BATTERY, PowerState.IDLE].seconds == 300
    assert energy[PowerMethod.MODEL, PowerState.SLEEP].seconds == 1500
    assert energy[PowerMethod.MODEL, PowerState.SLEEP].joules == pytest.approx(1.5 * 1500)  # laptop sleep: 1.5 W


# --- inventory ----------------------------------------------------------------------------------------

def test_inventory_rides_on_the_first_report_then_on_changes_then_daily(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity, monkeypatch: pytest.MonkeyPatch) -> None:
    # Host facts are read again hourly (agent.platform.facts), by the same clock as the reports.
    monkeypatch.setattr(facts, "HOST_FACTS", facts.FactsCache(facts._read, lambda: (clock() - T0).total_seconds()))
    root = machine(tmp_path, "optiplex-7070")
    s = sampler(root, clock, activity)

    def next_report(seq: int, seconds: float = 300) -> Inventory | None:
        clock.advance(seconds)
        activity.work(cpu_percent=10)
        return s.report(seq).inventory

    first = next_report(1)
    unchanged = next_report(2)
    drm = root / "sys/class/drm"
    (drm / "card0-HDMI-A-1/edid").write_bytes((drm / "card0-DP-1/edid").read_bytes())  # a second monitor
    not_yet_read = next_report(3)
    changed = next_report(4, seconds=3600)  # the hourly reading of the host facts finds it
    settled = next_report(5)
    daily = next_report(6, seconds=24 * 3600)

    assert first is not None and len(first.monitors) == 1
    assert unchanged is None and not_yet_read is None
    assert changed is not None and len(changed.monitors) == 2
    assert settled is None
    assert daily is not None and daily.monitors == changed.monitors


def test_who_is_signed_in_does_not_count_as_an_inventory_change() -> None:
    base = inventory.collect(SYSFS / "optiplex-7070")
    signed_in = replace(base, user_count=3, user_names=("alice", "bob", "carol"))
    rebooted = replace(base, boot_time=T0)

    assert inventory_fingerprint(signed_in) == inventory_fingerprint(base)
    assert inventory_fingerprint(rebooted) != inventory_fingerprint(base)


class SignedInInventory:
    """The real inventory collector, with two people signed in."""

    PROVIDES = Inventory

    def supported(self, root: Path) -> bool:
        return True

    def collect(self, root: Path) -> Inventory:
        return replace(inventory.collect(root), user_count=2, user_names=("alice", "bob"))


@pytest.mark.parametrize(("send_user_names", "names"), [(False, ()), (True, ("alice", "bob"))])
def test_user_names_leave_the_device_only_when_the_site_says_so(
        clock: FakeClock, activity: ScriptedActivity, send_user_names: bool, names: tuple[str, ...]) -> None:
    config = AgentConfig(root=SYSFS / "optiplex-7070", send_user_names=send_user_names)
    s = Sampler(config, clock, collectors=(SignedInInventory(), activity))
    clock.advance(300)
    activity.work(cpu_percent=10)

    report = s.report(1)

    assert s.inventory().user_names == names
    assert report.inventory is not None
    assert (report.inventory.user_names, report.inventory.user_count) == (names, 2)


# --- the power model's data -----------------------------------------------------------------------------

def test_shipped_power_models_cite_their_source_for_every_class() -> None:
    models = load_power_models(None)

    assert {model.source != "" for model in models.values()} == {True}
    assert all(0 <= m.sleep_watts < m.idle_watts <= m.max_watts for m in models.values())


def test_site_override_replaces_only_the_classes_it_names(
        tmp_path: Path, clock: FakeClock, activity: ScriptedActivity) -> None:
    override = tmp_path / "models.json"
    override.write_text('{"models": {"desktop": {"idle_watts": 30, "max_watts": 90, "sleep_watts": 1, '
                        '"source": "metered on our own OptiPlex 7070s, 2025"}}}')
    s = sampler(SYSFS / "optiplex-7070", clock, activity, power_models_file=override)
    clock.advance(100)
    activity.work(cpu_percent=50)

    (sample,) = s.report(1).energy

    assert sample.joules == pytest.approx((30 + 60 * 0.5) * 100)
    assert load_power_models(override)[DeviceClass.LAPTOP] == load_power_models(None)[DeviceClass.LAPTOP]


@pytest.mark.parametrize("text", [
    '{"models": {"desktop": {"idle_watts": 90, "max_watts": 40, "sleep_watts": 1}}}',
    '{"models": {"desktop": {"idle_watts": "lots", "max_watts": 40, "sleep_watts": 1}}}',
    '{"models": {"server": {"idle_watts": 100, "max_watts": 250000, "sleep_watts": 5}}}',
    '{"models": {"tablet": {"idle_watts": 3, "max_watts": 8, "sleep_watts": 0.5}}}',
    '{"desktop": {"idle_watts": 30, "max_watts": 90, "sleep_watts": 1}}',
])
def test_a_power_model_file_that_makes_no_sense_is_refused(tmp_path: Path, text: str) -> None:
    override = tmp_path / "models.json"
    override.write_text(text)

    with pytest.raises(PowerModelError):
        load_power_models(override)


def test_a_missing_power_model_file_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(PowerModelError, match=r"models\.json"):
        load_power_models(tmp_path / "models.json")
