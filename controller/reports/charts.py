"""Charts drawn with matplotlib as inline SVG, so one HTML file carries them and WeasyPrint prints them sharp.

An explicit Figure, never pyplot: no GUI backend, no global figure list, so drawing is safe in the API's threads.
SVG text is kept as text (``svg.fonttype: none``) so a PDF made from the page is searchable.
"""

from __future__ import annotations

import base64
import io
from dataclasses import replace

from controller.reports.document import Chart

SCREEN_INCHES, SCREEN_FONT = 5.0, 11.0
COLOURS = ("#1b6ca8", "#e07b00", "#3a9b47", "#b03a48", "#6b4c9a", "#7f7f7f")


def svg(chart: Chart) -> str:
    """The chart as an ``<svg>`` element (no XML prologue), sized for an A4 column."""
    from matplotlib import rc_context  # ~0.3 s to import: only reports and charts pay it, not every CLI call
    from matplotlib.figure import Figure

    height = max(2.2, 0.35 * len(chart.labels) + 1.0) if chart.horizontal else 2.6
    with rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": chart.font_size}):
        figure = Figure(figsize=(chart.inches, height))
        axes = figure.add_subplot()
        positions = list(range(len(chart.labels)))
        width = 0.8 if chart.stacked or len(chart.series) == 1 else 0.8 / len(chart.series)
        base = [0.0] * len(chart.labels)
        for index, (name, values) in enumerate(chart.series):
            colour = COLOURS[index % len(COLOURS)]
            offset = 0.0 if chart.stacked or len(chart.series) == 1 else (index - (len(chart.series) - 1) / 2) * width
            where = [p + offset for p in positions]
            if chart.horizontal:
                axes.barh(where, values, height=width, left=base if chart.stacked else None, label=name, color=colour)
            else:
                axes.bar(where, values, width=width, bottom=base if chart.stacked else None, label=name, color=colour)
            if chart.stacked:
                base = [b + v for b, v in zip(base, values, strict=True)]
        if chart.horizontal:
            axes.set_yticks(positions, chart.labels)
            axes.invert_yaxis()
            axes.set_xlabel(chart.unit)
        else:
            axes.set_xticks(positions, chart.labels)
            axes.set_ylabel(chart.unit)
        for index in chart.missing:  # a day with nothing reported is not a day that used nothing
            axes.text(index, 0, "no data", rotation=90, ha="center", va="bottom", color="#4a4a4a",
                      fontsize=chart.font_size * 0.85)
        axes.set_title(chart.title)
        axes.spines[["top", "right"]].set_visible(False)
        if len(chart.series) > 1:
            axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        figure.tight_layout()
        out = io.StringIO()
        figure.savefig(out, format="svg")
    text = out.getvalue()
    return text[text.index("<svg"):]


def svg_uri(chart: Chart) -> str:
    """The chart as a ``data:`` URI for an ``<img>``: a page whose policy refuses inline styles may still
    show it (matplotlib styles its SVG inline, and an image runs nothing)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg(chart).encode()).decode()


def screen_uri(chart: Chart) -> str:
    """``svg_uri`` drawn for a screen that may be a phone's: narrower, with larger type, so the labels stay
    legible when the image is scaled to 390 pixels."""
    return svg_uri(replace(chart, inches=SCREEN_INCHES, font_size=SCREEN_FONT))
