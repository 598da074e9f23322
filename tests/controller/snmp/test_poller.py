"""Polling with the in-memory agent: credentials tried only where configured, the working one
remembered, every wait bounded, and no secret in any log."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time

import pytest

from controller.snmp.client import Kind, SnmpTimeout, Value
from controller.snmp.credentials import CommunityCredential, RememberedCredentials, Secret
from controller.snmp.memory import MemoryAgent, MemoryClient
from controller.snmp.poller import Poller, PollSettings
from controller.snmp.profiles import load_profiles
from tests.controller.snmp.conftest import address_of, community, recording, store_for, v3

FAST = PollSettings(timeout=0.2, retries=0)


def poller(client, store, **kwargs) -> Poller:
    return Poller(client, load_profiles(), store, **{"settings": FAST, **kwargs})


def wrong(name: str) -> CommunityCredential:
    return CommunityCredential(f"{name}-old", Secret(f"not-{name}", "env:OLD_COMMUNITY"))


def test_an_address_without_configured_credentials_is_not_asked_anything(memory_client):
    store = store_for((address_of("sharp"), [community("sharp")]))
    result = asyncio.run(poller(memory_client, store).poll(address_of("konica_c250i")))
    assert result.error == f"no SNMP credentials are configured for {address_of('konica_c250i')}"
    assert memory_client.requests == []


def test_only_the_addresses_own_credentials_are_tried(memory_client):
    store = store_for((address_of("sharp"), [wrong("sharp"), community("sharp")]),
                      (address_of("apc_ap8853"), [community("apc_ap8853")]))
    result = asyncio.run(poller(memory_client, store).poll(address_of("sharp")))
    assert result.ok and result.credential == "sharp-ro"
    assert {r.credential for r in memory_client.requests} == {"sharp-old", "sharp-ro"}
    assert {r.host for r in memory_client.requests} == {address_of("sharp")}


def test_the_credential_that_worked_is_remembered_and_tried_first_next_time(memory_client):
    store = store_for((address_of("sharp"), [wrong("sharp"), community("sharp")]))
    memory = RememberedCredentials()
    p = poller(memory_client, store, memory=memory)
    asyncio.run(p.poll(address_of("sharp")))
    assert memory.recall(address_of("sharp")) == "sharp-ro"
    memory_client.requests.clear()
    started = time.monotonic()
    assert asyncio.run(p.poll(address_of("sharp"))).ok
    assert time.monotonic() - started < FAST.timeout  # no wait on the stale community
    assert {r.credential for r in memory_client.requests} == {"sharp-ro"}


def test_a_refused_v3_user_moves_on_to_the_next_credential():
    agent = recording("apc_ap8853")
    agent.users = {"caretaker": ("auth-key-for-tests", "priv-key-for-tests")}
    client = MemoryClient({("10.0.0.5", 161): agent})
    store = store_for(("10.0.0.5", [v3("", priv="wrong-priv-key"), community("apc_ap8853")]))
    result = asyncio.run(poller(client, store).poll("10.0.0.5"))
    assert result.credential == "apc_ap8853-ro" and result.power.watts == 1140
    assert [r.credential for r in client.requests[:2]] == ["v3", "apc_ap8853-ro"]


def test_when_no_credential_works_the_poll_says_which_failed_how(memory_client):
    store = store_for((address_of("sharp"), [wrong("sharp")]))
    result = asyncio.run(poller(memory_client, store).poll(address_of("sharp")))
    assert not result.ok and result.error.startswith("no answer with any configured credential (sharp-old: no answer")


def test_dead_hosts_stall_neither_each_other_nor_the_live_ones(memory_client):
    live = ["sharp", "apc_ap8853", "XMG1915-10EP"]
    dead = ["127.0.0.97", "127.0.0.98", "127.0.0.99"]
    store = store_for(*((d, [community("sharp")]) for d in dead), *((address_of(n), [community(n)]) for n in live))
    started = time.monotonic()
    results = asyncio.run(poller(memory_client, store, settings=PollSettings(timeout=0.5, retries=1))
                          .poll_many([*dead, *(address_of(n) for n in live)]))
    elapsed = time.monotonic() - started
    assert [r.ok for r in results] == [False] * 3 + [True] * 3
    # Each dead host's own (1 + 1 retry) × 0.5 s = 1 s, at the same time: one after another would be 3 s.
    # The margin is for a loaded machine; only waiting in turn could reach 3 s.
    assert 1.0 <= elapsed < 2.5


class Counting(MemoryClient):
    """Keeps the most devices it was ever talking to at once."""

    def __init__(self, agents):
        super().__init__(agents)
        self.busy: dict[str, int] = {}
        self.most = 0

    async def _reach(self, target, operation, asked):
        self.busy[target.host] = self.busy.get(target.host, 0) + 1
        self.most = max(self.most, sum(1 for n in self.busy.values() if n))
        try:
            return await super()._reach(target, operation, asked)
        finally:
            self.busy[target.host] -= 1


def test_no_more_devices_are_polled_at_once_than_configured():
    agents = {(f"10.0.0.{i}", 161): MemoryAgent(recording("XMG1915-10EP").values, frozenset({"XMG1915-10EP"}),
                                                delay=0.02) for i in range(6)}
    client = Counting(agents)
    store = store_for(*((f"10.0.0.{i}", [community("XMG1915-10EP")]) for i in range(6)))
    results = asyncio.run(poller(client, store, settings=PollSettings(concurrency=2))
                          .poll_many([f"10.0.0.{i}" for i in range(6)]))
    assert all(r.ok for r in results) and client.most == 2


def test_a_device_that_answers_too_slowly_is_given_up_at_its_deadline():
    slow = MemoryAgent(recording("sharp").values, frozenset({"sharp"}), delay=0.2)
    store = store_for(("10.0.0.7", [community("sharp")]))
    polling = poller(MemoryClient({("10.0.0.7", 161): slow}), store, settings=PollSettings(device_deadline=0.5))
    started = time.monotonic()
    result = asyncio.run(polling.poll("10.0.0.7"))
    assert result.error == "gave up after 0.5 s without a complete answer"
    assert time.monotonic() - started < 0.7


class GoesQuiet(MemoryClient):
    """Answers identification, then stops answering, like a device rebooting mid-poll."""

    async def get_and_walk(self, target, oid_list, prefixes):
        await super().get_and_walk(target, oid_list, prefixes)
        raise SnmpTimeout(f"no answer from {target.host}")


class QuietWhenProbedAgain(MemoryClient):
    """Answers its first identification; later, only GETs: a device going down as it is identified."""

    async def next(self, target, oid_list):
        if any(r.operation == "next" for r in self.requests):
            raise SnmpTimeout(f"no answer from {target.host}")
        return await super().next(target, oid_list)


def test_a_device_that_goes_quiet_while_being_identified_is_not_taken_for_a_host():
    """Identified once; then it answers with another sysObjectID (so it is identified again) and
    stops answering: an error, not a host."""
    client = QuietWhenProbedAgain({("10.0.0.8", 161): recording("sharp")})
    polling = poller(client, store_for(("10.0.0.8", [community("sharp")])))
    assert asyncio.run(polling.poll("10.0.0.8")).kind == "printer"
    values = {**recording("sharp").values, "1.3.6.1.2.1.1.2.0": Value(Kind.OID, "1.3.6.1.4.1.2385.9")}
    client.agents[("10.0.0.8", 161)] = MemoryAgent(values, frozenset({"sharp"}))
    result = asyncio.run(polling.poll("10.0.0.8"))
    assert (result.ok, result.kind) == (False, None)
    assert result.error == "stopped answering while being identified: no answer from 10.0.0.8"


def test_a_device_that_goes_quiet_mid_poll_keeps_what_was_read_and_says_it_stopped():
    """Identified, then silent when asked its profile's objects: known for what it is, nothing
    invented for what it did not say, and asked nothing more."""
    client = GoesQuiet({("10.0.0.8", 161): recording("apc_ap7900b")})
    result = asyncio.run(poller(client, store_for(("10.0.0.8", [community("apc_ap7900b")]))).poll("10.0.0.8"))
    assert result.ok and (result.kind, result.profile) == ("pdu", "apc-rpdu-legacy")
    assert result.identity.vendor == "APC" and result.power is None and result.outlets == ()
    assert any(n.startswith("stopped early: no answer") for n in result.notes)
    reads = [r.operation for r in client.requests][1:]  # after the identifying GETNEXT
    assert reads == ["get", *["walk"] * (len(reads) - 1)]  # one read, then no second wait


def test_no_secret_reaches_the_logs_or_the_result(memory_client, caplog):
    stale = CommunityCredential("printers-old", Secret("stale-community", "env:OLD"))
    refused = v3("sharp", priv="wrong-priv-key")
    working = CommunityCredential("printers", Secret("sharp", "env:PRINTERS"))
    store = store_for((address_of("sharp"), [stale, refused, working]))
    with caplog.at_level(logging.DEBUG):
        result = asyncio.run(poller(memory_client, store).poll(address_of("sharp")))
    assert result.ok and len(caplog.records) >= 3  # it did log: two credentials failed, one worked
    shown = caplog.text + repr(result) + json.dumps(dataclasses.asdict(result), default=str)
    secrets = ["stale-community", "wrong-priv-key", "auth-key-for-tests", "sharp"]
    assert [s for s in secrets if s in shown.replace("SHARP", "")] == []  # the model name is not the community


@pytest.mark.parametrize("settings", [{"concurrency": 0}, {"device_deadline": 0}])
def test_unbounded_settings_are_refused(settings):
    with pytest.raises(ValueError):
        PollSettings(**settings)
