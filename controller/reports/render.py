"""A document to bytes: HTML (Jinja2, matplotlib charts inline), PDF (WeasyPrint from that same HTML),
CSV (a zip holding one CSV per table, each UTF-8 with a byte order mark for Excel), and JSON (the
report's own dataclasses, for the audit pack).

WeasyPrint rather than headless Chromium: it is a library, so the CLI and the API print without starting
a browser, and it honours print CSS (page size, running footer, no table row split across pages).
CSV is a zip of one file per table because each table has its own columns: a spreadsheet opens any one
of them directly, and ``csv`` reads each without section markers to skip.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import zipfile
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from controller import formatting as fmt
from controller.reports import charts
from controller.reports.document import Cell, Document

FORMATS = ("html", "pdf", "csv", "json")
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "csv": "application/zip",
               "json": "application/json"}
SUFFIXES = {"html": ".html", "pdf": ".pdf", "csv": ".zip", "json": ".json"}


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("controller.reports", "templates"), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = shown
    env.filters["svg"] = charts.svg
    env.filters["screen_uri"] = charts.screen_uri
    return env


def shown(value: Cell) -> str:
    """A cell as the HTML shows it: thousands separated, decimals by size, a dash for none."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Decimal):
        return fmt.grouped(value)
    return f"{value:,.3f}" if abs(value) < 1 else f"{value:,.2f}" if abs(value) < 100 else f"{value:,.1f}"


def html(document: Document, console: bool = False) -> str:
    """The report as one HTML file (styles and charts inside it), or, for the console, as a page whose
    styles are linked and charts are images: the console's content security policy allows no inline style."""
    return _environment().get_template("report.html.j2").render(doc=document, console=console)


def stylesheet() -> str:
    """The report's styles, which the console serves at /reports/report.css."""
    return _environment().loader.get_source(_environment(), "report.css")[0]


def pdf(document: Document) -> bytes:
    from weasyprint import HTML  # imported here: it loads pango, which only printing needs

    return HTML(string=html(document)).write_pdf()


def csv_zip(document: Document) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for table in document.tables():
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(table.columns)
            writer.writerows(table.rows)
            if table.total is not None:
                writer.writerow(table.total)
            # With a byte order mark, so Excel reads the file as UTF-8 and "£" survives; in the order printed.
            archive.writestr(f"{table.key}.csv", text.getvalue().encode("utf-8-sig"))
    return out.getvalue()


def to_json(report: object) -> bytes:
    return json.dumps(_plain(report), indent=2, ensure_ascii=False).encode()


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        plain = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in ("start", "end"):  # a period's instants, besides its dates
            if hasattr(type(value), name) and isinstance(getattr(type(value), name), property):
                plain[name] = getattr(value, name).isoformat()
        return plain
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | ZoneInfo):
        return str(value)  # exact, as the energy package writes its figures
    return value


def render(document: Document, fmt: str, report: object | None = None, console: bool = False) -> bytes:
    """``report`` is the dataclass the document was laid out from, needed for JSON only; ``console`` is HTML
    for the console's pages."""
    if fmt == "html":
        return html(document, console).encode()
    if fmt == "pdf":
        return pdf(document)
    if fmt == "csv":
        return csv_zip(document)
    if fmt == "json" and report is not None:
        return to_json(report)
    raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
