"""A report laid out for reading: sections of paragraphs, tables and charts, in the order they print.

Each report kind builds its figures once (bursar.py, audit.py) and lays them out as a ``Document``;
HTML, PDF and CSV are all rendered from that one document, so a total cannot differ between formats.
Cells are plain values (str, int, float, a Decimal already rounded by controller/formatting.py, or None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

# A Decimal is a figure already rounded as every surface shows it (controller/formatting.py).
Cell = str | int | float | Decimal | None


@dataclass(frozen=True)
class Table:
    key: str  # a file name for its CSV
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    total: tuple[Cell, ...] | None = None  # printed last, in bold; also the CSV's last row
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """Series of numbers over labels, drawn by charts.py; ``stacked`` stacks the series in one bar."""

    title: str
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]
    unit: str
    horizontal: bool = False
    stacked: bool = False
    missing: tuple[int, ...] = ()  # bars with no data behind them, marked "no data" rather than drawn as zero
    inches: float = 7.0  # drawing width: an A4 column; narrower draws its labels larger where it is shown
    font_size: float = 9.0


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    kind: str  # bursar, audit
    title: str
    subtitle: str
    generated_at: str
    sections: tuple[Section, ...] = field(default=())

    def tables(self) -> list[Table]:
        return [table for section in self.sections for table in section.tables]
