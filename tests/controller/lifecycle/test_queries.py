"""The register read for recommendations, metrics and the audit pack, on a fixture estate in the database."""

from datetime import UTC, date, datetime, timedelta

import pytest

from controller.db import session_scope
from controller.lifecycle import embodied, queries, service
from controller.lifecycle.evidence import Evidence
from controller.lifecycle.models import Asset
from controller.lifecycle.recommend import GIB, Policy, Recommendation
from controller.lifecycle.states import State
from controller.register.models import Device, EnergyBucket, Site
from tests.controller.lifecycle.conftest import add_device

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)


def windows_pc(cpu: str, ssd: bool) -> dict:
    return {"cpu": {"model": cpu, "cores": 4, "threads": 4}, "memory_bytes": 8 * GIB,
            "disks": [{"name": "sda", "size_bytes": 256 * 10**9, "ssd": ssd}]}


def laptop(full_wh: float) -> dict:
    return {"memory_bytes": 8 * GIB, "batteries": [{"name": "BAT0", "design_wh": 50.0, "full_wh": full_wh}]}


@pytest.fixture
def estate(engine):
    """Hill: an old Windows 10 PC, two laptops (one worn and idle), a disposed laptop; Vale: an undated PC."""
    with session_scope(engine) as session:
        hill, vale = Site(name="Hill Primary"), Site(name="Vale Academy")
        session.add_all([hill, vale])
        session.flush()
        seen = {"first_seen": LONG_AGO, "last_seen": NOW - timedelta(hours=1)}
        pc = add_device(session, hill, "HILL-D01", device_class="desktop", vendor="Dell Inc.", model="OptiPlex 3050",
                        os_name="Windows", os_version="Microsoft Windows 10 Pro 10.0.19045", serial="SN-D01",
                        inventory=windows_pc("Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz", ssd=False), **seen)
        good = add_device(session, hill, "HILL-L01", device_class="laptop", vendor="Dell Inc.", model="Latitude 5400",
                          serial="SN-L01", inventory=laptop(30.0), **seen)
        worn = add_device(session, hill, "HILL-L02", device_class="laptop", serial="SN-L02", inventory=laptop(25.0),
                          **seen)
        gone = add_device(session, hill, "HILL-L03", State.AWAITING_DISPOSAL, device_class="laptop", serial="SN-L03",
                          **seen)
        add_device(session, vale, "VALE-D01", device_class="desktop", **seen)
        session.flush()
        dates = {pc.id: (date(2020, 9, 1), date(2023, 9, 1), 59900),
                 good.id: (date(2023, 9, 4), date(2026, 9, 4), None),
                 worn.id: (date(2023, 9, 4), date(2027, 1, 10), 51250), gone.id: (date(2019, 9, 1), None, None)}
        for device_id, (bought, warranty, price) in dates.items():
            asset = session.get(Asset, device_id)
            asset.purchase_date, asset.warranty_end, asset.purchase_price_pence = bought, warranty, price
        session.get(Asset, pc.id).assigned_to = "ICT suite"
        # Forty active hours over the last four weeks for the good laptop, one for the worn one.
        start = (NOW - timedelta(days=20)).replace(minute=0)
        session.add_all(EnergyBucket(device_id=good.id, hour=start + timedelta(hours=h), state="active",
                                     method="battery", joules=36000.0, seconds=3600.0) for h in range(40))
        session.add(EnergyBucket(device_id=worn.id, hour=start, state="active", method="battery", joules=3.6e4,
                                 seconds=3600.0))
        session.add(EnergyBucket(device_id=worn.id, hour=start, state="idle", method="battery", joules=3.6e5,
                                 seconds=3600.0 * 30))
        service.move(session, "HILL-L03", State.SANITISED, "wiped", "cli:alice",
                     evidence=Evidence(method="purge", certificate_ref="C-3", sanitised_on=date(2026, 11, 1)))
    return {"pc": pc.id, "good": good.id, "worn": worn.id, "gone": gone.id}


def test_recommendations_for_the_estate_read_from_the_database(engine, estate):
    with session_scope(engine) as session:
        got = queries.recommendations(session, embodied.load(session), Policy(), NOW)
    hill = "Hill Primary"
    assert got == [
        Recommendation(estate["pc"], "HILL-D01", hill, "refresh_due", "6.2 years old (desktop refresh at 5)"),
        Recommendation(estate["pc"], "HILL-D01", hill, "warranty_ended", "warranty ended on 2023-09-01"),
        Recommendation(estate["pc"], "HILL-D01", hill, "os_support_ended",
                       ("Windows 10 22H2 (Pro) security support ended on 2025-10-14 "
                                              "(https://learn.microsoft.com/lifecycle/products/windows-10-enterprise-and-education)")),
        Recommendation(estate["pc"], "HILL-D01", hill, "below_spec", "CPU Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz "
                       "cannot run Windows 11 (needs Intel 8th generation or AMD Zen+)"),
        Recommendation(estate["good"], "HILL-L01", hill, "warranty_ended", "warranty ended on 2026-09-04"),
        Recommendation(estate["worn"], "HILL-L02", hill, "warranty_ending", "warranty ends on 2027-01-10, in 48 days"),
        Recommendation(estate["worn"], "HILL-L02", hill, "battery_worn",
                       "battery holds 50% of its design capacity (replace below 60%)"),
        # Its one active hour, on Tuesday 3 November (its first report), over the school weeks since: 3-6,
        # 9-13, 16-20 November and Monday 23rd = 15 school days; 1 h ÷ 15 × 5 = 0.33 h a school week.
        Recommendation(estate["worn"], "HILL-L02", hill, "underused",
                       "in use 0.3 h a school week (under 2 h): redeploy it where it is needed"),
    ]
    with session_scope(engine) as session:
        assert queries.recommendations(session, embodied.load(session), Policy(), NOW, site="Vale Academy") == []


