"""The real pysnmp client against snmpsim on loopback (and against nothing at all, for timeouts)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from controller.snmp.client import Kind, SnmpAuthError, SnmpTimeout, Target, Value
from controller.snmp.credentials import CommunityCredential, RememberedCredentials, Secret
from controller.snmp.poller import Poller, PollSettings
from controller.snmp.profiles import load_profiles
from controller.snmp.pysnmp_client import PysnmpClient, _TooBig
from tests.controller.snmp.conftest import address_of, community, store_for, v3

SUPPLY_LEVELS = "1.3.6.1.2.1.43.11.1.1.9"


def run(coroutine_function, *args):
    async def with_client():
        async with PysnmpClient() as client:
            return await coroutine_function(client, *args)

    return asyncio.run(with_client())


def unused_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_get_returns_values_with_their_snmp_types_and_leaves_out_absent_ones(snmpsim):
    async def get(client):
        return await client.get(snmpsim.target("sharp"), ["1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.43.10.2.1.4.1.1",
                                                          "1.3.6.1.2.1.43.5.1.1.17.1", "1.3.6.1.2.1.1.9.9.0"])

    assert run(get) == {"1.3.6.1.2.1.1.2.0": Value(Kind.OID, "1.3.6.1.4.1.2385.3.1.112.1.2"),
                        "1.3.6.1.2.1.43.10.2.1.4.1.1": Value(Kind.COUNTER32, 121104),
                        "1.3.6.1.2.1.43.5.1.1.17.1": Value(Kind.OCTETS, b"6509415X00")}


def test_a_get_of_many_oids_is_split_into_requests_the_agent_accepts(snmpsim):
    columns = [f"1.3.6.1.2.1.43.11.1.1.{c}.1.{row}" for c in (5, 6, 8, 9) for row in range(1, 15)]

    async def get(client):
        return await client.get(snmpsim.target("sharp"), columns)

    assert len(run(get)) == 56


def test_walk_returns_the_subtree_in_order_over_several_bulk_requests(snmpsim):
    async def walk(client):
        return (await client.walk(snmpsim.target("sharp"), SUPPLY_LEVELS),
                await client.walk(snmpsim.target("ciscosb_cbs350"), "1.3.6.1.2.1.2.2.1", max_rows=60))

    levels, interfaces = run(walk)
    assert [v.raw for _, v in levels] == [55, 19, 40, 34, 100, 81, 81, 81, 95, 91, 91, 91, 74, -2]
    assert len(interfaces) == 60 and all(oid.startswith("1.3.6.1.2.1.2.2.1.") for oid, _ in interfaces)


def test_columns_walked_together_read_what_each_walk_reads_alone(snmpsim):
    supplies = [f"1.3.6.1.2.1.43.11.1.1.{column}" for column in (5, 6, 8, 9)]  # 14 rows each
    entity = ["1.3.6.1.2.1.47.1.1.1.1.5", "1.3.6.1.2.1.47.1.1.1.1.11"]  # 37 rows each

    async def both(client):
        sharp, cisco = snmpsim.target("sharp"), snmpsim.target("ciscosb_cbs350")
        together = {**await client.walk_many(sharp, supplies), **await client.walk_many(cisco, entity)}
        alone = {p: await client.walk(sharp, p) for p in supplies} | {p: await client.walk(cisco, p) for p in entity}
        empty = await client.walk_many(sharp, ["1.3.6.1.2.1.105.1.3.1.1.2"])  # no PoE on a printer
        return together, alone, empty

    together, alone, empty = run(both)
    assert together == alone
    assert [len(together[p]) for p in supplies + entity] == [14, 14, 14, 14, 37, 37]
    assert empty == {"1.3.6.1.2.1.105.1.3.1.1.2": []}


def test_snmpv3_authpriv_with_a_context_reads_the_device(snmpsim):
    async def get(client):
        return await client.get(snmpsim.target("apc_ap8853", v3("apc_ap8853")), ["1.3.6.1.4.1.318.1.1.26.4.3.1.5.1"])

    assert run(get) == {"1.3.6.1.4.1.318.1.1.26.4.3.1.5.1": Value(Kind.INTEGER, 114)}


def test_a_wrong_v3_privacy_key_is_refused_without_waiting(snmpsim):
    async def get(client):
        return await client.get(snmpsim.target("sharp", v3("sharp", priv="not-the-priv-key")), ["1.3.6.1.2.1.1.1.0"])

    started = time.monotonic()
    with pytest.raises(SnmpAuthError, match="refused credential v3"):
        run(get)
    assert time.monotonic() - started < 1.0


def test_a_wrong_community_is_silence_bounded_by_timeout_and_retries(snmpsim):
    stale = CommunityCredential("stale", Secret("not-a-community", "env:STALE"))

    async def get(client):
        return await client.get(Target(address_of("sharp"), stale, snmpsim.port, 0.3, 1), ["1.3.6.1.2.1.1.1.0"])

    started = time.monotonic()
    with pytest.raises(SnmpTimeout):
        run(get)
    assert 0.6 <= time.monotonic() - started < 1.2


def test_an_unused_loopback_port_times_out_within_its_bound():
    async def get(client):
        return await client.get(Target("127.0.0.1", community("sharp"), unused_udp_port(), 0.2, 1),
                                ["1.3.6.1.2.1.1.1.0"])

    started = time.monotonic()
    with pytest.raises(SnmpTimeout, match=r"within 0\.4 s"):
        run(get)
    assert time.monotonic() - started < 0.9


def test_dead_hosts_do_not_stall_a_real_poll(snmpsim):
    live = ["sharp", "apc_ap8853", "abbups_abbups"]
    dead = ["127.0.0.7", "127.0.0.8", "127.0.0.9"]  # loopback, but nothing listens there
    store = store_for(*((d, [community("sharp")]) for d in dead), *((address_of(n), [community(n)]) for n in live))

    async def poll(client):
        poller = Poller(client, load_profiles(), store, settings=PollSettings(timeout=0.5, retries=1))
        return await poller.poll_many([(a, snmpsim.port) for a in [*dead, *(address_of(n) for n in live)]])

    started = time.monotonic()
    results = run(poll)
    assert [r.ok for r in results] == [False] * 3 + [True] * 3
    # One dead host's 2 × 0.5 s plus the live polls; one dead host after another alone would be 3 s. The margin
    # is for a loaded machine (2 cores shared with other suites), where the live polls take a second or more.
    assert time.monotonic() - started < 2.9


def test_the_remembered_credential_skips_a_stale_community_on_a_real_device(snmpsim):
    stale = CommunityCredential("stale", Secret("not-a-community", "env:STALE"))
    store = store_for((address_of("konica_c250i"), [stale, community("konica_c250i")]))
    memory = RememberedCredentials()

    async def poll_twice(client):
        poller = Poller(client, load_profiles(), store, memory, PollSettings(timeout=0.4, retries=0))
        first = await poller.poll(address_of("konica_c250i"), snmpsim.port)
        started = time.monotonic()
        second = await poller.poll(address_of("konica_c250i"), snmpsim.port)
        return first, second, time.monotonic() - started

    first, second, elapsed = run(poll_twice)
    assert (first.credential, second.credential) == ("konica_c250i-ro", "konica_c250i-ro")
    assert second.printer.life_count == 33810 and elapsed < 0.4


def test_no_secret_reaches_the_logs_with_the_real_client(snmpsim, caplog):
    stale = CommunityCredential("stale", Secret("stale-community", "env:STALE"))
    store = store_for((address_of("cyberpower"), [stale, v3("cyberpower", priv="wrong-priv-key", name="v3-old"),
                                                  v3("cyberpower")]))

    async def poll(client):
        poller = Poller(client, load_profiles(), store, settings=PollSettings(timeout=0.3, retries=0))
        return await poller.poll(address_of("cyberpower"), snmpsim.port)

    with caplog.at_level(logging.DEBUG):
        result = run(poll)
    assert result.ok and result.identity.model == "OL2200RTXL2U"
    assert "stale: no answer" in caplog.text and "refused credential v3-old" in caplog.text
    assert result.credential == "v3"
    for secret in ("stale-community", "wrong-priv-key", "auth-key-for-tests", "priv-key-for-tests"):
        assert secret not in caplog.text and secret not in repr(result)


class SmallAgentBuffer(PysnmpClient):
    """The real client, as if the agent answered tooBig to any GET or GETNEXT of more than three OIDs
    (small agents stop near 1,500 bytes); it records the size of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    async def _ask(self, target, operation, asked, repetitions=0, non_repeaters=0):
        self.sizes.append(len(asked))
        if operation != "bulk" and len(asked) > 3:
            raise _TooBig(f"{target.host} answered tooBig")
        return await super()._ask(target, operation, asked, repetitions, non_repeaters)


def test_an_agent_that_answers_too_big_is_asked_in_halves(snmpsim):
    probes = ["1.3.6.1.2.1.43", "1.3.6.1.2.1.33.1", "1.3.6.1.2.1.17", "1.3.6.1.2.1.47.1", "1.3.6.1.2.1.25.3",
              "1.3.6.1.4.1.2385", "1.3.6.1.2.1.105.1"]

    async def both(client):
        async with PysnmpClient() as plain:
            return await client.next(snmpsim.target("sharp"), probes), await plain.next(snmpsim.target("sharp"), probes)

    client = SmallAgentBuffer()
    halved, whole = run_with(client, both)
    assert halved == whole and set(halved) == set(probes)
    assert client.sizes == [7, 3, 4, 2, 2]  # refused, then halves until each part fits


def test_a_column_walked_again_is_asked_for_the_rows_it_had(snmpsim):
    """Rounds walk the same columns of the same devices: the second walk asks for as many rows as the
    first found (plus one to see the end), so fourteen supplies cost one request, not five."""
    columns = [f"1.3.6.1.2.1.43.11.1.1.{c}" for c in (5, 6, 8, 9)]

    async def twice(client):
        first = await client.walk_many(snmpsim.target("sharp"), columns)
        asked_first = len(client.sizes)
        second = await client.walk_many(snmpsim.target("sharp"), columns)
        return first, second, asked_first, len(client.sizes) - asked_first

    first, second, requests_first, requests_second = run_with(SmallAgentBuffer(), twice)
    assert first == second and all(len(rows) == 14 for rows in second.values())
    assert (requests_first, requests_second) == (5, 1)


def run_with(client: PysnmpClient, coroutine_function):
    async def go():
        async with client:
            return await coroutine_function(client)

    return asyncio.run(go())
