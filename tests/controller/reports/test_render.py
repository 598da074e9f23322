"""One document, four renderings: the HTML's charts are matplotlib's, the PDF's text says what the HTML
says, every CSV total equals the HTML total, and the audit pack's JSON carries the same figures.

Rendering does not depend on the database, so the fixture estate is built once, on SQLite.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from html.parser import HTMLParser

import pytest
from pypdf import PdfReader
from sqlmodel import Session

from controller import migrate
from controller.db import make_engine
from controller.reports import audit, bursar, render, sources
from controller.reports.layout import audit_document, bursar_document
from controller.reports.periods import parse_period
from controller.reports.service import load_inputs
from tests.controller.reports import estate
from tests.controller.reports.conftest import NOW


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("render")
    engine = make_engine(f"sqlite:///{folder / 'caretaker.db'}")
    migrate.upgrade(engine)
    inputs = load_inputs(estate.write_policies(folder / "policies"))
    with Session(engine) as session:
        estate.build(session)
        session.commit()
        scope = sources.resolve_scope(session, trust=estate.TRUST)
        week = parse_period(estate.WEEK)
        made = (bursar.build(session, scope, week, inputs, NOW), audit.build(session, scope, week, inputs, NOW))
    engine.dispose()
    return made


class _Tables(HTMLParser):
    """Each ``<table data-table=…>``'s total row, as the exact values in its cells' ``data-value``."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[str, list[str | None]] = {}
        self.table: str | None = None
        self.in_foot = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs.get("data-table")
        elif tag == "tfoot":
            self.in_foot = True
            self.totals[self.table] = []
        elif tag == "td" and self.in_foot:
            self.totals[self.table].append(attrs.get("data-value"))

    def handle_endtag(self, tag):
        if tag == "tfoot":
            self.in_foot = False


def test_the_html_carries_matplotlib_charts_inline(reports):
    page = render.html(bursar_document(reports[0]))
    assert page.count("<svg") == 5  # before/after, sites, methods, rooms, outcomes
    assert "Matplotlib" in page  # each SVG's generator metadata: drawn by the library, not by hand
    assert "<script" not in page


def test_every_csv_total_equals_the_html_total(reports):
    for document in (bursar_document(reports[0]), audit_document(reports[1])):
        parser = _Tables()
        parser.feed(render.html(document))
        archive = zipfile.ZipFile(io.BytesIO(render.csv_zip(document)))
        with_totals = [t for t in document.tables() if t.total is not None and t.rows]
        assert with_totals, document.kind
        for table in with_totals:
            rows = list(csv.reader(io.StringIO(archive.read(f"{table.key}.csv").decode("utf-8-sig"))))
            assert rows[0] == list(table.columns)
            csv_total, html_total = rows[-1], parser.totals[table.key]
            for csv_cell, html_cell in zip(csv_total, html_total, strict=True):
                if html_cell is not None:  # a numeric cell
                    assert float(csv_cell) == float(html_cell), (table.key, csv_total, html_total)


def test_the_csv_site_totals_are_the_hand_computed_kwh(reports):
    archive = zipfile.ZipFile(io.BytesIO(render.csv_zip(bursar_document(reports[0]))))
    rows = list(csv.DictReader(io.StringIO(archive.read("sites.csv").decode("utf-8-sig"))))
    assert [r["Site"] for r in rows] == ["Brook Academy", "Oakfield Primary", "Total"]
    # 2.52 + 1.064 + 3.36 = 6.944 kWh, written as every surface writes kWh: to 1 decimal place.
    assert rows[-1]["kWh used"] == "6.9"
    assert [r["kWh used"] for r in rows[:-1]] == ["3.4", "3.6"]  # 3.36; 2.52 + 1.064 = 3.584
    assert rows[-1]["£ used"] == "2.08"  # 6.944 kWh × 30 p


@pytest.mark.slow
def test_the_pdf_prints_the_reports_figures_and_recommendations(reports):
    pdf = PdfReader(io.BytesIO(render.pdf(bursar_document(reports[0]))))
    text = " ".join(" ".join(page.extract_text().split()) for page in pdf.pages)
    assert len(pdf.pages) >= 2
    assert "Energy report: Vale Trust" in text
    assert "Vale Trust used 6.9 kWh (£2.08, 1.2 kgCO2e)" in text
    assert "extend power-down to Hall (Brook Academy): about £40.86 and 24.1 kgCO2e a year" in text
    assert "Wake and power-down outcomes" in text and "confirmed" in text
    audit_pdf = PdfReader(io.BytesIO(render.pdf(audit_document(reports[1]))))
    audit_text = " ".join(" ".join(page.extract_text().split()) for page in audit_pdf.pages)
    assert "Streamlined energy and carbon reporting" in audit_text
    assert "mode: observe → force" in audit_text


def test_the_audit_pack_json_has_the_same_figures(reports):
    data = json.loads(render.to_json(reports[1]))
    assert data["trust"] == estate.TRUST
    assert data["period"]["start"] == "2025-11-10T00:00:00+00:00"
    oak = next(s for s in data["secr"] if s["site"] == "Oakfield Primary")
    assert oak["kwh"] == pytest.approx(3.584)
    assert data["factor"]["kg_per_kwh"] == "0.177"  # a Decimal, exact, as the energy package keeps it
    assert data["policy_changes"][0]["actor"] == "user:alice"
