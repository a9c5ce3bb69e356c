"""The generator's consents family (mesoclinic.consent, R-PRE-CONSENT): what the patients signed before their
plans' sessions, and the practitioners' countersignatures with the kept PDF.

Per clinic:

- its **ConsentSettings** (how long a consent lasts: 12 months mostly, 6 or 24 in some clinics,
  :func:`validity_months`) and **SessionPrice** rows (a default price per session in the clinic's currency,
  and one or two indications priced apart);
- per treatment plan (read back from the database, as bench/treatments.py wrote them) the **Consent** the
  patient signed on the clinic's tablet at the consultation (the screening review's day, once the plan is
  made, before the first session), from the template version ``consent_sign`` would pick for the plan's
  indication, the clinic's jurisdiction and the patient's language (``services.template_for_plan``), its
  text rendered by ``consent.rules.consent_text`` from the parts ``services._document`` assembles (the same
  functions: placeholders, the formulas' regulatory status, prices, the template label), ``covers`` and
  ``fingerprint`` from ``services.plan_covers`` and ``rules.fingerprint``, so that ``consent_gate`` finds it
  valid for the plan as generated. A plan whose sessions run past the consent's ``valid_until`` gets a
  second consent (signed at the desk on the day of the first session past it, before check-in:
  :func:`consent_days`, which bench/treatments.py also reads to store the gate's findings of each session).
  The drawn signature is one of a few real PNGs (``signature.sample_signature`` cleaned by
  ``clean_signature``, as the service stores them), with its SHA-256. About a third of the stopped plans'
  last consents are withdrawn (through the clinic, after the last session). Generated patients have no
  portal account, so every consent is signed at the desk (``signed_via`` "desk", recorded by the desk).
- one **Countersignature** per consent, by the practitioner of the first session it covers, 2–12 minutes
  after the patient signed, with its PDF in the default storage (``MEDIA_ROOT``) and the PDF's SHA-256.

The PDF is not WeasyPrint's (``documents.consent_pdf`` takes about a second a page set; 5,000 consents a
clinic would take over an hour): :func:`consent_pdf` writes a small but valid PDF 1.4 by hand — the signed
text in Helvetica (WinAnsi), the drawn signature as an image with its alpha, who signed and countersigned
when — in a few hundred µs, in the worker processes. Its name carries a prefix of its SHA-256 (the same name
is always the same file), so that data sets generated into the same storage never overwrite each other's
files; ``consent_verify``'s file checks pass on it.

No audit rows (the generator never writes any): ``consent_verify`` also looks for the signing events in the
audit trail, which generated consents do not have (see tests/test_bench_consent.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, models
from django.utils import translation
from django.utils.translation import gettext
from PIL import Image

from bench.rows import SECONDS_PER_DAY, RowJob, day_text, local_moment, moment_text
from mesoclinic.accounts.models import Role
from mesoclinic.consent import rules as consent_rules
from mesoclinic.consent import services as consent_services
from mesoclinic.consent.models import Consent, ConsentSettings, Countersignature, SessionPrice
from mesoclinic.consent.signature import clean_signature, sample_signature
from mesoclinic.formulary import services as formulary_services
from mesoclinic.patients.models import Patient
from mesoclinic.screening.models import Review
from mesoclinic.treatments.models import (
    PlanArea,
    PlanFormula,
    PlanProcedure,
    ProtocolVersion,
    TreatmentPlan,
    TreatmentSession,
)

if TYPE_CHECKING:
    from bench.generate import ClinicData, Context, Counts

# The first consent is signed once the plan is made and activated (within 25 minutes of the review).
SIGN_AFTER_REVIEW = 1_800
CONSENTS_PER_JOB = 1_000
WITHDRAWN_SHARE = 0.35  # of the stopped plans: the patient withdraws the last consent
SIGNATURE_VARIANTS = 6
VALIDITY_MONTHS = ((12, 0.7), (6, 0.15), (24, 0.15))
# A session's price by currency (lowest, highest, step): seeds 003–004 say $250–$350.
PRICES: dict[str, tuple[int, int, int]] = {
    "USD": (250, 350, 10),
    "CAD": (250, 400, 10),
    "EUR": (80, 180, 5),
    "GBP": (80, 160, 5),
    "CHF": (150, 280, 10),
}
WITHDRAWAL_REASONS = (
    "The patient stopped the treatment and asked to withdraw the consent.",
    "Pregnancy: the patient withdrew the consent.",
    "The patient moved away.",
    "",
)

FIELDS_CONSENT = (
    "id",
    "clinic",
    "patient",
    "plan",
    "template_version",
    "language",
    "text",
    "text_sha256",
    "covers",
    "fingerprint",
    "signed_at",
    "signed_on",
    "valid_until",
    "typed_name",
    "signature_png",
    "signature_sha256",
    "signed_ip",
    "signed_via",
    "recorded_by",
    "withdrawn_at",
    "withdrawn_by",
    "withdrawal_reason",
    "withdrawn_ip",
)
FIELDS_COUNTERSIGNATURE = ("consent", "practitioner", "signed_at", "ip", "pdf_name", "pdf_sha256")


# --- What bench/treatments.py reads too (the gate's findings of each session) -----------------------------


def validity_months(ctx: Context, data: ClinicData) -> int:
    """How long a consent lasts in the clinic (its ConsentSettings), drawn from the clinic's own stream."""
    rand = ctx.rng("consents", "settings", data.number).random()
    total = 0.0
    for months, share in VALIDITY_MONTHS:
        total += share
        if rand < total:
            return months
    return VALIDITY_MONTHS[0][0]


