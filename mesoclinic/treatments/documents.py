"""Printable aftercare instructions (R-AE), rendered with WeasyPrint from the text issued at sign-off."""

from __future__ import annotations

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone, translation

from mesoclinic.treatments.models import Aftercare, TreatmentSession


def aftercare_html(session: TreatmentSession, aftercare: Aftercare) -> str:
    with translation.override(aftercare.language), timezone.override(session.clinic.zone):
        return render_to_string(
            "treatments/aftercare_pdf.html",
            {
                "session": session,
                "aftercare": aftercare,
                "clinic": session.clinic,
                "patient": session.patient,
            },
        )


def aftercare_pdf(session: TreatmentSession, aftercare: Aftercare) -> HttpResponse:
    from weasyprint import HTML  # type: ignore[import-untyped]  # loads pango: only the PDF needs it

    pdf: bytes = HTML(string=aftercare_html(session, aftercare)).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="aftercare-session-{session.pk}.pdf"'
    response["Cache-Control"] = "no-store"
    return response
