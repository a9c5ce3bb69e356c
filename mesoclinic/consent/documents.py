"""The signed consent as a PDF (WeasyPrint), drawn from the stored text — not from live data — with both
signatures, so that the kept document says exactly what the patient signed."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone, translation

from mesoclinic.accounts.models import User
from mesoclinic.consent import rules
from mesoclinic.consent.models import Consent

# WeasyPrint reports each layout step at INFO; the server log needs none of it.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


def consent_html(
    consent: Consent,
    *,
    signature_png: bytes,
    practitioner: User,
    countersigned_at: datetime,
    countersigned_ip: str | None,
) -> str:
    with translation.override(consent.language), timezone.override(consent.clinic.zone):
        return render_to_string(
            "consent/consent_pdf.html",
            {
                "consent": consent,
                "blocks": rules.blocks(consent.text),
                "signature": "data:image/png;base64," + base64.b64encode(signature_png).decode("ascii"),
                "signature_sha256": hashlib.sha256(signature_png).hexdigest(),
                "practitioner": practitioner.get_full_name() or practitioner.get_username(),
                "countersigned_at": countersigned_at,
                "countersigned_ip": countersigned_ip,
            },
        )


def consent_pdf(
    consent: Consent,
    *,
    signature_png: bytes,
    practitioner: User,
    countersigned_at: datetime,
    countersigned_ip: str | None,
) -> bytes:
    from weasyprint import HTML  # type: ignore[import-untyped]  # loads pango: only the PDF needs it

    html = consent_html(
        consent,
        signature_png=signature_png,
        practitioner=practitioner,
        countersigned_at=countersigned_at,
        countersigned_ip=countersigned_ip,
    )
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def pdf_response(consent: Consent, pdf: bytes) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="consent-{consent.pk}.pdf"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
