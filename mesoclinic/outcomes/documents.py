"""The patient's progress report (PDF, WeasyPrint): the numbers, the same charts as the page, and the photos
only when the patient agreed that they appear in it."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone, translation

from mesoclinic.lib.images import CleanImage, thumbnail
from mesoclinic.outcomes import charts, rules
from mesoclinic.outcomes.models import Assessment, Photo
from mesoclinic.outcomes.services import Progress, photo_bytes

REPORT_PHOTO_SIDE_PX = 900


def _data_uri(content_type: str, content: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(content).decode('ascii')}"


def _print_photo(photo: Photo) -> str:
    image = CleanImage(
        content=photo_bytes(photo),
        content_type=photo.content_type,
        extension=".png" if photo.content_type == "image/png" else ".jpg",
        width=photo.width_px,
        height=photo.height_px,
        sha256=photo.sha256,
    )
    small = thumbnail(image, max_px=REPORT_PHOTO_SIDE_PX)
    return _data_uri(small.content_type, small.content)


@dataclass(frozen=True)
class PhotoPair:
    view: str
    label: str
    first: tuple[Assessment, str] | None
    last: tuple[Assessment, str] | None


def _photo_pairs(progress: Progress) -> list[PhotoPair]:
    """Per view: the first and the latest photo of the plan."""
    by_id = {assessment.pk: assessment for assessment in progress.assessments}
    pairs: list[PhotoPair] = []
    for view in progress.views:
        taken = [
            (by_id[assessment_id], views[view])
            for assessment_id, views in progress.photos.items()
            if view in views and assessment_id in by_id
        ]
        if not taken:
            continue
        taken.sort(key=lambda pair: (pair[0].after_sessions, pair[0].taken_on, pair[0].pk))
        first, last = taken[0], taken[-1]
        pairs.append(
            PhotoPair(
                view,
                rules.view_label(view),
                (first[0], _print_photo(first[1])),
                (last[0], _print_photo(last[1])) if last is not first else None,
            )
        )
    return pairs


def progress_report_html(progress: Progress) -> str:
    plan = progress.plan
    language = plan.patient.preferred_language or translation.get_language() or "en"
    with translation.override(language), timezone.override(plan.clinic.zone):
        include_photos = progress.photo_consent
        return render_to_string(
            "outcomes/report_pdf.html",
            {
                "progress": progress,
                "plan": plan,
                "patient": plan.patient,
                "clinic": plan.clinic,
                "charts": [
                    (series, _data_uri("image/svg+xml", charts.series_svg(series).encode()))
                    for series in progress.series
                    if len(series.points) > 0
                ],
                "include_photos": include_photos,
                "photo_pairs": _photo_pairs(progress) if include_photos else [],
                "status_label": rules.status_label(progress.response.status),
                "printed_at": timezone.now(),
                "language": language,
            },
        )


def progress_report_pdf(progress: Progress) -> HttpResponse:
    from weasyprint import HTML  # type: ignore[import-untyped]  # loads pango: only the PDF needs it

    pdf: bytes = HTML(string=progress_report_html(progress)).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="progress-plan-{progress.plan.pk}.pdf"'
    response["Cache-Control"] = "no-store"
    return response
