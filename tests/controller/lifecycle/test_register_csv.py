"""The register as CSV: exact round trips, whole-file refusal with line numbers, upserts, MDM exports."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import func, select

from controller.db import session_scope
from controller.energy import catalogue
from controller.lifecycle import mdm, registercsv, service
from controller.lifecycle.models import Asset, Transition
from controller.lifecycle.registercsv import ImportResult
from controller.lifecycle.states import Refused, State
from controller.register.devices import create_device
from controller.register.models import ChangeRecord, Device, Site
from tests.factories import inventory

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "assets"


def load(engine, name: str, actor: str = "cli:alice") -> ImportResult:
    with session_scope(engine) as session:
        return registercsv.import_rows(session, registercsv.parse_register((FIXTURES / name).read_text()), actor)


def export(engine) -> str:
    with session_scope(engine) as session:
        return registercsv.export_csv(session)


def counts(engine) -> tuple[int, int, int, int]:
    with session_scope(engine) as session:
        return tuple(session.exec(select(func.count()).select_from(t)).one()
                     for t in (Device, Asset, Transition, ChangeRecord))


def test_export_import_export_is_byte_identical(engine, hill):
    assert load(engine, "register.csv") == ImportResult(created=4, updated=0, unchanged=0, moved=0)
    first = export(engine)
    with session_scope(engine) as session:
        again = registercsv.import_rows(session, registercsv.parse_register(first), "cli:alice")
    assert again == ImportResult(created=0, updated=0, unchanged=4, moved=0)
    assert export(engine) == first
    assert first.splitlines()[0] == ("id,site,hostname,device_class,vendor,model,serial,room,tags,state,outcome,"
                                     "asset_tag,assigned_to,location,purchase_date,purchase_price,supplier,procurement_route,"
                                     "funding,warranty_end,os_end_of_support,os_esu,review_date,disposed_on")
    assert first.splitlines()[1] == (
        '2,Hill Primary,HILL-KS2-L01,laptop,Lenovo,ThinkPad L13,PF3ABC01,,,deployed,,HILL-0002,Year 5 trolley,Room 12,'
        '2023-09-04,512.50,Stone Group,DfE framework (ICT hardware),devolved capital,2026-09-04,,,2026-09-01,')
    assert ',"Patel, S (office)",' in first
    assert ",2019-03-15,1899.99,Computacenter," in first


def test_imported_devices_enter_in_their_stated_state_with_the_line_as_reason(engine, hill):
    load(engine, "register.csv")
    with session_scope(engine) as session:
        server = service.find_device(session, "HILL-0004")
        assert session.get(Asset, server.id).purchase_price_pence == 189999
        assert [(h.to_state, h.reason) for h in service.history(session, "HILL-0004")] == [
            ("in_repair", "CSV import, line 5")]


def test_a_file_with_malformed_rows_is_refused_whole_naming_every_bad_line(engine, hill):
    with pytest.raises(Refused) as refused:
        registercsv.parse_register((FIXTURES / "bad.csv").read_text())
    assert str(refused.value) == (
        "nothing imported: line 3: purchase_date '01/09/2022' is not a date (YYYY-MM-DD); "
        "line 4: state 'binned' is not one of in_stock, deployed, in_repair, redeployed, retired, awaiting_disposal, "
        "sanitised, disposed; line 6: purchase_price '6 hundred' is not an amount in pounds (e.g. 499.00)")


def test_rows_the_register_cannot_take_refuse_the_file_and_nothing_is_written(engine, hill):
    load(engine, "register.csv")
    before, text = counts(engine), export(engine)
    with pytest.raises(Refused) as refused:
        load(engine, "bad_rows.csv")
    assert str(refused.value) == (
        "nothing imported: line 3: unknown site 'Nowhere Academy'; sites are Hill Primary; "
        "line 4: serial 'SN-001' is also on line 2; "
        "line 5: a new device cannot enter as disposed: record its disposal evidence with `caretaker lifecycle move`; "
        "line 6: a new device needs a hostname")
    assert counts(engine) == before
    assert export(engine) == text


def test_a_state_change_in_the_file_follows_the_lifecycle_rules(engine, hill):
    load(engine, "register.csv")
    moved = export(engine).replace("PF3ABC02,,,in_stock", "PF3ABC02,,,deployed")
    with session_scope(engine) as session:
        assert registercsv.import_rows(session, registercsv.parse_register(moved), "cli:bob").moved == 1
        assert [(h.from_state, h.to_state, h.actor) for h in service.history(session, "PF3ABC02")][-1] == (
            "in_stock", "deployed", "cli:bob")
    skipped = export(engine).replace("PF3ABC01,,,deployed", "PF3ABC01,,,disposed")
    with (
        pytest.raises(Refused, match="line 2: cannot move from deployed to disposed"),
        session_scope(engine) as session,
    ):
        registercsv.import_rows(session, registercsv.parse_register(skipped), "cli:bob")


def test_rows_update_devices_found_by_serial_or_asset_tag_keeping_what_the_agent_reports(engine, hill):
    with session_scope(engine) as session:
        agent_device = create_device(session, session.get(Site, hill), inventory(serial="CZC1234XYZ"), "agent:a1")
    assert load(engine, "register.csv") == ImportResult(created=3, updated=1, unchanged=0, moved=0)
    with session_scope(engine) as session:
        device = session.get(Device, agent_device.id)
        asset = session.get(Asset, agent_device.id)
        assert (device.hostname, device.model) == ("HILL-R12-PC07", "OptiPlex 7010")  # the agent's facts
        assert (asset.asset_tag, asset.location, asset.purchase_date) == ("HILL-0001", "School office",
                                                                          date(2021, 6, 1))
        registercsv.import_rows(session, registercsv.parse_register(
            "site,asset_tag,location\nHill Primary,HILL-0003,Room 14\n"), "cli:alice")
    with session_scope(engine) as session:
        tagged = session.exec(select(Asset).where(Asset.asset_tag == "HILL-0003")).one()
        assert (tagged.location, tagged.supplier) == ("Room 14", "Stone Group")  # absent columns left alone
        updates = session.exec(select(ChangeRecord).where(ChangeRecord.action == "lifecycle.update")).all()
        assert [(c.before, c.after) for c in updates][-1] == ({"location": "ICT store"}, {"location": "Room 14"})


def test_google_admin_chromebooks_import_as_chromebooks_and_deprovisioned_ones_are_left_out(engine, hill):
    rows, skipped = mdm.parse_mdm((FIXTURES / "google_chromebooks.csv").read_text(), "Hill Primary")
    assert skipped == 1
    with session_scope(engine) as session:
        assert registercsv.import_rows(session, rows, "cli:alice", "chromebook import").created == 3
    with session_scope(engine) as session:
        first = service.find_device(session, "5CD1234ABC")
        asset = session.get(Asset, first.id)
        assert (first.hostname, first.device_class, first.vendor, first.model) == (
            "HILL-CB-001", "chromebook", "HP", "HP Chromebook 11 G8 EE")
        assert first.last_seen == datetime(2026, 11, 22, 14, 3, 11, tzinfo=UTC)
        assert (asset.state, asset.asset_tag, asset.assigned_to, asset.location, asset.os_end_of_support) == (
            "in_stock", "HILL-CB-001", "class-5b@hill.sch.uk", "Room 12 trolley", date(2028, 6, 30))
        assert service.find_device(session, "R9PN40ABC12").hostname == "R9PN40ABC12"  # no asset id: the serial
        # No agent measures it: its power is estimated from the catalogue's Chromebook entry.
        assert catalogue.shipped().lookup(first.device_class, first.vendor, first.model).device_class == "chromebook"
    rows, _ = mdm.parse_mdm((FIXTURES / "google_chromebooks.csv").read_text(), "Hill Primary")
    with session_scope(engine) as session:
        assert registercsv.import_rows(session, rows, "cli:alice").unchanged == 3


def test_intune_exports_bring_in_ipads_as_tablets_and_leave_agent_machines_alone(engine, hill):
    rows, skipped = mdm.parse_mdm((FIXTURES / "intune_devices.csv").read_text(), "Hill Primary")
    assert skipped == 1  # the Windows desktop runs an agent
    with session_scope(engine) as session:
        assert registercsv.import_rows(session, rows, "cli:alice").created == 2
    with session_scope(engine) as session:
        ipad = service.find_device(session, "DMPZK0AAQ1GD")
        assert (ipad.hostname, ipad.device_class, ipad.vendor, ipad.model) == (
            "HILL-IPAD-02", "tablet", "Apple", "iPad (9th generation)")
        assert session.get(Asset, ipad.id).assigned_to == "ta.jones@hill.sch.uk"
        assert ipad.last_seen == datetime(2026, 11, 21, 11, 2, 45, tzinfo=UTC)
        assert catalogue.shipped().lookup(ipad.device_class, ipad.vendor, ipad.model).device_class == "tablet"


def test_an_unknown_export_shape_is_refused():
    with pytest.raises(Refused, match="not a Google Admin Chrome devices export"):
        mdm.parse_mdm("Name,Colour\nx,y\n", "Hill Primary")


def test_a_new_device_imported_without_a_state_starts_in_stock(engine, hill):
    with session_scope(engine) as session:
        registercsv.import_rows(session, registercsv.parse_register(
            "site,hostname,serial\nHill Primary,SPARE-1,SN-77\n"), "cli:alice")
        assert session.get(Asset, service.find_device(session, "SN-77").id).state == State.IN_STOCK


def test_disposal_facts_change_only_with_a_move_to_disposed(engine, hill):
    load(engine, "register.csv")
    text = export(engine)
    dated = text.replace("2026-09-04,,,2026-09-01,\r\n", "2026-09-04,,,2026-09-01,2026-11-01\r\n", 1)
    resold = text.replace("PF3ABC02,,,in_stock,", "PF3ABC02,,,in_stock,resold")
    for changed, reason in ((dated, "line 2: disposed_on is only given for a disposed device"),
                            (resold, "line 3: the outcome is set only by the move to disposed")):
        with pytest.raises(Refused, match=reason), session_scope(engine) as session:
            registercsv.import_rows(session, registercsv.parse_register(changed), "cli:alice")
    assert export(engine) == text
