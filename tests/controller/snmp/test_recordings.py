"""Every fact in tests/fixtures/snmp/MANIFEST.md and MANIFEST-MORE.md, read from the 57 real device
recordings (and a Sentry3 recording the manifests lack, see NOTICE.md) by the poller: kind, vendor,
model, serial (or "absent"), page count (or "none"), supplies
with their levels, watts, energy, load, PoE budget, consumption and per-port power.

Each recording is polled once per module through snmpsim on loopback with the real pysnmp client
(one snmpsim process serves them all), and once through the in-memory agent that replays it. The
expected values are the manifests' facts; where a manifest fact is a raw value, the expectation is
its meaning in Caretaker's units (upsHighPrecOutputLoad 378 is 37.8 %). Facts Caretaker does not
read, or reads otherwise, are listed in NOT_MET with the reason. Facts the manifests mark as inferred
are asserted only as the manifest infers them where noted.
"""

from __future__ import annotations

import asyncio

import pytest

from controller.snmp.memory import MemoryClient
from controller.snmp.poller import Poller, PollSettings
from controller.snmp.profiles import load_profiles
from controller.snmp.pysnmp_client import PysnmpClient
from controller.snmp.readings import DevicePoll, Supply
from tests.controller.snmp.conftest import NAMES, address_of, community, recording, store_for

KWH = 3.6e6

