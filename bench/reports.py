"""How long a bursar report and an audit pack take, against the energy summary they build on.

Builds the same estate as bench/energy_summary.py (idle and off hours on the agent's model, one desk in
ten metered, 15% of hours silent) in a fresh SQLite database, puts every site in one trust under a
force-mode policy with the example LA calendar, then times, over the same days:

- **peer**: ``energy_summary(group_by="device")``: the energy package's accounting alone;
- **bursar**: ``bursar.build``: the same hour lines, plus each device's school hours from its policy,
  out-of-hours waste, savings per action, before/after, recommendations;
- **audit**: ``audit.build``: the period and the prior year, register queries, refresh forecast;
- **html** and **pdf**: rendering the bursar report (matplotlib charts; WeasyPrint).

    .venv/bin/python bench/reports.py                         # 200 devices, 10 sites, 14 days
    .venv/bin/python bench/reports.py --devices 400 --days 28
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from energy_summary import START, build

from controller import migrate
from controller.db import make_engine
from controller.energy.accounting import energy_summary
from controller.register.models import Site
from controller.reports import audit, bursar, render, sources
from controller.reports.layout import bursar_document
from controller.reports.periods import date_range
from controller.reports.service import load_inputs

REPO = Path(__file__).resolve().parent.parent
POLICY = """\
name: estate
applies_to:
  device_classes: [desktop, laptop]
calendar: example-la-2025-26.yaml
school_hours:
  weekdays: "08:00-17:00"
idle:
  minutes_without_input: 20
action: shutdown
mode: force
"""


def timed(what, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = what()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        policies = Path(folder) / "policies"
        policies.mkdir()
        shutil.copy(REPO / "policies" / "calendars" / "example-la-2025-26.yaml", policies)
        (policies / "estate.yaml").write_text(POLICY)
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        migrate.upgrade(engine)
        rows = build(engine, args.devices, args.sites, args.days)
        with Session(engine) as session:
            for site in session.exec(select(Site)):
                site.trust = "Bench Trust"
                session.add(site)
            session.commit()
        inputs = load_inputs(policies)
        period = date_range(START.date(), (START + timedelta(days=args.days - 1)).date(), "Europe/London")
        now = datetime.now(UTC)
        with Session(engine) as session:
            scope = sources.resolve_scope(session, trust="Bench Trust")
            peer, _ = timed(lambda: energy_summary(session, period.start_utc, period.end_utc, scope.site_ids,
                                                   "device", now), args.runs)
            made, report = timed(lambda: bursar.build(session, scope, period, inputs, now), args.runs)
            pack, _ = timed(lambda: audit.build(session, scope, period, inputs, now), args.runs)
        document = bursar_document(report)
        html, _ = timed(lambda: render.html(document), args.runs)
        pdf, _ = timed(lambda: render.pdf(document), args.runs)
        engine.dispose()
    print(f"{args.devices} devices, {args.sites} sites, {args.days} days, {rows:,} buckets (SQLite); "
          f"median of {args.runs} runs")
    print(f"peer   energy_summary by device  {peer:8.2f} s")
    print(f"bursar report (figures)          {made:8.2f} s   {made / peer:5.2f}x the peer")
    print(f"audit pack (figures, prior year) {pack:8.2f} s   {pack / peer:5.2f}x the peer")
    print(f"render bursar HTML               {html:8.2f} s")
    print(f"render bursar PDF (from HTML)    {pdf:8.2f} s")


if __name__ == "__main__":
    main()
