"""The recall report as a page context, a CSV and a PDF (WeasyPrint), and the message draft to each exposed
patient in their own language. Rendering only: the report's rows come from services.lot_exposure.

The PDF is the contact list of a recall, and its cost is bounded: WeasyPrint's time grows with the text it
lays out (about 20 µs a character on the development machine; a table or styled paragraphs cost several times
a preformatted block), so each patient is one short block — contact details, then when they received the lot,
at most ``PDF_DATES_PER_PATIENT`` dates (the page and the CSV have every exposure with its formula and
volume) — and a request prints at most ``PDF_PART_PATIENTS`` patients. A bigger recall is printed in parts
(``?part=2``…), or whole with ``manage.py recall_report LOT_ID --pdf FILE`` (docs/performance.md)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.template.loader import get_template, render_to_string
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary.services import ExposedPatient, ExposureReport
from mesoclinic.patients.models import Patient

MESSAGE_LANGUAGES = ("en", "fr")
# Patients per PDF printed in a request, and dates shown per patient: together they bound a request's PDF
# to about 100,000 characters, a few seconds at worst on the development machine (docs/performance.md).
PDF_PART_PATIENTS = 250
PDF_DATES_PER_PATIENT = 20
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
    "exposure",  # "preparation" or "administration"
    "exposure_id",  # the preparation's id, or the administration's stock movement id
    "exposed_at",
    "volume_ml",
    "formula_or_product",
]


def pdf_parts(patient_count: int) -> int:
    """How many PDF parts a recall of this many patients prints in (at least one, even when empty)."""
    return max(1, math.ceil(patient_count / PDF_PART_PATIENTS))


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
                    days = sorted({timezone.localtime(moment).date() for moment in row.exposure_dates})
                    context = {"patient": row.patient, "dates": days, "lot": report.lot}
                    messages[index] = template.render({**context, "clinic": clinic}).strip()
    return [(row, messages[index]) for index, row in enumerate(rows)]


def _safe_cell(value: Any) -> str:
    """CSV injection guard: a cell a spreadsheet would run as a formula is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _exposures(row: ExposedPatient) -> list[tuple[str, int, datetime, Any, str]]:
    """A patient's exposures to the lot, in time order: kind, id, when, mL, formula or product."""
    found = [
        ("preparation", p.id, p.prepared_at, p.volume_ml, f"{p.formula} v{p.version}")
        for p in row.preparations
    ] + [("administration", a.id, a.administered_at, a.volume_ml, a.product) for a in row.administrations]
    return sorted(found, key=lambda item: (item[2], item[1]))


def recall_csv(report: ExposureReport) -> str:
    """One row per exposure (preparation or direct administration), patients in the report's order. The
    patient's cells and each formula or product name are guarded once, not once per row: 100,000 rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [_safe_cell(value) for value in ("lot", report.lot.number, "product", report.lot.product.name)]
    )
    writer.writerow(CSV_HEADER)
    names: dict[str, str] = {}
    for row in report.patients:
        patient = row.patient
        contact = [
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
            )
        ]
        writer.writerows(
            [
                *contact,
                kind,
                exposure_id,
                at.isoformat(),
                volume,
                names.get(what) or names.setdefault(what, _safe_cell(what)),
            ]
            for kind, exposure_id, at, volume, what in _exposures(row)
        )
    return buffer.getvalue()


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return (text[: width - 1] + "…" if len(text) > width else text).ljust(width)


def _pdf_blocks(report: ExposureReport) -> list[str]:
    """One short preformatted block per patient: the contact line, then the dates of exposure."""
    blocks = []
    for row in report.patients:
        patient = row.patient
        name = f"{patient.family_name.upper()} {patient.given_name}"
        address = f"{patient.address_line} {patient.postal_code} {patient.city}".strip()
        head = (
            _cut(name, 32)
            + _cut(patient.record_number, 11)
            + _cut(formats.date_format(patient.date_of_birth, "SHORT_DATE_FORMAT"), 11)
            + _cut(patient.phone or "—", 19)
            + _cut(patient.email or "—", 34)
            + _cut(address, 48).rstrip()
        )
        exposures = _exposures(row)
        shown = [
            formats.date_format(timezone.localtime(at), "SHORT_DATE_FORMAT")
            + (" " + _("(adm.)") if kind == "administration" else "")
            for kind, _exposure_id, at, _volume, _what in exposures[:PDF_DATES_PER_PATIENT]
        ]
        more = len(exposures) - len(shown)
        dates = ", ".join(shown) + (
            " " + _("and %(count)d more (see the CSV)") % {"count": more} if more > 0 else ""
        )
        blocks.append(f"{head}\n    {len(exposures)} × {dates}")
    return blocks


def recall_pdf(report: ExposureReport, clinic: Clinic, *, part: int = 1) -> bytes:
    """The report's patients as a PDF (those of one part when the report was read by parts)."""
    from weasyprint import HTML  # type: ignore[import-untyped]  # loads pango: only the PDF needs it

    with timezone.override(clinic.zone):
        html = render_to_string(
            "formulary/recall_report_pdf.html",
            {
                "report": report,
                "clinic": clinic,
                "blocks": _pdf_blocks(report),
                "part": part,
                # The whole report (the command) is one document; a request prints one part of it.
                "parts": 1
                if len(report.patients) >= report.patient_count
                else pdf_parts(report.patient_count),
                "first": report.offset + 1,
                "last": report.offset + len(report.patients),
            },
        )
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