#: What the manifests say each recording is and holds. Keys: kind, vendor, model, serial ("absent"),
#: pages ("none"), supplies ((description, percent or named level), …), watts, energy_kwh, load (%),
#: poe_budget, poe_consumption, poe_ports ((index, W), …), units ((model, serial), … for each chassis
#: of a stack or cluster), power and ups (the manifest's other readings, by Caretaker's field name).
FACTS: dict[str, dict] = {
    # --- MANIFEST.md ---
    "apc_ap8853": dict(kind="pdu", vendor="APC", model="AP8853", serial="ZA2001002384", watts=1140, energy_kwh=3512.8,
                       power=dict(peak_watts=1430, current_amps=4.9, voltage_volts=242), outlets=()),
    "apc_ap7900b": dict(kind="pdu", vendor="APC", model="AP7900B", serial="ZA1732000177", watts=312,
                        power=dict(current_amps=2.8), outlets=tuple((str(i), True) for i in range(1, 9))),
    "sentry4": dict(kind="pdu", vendor="Server Technology", model=None, serial="absent", watts=1701,
                    energy_kwh=893.7, power=dict(apparent_va=1790, power_factor=0.95)),
    "vertiv-pdu_mn03edr1": dict(kind="pdu", vendor="Vertiv", model="MN03EDR1-15P3B8-6PS15D0H10-S", serial="absent",
                                watts=1434 + 1440 + 1425, energy_kwh=15202.9),  # energy: phase Wh, inferred
    "sharp": dict(kind="printer", vendor="Sharp", model="SHARP MX-3570N", serial="6509415X00", pages=121104,
                  supplies=(("Cyan Toner", 55), ("Magenta Toner", 19), ("Yellow Toner", 40), ("Black Toner", 34),
                            ("Waste Toner", "100 of unknown capacity"), ("Cyan Photoconductive Drum", 81),
                            ("Magenta Photoconductive Drum", 81), ("Yellow Photoconductive Drum", 81),
                            ("Black Photoconductive Drum", 95), ("Cyan Developer", 91), ("Magenta Developer", 91),
                            ("Yellow Developer", 91), ("Black Developer", 74), ("Fusing Unit", "unknown")),
                  alerts=("lowToner",)),
    "konica_c250i": dict(kind="printer", vendor="Konica Minolta", model="KONICA MINOLTA bizhub C250i",
                         serial="AA2M021115700", pages=33810,
                         supplies=(("Toner (Cyan)", 76), ("Toner (Magenta)", 78), ("Toner (Yellow)", 77),
                                   ("Toner (Black)", 86), ("Waste Toner Box", "some remaining"))),
    "XMG1915-10EP": dict(kind="switch", vendor="Zyxel", model="XMG1915-10EP", serial="S232L47003319", poe_budget=130,
                         poe_consumption=11, poe_ports=()),
    "advantech_eki-7712g-4fp": dict(kind="switch", vendor="Advantech", model="EKI-7712G-4FP", serial="absent",
                                    poe_budget=None, poe_consumption=32.8,  # per-port watts: the manifest infers W
                                    poe_ports=(("1", 0), ("2", 0), ("3", 6.4), ("4", 8.9), ("5", 6.2), ("6", 5.7),
                                               ("7", 5.6), ("8", 0))),
    "abbups_abbups": dict(kind="ups", vendor="ABB", model="PowerScale", serial="absent", load=6, watts="absent",
                          ups=dict(output_source="normal", battery_percent=100, runtime_seconds=452 * 60)),
    "cyberpower": dict(kind="ups", vendor="CyberPower", model="OL2200RTXL2U", serial="ABCFT1000001", watts="absent",
                       ups=dict(output_voltage_volts=120.2, output_current_amps=6.5, output_source="normal",
                                battery_percent=100)),
    "aix_net-snmp": dict(kind="host", vendor="IBM", model=None, serial="absent",
                         host=dict(uptime_seconds=4389976.09, memory_bytes=8388608 * 1024, processors=4)),
    "ciscosb_cbs350": dict(kind="switch", vendor="Cisco", model="CBS350-24P-4G", serial="FOC2433L650", poe="absent"),
    # --- MANIFEST-MORE.md: printers ---
    "jetdirect_m252dw": dict(kind="printer", vendor="HP", model="HP Color LaserJet Pro M252dw", serial="VNB3J99999",
                             pages="none", alerts=(),
                             supplies=(("Black Cartridge HP CF400X", 63), ("Cyan Cartridge HP CF401X", 63),
                                       ("Magenta Cartridge HP CF403X", 88), ("Yellow Cartridge HP CF402X", 36))),
    "jetdirect_m880": dict(kind="printer", vendor="HP", model="HP Color LaserJet flow MFP M880", serial="absent",
                           pages="none",
                           supplies=(("Black Cartridge 827A HP CF300A", 92), ("Cyan Cartridge 827A HP CF301A", 16),
                                     ("Magenta Cartridge 827A HP CF303A", 100), ("Yellow Cartridge 827A HP CF302A", 70),
                                     ("Black Drum 828A HP CF358A", 53), ("Cyan Drum 828A HP CF359A", 58),
                                     ("Magenta Drum 828A HP CF365A", 58), ("Yellow Drum 828A HP CF364A", 58),
                                     ("Transfer Kit HP D7H14A", 89), ("Fuser Kit HP 110V-C1N54A, 220V-C1N58A", 84),
                                     ("Document Feeder Kit HP C1P70A", 99), ("Clean Rollers HP None", 97),
                                     ("Stapler 1 HP C8091A", "some remaining"),
                                     ("Stapler 2 HP CC383A", "some remaining"),
                                     ("Stapler 3 HP CC383A", "some remaining"))),
    "jetdirect_m130nw": dict(kind="printer", vendor="HP", model="HP LaserJet MFP M130nw", serial="VNCRC48198",
                             pages=15232, counter_unit="impressions",
                             supplies=(("Black Cartridge HP CF217A", 28), ("Imaging Drum HP CF219A", 71))),
    "ricoh_mpc3002": dict(kind="printer", vendor="Ricoh", model="RICOH Aficio MP C3002", serial="W492KB03439",
                          pages=271871, counter_unit="sheets",
                          supplies=(("Black Toner", 40), ("Waste Toner", 100), ("Cyan Toner", 20),
                                    ("Magenta Toner", 50), ("Yellow Toner", 50))),
    "utax": dict(kind="printer", vendor="Kyocera", model="P-4532DN", serial="R9L0309954", pages=427,
                 supplies=(("PK-3010S", 89), ("Waste Toner Box", "some remaining"))),
    "konica": dict(kind="printer", vendor="Konica Minolta", model="KONICA MINOLTA bizhub C3110", serial="absent",
                   pages="none",
                   supplies=(("Toner (Cyan)", 29), ("Toner (Magenta)", 31), ("Toner (Yellow)", 58),
                             ("Toner (Black)", 83), ("Drum Cartridge (Cyan)", 59), ("Developer Cartridge (Cyan)", 79),
                             ("Drum Cartridge (Magenta)", 97), ("Developer Cartridge (Magenta)", 78),
                             ("Drum Cartridge (Yellow)", 59), ("Developer Cartridge (Yellow)", 78),
                             ("Drum Cartridge (Black)", 20), ("Developer Cartridge (Black)", 71),
                             ("Waste Toner Box", "some remaining"), ("Fusing Unit", 68),
                             ("Image Transfer Belt Unit", 41), ("Transfer Roller Unit", 45), ("Ozone Filter", 45))),
    "okilan_9450g": dict(kind="printer", vendor="OKI", model="MC873", serial="absent", pages="none",
                         supplies=(("Black Toner Cartridge OKI DATA CORP", 59),
                                   ("Cyan Toner Cartridge OKI DATA CORP", 69),
                                   ("Magenta Toner Cartridge OKI DATA CORP", 69),
                                   ("Yellow Toner Cartridge OKI DATA CORP", 69),
                                   ("Black Image Drum Unit OKI DATA CORP", 94.7),  # 28407 of 30000
                                   ("Cyan Image Drum Unit OKI DATA CORP", 95.9),
                                   ("Magenta Image Drum Unit OKI DATA CORP", 95.9),
                                   ("Yellow Image Drum Unit OKI DATA CORP", 95.9),
                                   ("Belt Unit OKI DATA CORP", 98.0),  # 78392 of 80000
                                   ("Fuser Unit OKI DATA CORP", 98.8))),  # 98842 of 100000
    "canonprinter_lbp": dict(kind="printer", vendor="Canon", model="Canon LBP6670",  # hrDeviceDescr before Canon's OID
                             serial="absent",  # MKRA012345: a placeholder by the register's rule
                             pages="none", supplies=(("Canon Cartridge 719/719H", 70),)),
    "brother_hl5370dw": dict(kind="printer", vendor="Brother", model="Brother HL-5370DW series", serial="B9J154306",
                             pages=7792, supplies=(("Black Toner Cartridge", "0 of unknown capacity"),
                                                   ("Black Toner Cartridge", "some remaining"),
                                                   ("Drum Unit", 68.8))),  # 17208 of 25000
    "dell-laser_s5830dn": dict(kind="printer", vendor="Dell", model="Dell S5830dn", serial="7XQ1R92-132-13",
                               pages="none", supplies=(("Black Toner", 49), ("Imaging Unit", 72),
                                                       ("Maintenance Kit", 83), ("Roller Kit", 89))),
    "lexmarkprinter": dict(kind="printer", vendor="Lexmark", model="T640", serial="absent", pages="none", supplies=()),
    # --- UPSes ---
    "apc_smt750x-nmc2": dict(kind="ups", vendor="APC", model="Smart-UPS X 750",
                             serial="AS1907242163",  # the UPS's; sysDescr's ZA1815031283 is the card's
                             load=0, watts="absent",
                             ups=dict(output_source="normal", output_voltage_volts=119.1, output_frequency_hz=60,
                                      output_current_amps=0, battery_percent=100, battery_temperature_celsius=23.4,
                                      battery_voltage_volts=54.7, runtime_seconds=109762)),
    "apc_smtl1000-nmc3": dict(kind="ups", vendor="APC", model="Smart-UPS 1000", serial="AS2233161027", load=37.8,
                              watts="absent", ups=dict(output_voltage_volts=118, output_current_amps=3,
                                                       battery_percent=100, battery_temperature_celsius=28,
                                                       runtime_seconds=1522)),
    "apc_sua1500rmi2u": dict(kind="ups", vendor="APC", model="Smart-UPS 1500 RM", serial="absent", load=16.9,
                             watts="absent",
                             ups=dict(output_voltage_volts=239, output_frequency_hz=50, runtime_seconds=3960,
                                      battery_percent=100, battery_temperature_celsius=26.1,
                                      output_current_amps=None)),  # 0 A at 16.9 % load: not a measurement
    "eaton-mgeups_9px": dict(kind="ups", vendor="EATON", model="Eaton 9PX 1000i RT 2U", serial="GA10J05109", load=35,
                             watts=310, ups=dict(output_source="normal", battery_percent=100, runtime_seconds=1464,
                                                 battery_voltage_volts=52),
                             ups_outputs=(("1", 230, 1.6),)),
    "eatonups": dict(kind="ups", vendor="Eaton", model=None, serial="absent", load=25, watts=231 + 944 + 882,
                     ups=dict(output_source="normal", battery_percent=100, runtime_seconds=8620),
                     ups_outputs=(("1", 230, 1), ("2", 231, 5), ("3", 230, 5))),
    "netmanplus_204": dict(kind="ups", vendor="RPS SpA", model=None, serial="absent", load=8, watts=184,
                           ups=dict(battery_percent=100, runtime_seconds=135 * 60, battery_voltage_volts=122.5,
                                    battery_temperature_celsius=37),
                           ups_outputs=(("1", 231, 1.1), ("2", 0, 0), ("3", 0, 0))),  # only line 1 is live
    "netvision-rfc": dict(kind="ups", vendor="Socomec", model="MODULYS GP 2.0", serial="PD04405001", load=7, watts=200,
                          ups=dict(battery_percent=100, battery_voltage_volts=217, battery_temperature_celsius=27,
                                   runtime_seconds=None),  # 65535 minutes: not known
                          ups_outputs=(("1", 230, 2.2),)),
    "generex-ups_cs141": dict(kind="ups", vendor="Multimatic", model="Upscale", serial="absent", load=14,
                              watts=469,  # -4 / 469 / -26 W: a negative output is no measurement
                              ups=dict(output_source="bypass", battery_percent=100, runtime_seconds=544 * 60,
                                       battery_voltage_volts=271.6, battery_temperature_celsius=25),
                              ups_outputs=(("1", 233, 0.3), ("2", 233, 2.1), ("3", 235, 0.2))),
    "netagent2_1": dict(kind="ups", vendor="PPC", model=None, serial="absent", load=16, watts="absent",
                        ups=dict(output_source="standby", output_voltage_volts=236, output_frequency_hz=50,
                                 battery_percent=100, battery_voltage_volts=27, battery_temperature_celsius=28)),
    # --- PDUs ---
    "apc_ap8959eu3": dict(kind="pdu", vendor="APC", model="AP8959EU3", serial="5A1638E01463", watts=270,
                          energy_kwh=1967.7, outlets=(),
                          power=dict(peak_watts=620, apparent_va=300, power_factor=0.82, current_amps=1.3,
                                     voltage_volts=231)),
    "apc_apdu9959eu3": dict(kind="pdu", vendor="APC", model="APDU9959EU3", serial="ZA2315013350",
                            watts=1170,  # rPDU2's, not rPDUIdent's 1160
                            energy_kwh=70.6, power=dict(peak_watts=2250, apparent_va=1250, power_factor=0.93,
                                                        current_amps=5.4, voltage_volts=228)),
    "apc-epdu_epdu1116s": dict(kind="pdu", vendor="APC", model="EPDU1116S", serial="506255602541",
                               watts="absent",  # 0 V / 0 A / 0 W from a PDU that answers: not measured
                               energy_kwh=332.2),
    "raritan-pdu_px2": dict(kind="pdu", vendor="Raritan", model="PX2 030004", serial="absent", watts=138,
                            energy_kwh="absent", power=dict(current_amps=0.68, voltage_volts=233, frequency_hz=50),
                            metered_outlets=tuple((f"1.{i}", {3: 68, 10: 35, 11: 35}.get(i, 0)) for i in range(1, 13))),
    "sentry3": dict(kind="pdu", vendor="Server Technology", model="CW-24V2C458C1", serial="ADLH0001862",
                    firmware="7.1a", watts="absent",  # this firmware reports no infeed power
                    power=dict(current_amps=5.02, voltage_volts=209.3)),  # not in the manifests: NOTICE.md
    "sentry4_switched8i": dict(kind="pdu", vendor="Server Technology", model=None, serial="absent", watts=806 + 856,
                               energy_kwh=3472.0 + 3700.8,
                               power=dict(apparent_va=856 + 899, power_factor=0.95, current_amps=4.27)),
    "eatonpdu_dbq": dict(kind="pdu", vendor="Eaton", model=None, serial="ADO3051266", watts=0,
                         outlets=tuple((str(i), True) for i in range(20)), metered_outlets=tuple(
                             (str(i), 0) for i in range(20))),
    "enlogic-pdu2": dict(kind="pdu", vendor="Enlogic", model=None, serial="EN1814", watts=1120, energy_kwh=52777.6,
                         power=dict(apparent_va=1222, peak_watts=3938, current_amps=4.72, voltage_volts=205)),
    "vertiv-pdu_mg02e4w1": dict(kind="pdu", vendor="Vertiv", model="MG02E4W1-42ITB3-3PS56B2A10-S",
                                serial="ZY18120520", watts=1017, energy_kwh=8483.9,
                                power=dict(apparent_va=1067, power_factor=0.95)),
    "liebert": dict(kind="pdu", vendor="Vertiv", model="MPH-NCV27AXXD30", serial="DM2013JUN240015", watts=2411,
                    energy_kwh=95937.5, ups="absent", power=dict(voltage_volts=119.6, current_amps=20.45)),
    # --- switches ---
    "iosxe_c9200l": dict(kind="switch", vendor="Cisco", model="C9200L-48P-4X", serial="absent",
                         units=(("C9200L-48P-4X", "absent"), ("C9200L-48P-4X", "absent"), ("C9200L-48P-4G", "absent")),
                         poe_budget=3 * 740, poe_consumption=9 + 19 + 24, poe_vendor_consumption=26.1 + 52.2 + 89.7,
                         poe_groups=(("1", 740, 9, 26.1), ("2", 740, 19, 52.2), ("3", 740, 24, 89.7)), poe_ports=()),
    "ciscosb_cbs250-24p-4x-v3": dict(kind="switch", vendor="Cisco", model="CBS250-24P-4X", serial="absent",
                                     poe_budget=None, poe_consumption=38.61,
                                     poe_ports=(("1.13", 10.767), ("1.14", 8.607), ("1.15", 4.879), ("1.17", 10.82),
                                                ("1.19", 3.537))),
    "procurve_e2910": dict(kind="switch", vendor="Hewlett-Packard", model="J9146A",
                           serial="absent", poe="absent"),  # AB123CD45E: a placeholder by the register's rule
    "arubaos-cx_nac": dict(kind="switch", vendor="Aruba", model="JL679A", serial="absent", poe_budget=139,
                           poe_consumption=None),
    "jetstream_sg2218p": dict(kind="switch", vendor="TP-Link", model="SG2218P", serial="222C014000151", poe_budget=150,
                              poe_consumption=40.4,
                              poe_ports=(("1", 2), ("2", 2.6), ("3", 2.2), ("4", 2), ("5", 2.5), ("6", 2), ("7", 4),
                                         ("8", 2), ("9", 2.3), ("10", 2.8), ("11", 0), ("12", 2.7), ("13", 0),
                                         ("14", 0),
                                         ("15", 6.6), ("16", 6.4))),
    "edgeswitch": dict(kind="switch", vendor="Ubiquiti", model="EdgeSwitch 24-Port 250W", serial="absent",
                       poe_budget=250, poe_consumption=None),
    "netgear": dict(kind="switch", vendor="Netgear", model="GS724Tv4", serial="absent", poe="absent"),
    "dlink-dgs1250_28x": dict(kind="switch", vendor="D-Link", model="DGS-1250-28X", serial="SYBV124000121",
                              poe="absent"),
    "zynos_xs1930-12hp": dict(kind="switch", vendor="Zyxel", model="XS1930-12HP", serial="S202L46000807",
                              poe_budget=375, poe_consumption=11, poe_ports=()),
    "junos_ex": dict(kind="switch", vendor="Juniper", model="ex3400-48t", serial="absent", poe_budget=1764 + 767,
                     poe_consumption=248 + 137, poe_groups=(("1", 1764, 248, None), ("2", 767, 137, None))),
    "boss_ers3510": dict(kind="switch", vendor="Extreme Networks", model="3510GT-PWR+", serial="15JP323F207J",
                         poe="absent"),
    # --- access points ---
    "unifi_nanohd": dict(kind="access_point", vendor="Ubiquiti", model="UAP-nanoHD", serial="absent",
                         firmware="5.43.36.12724"),
    "aruba-instant_105": dict(kind="access_point", vendor="Aruba", model="105", serial="BT0489813",
                              firmware="6.4.4.8-4.2.4.12", units=(("105", "BT0489813"), ("105", "BT0490379"))),
    "hiveos-wireless_ap305c-1": dict(kind="access_point", vendor="Aerohive", model="AP305C-1", serial="absent"),
    "ciscowlc_cbw240ac": dict(kind="access_point", vendor="Cisco", model="CBW240AC-B", serial="PSZ00000000",
                              units=(("CBW240AC-B", "PSZ00000000"), ("CBW240AC-B", "PSZ00000001"),
                                     ("CBW240AC-B", "PSZ00000002"), ("CBW240AC-B", "PSZ00000003"),
                                     ("CBW142ACM-B-NA", "KWC00000004"))),
    "ruckuswireless-unleashed": dict(kind="access_point", vendor="Ruckus", model="T300", serial="231603507471",
                                     firmware="200.15.6.112"),
}

