"""What a profile's sources mean when applied to what a device answered (pure: no client involved)."""

from __future__ import annotations

import pytest

from controller.register.identity import serial_verdict
from controller.snmp.client import Kind, Value
from controller.snmp.collect import Snapshot, evaluate, plan
from controller.snmp.profiles import parse_profile
from controller.snmp.readings import Identity, build, supply_percent


def profile(**sections):
    return parse_profile({"name": "t", "kind": "pdu", "match": {"sys_object_id": ["1.3.6.1.4.1.9"]}, **sections},
                         "t.yaml")


def integer(n: int) -> Value:
    return Value(Kind.INTEGER, n)


def text(s: str) -> Value:
    return Value(Kind.OCTETS, s.encode())


def column(prefix: str, values: dict[str, Value]) -> list[tuple[str, Value]]:
    return [(f"{prefix}.{index}", value) for index, value in values.items()]


def test_a_value_meaning_not_supported_falls_through_to_the_next_source():
    p = profile(power={"watts": [{"get": "1.3.6.1.4.1.9.1.0", "scale": "10 W", "invalid": [-1]},
                                 {"get": "1.3.6.1.4.1.9.2.0"}]})
    supported = evaluate(p, Snapshot(values={"1.3.6.1.4.1.9.1.0": integer(114), "1.3.6.1.4.1.9.2.0": integer(9)}))
    unsupported = evaluate(p, Snapshot(values={"1.3.6.1.4.1.9.1.0": integer(-1), "1.3.6.1.4.1.9.2.0": integer(312)}))
    assert supported.scalars["power"]["watts"].value == 1140
    assert unsupported.scalars["power"]["watts"].value == 312


def test_a_serial_found_only_in_sysdescr_is_taken_from_there():
    p = profile(identity={"serial": [{"get": "1.3.6.1.4.1.9.1.0"}, {"sys_descr": r"SN:\s*(\S+)"}]})
    found = evaluate(p, Snapshot(sys_descr="Card (MN:AP8853 HR:02 SN: ZA2001002384 MD:01/03/2020)"))
    assert found.scalars["identity"]["serial"].value == "ZA2001002384"


def test_where_picks_the_chassis_row_of_an_entity_table():
    serials, classes = "1.3.6.1.2.1.47.1.1.1.1.11", "1.3.6.1.2.1.47.1.1.1.1.5"
    p = profile(identity={"serial": {"walk": serials, "where": {"column": classes, "equals": 3}}})
    snapshot = Snapshot(walks={
        serials: column(serials, {"1": text("PSU-123"), "2": text("CHASSIS-9"), "3": text("")}),
        classes: column(classes, {"1": integer(6), "2": integer(3), "3": integer(10)})})
    assert evaluate(p, snapshot).scalars["identity"]["serial"].value == "CHASSIS-9"
    assert set(plan(p)[1]) == {serials, classes}  # the filter column is walked too


def test_count_counts_matching_rows_and_no_match_is_no_evidence():
    types = "1.3.6.1.2.1.25.3.2.1.2"
    processor = Value(Kind.OID, "1.3.6.1.2.1.25.3.1.3")
    p = profile(kind="host", host={"processors": {"walk": types, "reduce": "count",
                                                  "where": {"column": types, "equals": processor.raw}}})
    four = Snapshot(walks={types: column(types, {str(i): processor for i in range(4)}
                                         | {"9": Value(Kind.OID, "1.3.6.1.2.1.25.3.1.12")})})
    none = Snapshot(walks={types: column(types, {"9": Value(Kind.OID, "1.3.6.1.2.1.25.3.1.12")})})
    assert evaluate(p, four).scalars["host"]["processors"].value == 4
    assert "processors" not in evaluate(p, none).scalars["host"]


def test_numbers_sent_as_text_are_read_and_placeholders_are_missing():
    ports = "1.3.6.1.4.1.9.7.4"
    p = profile(kind="switch", poe_ports={"watts": {"walk": ports, "scale": "1 W"}},
                poe={"consumption_watts": {"walk": ports, "reduce": "sum"}})
    e = evaluate(p, Snapshot(walks={ports: column(ports, {"1": text("6.400"), "2": text("N/A"), "3": text("8.9")})}))
    assert {i: row["watts"].value for i, row in e.tables["poe_ports"].items()} == {"1": 6.4, "3": 8.9}
    assert e.scalars["poe"]["consumption_watts"].value == pytest.approx(15.3)


