"""A bar chart as plain SVG, drawn on the server: no script, so it passes the console's CSP and prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 48, 36, 12


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar
    value: float


def bar_chart(bars: Sequence[Bar], unit: str, title: str) -> str:
    """An accessible SVG (role img, a title, each bar's value in its own title) scaled to the largest bar."""
    top = max((b.value for b in bars), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(bars), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{escape(title)}</title>',
             f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}"/>',
             f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{top:.3g}</text>',
             f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
             f'<text x="4" y="{TOP + plot_h / 2}">{escape(unit)}</text>']
    label_every = max(1, -(-len(bars) // 7))  # at most seven labels, so they never run together
    for i, bar in enumerate(bars):
        h = plot_h * max(bar.value, 0.0) / top
        x = LEFT + i * step + step * 0.15
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{h:.1f}"><title>{escape(bar.label)}: {bar.value:.3f} {escape(unit)}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                         f'{escape(bar.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