#: Manifest facts Caretaker does not read, and why. Everything else in the manifests is in FACTS.
NOT_MET: dict[str, list[tuple[str, str]]] = {
    "eatonups": [("ABM status 4, ambient 29 °C", "battery-management state and room temperature are not readings "
                                                 "Caretaker keeps (energy, identity, supplies)")],
    "eaton-mgeups_9px": [("upsOutputPower read, 24 min of UPS-MIB", "MGE's 1464 s is the finer runtime and is used")],
    "netmanplus_204": [("battery and input current -1", "input and battery current are not read")],
    "netvision-rfc": [("65535 battery current and input power, 655350 input current", "input side not read")],
    "sentry4_switched8i": [("nominal 208.0 V", "a nominal voltage is a rating, not a measurement; not read"),
                           ("absent sensors -1", "environment sensors are not read")],
    "enlogic-pdu2": [("phases 521/599/0 W", "the unit total is read, not the phase breakdown")],
    "vertiv-pdu_mg02e4w1": [("phases 198/436/382 W", "the total is read, not the phase breakdown")],
    "liebert": [("branches 14.28/1.96/4.19 A", "breaker-branch currents are not read: metering is per PDU and outlet")],
    "iosxe_c9200l": [("remaining 713.9/687.8/650.3 W, 7 PDs", "the vendor's remaining power and PD count are not read"),
                     ("sysDescr 4x hex", "read (decoded by the agent library), used for nothing here")],
    "jetstream_sg2218p": [("remaining 109.4 W", "not read: it is the budget less the consumption")],
    "junos_ex": [("FPC 35 °C, RE CPU 11 %", "temperatures and CPU load are not read")],
    "edgeswitch": [("temps 70/59 °C", "temperatures are not read")],
    "unifi_nanohd": [("2 radios, 18 clients", "radios and client counts are not read")],
    "aruba-instant_105": [("4 radio rows", "radios are not read")],
    "ciscowlc_cbw240ac": [("bsnAPTable 2 APs, max 50 APs", "the controller's AP table and capacity are not read; "
                                                            "its entity table gives every unit")],
    "ruckuswireless-unleashed": [("1 AP, 0 clients", "AP and client counts are not read")],
    "dlink-dgs1250_28x": [("39 ifDescr rows", "interfaces are not read")],
    "arubaos-cx_nac": [("18 ifDescr rows", "interfaces are not read")],
    "ciscosb_cbs250-24p-4x-v3": [("49 ifDescr rows", "interfaces are not read")],
    "hiveos-wireless_ap305c-1": [("17 ifDescr rows", "interfaces are not read")],
    "boss_ers3510": [("10 ports", "interfaces are not read")],
    "konica": [("Develop ineo+ 280 (inferred OEM name)", "inferred: not asserted; sysDescr's model is used")],
    "jetdirect_m130nw": [("HP engine count 15232 (inferred)",
                          "inferred: not asserted; prtMarkerLifeCount is the count")],
    "ciscosb_cbs350": [("37 physical entities", "only the chassis is read")],
    "procurve_e2910": [("37 entities", "only the chassis is read")],
    "apc_smt750x-nmc2": [("runtime 10976200 ticks", "read, as the 109762 s it means")],
}


