"""The power catalogue: shipped classes with sources, per-model entries from data sheets, lookups by SMBIOS names."""

from __future__ import annotations

from decimal import Decimal

import pytest

from controller.energy import catalogue
from controller.energy.catalogue import CatalogueError

D = Decimal
# Four rows of Boavizta's footprint data (ODbL), as Boavizta's environmental-footprint-data CSV has them.
BOAVIZTA = """\
manufacturer,name,category,subcategory,gwp_total,gwp_use_ratio,yearly_tec,lifetime,use_location,report_date,sources
Dell,Latitude 3510,Workplace,Laptop,340.0,0.142,24.05,4.0,EU,May 2020,https://www.delltechnologies.com/latitude-3510.pdf
Dell,OptiPlex 7000 Micro Form Factor,Workplace,Desktop,246.0,0.143,17.5,4.0,EU,February 2022,https://dell.com/7000mff.pdf
Dell,OptiPlex 7000 Small Form Factor,Workplace,Desktop,343.0,0.277,47.59,4.0,EU,February 2022,https://dell.com/7000sff.pdf
Dell,OptiPlex 7000 Tower,Workplace,Desktop,367.0,0.267,48.95,4.0,EU,February 2022,https://dell.com/7000t.pdf
"""


def test_every_shipped_entry_names_its_source_and_the_classes_schools_have_are_there():
    shipped = catalogue.shipped()
    classes = {p.device_class for p in shipped.profiles()}
    assert {"desktop", "laptop", "server", "monitor", "printer", "switch", "pdu", "ups", "chromebook",
            "tablet", "unknown"} <= classes
    assert all(p.source for p in shipped.profiles())
    desktop = shipped.lookup("desktop")
    assert (desktop.idle, desktop.sleep, desktop.off, desktop.monitors) == (50, 3, 1, 1)  # ENERGY STAR v4 limits


def test_a_model_gets_its_watts_from_the_data_sheets_yearly_consumption():
    profiles = catalogue.parse(BOAVIZTA, "boavizta-data-us.csv")
    merged = catalogue.shipped().with_profiles(profiles)
    latitude = merged.lookup("laptop", "Dell Inc.", "Latitude 3510")  # SMBIOS spells the vendor "Dell Inc."
    # 24.05 kWh/year / 8.76 = 2.7454 W on average = 0.60 × off 0.5 W + 0.10 × sleep 1.5 W + 0.30 × idle
    # → idle = (2.7454 - 0.30 - 0.15) / 0.30 = 7.65 W; active at the laptop's 25/15 ratio: 12.75 → 12.8 W.
    assert (latitude.idle, latitude.active, latitude.sleep, latitude.off) == (D("7.7"), D("12.8"), D("1.5"), D("0.5"))
    assert "TEC 24.05 kWh/year" in latitude.source and "ODbL" in latitude.source
    # "OptiPlex 7000" could be any of three form factors: the class figure stands rather than a guess.
    assert merged.lookup("desktop", "Dell Inc.", "OptiPlex 7000").idle == 50
    # 47.59 / 8.76 = 5.4326; (5.4326 - 0.55 × 1 - 0.05 × 3) / 0.40 = 11.83 → 11.8 W
    assert merged.lookup("desktop", "DELL", "OptiPlex 7000 Small Form Factor").idle == D("11.8")
    assert merged.lookup("desktop", "Dell", "OptiPlex 7000 Tower").idle == D("12.2")  # 48.95 → 12.22


def test_an_unknown_class_falls_back_to_the_unknown_entry():
    assert catalogue.shipped().lookup("smartboard").source == catalogue.shipped().lookup("unknown").source


@pytest.mark.parametrize(("text", "message"), [
    ("device_class,vendor,model,active_watts,idle_watts,sleep_watts,off_watts\n", "CSV header lacks source"),
    ("device_class,vendor,model,active_watts,idle_watts,sleep_watts,off_watts,source\n"
     "laptop,Dell,,25,15,1.5,0.5,sheet\n", "give both vendor and model"),
    ("device_class,vendor,model,active_watts,idle_watts,sleep_watts,off_watts,source\n"
     "laptop,,,25,lots,1.5,0.5,sheet\n", "idle_watts must be a number of watts, not 'lots'"),
    ("device_class,vendor,model,active_watts,idle_watts,sleep_watts,off_watts,source\n"
     "laptop,,,25,15,1.5,0.5,\n", "source is missing"),
])
def test_a_bad_entry_is_refused_with_its_place_and_field(text, message):
    with pytest.raises(CatalogueError, match=message):
        catalogue.parse(text, "ours.csv")
