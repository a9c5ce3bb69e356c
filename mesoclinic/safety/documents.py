"""The safety report as a CSV and a PDF (WeasyPrint). Aggregates only: no patient appears in either."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone

from mesoclinic.safety import rules
from mesoclinic.safety.services import SafetyReport

CSV_HEADER = [
    "section",
    "key",
    "label",
    "sessions",
    "sessions_with_event",
    "per_100_sessions",
    "ci95_low_per_100",
    "ci95_high_per_100",
    "small_sample",
]


def _safe_cell(value: Any) -> str:
    """CSV injection guard: a cell a spreadsheet would run as a formula is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(section: str, row: rules.RateRow) -> list[str]:
    return [
        section,
        _safe_cell(row.key),
        _safe_cell(row.label),
        str(row.sessions),
        str(row.with_event),
        f"{row.per_100:.2f}",
        f"{row.low_per_100:.2f}",
        f"{row.high_per_100:.2f}",
        "yes" if row.small_sample else "no",
    ]


def report_csv(report: SafetyReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "clinic",
            _safe_cell(report.clinic.name),
            "from",
            report.start.isoformat(),
            "to",
            report.end.isoformat(),
            "side_effect",
            report.kind or "any",
            "small_sample_below_sessions",
            str(report.small_below),
        ]
    )
    writer.writerow(CSV_HEADER)
    if report.total is not None:
        writer.writerow(_row("all", report.total))
    for section, _title, rows in report.sections:
        writer.writerows(_row(section, row) for row in rows)
    return buffer.getvalue()


def _filename(report: SafetyReport, extension: str) -> str:
    return f"safety-report-{report.start.isoformat()}-{report.end.isoformat()}.{extension}"


def report_csv_response(report: SafetyReport) -> HttpResponse:
    response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "csv")}"'
    response["Cache-Control"] = "no-store"
    return response


def report_html(report: SafetyReport) -> str:
    with timezone.override(report.clinic.zone):
        return render_to_string(
            "safety/report_pdf.html",
            {
                "report": report,
                "kind_label": rules.kind_label(report.kind) if report.kind else "",
                "printed_at": timezone.now(),
            },
        )


def report_pdf(report: SafetyReport) -> bytes:
    from weasyprint import HTML  # type: ignore[import-untyped]  # loads pango: only the PDF needs it

    pdf: bytes = HTML(string=report_html(report)).write_pdf()
    return pdf


def report_pdf_response(report: SafetyReport) -> HttpResponse:
    response = HttpResponse(report_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, "pdf")}"'
    response["Cache-Control"] = "no-store"
    return response