@pytest.fixture(scope="module", params=["memory", "snmpsim"])
def polls(request: pytest.FixtureRequest) -> dict[str, DevicePoll]:
    """Every recording polled once, all at the same time, through the client under test."""
    store = store_for(*((address_of(n), [community(n)]) for n in NAMES))

    async def poll_all(client, port: int) -> list[DevicePoll]:
        # One snmpsim answers all 58, one request at a time: few at once, so none waits past its timeout
        # on a loaded machine.
        poller = Poller(client, load_profiles(), store, settings=PollSettings(timeout=3.0, retries=1, concurrency=8))
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


def level(supply: Supply) -> float | str:
    """A supply's level as an operator reads it: a percentage, a named state, or a count of unknown capacity."""
    if supply.percent is not None:
        return supply.percent
    return supply.state or f"{supply.level} of {supply.capacity_state} capacity"


def facts(poll: DevicePoll, wanted: dict) -> dict:
    """The poll's values for the keys ``wanted`` names, in the manifests' terms."""
    i, printer, power, ups, poe = poll.identity, poll.printer, poll.power, poll.ups, poll.poe
    found = {"kind": poll.kind, "vendor": i.vendor, "model": i.model, "serial": i.serial or "absent",
             "firmware": i.firmware}
    found |= {"pages": "none" if printer is None or printer.life_count is None else printer.life_count,
              "counter_unit": printer and printer.counter_unit, "alerts": printer and printer.errors,
              "supplies": tuple((s.description, level(s)) for s in printer.supplies) if printer else ()}
    found["watts"] = next((w for w in (power and power.watts, ups and ups.output_watts) if w is not None), "absent")
    found["energy_kwh"] = round(power.energy.joules / KWH, 1) if power and power.energy else "absent"
    found["outlets"] = tuple((o.index, o.powered) for o in poll.outlets)
    found["metered_outlets"] = tuple((o.index, o.watts) for o in poll.outlets if o.watts is not None)
    found["power"] = {k: getattr(power, k) for k in wanted.get("power", {})} if power else None
    found["ups"] = {k: getattr(ups, k) for k in wanted["ups"]} if ups and isinstance(wanted.get("ups"), dict) else (
        ups or "absent")
    found["host"] = {k: getattr(poll.host, k) for k in wanted.get("host", {})} if poll.host else None
    if ups is not None:
        found["load"] = ups.load_percent
        found["ups_outputs"] = tuple((o.index, o.voltage_volts, o.current_amps) for o in ups.outputs)
    found["poe"] = poe or "absent"
    if poe is not None:
        found |= {"poe_budget": poe.budget_watts, "poe_consumption": poe.consumption_watts,
                  "poe_vendor_consumption": poe.vendor_consumption_watts,
                  "poe_groups": tuple((g.index, g.budget_watts, g.consumption_watts, g.vendor_consumption_watts)
                                      for g in poe.groups),
                  "poe_ports": tuple((p.index, p.watts) for p in poe.ports)}
    found["units"] = tuple((c.model, c.serial or "absent") for c in poll.chassis)
    return {key: found.get(key) for key in wanted}


def test_every_recording_has_its_facts():
    assert sorted(FACTS) == NAMES
    assert set(NOT_MET) <= set(FACTS)


@pytest.mark.parametrize("name", NAMES)
def test_the_poller_reads_each_manifest_fact(polls, name):
    poll = polls[name]
    assert poll.error is None
    assert rounded(facts(poll, FACTS[name])) == rounded(FACTS[name])


def test_no_recording_is_kept_as_a_host_unless_its_manifest_says_it_is_one(polls):
    hosts = {name for name, poll in polls.items() if poll.kind == "host" or poll.profile == "generic"}
    assert hosts == {"aix_net-snmp"}  # "IBM AIX server with net-snmp"


def test_every_recording_names_its_vendor(polls):
    assert {name: poll.identity.vendor for name, poll in polls.items() if not poll.identity.vendor} == {}


def rounded(value: object) -> object:
    """Numbers to six places, so 26.1 + 52.2 + 89.7 equals the 168.0 a poll sums to."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return tuple(rounded(v) for v in value)
    return value
