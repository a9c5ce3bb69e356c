"""The recall report as a page context, a CSV and a PDF (WeasyPrint), and the message draft to each exposed
patient in their own language. Rendering only: the report's rows come from services.lot_exposure."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from django.template.loader import get_template, render_to_string
from django.utils import timezone, translation

from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary.services import ExposedPatient, ExposureReport
from mesoclinic.patients.models import Patient

MESSAGE_LANGUAGES = ("en", "fr")
CSV_HEADER = [
    "record_number",
    "family_name",
    "given_name",
    "date_of_birth",
    "phone",
    "email",
    "address_line",
    "postal_code",
    "city",
    "preferred_language",
    "preparation_id",
    "prepared_at",
    "volume_ml",
    "formula",
]


def recall_message(*, row: ExposedPatient, report: ExposureReport, clinic: Clinic) -> str:
    """A draft to the patient, in the patient's preferred language (a letter per language, reviewed as a
    whole, like any patient letter; English when the language has none)."""
    return with_messages(report, clinic, rows=[row])[0][1]


def _language(patient: Patient) -> str:
    return patient.preferred_language if patient.preferred_language in MESSAGE_LANGUAGES else "en"


def with_messages(
    report: ExposureReport, clinic: Clinic, rows: Sequence[ExposedPatient] | None = None
) -> list[tuple[ExposedPatient, str]]:
    """Each row with its message draft. Rendered language by language, each template compiled once."""
    rows = report.patients if rows is None else rows
    messages: dict[int, str] = {}
    with timezone.override(clinic.zone):
        for language in MESSAGE_LANGUAGES:
            chosen = [(index, row) for index, row in enumerate(rows) if _language(row.patient) == language]
            if not chosen:
                continue
            template = get_template(f"formulary/recall_message_{language}.txt")
            with translation.override(language):
                for index, row in chosen:
                    context = {"patient": row.patient, "preparations": row.preparations, "lot": report.lot}
                    messages[index] = template.render({**context, "clinic": clinic}).strip()
    return [(row, messages[index]) for index, row in enumerate(rows)]


def _safe_cell(value: Any) -> str:
    """CSV injection guard: a cell a spreadsheet would run as a formula is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def recall_csv(report: ExposureReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["lot", report.lot.number, "product", report.lot.product.name])
    writer.writerow(CSV_HEADER)
    for row in report.patients:
        patient = row.patient
        for preparation in row.preparations:
            writer.writerow(
                [
                    _safe_cell(value)
                    for value in (
                        patient.record_number,
                        patient.family_name,
                        patient.given_name,
                        patient.date_of_birth.isoformat(),
                        patient.phone,
                        patient.email,
                        patient.address_line,
                        patient.postal_code,
                        patient.city,
                        patient.preferred_language,
                        preparation.id,
                        preparation.prepared_at.isoformat(),
                        preparation.volume_ml,
                        f"{preparation.formula} v{preparation.version}",
                    )
                ]
            )
    return buffer.getvalue()


def recall_pdf(report: ExposureReport, clinic: Clinic) -> bytes:
    from weasyprint import HTML  # type: ignore[import-untyped]  # loads pango: only the PDF needs it

    with timezone.override(clinic.zone):
        html = render_to_string("formulary/recall_report_pdf.html", {"report": report, "clinic": clinic})
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