def test_stage_counts_per_site_for_the_metrics(engine, estate):
    with session_scope(engine) as session:
        assert queries.lifecycle_stage_counts(session) == {
            ("Hill Primary", "deployed"): 3, ("Hill Primary", "sanitised"): 1, ("Vale Academy", "deployed"): 1}


def test_register_and_disposal_evidence_completeness_per_site(engine, estate):
    with session_scope(engine) as session:
        register = queries.register_completeness(session)
        evidence = queries.disposal_evidence_completeness(session)
    # Hill: 3 devices in service x 7 fields; serial 3, assigned_to 1, purchase 3, warranty 3 = 10 filled.
    assert (register["Hill Primary"].filled, register["Hill Primary"].required) == (10, 21)
    assert register["Hill Primary"].percent == 47.6
    assert register["Vale Academy"].percent == 0.0
    # The sanitised laptop has its sanitisation (3 of 8) but no transfer note yet.
    assert {site: (c.filled, c.required) for site, c in evidence.items()} == {"Hill Primary": (3, 8)}


def test_devices_past_warranty_or_os_support(engine, estate):
    with session_scope(engine) as session:
        gaps = queries.past_support(session, NOW.date())
    assert [(g.hostname, g.warranty_passed, g.os_support_passed, g.os_end_of_support) for g in gaps] == [
        ("HILL-D01", True, True, date(2025, 10, 14)), ("HILL-L01", True, False, None)]


def test_refresh_forecast_with_replacement_carbon_and_original_prices(engine, estate):
    with session_scope(engine) as session:
        rows = queries.refresh_forecast(session, embodied.load(session), Policy(), NOW.date(), years=5)
    shipped = embodied.Factors(embodied.shipped(), {})
    optiplex = shipped.lookup("desktop", "Dell", "OptiPlex 3050").kg_co2e
    latitude = shipped.lookup("laptop", "Dell", "Latitude 5400").kg_co2e
    assert [(r.site, r.year, r.devices, r.by_class, r.embodied_kg_co2e, r.budget_pence, r.priced) for r in rows] == [
        ("Hill Primary", 2026, 1, {"desktop": 1}, optiplex, 59900, 1),
        ("Hill Primary", 2027, 2, {"laptop": 2}, round(latitude + 180.0, 1), 51250, 1),
    ]


def test_embodied_carbon_for_a_year_both_ways(engine, estate):
    with session_scope(engine) as session:
        lines = {x.hostname: x for x in queries.embodied_report(session, embodied.load(session), 2023, NOW.date())}
    # The worn laptop: 180 kg bought 2023-09-04, expected to last 4 years (to 2027-09-04, 1,461 days).
    worn = lines["HILL-L02"]
    assert worn.purchase_year_kg_co2e == 180.0
    assert worn.amortised_kg_co2e == round(180 * 119 / 1461, 2)
    # Still in service after six years, longer than its sheet expects: spread over its life so far.
    pc = lines["HILL-D01"]
    assert (pc.basis, pc.purchase_year_kg_co2e) == ("model", 0.0)
    assert "OptiPlex 3050" in pc.source
    life = (NOW.date() - date(2020, 9, 1)).days
    assert pc.amortised_kg_co2e == round(pc.kg_co2e * 365 / life, 2)
    assert lines["VALE-D01"].amortised_kg_co2e is None  # no purchase date: no share claimed


def test_devices_created_before_the_lifecycle_count_as_deployed_and_join_on_first_move(engine, estate):
    with session_scope(engine) as session:
        legacy = Device(site_id=1, hostname="OLD-PC", device_class="desktop")
        session.add(legacy)
    with session_scope(engine) as session:
        assert queries.lifecycle_stage_counts(session)[("Hill Primary", "deployed")] == 4
        service.move(session, "OLD-PC", State.IN_REPAIR, "fan noise", "cli:alice")
        assert [(h.from_state, h.to_state) for h in service.history(session, "OLD-PC")] == [
            (None, "deployed"), ("deployed", "in_repair")]


def test_transfer_notes_are_listed_with_whether_they_must_still_be_kept(engine, estate):
    with session_scope(engine) as session:
        service.create_batch(session, "pallet-2024", "WTN-2024-007", "Green Waste Ltd", "ReTech UK", "ADISA",
                             date(2024, 11, 1), "cli:alice")
        service.create_batch(session, "pallet-2026", "WTN-2026-114", "Green Waste Ltd", "ReTech UK", "ADISA",
                             date(2026, 11, 20), "cli:alice")
        service.add_to_batch(session, "pallet-2026", ["HILL-L03"], "cli:alice")
        service.move(session, "HILL-L02", State.RETIRED, "worn out", "cli:alice")
        service.move(session, "HILL-L02", State.AWAITING_DISPOSAL, "collection booked", "cli:alice",
                     evidence=Evidence(transfer_note_ref="WTN-SINGLE-9", carrier="Council WEEE",
                                       recycler="Council", collected_on=date(2025, 1, 6)))
    with session_scope(engine) as session:
        notes = queries.transfer_notes(session, NOW.date())
    assert [(n.ref, n.batch, n.devices, n.retain_until, n.must_keep) for n in notes] == [
        ("WTN-2024-007", "pallet-2024", 0, date(2026, 11, 1), False),
        ("WTN-2026-114", "pallet-2026", 1, date(2028, 11, 20), True),
        ("WTN-SINGLE-9", None, 1, date(2027, 1, 6), True),
    ]
