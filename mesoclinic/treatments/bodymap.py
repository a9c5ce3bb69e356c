"""The body map as templates draw it: each view's silhouette, its areas as SVG polygons, and charted points.

The same drawing serves the charting page (tappable, with ``static/treatments/bodymap.js``), the plan page's
compact record of each session and the PDF documents: no script is needed to show it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from mesoclinic.treatments.bodymap_data import VIEWS
from mesoclinic.treatments.models import BodyArea, ChartedArea

VIEW_ORDER = ("front", "back", "face", "scalp")


@dataclass(frozen=True)
class MapArea:
    code: str
    label: str
    points: str  # the polygon's "points" attribute
    planned: bool
    charted: bool


@dataclass(frozen=True)
class MapMark:
    x: float
    y: float
    area: str


@dataclass
class MapView:
    code: str
    label: str
    width: int
    height: int
    silhouette: str
    areas: list[MapArea] = field(default_factory=list)
    marks: list[MapMark] = field(default_factory=list)

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height}"

    @property
    def charted(self) -> bool:
        return any(area.charted for area in self.areas)


def _points_attr(outline: Sequence[Sequence[float]]) -> str:
    return " ".join(f"{x:g},{y:g}" for x, y in outline)


def map_views(
    areas: Iterable[BodyArea],
    *,
    planned: Iterable[str] = (),
    charted: Iterable[ChartedArea] = (),
    only_charted: bool = False,
) -> list[MapView]:
    """The views in their usual order, with every active area. ``only_charted`` keeps the views where
    something was charted (the compact record of a session)."""
    planned_codes = set(planned)
    charted_rows = list(charted)
    charted_ids = {row.area_id for row in charted_rows}
    by_view = {
        code: MapView(code, _(spec["label"]), spec["width"], spec["height"], spec["silhouette"])
        for code, spec in VIEWS.items()
    }
    area_views: dict[int, str] = {}
    for area in areas:
        view = by_view.get(area.view)
        if view is None:
            continue
        area_views[area.pk] = area.view
        view.areas.append(
            MapArea(
                code=area.code,
                label=_(area.label),
                points=_points_attr(area.outline),
                planned=area.code in planned_codes,
                charted=area.pk in charted_ids,
            )
        )
    for row in charted_rows:
        view_code = area_views.get(row.area_id)
        if view_code is None:
            continue
        for x, y in row.points:
            by_view[view_code].marks.append(MapMark(float(x), float(y), row.area.code))
    ordered = [by_view[code] for code in VIEW_ORDER if code in by_view]
    if only_charted:
        ordered = [view for view in ordered if view.charted]
    return ordered
