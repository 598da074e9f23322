"""Reports carry what holds the machine awake only for idle intervals (the OS tools are not free, and only an
idle machine raises the question), and the OS update state on the first report and whenever it changes."""

from __future__ import annotations

from pathlib import Path

from agent.collectors import inventory
from agent.config import AgentConfig
from agent.protocol import HolderKind, Insomnia, SleepHolder, UpdateStatus
from agent.sampler import Sampler
from tests.agent.test_sampler import SYSFS, FakeClock, ScriptedActivity


class Scripted:
    """Stands in for a collector of ``kind``, counting how often it is asked."""

    def __init__(self, kind: type, reading: object) -> None:
        self.PROVIDES = kind
        self.reading = reading
        self.asked = 0

    def supported(self, root: Path) -> bool:
        return True

    def collect(self, root: Path) -> object:
        self.asked += 1
        return self.reading


def test_insomnia_rides_on_idle_reports_only_and_updates_when_they_change():
    clock, activity = FakeClock(), ScriptedActivity()
    held = Insomnia(holders=(SleepHolder(HolderKind.SYSTEM, "Playing audio", "Teams.exe"),), sleep_timer_set=True)
    awake = Scripted(Insomnia, held)
    updates = Scripted(UpdateStatus, UpdateStatus(installing=True, reboot_pending=False, detail="dpkg running"))
    sampler = Sampler(AgentConfig(root=SYSFS / "optiplex-7070"), clock,
                      collectors=(inventory, activity, awake, updates))
    clock.advance(300)
    activity.work(cpu_percent=90)  # busy: active
    busy = sampler.report(1)
    clock.advance(300)
    activity.work(cpu_percent=1, idle_seconds=1800)
    idle = sampler.report(2)
    clock.advance(300)
    activity.work(cpu_percent=1, idle_seconds=2100)
    same = sampler.report(3)
    updates.reading = UpdateStatus(installing=False, reboot_pending=True, detail="/run/reboot-required")
    clock.advance(300)
    activity.work(cpu_percent=1, idle_seconds=2400)
    changed = sampler.report(4)
    assert (busy.insomnia, idle.insomnia, same.insomnia) == (None, held, held) and awake.asked == 3
    assert busy.updates.installing is True and idle.updates is None and same.updates is None
    assert changed.updates == UpdateStatus(installing=False, reboot_pending=True, detail="/run/reboot-required")
