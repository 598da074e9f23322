"""The planner that puts a schedule in each ingest reply: a device elected to relay wake-on-LAN for its
subnet is kept on whatever its policy says, and gets a new schedule the moment it is elected or stood down."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from agent.protocol import ScheduleIntent
from controller.policy.dispatch import SchedulePlanner
from controller.policy.store import PolicyStore
from controller.register.models import Device, Site
from tests.conftest import REPO

HALF_TERM_MONDAY = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)  # no school: out of hours all day


def hillside(engine, tmp_path: Path) -> tuple[PolicyStore, list[int]]:
    directory = tmp_path / "policies"
    directory.mkdir()
    shutil.copy(REPO / "policies" / "primary.yaml", directory)
    shutil.copytree(REPO / "policies" / "calendars", directory / "calendars")
    with Session(engine) as session:
        site = Site(name="Hillside Primary")
        session.add(site)
        session.flush()
        pcs = [Device(site_id=site.id, hostname=f"HILL-PC{n:02}", device_class="desktop") for n in (1, 2)]
        session.add_all(pcs)
        session.commit()
        return PolicyStore(directory, engine), [pc.id for pc in pcs]


def intents(schedule) -> set[ScheduleIntent]:
    return {w.intent for w in schedule.windows}


def test_the_elected_relay_is_kept_on_and_its_neighbour_is_not(engine, tmp_path):
    store, (relay, neighbour) = hillside(engine, tmp_path)
    planner = SchedulePlanner(store, engine, hours=24, clock=lambda: HALF_TERM_MONDAY,
                              relays=lambda: frozenset({relay}))

    assert intents(planner.schedule_for(relay)) == {ScheduleIntent.KEEP_ON}
    assert ScheduleIntent.POWER_DOWN in intents(planner.schedule_for(neighbour))


def test_election_and_stand_down_each_send_the_agent_a_new_schedule(engine, tmp_path):
    store, (pc, _) = hillside(engine, tmp_path)
    elected: set[int] = set()
    planner = SchedulePlanner(store, engine, hours=24, clock=lambda: HALF_TERM_MONDAY,
                              relays=lambda: frozenset(elected))

    ordinary = asyncio.run(planner.reply(pc, held_version=None))
    assert asyncio.run(planner.reply(pc, held_version=ordinary.version)) is None  # it holds the current one
    elected.add(pc)
    as_relay = asyncio.run(planner.reply(pc, held_version=ordinary.version))
    assert as_relay is not None and intents(as_relay) == {ScheduleIntent.KEEP_ON}
    elected.clear()
    stood_down = asyncio.run(planner.reply(pc, held_version=as_relay.version))
    assert stood_down is not None and stood_down.version == ordinary.version
    assert ScheduleIntent.POWER_DOWN in intents(stood_down)


def test_an_agent_replaying_past_days_gets_the_schedule_of_the_day_it_reached(engine, tmp_path):
    """The simulator builds history day by day: each reply carries the schedule of the day its reports reach
    (ReportBatch.schedule_from), and going back to today gives today's again."""
    store, (pc, _) = hillside(engine, tmp_path)
    planner = SchedulePlanner(store, engine, hours=24, clock=lambda: HALF_TERM_MONDAY)
    today = asyncio.run(planner.reply(pc, held_version=None))
    week_ago = asyncio.run(planner.reply(pc, held_version=today.version, at=datetime(2026, 2, 9, 18, tzinfo=UTC)))
    assert "-20260209-" in week_ago.version and "-20260216-" in today.version
    assert min(w.start for w in week_ago.windows) == datetime(2026, 2, 9, tzinfo=UTC)
    # Monday 9 February was a school day (school hours keep it on); the half-term Monday was not.
    assert ScheduleIntent.KEEP_ON in intents(week_ago) and intents(today) == {ScheduleIntent.POWER_DOWN}
    assert asyncio.run(planner.reply(pc, held_version=week_ago.version)).version == today.version


def test_replies_in_flight_when_the_policies_are_due_share_one_reload(engine, tmp_path):
    store, pcs = hillside(engine, tmp_path)
    planner = SchedulePlanner(store, engine, hours=24, clock=lambda: HALF_TERM_MONDAY)
    reloads = 0
    refresh = store.refresh

    def counted_refresh():
        nonlocal reloads
        reloads += 1
        return refresh()

    store.refresh = counted_refresh

    async def many_at_once():
        return await asyncio.gather(*(planner.reply(pcs[n % 2], held_version=None) for n in range(64)))

    schedules = asyncio.run(many_at_once())

    assert reloads == 1
    assert all(ScheduleIntent.POWER_DOWN in intents(schedule) for schedule in schedules)

