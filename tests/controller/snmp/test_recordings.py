"""The facts a poller must extract from each real device recording (tests/fixtures/snmp/MANIFEST.md).

Every test runs twice: against the in-memory agent replaying the recording, and against snmpsim
serving it on loopback to the real pysnmp client. Facts the manifest marks as inferred are checked
only for sensible handling, never as values.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from controller.snmp.memory import MemoryClient
from controller.snmp.poller import Poller, PollSettings
from controller.snmp.profiles import load_profiles
from controller.snmp.pysnmp_client import PysnmpClient
from controller.snmp.readings import DevicePoll
from tests.controller.snmp.conftest import NAMES, address_of, community, recording, store_for

KWH = 3.6e6


@pytest.fixture(scope="module", params=["memory", "snmpsim"])
def polls(request: pytest.FixtureRequest) -> dict[str, DevicePoll]:
    """Every recording polled once, all at the same time, through the client under test."""
    store = store_for(*((address_of(n), [community(n)]) for n in NAMES))

    async def poll_all(client, port: int) -> list[DevicePoll]:
        poller = Poller(client, load_profiles(), store, settings=PollSettings(timeout=1.0, retries=1))
        return await poller.poll_many([(address_of(n), port) for n in NAMES])

    async def with_snmpsim(port: int) -> list[DevicePoll]:
        async with PysnmpClient() as client:
            return await poll_all(client, port)

    if request.param == "snmpsim":
        results = asyncio.run(with_snmpsim(request.getfixturevalue("snmpsim").port))
    else:
        client = MemoryClient({(address_of(n), 161): recording(n) for n in NAMES})
        results = asyncio.run(poll_all(client, 161))
    return dict(zip(NAMES, results, strict=True))


def toners(poll: DevicePoll) -> dict[str, float | None]:
    colours = {}
    for supply in poll.printer.supplies:
        found = re.search(r"\b(Cyan|Magenta|Yellow|Black)\b", supply.description or "")
        if supply.kind == "toner" and found:
            colours[found.group(1)] = supply.percent
    return colours


def test_the_first_twelve_recordings_are_identified_and_polled_without_error(polls):
    first_twelve = {
        "XMG1915-10EP": (None, "zyxel-poe"),
        "abbups_abbups": (None, "abb-ups"),
        "advantech_eki-7712g-4fp": (None, "advantech-poe"),
        "aix_net-snmp": (None, "generic"),
        "apc_ap7900b": (None, "apc-rpdu-legacy"),
        "apc_ap8853": (None, "apc-rpdu2"),
        "ciscosb_cbs350": (None, "generic"),
        "cyberpower": (None, "cyberpower"),
        "konica_c250i": (None, "printer"),
        "sentry4": (None, "servertech-sentry4"),
        "sharp": (None, "printer"),
        "vertiv-pdu_mn03edr1": (None, "vertiv-geist"),
    }
    assert {name: (polls[name].error, polls[name].profile) for name in first_twelve} == first_twelve


def test_apc_ap8853_serial_from_sysdescr_power_and_resettable_energy(polls):
    poll = polls["apc_ap8853"]
    assert (poll.identity.vendor, poll.identity.model, poll.identity.serial) == ("APC", "AP8853", "ZA2001002384")
    assert (poll.power.watts, poll.power.peak_watts) == (1140, 1430)
    assert poll.power.energy.joules / KWH == pytest.approx(3512.8)
    assert poll.power.energy.since == "01/02/2020 13:27:05"  # a reset would change it
    assert (poll.power.current_amps, poll.power.voltage_volts) == (4.9, 242)
    assert poll.outlets == ()  # a metered PDU without outlet metering


def test_apc_ap7900b_falls_back_to_ident_watts_when_rpdu2_says_not_supported(polls):
    poll = polls["apc_ap7900b"]
    assert poll.identity.serial == "ZA1732000177"
    assert poll.power.watts == 312
    assert poll.power.current_amps == 2.8
    assert poll.power.energy is None  # -1: not supported, so not zero
    assert [(o.index, o.powered) for o in poll.outlets] == [(str(i), True) for i in range(1, 9)]
    assert poll.outlets[0].name == "NAS PSU" and poll.outlets[0].watts is None  # switched, not metered


def test_sentry4_cord_power_and_energy(polls):
    power = polls["sentry4"].power
    assert (power.watts, power.apparent_va, power.power_factor) == (1701, 1790, 0.95)
    assert power.energy.joules / KWH == pytest.approx(893.7)
    assert polls["sentry4"].identity.serial is None  # none recorded


def test_vertiv_total_is_the_sum_of_its_phases_and_the_scrubbed_serial_is_ignored(polls):
    poll = polls["vertiv-pdu_mn03edr1"]
    assert poll.power.watts == 1434 + 1440 + 1425
    assert poll.identity.serial is None and poll.identity.model.startswith("MN03EDR1")
    assert poll.power.energy.joules > 0 and poll.power.energy.wraps_at_joules is None  # Wh inferred; a gauge


def test_sharp_mfp_serial_impressions_toner_and_low_toner_alert(polls):
    poll = polls["sharp"]
    assert poll.identity.serial == "6509415X00"
    assert (poll.printer.life_count, poll.printer.counter_unit) == (121104, "impressions")
    assert len(poll.printer.supplies) == 14
    assert toners(poll) == {"Cyan": 55, "Magenta": 19, "Yellow": 40, "Black": 34}
    assert "lowToner" in poll.printer.errors


def test_konica_mfp_serial_life_count_and_toner(polls):
    poll = polls["konica_c250i"]
    assert poll.identity.serial == "AA2M021115700"
    assert poll.printer.life_count == 33810
    assert toners(poll) == {"Cyan": 76, "Magenta": 78, "Yellow": 77, "Black": 86}
    waste = next(s for s in poll.printer.supplies if s.kind == "waste toner")
    assert (waste.level, waste.percent) == (-3, None)  # "some remaining" is not a percentage


def test_zyxel_poe_budget_and_consumption(polls):
    poll = polls["XMG1915-10EP"]
    assert poll.identity.serial == "S232L47003319"
    assert (poll.poe.budget_watts, poll.poe.consumption_watts) == (130, 11)
    assert poll.poe.ports == ()  # no per-port table recorded


def test_advantech_vendor_port_table_parses_text_numbers(polls):
    poll = polls["advantech_eki-7712g-4fp"]
    assert poll.identity.model == "EKI-7712G-4FP"
    watts = [p.watts for p in poll.poe.ports]
    assert len(watts) == 8 and all(w is not None and w >= 0 for w in watts)  # per-port watts are inferred
    assert poll.poe.consumption_watts == pytest.approx(sum(watts))


def test_abb_ups_zero_watts_under_load_is_not_taken_as_a_measurement(polls):
    poll = polls["abbups_abbups"]
    assert (poll.identity.vendor, poll.identity.model) == ("ABB", "PowerScale")
    assert poll.ups.output_source == "normal"
    assert [o.load_percent for o in poll.ups.outputs] == [6, 6, 4]
    assert poll.ups.output_watts is None and all(o.watts is None for o in poll.ups.outputs)
    assert any("0 W" in note for note in poll.notes)
    assert (poll.ups.battery_percent, poll.ups.runtime_seconds) == (100, 452 * 60)


def test_cyberpower_ups_output_voltage_and_current(polls):
    poll = polls["cyberpower"]
    assert (poll.identity.model, poll.identity.serial) == ("OL2200RTXL2U", "ABCFT1000001")
    assert (poll.ups.output_voltage_volts, poll.ups.output_current_amps) == (120.2, 6.5)
    assert (poll.ups.output_source, poll.ups.battery_percent) == ("normal", 100)
    assert poll.ups.output_watts is None  # not reported; never invented from volts × amps


def test_aix_uptime_falls_back_to_sysuptime_when_hr_uptime_is_zero(polls):
    host = polls["aix_net-snmp"].host
    assert host.uptime_seconds == pytest.approx(438997609 / 100)
    assert host.memory_bytes == 8388608 * 1024
    assert host.processors == 4  # the rows with garbage descriptions are not processors


def test_cisco_chassis_serial_from_entity_mib(polls):
    poll = polls["ciscosb_cbs350"]
    assert (poll.identity.model, poll.identity.serial) == ("CBS350-24P-4G", "FOC2433L650")
    assert poll.poe is None  # none recorded, so none claimed
