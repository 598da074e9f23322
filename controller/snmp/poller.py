"""Polling: find a credential that works, identify the device, read its profile, build the readings.

Every step is bounded. Each request waits at most (retries + 1) × timeout; each device has a
wall-clock deadline covering all its credentials and walks; and devices are polled concurrently up
to a limit, so one dead host costs its own deadline and nobody else's. Only the credentials
configured for an address are tried there, the one that worked last time first.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from controller.snmp.client import SnmpAuthError, SnmpClient, SnmpError, SnmpTimeout, Target, Value
from controller.snmp.collect import Snapshot, evaluate, fetch, plan, walks_to_fetch
from controller.snmp.credentials import (
    Credential,
    CredentialMemory,
    CredentialStore,
    RememberedCredentials,
    in_trial_order,
)
from controller.snmp.explain import explain, survey
from controller.snmp.identify import PROBE_ROWS, Evidence, Identifications, choose, questions, system_identity
from controller.snmp.profiles import DeviceKind, Profile
from controller.snmp.readings import DevicePoll, build
from controller.timeutil import utcnow

log = logging.getLogger(__name__)


class Survey(enum.StrEnum):
    """Which devices to step through the MIB of, to say what no profile interpreted (explain.py)."""

    NONE = "none"  # the controller's rounds: what identification saw is enough
    HOSTS = "hosts"  # discovery: the devices no profile recognised
    ALL = "all"  # `caretaker snmp poll`: an operator looking at one device


@dataclass(frozen=True)
class PollSettings:
    timeout: float = 1.0  # seconds per request attempt
    retries: int = 1
    concurrency: int = 32  # devices polled at once
    device_deadline: float = 60.0  # seconds for one device, every credential and walk included
    survey: Survey = Survey.NONE

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.device_deadline <= 0:
            raise ValueError("concurrency must be at least 1 and device_deadline positive")


class Poller:
    def __init__(self, client: SnmpClient, profiles: Mapping[str, Profile], credentials: CredentialStore,
                 memory: CredentialMemory | None = None, settings: PollSettings | None = None,
                 clock: Callable[[], datetime] = utcnow, identifications: Identifications | None = None) -> None:
        self.client = client
        self.profiles = dict(profiles)
        self.credentials = credentials
        self.memory = memory if memory is not None else RememberedCredentials()
        self.identifications = identifications if identifications is not None else Identifications()
        self.settings = settings or PollSettings()
        self.clock = clock
        self._questions = questions(self.profiles.values())
        self._evidence_of: dict[str, list[str]] = {}
        for profile in self.profiles.values():
            self._evidence_of.setdefault(profile.kind, []).extend(a.oid for a in profile.match.answers)

    async def poll_many(self, addresses: Iterable[str | tuple[str, int]]) -> list[DevicePoll]:
        """Poll every address, at most ``concurrency`` at once; results in the order given."""
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(address: str, port: int) -> DevicePoll:
            async with gate:
                return await self.poll(address, port)

        pairs = [(a, 161) if isinstance(a, str) else a for a in addresses]
        return list(await asyncio.gather(*(one(a, p) for a, p in pairs)))

    async def poll(self, address: str, port: int = 161) -> DevicePoll:
        at = self.clock()
        candidates = in_trial_order(self.credentials.candidates(address), self.memory.recall(address))
        if not candidates:
            log.info("snmp %s: no credentials are configured for this address; not polled", address)
            return DevicePoll(address, port, at, error=f"no SNMP credentials are configured for {address}")
        try:
            async with asyncio.timeout(self.settings.device_deadline):
                return await self._poll(address, port, at, candidates)
        except TimeoutError:
            log.info("snmp %s:%d: gave up after %g s", address, port, self.settings.device_deadline)
            return DevicePoll(address, port, at,
                              error=f"gave up after {self.settings.device_deadline:g} s without a complete answer")

    async def _poll(self, address: str, port: int, at: datetime, candidates: tuple[Credential, ...]) -> DevicePoll:
        fresh = self.settings.survey == Survey.ALL
        expected = None if fresh else self.identifications.expected(address, port, self.profiles)
        walked: dict[str, list] = {}
        if expected is not None:  # known: the system group, its profile's GETs and tables, one request
            gets = list(dict.fromkeys(self._questions.gets + plan(expected[0])[0]))
            walks = walks_to_fetch(*expected)
            answered = await self._first_answer(address, port, candidates,
                                                lambda t: self._values(t, gets, walks, walked))
        else:  # new: the system group and every probe in one GETNEXT
            gets = list(self._questions.gets)
            answered = await self._first_answer(address, port, candidates, self._identify)
        if isinstance(answered, str):
            return DevicePoll(address, port, at, error=answered)
        target, evidence, problems = answered
        values = dict(evidence.values)
        known = self.identifications.recall(address, port, values, self.profiles) if expected else None
        if known is not None:
            profile, absent = known
        else:
            walked.clear()  # read for the profile it was, not the one it is now
            try:
                if not evidence.asked:  # known once, now answering with another sysObjectID
                    evidence, problems = await self._evidence(target, values)
                evidence = await self._walk_undecided(target, evidence)
            except SnmpTimeout as exc:
                return DevicePoll(address, port, at, credential=target.credential.name,
                                  error=f"stopped answering while being identified: {exc}")
            profile, absent = choose(self.profiles.values(), evidence).profile, tuple(evidence.absent())
            if profile is None:
                return DevicePoll(address, port, at, credential=target.credential.name,
                                  error="no profile matches this device (is the generic profile missing?)")
            if not problems:
                self.identifications.remember(address, port, values, profile, absent)
        system = system_identity(values)
        log.info("snmp %s:%d: credential %s, profile %s", address, port, target.credential.name, profile.name)
        snapshot, more = await fetch(self.client, target, profile,
                                     Snapshot(system.sys_descr or "", values, walked, frozenset(gets)), absent)
        seen = list(evidence.seen())
        found = build(evaluate(profile, snapshot), system, [a.oid for a in profile.match.answers])
        host = profile.kind == DeviceKind.HOST
        if self.settings.survey == Survey.ALL or (self.settings.survey == Survey.HOSTS and host):
            seen += await survey(self.client, target)
        return DevicePoll(address, port, at, profile=profile.name, kind=profile.kind,
                          credential=target.credential.name, identity=found.identity, chassis=found.chassis,
                          power=found.power, outlets=found.outlets, printer=found.printer, poe=found.poe, ups=found.ups,
                          host=found.host, notes=found.notes + tuple(problems + more),
                          unexplained=explain(profile, found.identity, seen, self._evidence_of[profile.kind]))

    async def _values(self, target: Target, gets: list[str], walks: list[str],
                      walked: dict[str, list]) -> tuple[Evidence, list[str]]:
        """A known device's GETs and walks at once; the walks land in ``walked``."""
        values, rows = await self.client.get_and_walk(target, gets, walks)
        walked.update(rows)
        return Evidence(values), []

    async def _identify(self, target: Target) -> tuple[Evidence, list[str]]:
        """The system group, the exact objects profiles look for and every probe, in one GETNEXT: each
        exact object is asked as its predecessor's next (``Questions.next_for``) and kept only if the
        answer is that object. An agent that refuses it is identified on its system group alone."""
        asked = self._questions.next_for
        nexts = self._questions.nexts
        try:
            following = await self.client.next(target, [*asked, *nexts])
        except (SnmpTimeout, SnmpAuthError):
            raise
        except SnmpError:
            return await self._evidence(target, await self.client.get(target, self._questions.gets))
        values = {wanted: following[before][1] for before, wanted in asked.items()
                  if before in following and following[before][0] == wanted}
        return Evidence(values, {o: following[o] for o in nexts if o in following}, asked=nexts), []

    async def _evidence(self, target: Target, values: dict[str, Value]) -> tuple[Evidence, list[str]]:
        """Which probed subtrees the device answers in (one GETNEXT of them all)."""
        try:
            nexts = self._questions.nexts
            return Evidence(values, await self.client.next(target, nexts), asked=nexts), []
        except SnmpTimeout:
            raise  # gone quiet mid-poll: better no answer than a printer taken for a host
        except SnmpError as exc:  # an agent that refuses GETNEXT: identified on its system group
            return Evidence(values), [f"could not ask which MIBs it answers: {exc}"]

    async def _walk_undecided(self, target: Target, evidence: Evidence) -> Evidence:
        """The columns a profile able to win needs walked to be sure of (an ENTITY chassis not first).
        A column the agent will not walk is taken as not there."""
        walked: set[str] = set()
        while walk := [c for c in choose(self.profiles.values(), evidence).walk if c not in walked]:
            walked.update(walk)
            try:
                rows = await self.client.walk_many(target, walk, PROBE_ROWS)
            except SnmpTimeout:
                raise
            except SnmpError:
                rows = {column: [] for column in walk}
            evidence = evidence.with_columns(rows)
        return evidence

    async def _first_answer(self, address: str, port: int, candidates: tuple[Credential, ...],
                            ask: Callable[[Target], Awaitable[tuple[Evidence, list[str]]]]
                            ) -> tuple[Target, Evidence, list[str]] | str:
        """The first credential the device answers ``ask`` with, and what it said; or why none did."""
        failures = []
        for credential in candidates:
            target = Target(address, credential, port, self.settings.timeout, self.settings.retries)
            try:
                evidence, problems = await ask(target)
            except SnmpError as exc:
                log.info("snmp %s:%d: credential %s: %s", address, port, credential.name, exc)
                failures.append(f"{credential.name}: {exc}")
                continue
            self.memory.remember(address, credential.name)
            return target, evidence, problems
        return "no answer with any configured credential (" + "; ".join(failures) + ")"


async def poll_once(address: str, port: int, profiles: Mapping[str, Profile], credentials: CredentialStore,
                    settings: PollSettings | None = None) -> DevicePoll:
    """One device with the real SNMP client, for the command line."""
    from controller.snmp.pysnmp_client import PysnmpClient  # pysnmp costs ~25 MB; only those who poll load it

    async with PysnmpClient() as client:
        return await Poller(client, profiles, credentials, settings=settings).poll(address, port)