def test_error_state_bits_are_named_most_significant_bit_first():
    p = profile(kind="printer", printer={"errors": {"get": "1.3.6.1.2.1.25.3.5.1.2.1",
                                                    "bits": ["lowPaper", "noPaper", "lowToner", "noToner",
                                                             "doorOpen", "jammed", "offline", "serviceRequested",
                                                             "inputTrayMissing"]}})
    low_toner_and_tray = Value(Kind.OCTETS, bytes([0x20, 0x80]))
    e = evaluate(p, Snapshot(values={"1.3.6.1.2.1.25.3.5.1.2.1": low_toner_and_tray}))
    assert e.scalars["printer"]["errors"].value == ("lowToner", "inputTrayMissing")


def test_an_unsigned_counter_carries_where_it_wraps_in_the_fields_unit():
    p = profile(power={"energy_joules": {"get": "1.3.6.1.4.1.9.3.0", "scale": "1 Wh"}})
    e = evaluate(p, Snapshot(values={"1.3.6.1.4.1.9.3.0": Value(Kind.COUNTER32, 5)}))
    energy = e.scalars["power"]["energy_joules"]
    assert (energy.value, energy.wraps_at, energy.step) == (18000, 2**32 * 3600, 3600)


def test_a_prefix_the_vendor_adds_to_serials_can_be_stripped():
    p = profile(identity={"serial": {"get": "1.3.6.1.4.1.9.1.0", "strip_prefix": "00"}})
    e = evaluate(p, Snapshot(values={"1.3.6.1.4.1.9.1.0": text("00CNB1R12345")}))
    assert e.scalars["identity"]["serial"].value == "CNB1R12345"


@pytest.mark.parametrize("serial", ["<private>", "To be filled by O.E.M.", "0000000000", "Default string",
                                    "FFFFFFFFFFFF", "AB123CD45E", "MKRA012345"])
def test_placeholder_serials_are_no_serial_and_say_so_by_the_registers_rule(serial):
    p = profile(identity={"serial": {"get": "1.3.6.1.4.1.9.1.0"}})
    sections = build(evaluate(p, Snapshot(values={"1.3.6.1.4.1.9.1.0": text(serial)})), Identity())
    assert sections.identity.serial is None
    assert sections.notes == (serial_verdict(serial)[1],)  # the agent identity code's words, one rule
    assert sections.notes[0].startswith(f"serial {serial!r} ignored: ")


def ups_profile():
    outputs = "1.3.6.1.2.1.33.1.4.4.1"
    return profile(kind="ups", ups={"output_watts": {"walk": f"{outputs}.4", "reduce": "sum"}},
                   ups_outputs={"watts": {"walk": f"{outputs}.4"}, "load_percent": {"walk": f"{outputs}.5"}})


def ups_snapshot(watts: list[int], loads: list[int]) -> Snapshot:
    outputs = "1.3.6.1.2.1.33.1.4.4.1"
    def rows(values: list[int]) -> dict[str, Value]:
        return {str(i + 1): integer(v) for i, v in enumerate(values)}

    return Snapshot(walks={f"{outputs}.4": column(f"{outputs}.4", rows(watts)),
                           f"{outputs}.5": column(f"{outputs}.5", rows(loads))})


def test_a_ups_reporting_zero_watts_under_load_has_not_measured_its_output():
    sections = build(evaluate(ups_profile(), ups_snapshot([0, 0, 0], [6, 6, 4])), Identity())
    assert sections.ups.output_watts is None and sections.ups.load_percent == 6
    assert [o.watts for o in sections.ups.outputs] == [None, None, None]


def test_a_ups_with_no_load_really_delivers_zero_watts():
    sections = build(evaluate(ups_profile(), ups_snapshot([0, 0], [0, 0])), Identity())
    assert sections.ups.output_watts == 0 and sections.notes == ()


def test_a_section_the_device_said_nothing_about_is_absent_not_zero():
    p = profile(power={"watts": {"get": "1.3.6.1.4.1.9.1.0", "invalid": [-1]}})
    assert build(evaluate(p, Snapshot(values={"1.3.6.1.4.1.9.1.0": integer(-1)})), Identity()).power is None


@pytest.mark.parametrize(("level", "capacity", "percent"), [
    (55, 100, 55.0), (19, 550, 3.5), (-3, 100, None), (-3, -2, None), (-2, 100, None), (5, 0, None),
    (150, 100, 100.0)])
def test_supply_levels_become_percentages_only_when_both_numbers_are_real(level, capacity, percent):
    assert supply_percent(level, capacity) == percent
