"""Progress charts: matplotlib (Agg, no display) drawn to SVG on the server — the same SVG in the page (served
as an image from its own URL, so the page's strict CSP needs no inline style) and in the PDF report.

A chart is our own output: axis labels and titles come from the scale catalogue and the fixed landmark
vocabulary, never from free text. Rendered charts are kept in the cache under a digest of what they show, so
an unchanged series is drawn once."""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.utils.translation import get_language
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from mesoclinic.outcomes.services import Series

CACHE_SECONDS = 24 * 3600
# The policy an SVG answer carries: no script, no fetch; matplotlib's own inline styles only.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_INK = "#1f2937"
_LINE = "#0f766e"
_BASELINE = "#9a3412"


def _digest(series: Series, title: str) -> str:
    points = ";".join(f"{p.after_sessions},{p.taken_on},{p.standard},{p.kind}" for p in series.points)
    raw = f"v1|{get_language()}|{title}|{series.unit}|{points}"
    return hashlib.sha256(raw.encode()).hexdigest()


def series_title(series: Series) -> str:
    return f"{series.label} — {series.landmark}" if series.landmark else series.label


def series_svg(series: Series) -> str:
    """The series over sessions (0 = baseline), its baseline as a dashed line. In the scale's published
    orientation (a reversed GAIS is drawn as GAIS)."""
    title = series_title(series)
    key = f"outcomes:chart:{_digest(series, title)}"
    cached = cache.get(key)
    if isinstance(cached, str):
        return cached
    svg = _draw(series, title)
    cache.set(key, svg, CACHE_SECONDS)
    return svg


def _draw(series: Series, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    scale = series.scale
    xs = [point.after_sessions for point in series.points]
    ys = [float(point.standard) for point in series.points]
    with matplotlib.rc_context(
        {"svg.hashsalt": "mesoclinic", "svg.fonttype": "none", "font.size": 9, "font.family": "DejaVu Sans"}
    ):
        figure = Figure(figsize=(6.0, 2.6), dpi=100)
        axes = figure.add_subplot(1, 1, 1)
        axes.plot(xs, ys, marker="o", color=_LINE, linewidth=1.8, label=_("Measured"))
        if series.baseline is not None:
            axes.axhline(
                float(series.baseline.standard),
                color=_BASELINE,
                linestyle="--",
                linewidth=1.2,
                label=_("Baseline"),
            )
        axes.set_title(title, color=_INK, fontsize=10, loc="left")
        axes.set_xlabel(_("Sessions done"), color=_INK)
        unit = series.unit or _("score")
        axes.set_ylabel(unit, color=_INK)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if scale.kind != "quantity":
            axes.yaxis.set_major_locator(MaxNLocator(integer=True))
            axes.set_ylim(float(scale.minimum) - 0.3, float(scale.maximum) + 0.3)
        low = min(xs, default=0)
        high = max(xs, default=1)
        axes.set_xlim(low - 0.4, max(high, low + 1) + 0.4)
        axes.grid(True, color="#e5e7eb", linewidth=0.6)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.legend(loc="best", fontsize=8, frameon=False)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _strip_prolog(buffer.getvalue())


def _strip_prolog(svg: str) -> str:
    """The SVG element alone (no XML declaration or DOCTYPE), ready for an image answer or a data URI."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg
