"""How a figure is written for a person, on every surface (CLI tables, console, reports, their CSV).

One rule each, so a bursar reading the console, the PDF and the spreadsheet sees the same number:

- energy in kWh to 1 decimal place; carbon in kgCO2e to 1 decimal place;
- money in pounds to 2 decimal places, and in pence when under £1 ("45p");
- a figure that needs a tariff or factor the site lacks says so where the figure would be
  ("unpriced: no tariff set"), never £0.

Rounding is half up, as a person checking by hand rounds. Machine outputs (the API's JSON, ``--json``)
keep the exact figures the energy package works out; these are for reading.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ONE_PLACE = Decimal("0.1")
PENNY = Decimal("0.01")
NO_TARIFF = "unpriced: no tariff set"
Number = Decimal | float | int


# The energy methods in plain words, wherever a method is named to a person.
METHOD_WORDS = {
    "metered": "measured at the socket, by a metered PDU or PoE switch",
    "rapl": "measured by the processor's own energy counter (RAPL), scaled up to the whole machine",
    "battery": "measured from the laptop's battery as it ran on it",
    "model": "estimated from the machine's power model and what it was doing",
    "attributed": "estimated for hours the machine did not report, taken as off or asleep",
}


def method_words(method: str) -> str:
    return METHOD_WORDS.get(method, method)


def share(fraction: Number) -> Decimal:
    """A share of a whole as a percentage to 1 decimal place (0.4839 → 48.4)."""
    return (_decimal(fraction) * 100).quantize(ONE_PLACE, ROUND_HALF_UP)


def _decimal(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def kwh(value: Number) -> Decimal:
    return _decimal(value).quantize(ONE_PLACE, ROUND_HALF_UP)


def kg(value: Number) -> Decimal:
    return _decimal(value).quantize(ONE_PLACE, ROUND_HALF_UP)


def pounds(value: Number | None) -> Decimal | None:
    return None if value is None else _decimal(value).quantize(PENNY, ROUND_HALF_UP)


def grouped(value: Decimal) -> str:
    """Thousands separated, the places kept: 1234.5 → "1,234.5"."""
    places = max(0, -value.as_tuple().exponent) if isinstance(value.as_tuple().exponent, int) else 0
    return f"{value:,.{places}f}"


def kwh_text(value: Number) -> str:
    return f"{grouped(kwh(value))} kWh"


def kg_text(value: Number) -> str:
    return f"{grouped(kg(value))} kgCO2e"


def money_text(value: Number | None, missing: str = NO_TARIFF) -> str:
    """"£1,234.56", or "45p" under a pound, or what is missing when there is no price."""
    rounded = pounds(value)
    if rounded is None:
        return missing
    if abs(rounded) < 1:
        pence = (rounded * 100).quantize(Decimal(1))
        return f"{pence}p"
    return f"£{grouped(rounded)}"
