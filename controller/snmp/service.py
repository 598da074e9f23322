"""The controller's SNMP round: poll every registered target, store the readings, account the energy.

It runs inside the controller (``start_polling`` from the app lifespan) rather than as a separate
service: a school runs one ``caretaker serve`` and nothing else, and the round needs only the
event loop (pysnmp is asyncio) plus a worker thread for the database. Several replicas on
PostgreSQL poll once between them: a round runs only while holding an advisory lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from controller.db import session_scope
from controller.jobs.singleton import Outcome, finished, held, started
from controller.settings import Settings
from controller.snmp.accounting import account
from controller.snmp.client import SnmpClient
from controller.snmp.credentials import CredentialError, CredentialStore, load_credentials
from controller.snmp.identify import Identifications
from controller.snmp.mapping import MappingError, MeteredDevice, load_meter_map
from controller.snmp.models import SnmpTarget
from controller.snmp.poller import Poller, PollSettings
from controller.snmp.profiles import Profile, load_profiles
from controller.snmp.readings import DevicePoll
from controller.snmp.store import remembered_credentials, save_poll
from controller.timeutil import utcnow

if TYPE_CHECKING:
    from controller.snmp.pysnmp_client import PysnmpClient

log = logging.getLogger(__name__)
_LOCK_KEY = 0x534E4D50  # "SNMP"
SNMP_POLLING = "snmp-polling"  # its JobRun rows: one per round


@dataclass(frozen=True)
class Round:
    polled: int
    answered: int
    stored: int  # new readings (a poll already stored is not stored again)
    metered_devices: int
    skipped: bool = False  # another replica holds the round


@dataclass(frozen=True)
class SnmpService:
    engine: Engine
    client: SnmpClient
    profiles: Mapping[str, Profile]
    credentials: CredentialStore
    meter_map: Sequence[MeteredDevice] = ()
    settings: PollSettings = field(default_factory=PollSettings)
    max_gap: timedelta = timedelta(minutes=20)  # a longer silence between readings is unknown energy
    # What each address was identified as: a round after the first skips the probes (identify.py).
    identifications: Identifications = field(default_factory=Identifications)

    async def poll_round(self) -> Round:
        with held(self.engine, _LOCK_KEY) as ours:
            if not ours:
                return Round(0, 0, 0, 0, skipped=True)
            run_id = await asyncio.to_thread(started, self.engine, SNMP_POLLING, utcnow())
            outcome = Outcome.FAILED
            try:
                targets = await asyncio.to_thread(self._targets)
                poller = Poller(self.client, self.profiles, self.credentials, remembered_credentials(targets),
                                self.settings, identifications=self.identifications)
                polls = await poller.poll_many([(t.address, t.port) for t in targets])
                done = await asyncio.to_thread(self.store, targets, polls)
                outcome = Outcome.DONE
                return done
            finally:
                await asyncio.to_thread(finished, self.engine, run_id, utcnow(), outcome)

    def _targets(self) -> list[SnmpTarget]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(SnmpTarget).order_by(col(SnmpTarget.id))))

    def store(self, targets: Sequence[SnmpTarget], polls: Sequence[DevicePoll]) -> Round:
        """Readings, statuses and the hours they touch, in one transaction."""
        with session_scope(self.engine) as session:
            stored = sum(save_poll(session, session.merge(t), p) for t, p in zip(targets, polls, strict=True))
            answered = [p for p in polls if p.ok]
            session.flush()
            metered = account(session, min(p.at for p in answered), max(p.at for p in answered), self.meter_map,
                              self.max_gap) if answered else None
        log.info("snmp round: %d polled, %d answered, %d readings stored", len(polls), len(answered), stored)
        return Round(len(polls), len(answered), stored, len(metered.devices) if metered else 0)


async def run(service: SnmpService, interval_seconds: float) -> None:
    """Rounds ``interval_seconds`` apart (from the end of one to the start of the next, so a slow round
    never overlaps the next) until cancelled; a failed round is logged and the next one still runs."""
    while True:
        try:
            await service.poll_round()
        except Exception:
            log.exception("snmp round failed")
        await asyncio.sleep(interval_seconds)


@dataclass(frozen=True)
class Polling:
    """The running poll loop, for the app lifespan to stop."""

    task: asyncio.Task
    client: PysnmpClient

    async def stop(self) -> None:
        self.task.cancel()
        with suppress(asyncio.CancelledError):
            await self.task
        self.client.close()


def start_polling(settings: Settings, engine: Engine) -> Polling | None:
    """Start polling the registered targets, unless it is switched off or not configured. A broken
    credentials file or meter map is logged and leaves polling off: agents' ingest must not stop
    because the SNMP configuration has a typo."""
    credentials = settings.snmp_credentials_file or settings.data_dir / "snmp-credentials.yaml"
    meters = settings.snmp_meter_map_file or settings.data_dir / "snmp-meters.yaml"
    if settings.snmp_poll_interval_seconds <= 0 or not credentials.exists():
        log.info("snmp polling is off (interval %d s, credentials file %s %s)", settings.snmp_poll_interval_seconds,
                 credentials, "found" if credentials.exists() else "missing")
        return None
    try:
        store = load_credentials(credentials, os.environ)
        meter_map = load_meter_map(meters) if meters.exists() else ()
    except (CredentialError, MappingError) as exc:
        log.error("snmp polling is off: %s", exc)
        return None
    from controller.snmp.pysnmp_client import PysnmpClient  # pysnmp costs ~25 MB; loaded only to poll

    client = PysnmpClient()
    service = SnmpService(engine, client, load_profiles(), store, meter_map)
    return Polling(asyncio.create_task(run(service, settings.snmp_poll_interval_seconds), name="snmp-poll"), client)
