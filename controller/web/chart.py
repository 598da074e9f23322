"""The device page's energy chart, drawn by the reports' matplotlib charts (controller.reports.charts).

It is embedded as a ``data:`` image: matplotlib's SVG styles its shapes inline, which the console's CSP
rightly refuses in the page itself but which is harmless inside an image (images run no script).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.reports.charts import screen_uri
from controller.reports.document import Chart


@dataclass(frozen=True)
class Bar:
    label: str  # in the table of figures: "Mon 16 Nov"
    short: str  # under the bar, where fourteen must fit: "16", with the month where it starts: "16\nNov"
    value: float
    has_data: bool = True  # False: nothing was reported that day (the chart says "no data", not 0)


def bar_chart(bars: Sequence[Bar], unit: str, title: str) -> str:
    """A ``data:image/svg+xml`` URI of one bar per label, drawn for a screen (legible on a phone)."""
    chart = Chart(title, tuple(b.short for b in bars), ((unit, tuple(b.value for b in bars)),), unit,
                  missing=tuple(i for i, b in enumerate(bars) if not b.has_data))
    return screen_uri(chart)
