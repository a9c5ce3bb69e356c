"""The generator's consents family (bench/consent.py): every plan is consented to before its first session, as
the consent services would have rendered and stored it, countersigned, with a valid PDF; the check-in gate
finds the consents valid and the sessions' stored gate findings say so. Nothing here measures time."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import date
from pathlib import Path

import pypdf
import pytest
from django.utils import translation
from pytest_django.fixtures import Settings

from bench.consent import consent_days, consent_jobs
from bench.generate import generate
from mesoclinic.accounts.models import Role, User
from mesoclinic.audit.models import AuditEvent
from mesoclinic.consent import services as consent_services
from mesoclinic.consent.models import Consent, ConsentSettings, Countersignature, SessionPrice
from mesoclinic.consent.signature import clean_signature
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession
from tests.test_bench import TINY, _context

# What consent_verify reports of a generated consent: the generator writes no audit rows, so the signing and
# countersigning events it compares the hashes with are not there. Everything else must pass.
AUDIT_ONLY = {
    "no signature is recorded in the audit trail",
    "the PDF's SHA-256 differs from the one recorded in the audit trail",
}


@pytest.fixture
def media(settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


def test_a_second_consent_when_the_series_outlasts_the_first() -> None:
    review = date(2025, 1, 10).toordinal() * 86_400 + 10 * 3600
    days = [date(2025, 1, 14).toordinal(), date(2025, 6, 1).toordinal(), date(2026, 1, 20).toordinal()]
    assert consent_days(review, days, 12) == [
        (date(2025, 1, 10).toordinal(), date(2026, 1, 9).toordinal(), 0),
        (date(2026, 1, 20).toordinal(), date(2027, 1, 19).toordinal(), 2),
    ]
    assert consent_days(review, days, 24) == [
        (date(2025, 1, 10).toordinal(), date(2027, 1, 9).toordinal(), 0)
    ]


@pytest.mark.django_db
def test_consent_rows_are_a_function_of_the_seed(media: Path) -> None:
    ctx = _context(4, "sessions")
    data = ctx.clinics[0]
    jobs = consent_jobs(ctx, data)
    assert jobs
    first = [job.build(*job.args) for job in jobs]
    assert first == [job.build(*job.args) for job in jobs]
    ctx.seed = 5  # another seed for the consents alone: other times, signatures, withdrawals
    other = [job.build(*job.args) for job in consent_jobs(ctx, data)]
    signed = [row[10] for result in first for row in result["consent"]]
    assert signed != [row[10] for result in other for row in result["consent"]]
    assert [row[6] for result in first for row in result["consent"]] != [], "texts"


@pytest.mark.django_db
def test_generated_consents_are_what_the_consent_services_would_have_stored(media: Path) -> None:
    generate(TINY, seed=2, workers=1)
    assert not AuditEvent.objects.exists(), "no audit rows"
    assert ConsentSettings.objects.count() == 2
    assert SessionPrice.objects.filter(indication="").count() == 2

    sessions: dict[int, list[TreatmentSession]] = defaultdict(list)
    for session in TreatmentSession.objects.order_by("plan_id", "number"):
        sessions[session.plan_id].append(session)
    consents: dict[int, list[Consent]] = defaultdict(list)
    for consent in Consent.objects.select_related("countersignature", "clinic").order_by(
        "plan_id", "signed_at"
    ):
        consents[consent.plan_id].append(consent)
    plans = {plan.pk: plan for plan in TreatmentPlan.objects.all()}
    assert set(consents) == set(sessions) == set(plans), "every plan with a session has its consent"
    assert Countersignature.objects.count() == Consent.objects.count()

    for plan_id, series in sessions.items():
        own = consents[plan_id]
        first = own[0]
        assert first.signed_on <= series[0].session_date
        assert first.signed_at < first.countersignature.signed_at < series[0].checked_in_at
        assert first.signed_at > plans[plan_id].created_at
        for session in series:  # each session under a consent signed and countersigned before its check-in
            covering = [c for c in own if c.signed_on <= session.session_date <= c.valid_until]
            assert len(covering) == 1, (plan_id, session.number)
            assert covering[0].countersignature.signed_at < session.checked_in_at
        for consent in own:
            assert (
                consent.signed_via == Consent.Via.DESK
                and consent.typed_name == plans[plan_id].patient.full_name
            )
            assert consent.countersignature.practitioner_id in {s.practitioner_id for s in series}
        withdrawn = [c for c in own if c.withdrawn_at is not None]
        if withdrawn:
            assert plans[plan_id].status == TreatmentPlan.Status.STOPPED and withdrawn == own[-1:]
            withdrawn_at, last_check_in = withdrawn[0].withdrawn_at, series[-1].checked_in_at
            assert withdrawn_at is not None and last_check_in is not None and withdrawn_at > last_check_in
    assert any(len(own) > 1 for own in consents.values()) or all(
        (series[-1].session_date - consents[plan_id][0].signed_on).days < 365
        for plan_id, series in sessions.items()
    ), "a second consent when a series outlasts the first"

    # The check-in gate on each sampled session's date: no block (a withdrawn consent blocks since), and
    # the stored findings say what it says, in the staff's language.
    sample = [series[len(series) // 2] for series in list(sessions.values())[::7]]
    assert len(sample) > 10
    for session in sample:
        plan = plans[session.plan_id]
        language = User.objects.filter(
            memberships__clinic_id=plan.clinic_id, memberships__role=Role.FRONT_DESK
        )[0].preferred_language
        with translation.override(language):
            found = consent_services.consent_gate(plan, session.session_date)
        if any(c.withdrawn_at is not None for c in consents[plan.pk]):
            assert [f.code for f in found] == ["no-consent"]
            continue
        assert [(f.code, f.severity) for f in found] == [("consent-valid", "info")]
        stored = [f for f in session.gate_findings if f["rule"] == "R-PRE-CONSENT"]
        assert stored == [found[0].as_dict()]
        assert [f["code"] for f in session.gate_findings][-1] == "bruising-unresolved"

    # The text, covers and fingerprint as consent_sign would have stored them on that day; the PDF and the
    # signature as the application keeps them.
    problems = consent_services.consent_problems()
    assert {problem.problem for problem in problems} <= AUDIT_ONLY
    for own in list(consents.values())[::11]:
        consent = own[-1]
        plan = TreatmentPlan.objects.select_related(
            "clinic", "patient__clinic", "protocol_version__protocol"
        ).get(pk=consent.plan_id)
        document = consent_services._document(plan, consent.language, consent.signed_at)
        assert consent.text == document.text
        assert consent.text_sha256 == document.text_sha256
        assert consent.template_version_id == document.template_version.pk
        assert consent.fingerprint == document.fingerprint and consent.covers == document.cover.as_dict()
        assert (consent.signed_on, consent.valid_until) == (document.signed_on, document.valid_until)
        png = bytes(consent.signature_png)
        assert clean_signature(png)
        name = consent.countersignature.pdf_name
        assert (media / name).is_file()
        reader = pypdf.PdfReader(io.BytesIO((media / name).read_bytes()), strict=True)
        words = "".join(page.extract_text() for page in reader.pages)
        assert plan.patient.family_name.split("-")[0] in words or "?" in words
