"""What a profile may fill in: the sections of a poll, their fields, and each field's unit.

This is the whole vocabulary between device data (profiles/*.yaml) and code (readings.py): a profile
maps OIDs onto these names and scales raw values into these units; the loader refuses anything
else. Numbers are in base units (watts, joules, seconds, bytes) as everywhere in Caretaker.
"""

from __future__ import annotations

TEXT, BOOL, COUNT, FLAGS, RATIO = "text", "bool", "count", "flags", "ratio"

#: Scalar sections: one value per field.
SCALARS: dict[str, dict[str, str]] = {
    "identity": {"vendor": TEXT, "model": TEXT, "serial": TEXT, "firmware": TEXT},
    "power": {"watts": "W", "peak_watts": "W", "apparent_va": "VA", "power_factor": RATIO, "current_amps": "A",
              "voltage_volts": "V", "frequency_hz": "Hz", "energy_joules": "J", "energy_since": TEXT},
    "printer": {"life_count": COUNT, "counter_unit": TEXT, "status": TEXT, "errors": FLAGS},
    # consumption_watts is the standard MIB's measured draw; vendor_consumption_watts what a vendor MIB
    # says beside it (readings.py decides between them).
    "poe": {"budget_watts": "W", "consumption_watts": "W", "vendor_consumption_watts": "W"},
    "ups": {"output_source": TEXT, "battery_percent": "%", "runtime_seconds": "s", "output_watts": "W",
            "load_percent": "%", "rated_watts": "W", "output_voltage_volts": "V", "output_current_amps": "A",
            "output_frequency_hz": "Hz", "battery_voltage_volts": "V", "battery_temperature_celsius": "°C"},
    "host": {"uptime_seconds": "s", "memory_bytes": "B", "processors": COUNT},
}

#: Table sections: one row per index, each field read from one column.
TABLES: dict[str, dict[str, str]] = {
    "outlets": {"name": TEXT, "powered": BOOL, "watts": "W", "current_amps": "A", "voltage_volts": "V",
                "energy_joules": "J"},
    "supplies": {"description": TEXT, "kind": TEXT, "level": COUNT, "capacity": COUNT},
    "poe_groups": {"budget_watts": "W", "consumption_watts": "W", "vendor_consumption_watts": "W"},
    "poe_ports": {"name": TEXT, "watts": "W", "delivering": BOOL},
    "ups_outputs": {"watts": "W", "load_percent": "%", "voltage_volts": "V", "current_amps": "A"},
    # Every chassis of the device: the members of a stack, the access points of a cluster.
    "chassis": {"name": TEXT, "model": TEXT, "serial": TEXT, "firmware": TEXT},
}

#: Units a profile may write after a scale ("10 W", "0.1 kWh"): (base unit, factor to it).
UNITS: dict[str, tuple[str, float]] = {
    "W": ("W", 1.0), "kW": ("W", 1e3), "mW": ("W", 1e-3), "VA": ("VA", 1.0), "kVA": ("VA", 1e3),
    "J": ("J", 1.0), "Wh": ("J", 3600.0), "kWh": ("J", 3.6e6),
    "A": ("A", 1.0), "mA": ("A", 1e-3), "V": ("V", 1.0), "mV": ("V", 1e-3), "Hz": ("Hz", 1.0), "°C": ("°C", 1.0),
    "s": ("s", 1.0), "cs": ("s", 0.01), "min": ("s", 60.0), "h": ("s", 3600.0),
    "B": ("B", 1.0), "KiB": ("B", 1024.0), "%": ("%", 1.0),
}

NUMERIC = {"W", "VA", "J", "A", "V", "Hz", "°C", "s", "B", "%", RATIO, COUNT}

#: Units a physical reading cannot be negative in: a negative one is an agent's error, not a measurement.
NOT_NEGATIVE = {"W", "VA", "J", "A", "V", "Hz"}


def unit_of(section: str, field: str) -> str | None:
    return (SCALARS.get(section) or TABLES.get(section) or {}).get(field)