def _until(day: int, months: int) -> int:
    return consent_rules.valid_until(date.fromordinal(day), months).toordinal()


def consent_days(review_moment: int, days: Sequence[int], months: int) -> list[tuple[int, int, int]]:
    """A plan's consents as (signed on, valid until, index of the first session it covers), days as
    ordinals: the first at the consultation (``review_moment``: clinic-local second of the screening review,
    the plan made just after), another on the day of each session past the last one's ``valid_until``.
    ``days``: the plan's session days, in order. Pure."""
    first = min((review_moment + SIGN_AFTER_REVIEW) // SECONDS_PER_DAY, days[0])
    consents = [(first, _until(first, months), 0)]
    for index, day in enumerate(days):
        if day > consents[-1][1]:
            consents.append((day, _until(day, months), index))
    return consents


# --- The signature and the PDF ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    png: bytes  # as ``clean_signature`` stores it
    sha256: str
    width: int
    height: int
    rgb: bytes  # deflated samples, for the PDF
    alpha: bytes


@cache
def signatures() -> tuple[Signature, ...]:
    """A few drawn signatures, made once (deterministic: the same squiggles and bytes every run)."""
    out: list[Signature] = []
    for variant in range(1, SIGNATURE_VARIANTS + 1):
        png = clean_signature(sample_signature(variant, width=480 + 20 * variant, height=160))
        with Image.open(io.BytesIO(png)) as image:
            rgba = image.convert("RGBA")
        out.append(
            Signature(
                png=png,
                sha256=hashlib.sha256(png).hexdigest(),
                width=rgba.width,
                height=rgba.height,
                rgb=zlib.compress(rgba.convert("RGB").tobytes(), 9),
                alpha=zlib.compress(rgba.getchannel("A").tobytes(), 9),
            )
        )
    return tuple(out)


PAGE_WIDTH, PAGE_HEIGHT, MARGIN = 595, 842, 50
LINE_CHARS = 100  # Helvetica 9 pt on A4 less the margins
LINES_PER_PAGE = 60
LEADING = 12


def _wrapped(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        while len(paragraph) > LINE_CHARS:
            cut = paragraph.rfind(" ", 0, LINE_CHARS)
            if cut <= 0:
                cut = LINE_CHARS
            lines.append(paragraph[:cut])
            paragraph = paragraph[cut:].lstrip()
        lines.append(paragraph)
    return lines


def _escaped(lines: Sequence[str]) -> list[bytes]:
    """The lines as PDF literal strings in WinAnsi (what it cannot show becomes "?"), escaped at once."""
    raw = "\n".join(lines).encode("cp1252", "replace")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return raw.split(b"\n")


def _show(lines: Sequence[str], top: int = 804) -> bytes:
    """Text lines from ``top`` down (Helvetica 9 pt, 12 pt apart; "# " headings in bold)."""
    out = [b"BT /F1 9 Tf 12 TL 50 %d Td" % (top + LEADING)]
    append = out.append
    for line in _escaped(lines):
        if line[:1] == b"#":
            append(b"/F2 10 Tf (" + line.lstrip(b"# ") + b") ' /F1 9 Tf")
        else:
            append(b"(" + line + b") '")
    append(b"ET")
    return b"\n".join(out)


def consent_pdf(
    text: str, signed: Sequence[str], countersigned: Sequence[str], signature: Signature
) -> bytes:
    """A valid PDF 1.4 of the consent as signed: the text (A4, Helvetica), then the patient's lines, the
    drawn signature (an image with its alpha as soft mask) and the practitioner's lines. Written by hand
    (no layout engine): a few hundred µs."""
    lines = _wrapped(text)
    pages = [lines[start : start + LINES_PER_PAGE] for start in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    block = 2 + len(signed) + 6 + len(countersigned)
    if len(pages[-1]) + block > LINES_PER_PAGE:
        pages.append([])
    streams = [_show(page) for page in pages]
    y = 804 - LEADING * (len(pages[-1]) + 1)
    height = 48
    width = round(signature.width * height / signature.height)
    streams[-1] += (
        b"\n"
        + _show(signed, y)
        + b"\nq %d 0 0 %d %d %d cm /Im1 Do Q\n"
        % (width, height, MARGIN, y - LEADING * len(signed) - height - 6)
        + _show(countersigned, y - LEADING * (len(signed) + 5))
    )
    objects: list[bytes] = [
        b"<</Type /Catalog /Pages 2 0 R>>",
        b"",  # the page tree, below
        b"<</Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding>>",
        b"<</Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding>>",
        (
            f"<</Type /XObject /Subtype /Image /Width {signature.width} /Height {signature.height} "
            f"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode /SMask 6 0 R "
            f"/Length {len(signature.rgb)}>>\nstream\n"
        ).encode()
        + signature.rgb
        + b"\nendstream",
        (
            f"<</Type /XObject /Subtype /Image /Width {signature.width} /Height {signature.height} "
            f"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode "
            f"/Length {len(signature.alpha)}>>\nstream\n"
        ).encode()
        + signature.alpha
        + b"\nendstream",
    ]
    resources = b"<</Font <</F1 3 0 R /F2 4 0 R>> /XObject <</Im1 5 0 R>>>>"
    kids: list[str] = []
    for stream in streams:
        # Not deflated: compressing the pages would cost more than writing them.
        objects.append(b"<</Length %d>>\nstream\n" % len(stream) + stream + b"\nendstream")
        objects.append(
            b"<</Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R /Resources "
            % (PAGE_WIDTH, PAGE_HEIGHT, len(objects))
            + resources
            + b">>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<</Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)}>>".encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, start)
    return bytes(out)


def store_pdf(clinic_id: int, consent_id: int, pdf: bytes) -> tuple[str, str]:
    """The PDF in the default storage, named after the consent and a prefix of its SHA-256 (so a name is
    always the same file: kept as it is when there already), and the SHA-256. A file system storage is
    written directly (a third of the time of ``save``'s checks)."""
    digest = hashlib.sha256(pdf).hexdigest()
    name = f"consent/{clinic_id}/consent-{consent_id}-{digest[:16]}.pdf"
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:  # pragma: no cover - a remote storage
        if not default_storage.exists(name) and default_storage.save(name, ContentFile(pdf)) != name:
            raise RuntimeError(f"{name} was stored under another name") from None
        return name, digest
    try:
        with path.open("xb") as handle:
            handle.write(pdf)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return store_pdf(clinic_id, consent_id, pdf)
    except FileExistsError:
        pass
    return name, digest


# --- The rows -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentItem:
    """One consent to write, decided in this process (ids, moments as clinic-local seconds)."""

    consent_id: int
    plan_id: int
    patient_id: int
    base: tuple[Any, ...]  # key into ConsentClinic.bases
    template_version_id: int
    language: str
    patient_name: str
    born: date
    record_number: str
    signed: int
    signed_on: int
    valid_until: int
    areas: tuple[str, ...]
    planned_sessions: int
    covers: str  # JSON text
    fingerprint: str
    variant: int
    signed_ip: str
    recorded_by: int
    practitioner: int
    practitioner_name: str
    countersigned: int
    countersigned_ip: str
    withdrawn: tuple[int, int, str, str] | None  # (moment, by, reason, ip)


@dataclass(frozen=True)
class ConsentClinic:
    clinic_id: int
    utc_offset: int
    bases: Mapping[tuple[Any, ...], consent_rules.ConsentParts]  # everything but the patient's and plan's
    signatures: tuple[Signature, ...]  # made once in this process (:func:`signatures`)


def consent_rows(clinic: ConsentClinic, items: Sequence[ConsentItem]) -> dict[str, list[tuple[Any, ...]]]:
    """The consents and countersignatures of ``items`` (one clinic), their PDFs written to the default
    storage. A pure function of its arguments but for the files it writes."""
    offset = clinic.utc_offset
    variants = clinic.signatures
    consents: list[tuple[Any, ...]] = []
    countersignatures: list[tuple[Any, ...]] = []
    for item in items:
        signed_on, until = date.fromordinal(item.signed_on), date.fromordinal(item.valid_until)
        with translation.override(item.language):
            text = consent_rules.consent_text(
                replace(
                    clinic.bases[item.base],
                    patient_name=item.patient_name,
                    date_of_birth=item.born,
                    record_number=item.record_number,
                    on=signed_on,
                    valid_until=until,
                    areas=item.areas,
                    planned_sessions=item.planned_sessions,
                )
            )
        signature = variants[item.variant]
        signed_text = moment_text(item.signed, offset)
        countersigned_text = moment_text(item.countersigned, offset)
        pdf = consent_pdf(
            text,
            [
                f"Signed by the patient: {item.patient_name}",
                f"on {signed_text} UTC, on the clinic's tablet ({item.signed_ip})",
                f"Signature SHA-256: {signature.sha256}",
            ],
            [
                f"Countersigned by {item.practitioner_name}",
                f"on {countersigned_text} UTC ({item.countersigned_ip})",
                f"Text SHA-256: {consent_rules.sha256_text(text)}",
            ],
            signature,
        )
        name, digest = store_pdf(clinic.clinic_id, item.consent_id, pdf)
        withdrawn = item.withdrawn
        consents.append(
            (
                item.consent_id,
                clinic.clinic_id,
                item.patient_id,
                item.plan_id,
                item.template_version_id,
                item.language,
                text,
                consent_rules.sha256_text(text),
                item.covers,
                item.fingerprint,
                signed_text,
                day_text(item.signed_on),
                day_text(item.valid_until),
                item.patient_name,
                signature.png,
                signature.sha256,
                item.signed_ip,
                Consent.Via.DESK.value,
                item.recorded_by,
                moment_text(withdrawn[0], offset) if withdrawn else None,
                withdrawn[1] if withdrawn else None,
                withdrawn[2] if withdrawn else "",
                withdrawn[3] if withdrawn else None,
            )
        )
        countersignatures.append(
            (item.consent_id, item.practitioner, countersigned_text, item.countersigned_ip, name, digest)
        )
    return {"consent": consents, "countersignature": countersignatures}


# --- Per clinic: what every consent of it shares ------------------------------------------------------------


def _local(moment: datetime, utc_offset: int) -> int:
    utc = moment.astimezone(UTC)
    return utc.toordinal() * SECONDS_PER_DAY + utc.hour * 3600 + utc.minute * 60 + utc.second + utc_offset


def clinic_terms(ctx: Context, data: ClinicData) -> tuple[ConsentSettings, list[SessionPrice]]:
    """The clinic's consent period and prices (a default, and one or two indications priced apart)."""
    clinic = data.clinic
    rng = ctx.rng("consents", "prices", data.number)
    low, high, step = PRICES.get(clinic.currency, (100, 200, 10))
    default = low + step * int(rng.random() * ((high - low) // step + 1))
    prices = [SessionPrice(clinic=clinic, indication="", price_per_session=Decimal(default))]
    for indication in rng.sample(
        ["hair-loss", "rejuvenation", "localized-fat", "cellulite"], 1 + int(rng.random() * 2)
    ):
        prices.append(
            SessionPrice(
                clinic=clinic,
                indication=indication,
                price_per_session=Decimal(max(step, default + step * (int(rng.random() * 7) - 3))),
            )
        )
    settings = ConsentSettings(
        clinic=clinic,
        validity_months=validity_months(ctx, data),
        updated_at=local_moment(ctx.history_start.toordinal(), 9 * 3600, data.utc_offset),
    )
    return settings, sorted(prices, key=lambda price: price.indication)


def _base_parts(
    plan: TreatmentPlan,
    version: ProtocolVersion,
    language: str,
    terms: consent_services.ClinicTerms,
    facts: Sequence[Any],
) -> tuple[int, str, consent_rules.ConsentParts]:
    """``services._document``'s parts of a consent for plans like ``plan`` (its protocol version, indication
    and formulas) in ``language``, without the patient's and the plan's own (name, dates, areas, sessions)."""
    clinic = plan.clinic
    template_version = consent_services.template_for_plan(plan, language)
    language = template_version.template.language
    with translation.override(language):
        refusals = consent_rules.regulatory_blocks(
            facts, jurisdiction=clinic.jurisdiction, indication=plan.indication
        )
        if refusals:  # pragma: no cover - screening never plans a banned formula
            raise RuntimeError(f"plan {plan.pk}: a banned formula cannot be consented to")
        parts = consent_services.consent_parts(plan, version, template_version, terms, facts)
    return template_version.pk, language, parts


def _moment(value: Any, utc_offset: int) -> int:
    """A timestamp read back with the raw cursor (SQLite: UTC text; PostgreSQL: a datetime), clinic-local."""
    if isinstance(value, datetime):
        return _local(value, utc_offset)
    day = date.fromisoformat(value[:10]).toordinal()
    return (
        day * SECONDS_PER_DAY
        + int(value[11:13]) * 3600
        + int(value[14:16]) * 60
        + int(value[17:19])
        + utc_offset
    )


def _sessions(clinic_id: int, utc_offset: int) -> dict[int, list[tuple[int, int, int]]]:
    """Each plan's sessions in order: (day, clinic-local second of the check-in, practitioner). One raw query
    (51,000 rows at clinic scale: the ORM's datetime conversions would cost a second)."""
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        model_field = TreatmentSession._meta.get_field(name)
        if not isinstance(model_field, models.Field) or not model_field.column:
            raise TypeError(name)
        return str(quote(model_field.column))

    columns = [column(name) for name in ("plan", "session_date", "checked_in_at", "practitioner")]
    # Identifiers from the model's metadata, the clinic bound: no user input reaches the SQL.
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(TreatmentSession._meta.db_table)} "  # noqa: S608
        f"WHERE {column('clinic')} = %s ORDER BY {columns[0]}, {column('number')}"
    )
    out: dict[int, list[tuple[int, int, int]]] = {}
    days: dict[Any, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [clinic_id])
        for plan_id, day, checked_in, practitioner in cursor.fetchall():
            ordinal = days.get(day)
            if ordinal is None:
                ordinal = days[day] = (day if isinstance(day, date) else date.fromisoformat(day)).toordinal()
            out.setdefault(plan_id, []).append((ordinal, _moment(checked_in, utc_offset), practitioner))
    return out


def consent_jobs(ctx: Context, data: ClinicData) -> list[RowJob]:
    """The clinic's consents as :func:`consent_rows` jobs, decided here from the plans and sessions read
    back (one query each) and the consent services' own choices (template, covers, formula facts)."""
    clinic = data.clinic
    offset = data.utc_offset
    rng = ctx.rng("consents", data.number)
    rand = rng.random
    months = validity_months(ctx, data)
    terms = consent_services.terms_of(clinic)
    plans = list(
        TreatmentPlan.objects.filter(clinic=clinic)
        .order_by("id")
        .values_list(
            "id",
            "patient_id",
            "indication",
            "planned_sessions",
            "status",
            "screening_review_id",
            "activated_at",
            "ended_at",
            "protocol_version_id",
        )
    )
    if not plans:
        return []
    if PlanProcedure.objects.filter(plan__clinic=clinic).exists():  # pragma: no cover - none generated
        raise RuntimeError("the consents family renders plans without combined procedures")
    reviews = dict(Review.objects.filter(patient__clinic=clinic).values_list("id", "signed_at"))
    sessions = _sessions(clinic.pk, offset)
    patients = {
        row[0]: row[1:]
        for row in Patient.objects.filter(clinic=clinic).values_list(
            "id", "given_name", "family_name", "date_of_birth", "record_number", "preferred_language"
        )
    }
    areas_of: dict[int, list[tuple[str, str]]] = {plan[0]: [] for plan in plans}
    for plan_id, code, area_label in (
        PlanArea.objects.filter(plan__clinic=clinic)
        .order_by("plan", "area__position")
        .values_list("plan_id", "area__code", "area__label")
    ):
        areas_of[plan_id].append((code, area_label))
    formulas_of: dict[int, list[int]] = {plan[0]: [] for plan in plans}
    for plan_id, formula_id in PlanFormula.objects.filter(plan__clinic=clinic).values_list(
        "plan_id", "formula_id"
    ):
        formulas_of[plan_id].append(formula_id)
    # What a consent covers of the plan's formulas: services.plan_covers of one plan per set of formulas (the
    # same for every plan with them); the areas and the indication are each plan's own.
    formula_covers: dict[tuple[int, ...], tuple[consent_rules.FormulaCover, ...]] = {}
    for plan in plans:
        formula_key = tuple(sorted(formulas_of[plan[0]]))
        if formula_key not in formula_covers:
            stub = TreatmentPlan(pk=plan[0], clinic=clinic, indication=plan[2])
            formula_covers[formula_key] = consent_services.plan_covers([stub])[plan[0]].formulas
    versions = {
        version.pk: version
        for version in ProtocolVersion.objects.filter(pk__in={plan[8] for plan in plans}).select_related(
            "protocol"
        )
    }
    names = {
        user.pk: user.get_full_name() or user.username
        for role in (Role.PRACTITIONER.value, Role.MEDICAL_DIRECTOR.value)
        for user in data.staff.get(role, [])
    }
    desk = [user.pk for user in data.staff.get(Role.FRONT_DESK.value, [])] or list(names)
    facts: dict[int, Any] = {}
    bases: dict[tuple[Any, ...], consent_rules.ConsentParts] = {}
    chosen: dict[tuple[Any, ...], tuple[int, str, tuple[Any, ...]]] = {}
    labels: dict[tuple[str, str], str] = {}
    fingerprints: dict[tuple[Any, ...], tuple[str, str]] = {}
    items: list[ConsentItem] = []
    plan_consents: list[tuple[tuple[Any, ...], int, list[tuple[int, int, int]]]] = []
    total = 0
    for plan in plans:
        series = sessions.get(plan[0])
        if not series:
            continue
        days = [day for day, _checked_in, _practitioner in series]
        review = reviews.get(plan[5]) if plan[5] else None
        review_moment = _local(review, offset) if review else days[0] * SECONDS_PER_DAY + 8 * 3600
        schedule = consent_days(review_moment, days, months)
        plan_consents.append((plan, review_moment, schedule))
        total += len(schedule)
    ids = ctx.next_ids(Consent, total)
    position = 0
    for plan, review_moment, schedule in plan_consents:
        plan_id, patient_id, indication, planned, status, _review, activated_at, ended_at, version_id = plan
        series = sessions[plan_id]
        formula_key = tuple(sorted(formulas_of[plan_id]))
        given, family, born, record, preferred = patients[patient_id]
        wanted = preferred if preferred in consent_services.LANGUAGES else consent_services.FALLBACK_LANGUAGE
        key = (version_id, indication, formula_key, wanted)
        if key not in chosen:
            formula_facts = []
            for item in formula_covers[formula_key]:
                if item.formula_id not in facts:
                    facts[item.formula_id] = formulary_services.planned_formula_facts(
                        clinic=clinic, formula_id=item.formula_id
                    )
                formula_facts.append(facts[item.formula_id])
            stub = TreatmentPlan(pk=plan_id, clinic=clinic, indication=indication)
            version_id, language, parts = _base_parts(
                stub, versions[version_id], wanted, terms, formula_facts
            )
            chosen[key] = (version_id, language, key)
            bases[key] = parts
        template_version_id, language, base = chosen[key]
        areas: list[str] = []
        for _code, area_label in areas_of[plan_id]:
            if (area_label, language) not in labels:
                with translation.override(language):
                    labels[(area_label, language)] = gettext(area_label)
            areas.append(labels[(area_label, language)])
        codes = tuple(sorted(code for code, _label in areas_of[plan_id]))
        cover_key = (indication, codes, formula_key)
        if cover_key not in fingerprints:
            cover = consent_rules.Cover(
                indication=indication, areas=codes, formulas=formula_covers[formula_key]
            )
            fingerprints[cover_key] = (json.dumps(cover.as_dict()), consent_rules.fingerprint(cover))
        covers_text, fingerprint = fingerprints[cover_key]
        activated = _local(activated_at, offset) if activated_at else 0
        withdraw = status == TreatmentPlan.Status.STOPPED and rand() < WITHDRAWN_SHARE
        for number, (signed_on, until, first) in enumerate(schedule):
            _day, checked_in, practitioner = series[first]
            latest = min((signed_on + 1) * SECONDS_PER_DAY - 600, checked_in - 900)
            if number == 0:  # at the consultation, once the plan is active
                earliest = max(review_moment + SIGN_AFTER_REVIEW, activated + 60)
                signed = min(earliest + int(rand() * 1_800), latest)
            else:  # at the desk, before the session's check-in
                signed = checked_in - 900 - int(rand() * 1_800)
            countersigned = signed + 120 + int(rand() * 600)
            if countersigned >= checked_in - 60:
                countersigned = signed + max(30, (checked_in - signed) // 2)
            withdrawn = None
            if withdraw and number == len(schedule) - 1 and ended_at is not None:
                moment = max(
                    _local(ended_at, offset) - int(rand() * 3 * SECONDS_PER_DAY),
                    series[-1][1] + SECONDS_PER_DAY,
                )
                withdrawn = (
                    moment,
                    desk[int(rand() * len(desk))],
                    WITHDRAWAL_REASONS[int(rand() * len(WITHDRAWAL_REASONS))],
                    f"10.{data.number % 250}.1.{20 + int(rand() * 4)}",
                )
            items.append(
                ConsentItem(
                    consent_id=ids[position],
                    plan_id=plan_id,
                    patient_id=patient_id,
                    base=base,
                    template_version_id=template_version_id,
                    language=language,
                    patient_name=f"{given} {family}",
                    born=born,
                    record_number=record,
                    signed=signed,
                    signed_on=signed_on,
                    valid_until=until,
                    areas=tuple(areas),
                    planned_sessions=planned,
                    covers=covers_text,
                    fingerprint=fingerprint,
                    variant=int(rand() * SIGNATURE_VARIANTS),
                    signed_ip=f"10.{data.number % 250}.1.{20 + int(rand() * 4)}",
                    recorded_by=desk[int(rand() * len(desk))],
                    practitioner=practitioner,
                    practitioner_name=names.get(practitioner, str(practitioner)),
                    countersigned=countersigned,
                    countersigned_ip=f"10.{data.number % 250}.2.{30 + int(rand() * 8)}",
                    withdrawn=withdrawn,
                )
            )
            position += 1
    shared = ConsentClinic(clinic_id=clinic.pk, utc_offset=offset, bases=bases, signatures=signatures())
    return [
        RowJob(consent_rows, (shared, items[start : start + CONSENTS_PER_JOB]))
        for start in range(0, len(items), CONSENTS_PER_JOB)
    ]


def gen_consents(ctx: Context) -> Counts:
    """Per clinic its consent settings and prices; per plan its consents, countersigned, with their PDFs."""
    terms = [clinic_terms(ctx, data) for data in ctx.clinics]
    ctx.insert([settings for settings, _prices in terms])
    prices = ctx.insert([price for _settings, clinic_prices in terms for price in clinic_prices])
    jobs = [job for data in ctx.clinics for job in consent_jobs(ctx, data)]
    counts = ctx.write_table_jobs(
        {
            "consent": (Consent, FIELDS_CONSENT),
            "countersignature": (Countersignature, FIELDS_COUNTERSIGNATURE),
        },
        jobs,
        plain=True,
    )
    return {
        "consent settings": len(terms),
        "session price": len(prices),
        "consent": counts["consent"],
        "countersignature": counts["countersignature"],
    }
