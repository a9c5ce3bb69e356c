"""Consent and patient education through the services, on the real database (issue 6; R-EDU,
R-PRE-CONSENT, R-REG, R-COST): the library, templates, rendering from live data, signing, countersigning
with a real PDF (text extracted with pypdf), validity, withdrawal, the check-in gate, tamper detection."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils.html import escape
from pypdf import PdfReader

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.consent import rules, services
from mesoclinic.consent.models import (
    Article,
    ArticleVersion,
    Consent,
    ConsentTemplate,
    ConsentTemplateVersion,
    Countersignature,
    ImmutableError,
    SessionPrice,
    Topic,
)
from mesoclinic.consent.signature import sample_signature
from mesoclinic.formulary import services as formulary
from mesoclinic.formulary.models import Ingredient
from mesoclinic.lib.findings import FindingsRefused
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import Protocol, TreatmentPlan, TreatmentSession
from tests.consent_support import (
    countersign,
    ensure_consent_seed,
    ensure_gate_hook,
    give_consent,
    set_price,
    sign_consent,
)
from tests.factories import ClinicFactory, PatientFactory, UserFactory, staff
from tests.test_consent_rules import png
from tests.treatments_support import Treat, treat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hook() -> None:
    ensure_consent_seed()
    ensure_gate_hook()


@pytest.fixture
def t(db: None) -> Treat:
    return treat(consented=False)


def words(text: str) -> str:
    return " ".join(text.split())


def pdf_text(pdf: bytes) -> str:
    return words(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages))


def codes(error: FindingsRefused) -> set[str]:
    return {finding.code for finding in error.findings}


def desk(t: Treat) -> Caller:
    return Caller(user=t.desk, ip="192.0.2.10")


def shown(t: Treat, plan: TreatmentPlan | None = None, **kwargs: object) -> services.ConsentDocument:
    return services.consent_document(caller=desk(t), plan=plan or t.plan, **kwargs)  # type: ignore[arg-type]


def sign_args(t: Treat, document: services.ConsentDocument, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "caller": desk(t),
        "plan": document.plan,
        "patient_id": t.patient.pk,
        "template_version_id": document.template_version.pk,
        "text_sha256": document.text_sha256,
        "typed_name": t.patient.full_name,
        "signature": sample_signature(1),
    }
    values.update(overrides)
    return values


# --- the education library ----------------------------------------------------------------------------------


def test_the_library_is_seeded_for_every_topic_in_english_and_french(db: None) -> None:
    for topic in Topic.values:
        for language in ("en", "fr"):
            article = Article.objects.get(clinic__isnull=True, topic=topic, indication="", language=language)
            assert ArticleVersion.objects.filter(article=article).count() == 1
    specific = set(
        Article.objects.filter(clinic__isnull=True).exclude(indication="").values_list("topic", "indication")
    )
    assert {
        ("evidence", "localized-fat"),
        ("alternatives", "localized-fat"),
        ("evidence", "hair-loss"),
    } <= specific
    assert {
        ("alternatives", "cellulite"),
        ("what-to-expect", "cellulite"),
        ("evidence", "wrinkles"),
    } <= specific
    scopes = set(ConsentTemplate.objects.filter(clinic__isnull=True).values_list("jurisdiction", "language"))
    assert scopes == {(j, lang) for j in ("", "US", "FR") for lang in ("en", "fr")}
    # The facts every seed insists on are in the text patients read.
    text = " ".join(ArticleVersion.objects.filter(article__language="en").values_list("body", flat=True))
    for fact in (
        "7 days",
        "30 minutes",
        "$250 and $600",
        "does not cover",
        "2012 study of 6 people",
        "2008 study of 20 women",
        "American Society of Plastic Surgeons",
        "experimental",
        "12 weeks",
        "Liposuction",
        "Injection lipolysis",
        "only finasteride and minoxidil",
    ):
        assert fact in text, fact


def test_an_article_for_a_message_is_in_the_patients_language_with_the_clinics_price(db: None) -> None:
    clinic = ClinicFactory.create(name="Clinique du Parc", phone="+33 1 40 00 00 00")
    admin = staff(clinic, Role.CLINIC_ADMIN)
    services.terms_update(
        caller=Caller(user=admin),
        clinic=clinic,
        validity_months=12,
        prices={"": Decimal("350"), "localized-fat": Decimal("1450")},
    )
    french = PatientFactory.create(clinic=clinic, preferred_language="fr")
    english = PatientFactory.create(clinic=clinic, preferred_language="en")
    costs = services.article_for_patient(patient=french, topic="costs", indication="localized-fat")
    assert costs is not None and costs.language == "fr" and costs.title == "Coût et remboursement"
    assert "Clinique du Parc" in costs.text and "{price_per_session}" not in costs.text
    assert re.search(r"1\s450,00 EUR", costs.text)
    default = services.article_for_patient(patient=english, topic="costs")
    assert default is not None and "350.00 EUR" in default.text and default.language == "en"
    evidence = services.article_for_patient(patient=english, topic="evidence", indication="localized-fat")
    assert evidence is not None and evidence.indication == "localized-fat" and "thigh size" in evidence.text
    general = services.article_for_patient(patient=english, topic="evidence", indication="acne")
    assert general is not None and general.indication == "" and "2012 study" in general.text
    call = services.article_for_patient(patient=french, topic="side-effects")
    assert call is not None and "+33 1 40 00 00 00" in call.plain_text and "12 semaines" in call.plain_text
    assert "\n• " in call.plain_text and "<" not in call.plain_text

    # Attached to a message: a self-contained HTML file in the patient's language, sent as it is.
    attached = call.attachment()
    assert (attached.name, attached.mimetype) == ("side-effects-fr.html", "text/html")
    html = attached.content.decode("utf-8")
    assert '<html lang="fr">' in html and f"<h1>{escape(call.title)}</h1>" in html
    assert "+33 1 40 00 00 00" in html and "12 semaines" in html and "<li>" in html
    assert "{clinic_phone}" not in html and "<link" not in html and "src=" not in html
    assert costs.attachment().name == "costs-fr.html"
    assert evidence.attachment().name == "evidence-localized-fat-en.html"
    message = EmailMessage("Avant votre séance", call.plain_text, to=["patient@example.org"])
    message.attach(attached.name, attached.content, attached.mimetype)
    message.send()
    (sent,) = mail.outbox
    parts = {part.get_filename(): part for part in sent.message().walk() if part.get_filename()}
    body = parts["side-effects-fr.html"].get_payload(decode=True)
    assert parts["side-effects-fr.html"].get_content_type() == "text/html"
    assert isinstance(body, bytes) and body.decode("utf-8") == html


def test_editing_an_article_makes_the_clinics_own_version(t: Treat) -> None:
    caller = Caller(user=t.practitioner)
    seeded = Article.objects.get(clinic__isnull=True, topic="preparing", indication="", language="en")
    version = services.article_revise(
        caller=caller,
        clinic=t.clinic,
        article=seeded,
        title="Before you come",
        body="- No aspirin for 7 days.\n",
    )
    own = version.article
    assert own.clinic_id == t.clinic.pk and own.copied_from_id == seeded.pk and version.number == 1
    assert ArticleVersion.objects.filter(article=seeded).count() == 1  # the seeded text is never changed
    again = services.article_revise(
        caller=caller, clinic=t.clinic, article=own, title="Before you come", body="x"
    )
    assert (again.article_id, again.number) == (own.pk, 2)
    mine = {a.topic: a for a in services.library(clinic=t.clinic, language="en")}
    assert mine["preparing"].article_id == own.pk and mine["preparing"].text == "x"
    other = ClinicFactory.create()
    theirs = {a.topic: a for a in services.library(clinic=other, language="en")}
    assert theirs["preparing"].article_id == seeded.pk
    assert AuditEvent.objects.filter(action=Action.EDUCATION_WRITE, clinic_id=t.clinic.pk).count() == 2
    with pytest.raises(ValidationError) as refused:
        services.article_revise(caller=caller, clinic=t.clinic, article=own, title=" ", body="")
    assert set(refused.value.message_dict) == {"title", "body"}
    with pytest.raises(PermissionDenied):
        services.article_revise(caller=desk(t), clinic=t.clinic, article=own, title="a", body="b")
    with pytest.raises(ImmutableError):
        version.save()
    assert ArticleVersion.objects.filter(article=own).count() == 2


def test_terms_are_validated_and_audited(t: Treat) -> None:
    admin = Caller(user=staff(t.clinic, Role.CLINIC_ADMIN))
    bad = [
        (0, {}, "validity_months"),
        (61, {}, "validity_months"),
        ("x", {}, "validity_months"),
        (12, {"": "-1"}, "prices.default"),
        (12, {"": "0"}, "prices.default"),
        (12, {"cellulite": "abc"}, "prices.cellulite"),
        (12, {"cellulite": "1.001"}, "prices.cellulite"),
        (12, {"tattoo": "100"}, "prices.tattoo"),
    ]
    for months, prices, field in bad:
        with pytest.raises(ValidationError) as refused:
            services.terms_update(caller=admin, clinic=t.clinic, validity_months=months, prices=prices)
        assert field in refused.value.message_dict, (months, prices)
    assert not SessionPrice.objects.exists()
    assert services.terms_of(t.clinic).validity_months == 12  # the default when never set
    terms = services.terms_update(
        caller=admin,
        clinic=t.clinic,
        validity_months="6",
        prices={"": "300.50", "cellulite": "", "acne": None},
    )
    assert terms.validity_months == 6 and terms.prices == {"": Decimal("300.50")}
    assert AuditEvent.objects.filter(action=Action.CONSENT_SETTINGS_WRITE).count() == 1
    with pytest.raises(PermissionDenied):
        services.terms_update(
            caller=Caller(user=t.practitioner), clinic=t.clinic, validity_months=6, prices={}
        )


# --- the gate, signing, countersigning, the PDF, verification -----------------------------------------------


def test_the_gate_blocks_without_consent_and_passes_with_one_whose_pdf_says_it_all(t: Treat) -> None:
    set_price(t.plan, "350.00", months=6)
    t.prepare()
    # No consent: the check-in is refused and nothing is written (R-PRE-CONSENT).
    with pytest.raises(FindingsRefused) as refused:
        t.check_in()
    assert "no-consent" in codes(refused.value)
    assert next(f for f in refused.value.findings if f.code == "no-consent").severity == "block"
    assert not TreatmentSession.objects.filter(plan=t.plan).exists()

    document = shown(t)
    text = words(document.text)
    for expected in (
        "Hyaluronic acid",
        "Vitamin C",
        "Sodium chloride",
        "not known to be approved",
        "infection",
        "2012 study of 6 people",
        "2008 study of 20 women",
        "American Society of Plastic Surgeons",
        "Chemical peel",
        "4 to 8 sessions",
        "One session costs 350.00 EUR",
        "(6 months)",
    ):
        assert expected in text, expected
    today = t.clinic.today()
    assert (document.signed_on, document.valid_until) == (today, rules.valid_until(today, 6))
    assert AuditEvent.objects.filter(action=Action.CONSENT_RENDER, patient_id=t.patient.pk).exists()

    consent = services.consent_sign(**sign_args(t, document))  # type: ignore[arg-type]
    assert consent.signed_via == "desk" and consent.recorded_by_id == t.desk.pk
    assert consent.signed_ip == "192.0.2.10" and consent.text == document.text
    signed = AuditEvent.objects.get(action=Action.CONSENT_SIGN, object_id=str(consent.pk))
    assert signed.detail["text_sha256"] == consent.text_sha256 and signed.patient_id == t.patient.pk
    # Signed by the patient only: still no session.
    gate = {f.code: f for f in treatments.gate_evaluate(caller=t.caller(), plan=t.plan)}
    assert gate["no-consent"].severity == "block" and "countersignature" in gate["no-consent"].message

    countersignature = countersign(consent, t.practitioner)
    assert default_storage.exists(countersignature.pdf_name)
    pdf = default_storage.open(countersignature.pdf_name, "rb").read()
    assert pdf.startswith(b"%PDF")
    extracted = pdf_text(pdf)
    for expected in (
        "Hyaluronic acid",
        "Vitamin C",
        "Sodium chloride",
        "Risks and side effects",
        "bruising",
        "infection",
        "12 weeks",
        "What the evidence says",
        "2012 study of 6 people",
        "2008 study of 20 women",
        "does not recommend",
        "not known to be approved",
        "Chemical peel",
        "4 to 8 sessions",
        "350.00 EUR",
        t.patient.full_name,
        consent.text_sha256,
    ):
        assert expected in extracted, expected

    # Signed and countersigned: the session goes ahead, and its gate says which consent covered it.
    session = t.check_in()
    assert {f["code"]: f["severity"] for f in session.gate_findings}["consent-valid"] == "info"

    # Validity: the clinic's period (6 months), then expired.
    plan = TreatmentPlan.objects.select_related("clinic").get(pk=t.plan.pk)
    assert consent.valid_until == rules.valid_until(consent.signed_on, 6)
    assert services.consent_gate(plan, consent.valid_until)[0].code == "consent-valid"
    (expired,) = services.consent_gate(plan, consent.valid_until + timedelta(days=1))
    assert (expired.code, expired.severity) == ("no-consent", "block") and "expired" in expired.message

    # Verification: intact, then every kind of tampering is found.
    call_command("consent_verify", stdout=io.StringIO())
    original = consent.text
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consent_consent SET text = %s WHERE id = %s", [original + " (edited)", consent.pk]
        )
    with pytest.raises(CommandError):
        call_command("consent_verify", stdout=io.StringIO(), stderr=(err := io.StringIO()))
    assert f"consent {consent.pk}: the stored text does not match" in err.getvalue()
    forged = original.replace("350.00 EUR", "35.00 EUR")
    with connection.cursor() as cursor:  # the text and its hash, edited together: the audit trail tells
        cursor.execute(
            "UPDATE consent_consent SET text = %s, text_sha256 = %s WHERE id = %s",
            [forged, rules.sha256_text(forged), consent.pk],
        )
    problems = services.consent_problems()
    assert [p.problem for p in problems] == [
        "the text_sha256 differs from the one recorded in the audit trail at signing"
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consent_consent SET text = %s, text_sha256 = %s WHERE id = %s",
            [original, consent.text_sha256, consent.pk],
        )
    assert services.consent_problems() == []
    default_storage.delete(countersignature.pdf_name)
    default_storage.save(countersignature.pdf_name, ContentFile(pdf + b"\n% replaced\n"))
    assert [p.problem for p in services.consent_problems()] == ["the stored PDF does not match its SHA-256"]
    with pytest.raises(ValidationError):  # a replaced PDF is never served
        services.consent_pdf_bytes(
            caller=t.caller(), consent=services.consent_get(caller=t.caller(), consent_id=consent.pk)
        )
    default_storage.delete(countersignature.pdf_name)
    assert [p.problem for p in services.consent_problems()] == ["the PDF is missing from the storage"]
    default_storage.save(countersignature.pdf_name, ContentFile(pdf))
    call_command("consent_verify", stdout=(out := io.StringIO()))
    assert "1 checked" in out.getvalue()

    # Withdrawal: recorded, and no further session.
    withdrawn = services.consent_withdraw(caller=desk(t), consent=consent, reason="Phoned: changed her mind.")
    assert (
        withdrawn.withdrawn_by_id == t.desk.pk and withdrawn.withdrawal_reason == "Phoned: changed her mind."
    )
    assert AuditEvent.objects.filter(action=Action.CONSENT_WITHDRAW, object_id=str(consent.pk)).exists()
    later = treatments.gate_evaluate(caller=t.caller(), plan=t.plan, on=t.clinic.today() + timedelta(days=14))
    assert any(f.code == "no-consent" and f.severity == "block" and "withdrew" in f.message for f in later)
    with pytest.raises(ValidationError):
        services.consent_withdraw(caller=desk(t), consent=withdrawn)
    assert services.consent_problems() == []  # withdrawing changes nothing that was signed


def test_consent_verify_finds_a_replaced_signature_or_a_pdf_replaced_with_its_hash(t: Treat) -> None:
    consent = give_consent(t.plan, t.practitioner)
    countersignature = Countersignature.objects.get(consent=consent)
    call_command("consent_verify", stdout=(out := io.StringIO()))
    assert "Consents intact: 1 checked." in out.getvalue()
    signature = services.consent_signature(consent)
    with connection.cursor() as cursor:  # another drawing put in place of the patient's
        cursor.execute(
            "UPDATE consent_consent SET signature_png = %s WHERE id = %s", [png(ink=True), consent.pk]
        )
    assert [p.problem for p in services.consent_problems()] == [
        "the stored signature does not match its SHA-256"
    ]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE consent_consent SET signature_png = %s WHERE id = %s", [signature, consent.pk])
    assert services.consent_problems() == []
    # Another PDF, with its hash written on the countersignature row: the audit trail still tells.
    forged = default_storage.open(countersignature.pdf_name, "rb").read() + b"\n% forged\n"
    default_storage.delete(countersignature.pdf_name)
    default_storage.save(countersignature.pdf_name, ContentFile(forged))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consent_countersignature SET pdf_sha256 = %s WHERE id = %s",
            [hashlib.sha256(forged).hexdigest(), countersignature.pk],
        )
    assert [p.problem for p in services.consent_problems()] == [
        "the PDF's SHA-256 differs from the one recorded in the audit trail"
    ]
    with pytest.raises(CommandError):
        call_command("consent_verify", stdout=io.StringIO(), stderr=(err := io.StringIO()))
    assert f"consent {consent.pk}: the PDF's SHA-256 differs" in err.getvalue()
    # Every run is itself audited, with what it found.
    runs = list(AuditEvent.objects.filter(action=Action.CONSENT_VERIFY).order_by("pk"))
    assert [(e.detail["checked"], e.detail["problems"]) for e in runs] == [(1, 0), (1, 1)]


def test_a_changed_formula_or_areas_end_the_consent(t: Treat) -> None:
    consent = sign_consent(t.plan)
    view = services.consent_view(services.consent_get(caller=t.caller(), consent_id=consent.pk))
    assert view.state == "awaiting-countersignature"
    ha = Ingredient.objects.get(clinic__isnull=True, code="hyaluronic-acid")
    formulary.formula_revise(
        caller=t.formulary.caller,
        formula=t.formulary.formula,
        content=formulary.FormulaContent(
            components=[formulary.ComponentIn(ha.pk, "5", "mg/mL")],
            total_volume_ml="3",
            indications=["rejuvenation"],
        ),
    )
    view = services.consent_view(services.consent_get(caller=t.caller(), consent_id=consent.pk))
    assert view.state == "plan-changed" and view.changes == ["the formula"]
    (finding,) = services.consent_gate(t.plan, t.clinic.today())
    assert finding.severity == "block" and "changed" in finding.message
    with pytest.raises(ValidationError) as refused:
        countersign(consent, t.practitioner)
    assert "changed" in " ".join(refused.value.messages)
    assert not Countersignature.objects.exists()
    again = sign_consent(t.plan)  # the patient reads the new formula and signs again
    assert again.covers["formulas"][0]["components"] == [["hyaluronic-acid", "5.0000", "mg/mL"]]
    assert "Vitamin C" not in again.text and "Vitamin C" in consent.text

    # A draft plan's areas: the same.
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    draft = treatments.plan_create(
        caller=t.caller(),
        patient=t.patient,
        protocol=protocol,
        data=treatments.PlanIn(planned_sessions=4, areas=["forehead"], formula_ids=[t.formulary.formula.pk]),
    )
    on_draft = sign_consent(draft)
    treatments.plan_update(
        caller=t.caller(),
        plan=draft,
        data=treatments.PlanIn(
            planned_sessions=4, areas=["forehead", "neck"], formula_ids=[t.formulary.formula.pk]
        ),
    )
    view = services.consent_view(services.consent_get(caller=t.caller(), consent_id=on_draft.pk))
    assert view.state == "plan-changed" and view.changes == ["the treated areas"]


def test_the_template_is_chosen_by_the_plans_indication_and_the_clinics_jurisdiction(t: Treat) -> None:
    """The clinic's own template for the plan's indication beats the seeded one for its jurisdiction; one
    for another indication never applies; a clinic elsewhere reads its own jurisdiction's template."""
    seeded_fr = ConsentTemplate.objects.get(
        clinic__isnull=True, indication="", jurisdiction="FR", language="en"
    )
    assert shown(t).template_version.template_id == seeded_fr.pk
    assert "2011-382" in shown(t).text  # the French decree on fat lysis (R-REG)
    current = services.template_current(seeded_fr)

    def content(note: str) -> services.TemplateContent:
        return services.TemplateContent(
            title=current.title,
            procedure=f"{current.procedure}\n\n{note}",
            risks=current.risks,
            evidence=current.evidence,
            declaration=current.declaration,
        )

    director = Caller(user=t.director)
    other = "cellulite" if t.plan.indication != "cellulite" else "acne"
    elsewhere = services.template_revise(
        caller=director,
        clinic=t.clinic,
        template=seeded_fr,
        content=content("For cellulite."),
        indication=other,
    )
    assert shown(t).template_version.template_id == seeded_fr.pk
    own = services.template_revise(
        caller=director,
        clinic=t.clinic,
        template=seeded_fr,
        content=content("For this indication."),
        indication=t.plan.indication,
    )
    document = shown(t)
    assert document.template_version.pk == own.pk and own.template_id != elsewhere.template_id
    assert "For this indication." in document.text and "For cellulite." not in document.text
    assert f"version {own.number}" in document.text
    # Revised again: the newer version speaks, the older stays as it was.
    second = services.template_revise(
        caller=director, clinic=t.clinic, template=own.template, content=content("Second wording.")
    )
    assert (second.template_id, second.number) == (own.template_id, own.number + 1)
    assert shown(t).template_version.pk == second.pk and "Second wording." in shown(t).text
    assert ConsentTemplateVersion.objects.get(pk=own.pk).procedure.endswith("For this indication.")

    # Another clinic, in the United States: the seeded US template, never the first clinic's own.
    us = treat(clinic=ClinicFactory.create(jurisdiction="US", time_zone="America/New_York"), consented=False)
    seeded_us = ConsentTemplate.objects.get(
        clinic__isnull=True, indication="", jurisdiction="US", language="en"
    )
    american = services.consent_document(caller=Caller(user=us.desk), plan=us.plan)
    assert american.template_version.template_id == seeded_us.pk
    assert "Second wording." not in american.text and "2011-382" not in american.text
    assert "not approved by the FDA" in american.text


def test_signing_refuses_bad_input_and_writes_nothing(t: Treat) -> None:
    document = shown(t)
    other = PatientFactory.create(clinic=t.clinic)
    cases = [
        ({"patient_id": other.pk}, "patient_id", "another patient"),
        ({"signature": ""}, "signature", "Draw your signature"),
        ({"signature": png(ink=False)}, "signature", "Draw your signature"),
        ({"signature": b"<svg onload=alert(1)>"}, "signature", "PNG"),
        ({"typed_name": ""}, "typed_name", "Type your full name"),
        ({"typed_name": "Someone Else"}, "typed_name", t.patient.family_name),
        ({"template_version_id": 999999}, "template_version_id", "out of date"),
        ({"text_sha256": "0" * 64}, "text_sha256", "changed"),
    ]
    for overrides, field, words_ in cases:
        with pytest.raises(ValidationError) as refused:
            services.consent_sign(**sign_args(t, document, **overrides))  # type: ignore[arg-type]
        assert field in refused.value.message_dict, overrides
        assert words_ in " ".join(refused.value.message_dict[field]), overrides

    # The clinic revises the template while the patient reads: the old version is out of date.
    seeded = ConsentTemplate.objects.get(clinic__isnull=True, jurisdiction="FR", language="en")
    current = services.template_current(seeded)
    new = services.template_revise(
        caller=Caller(user=t.director),
        clinic=t.clinic,
        template=seeded,
        content=services.TemplateContent(
            title=current.title,
            procedure=current.procedure + "\n\nThe clinic's own note.",
            risks=current.risks,
            evidence=current.evidence,
            declaration=current.declaration,
        ),
    )
    with pytest.raises(ValidationError) as refused:
        services.consent_sign(**sign_args(t, document))  # type: ignore[arg-type]
    assert "out of date" in refused.value.message_dict["template_version_id"][0]
    # A price set meanwhile changes the text: refused too, whatever the template.
    fresh = shown(t)
    assert fresh.template_version.pk == new.pk and "The clinic's own note." in fresh.text
    set_price(t.plan, "410.00")
    with pytest.raises(ValidationError) as refused:
        services.consent_sign(**sign_args(t, fresh))  # type: ignore[arg-type]
    assert "text_sha256" in refused.value.message_dict
    assert not Consent.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.CONSENT_SIGN).exists()

    consent = services.consent_sign(**sign_args(t, shown(t)))  # type: ignore[arg-type]
    assert consent.template_version_id == new.pk and "410.00 EUR" in consent.text
    with pytest.raises(ValidationError) as refused:  # one consent at a time
        services.consent_sign(**sign_args(t, shown(t)))  # type: ignore[arg-type]
    assert "already covers" in refused.value.message_dict["plan"][0]
    treatments.plan_end(caller=t.caller(), plan=t.plan, status="stopped", reason="Moved away.")
    stopped = TreatmentPlan.objects.get(pk=t.plan.pk)
    with pytest.raises(ValidationError) as refused:
        services.consent_sign(**sign_args(t, document, plan=stopped))  # type: ignore[arg-type]
    assert "plan" in refused.value.message_dict
    assert Consent.objects.count() == 1


def test_a_formula_banned_in_the_jurisdiction_cannot_be_consented(t: Treat) -> None:
    pc = Ingredient.objects.get(clinic__isnull=True, code="phosphatidylcholine")
    formula = formulary.formula_create(
        caller=t.formulary.caller,
        clinic=t.clinic,
        name="Lipolysis (PC)",
        content=formulary.FormulaContent(
            components=[formulary.ComponentIn(pc.pk, "50", "mg/mL")],
            total_volume_ml="5",
            indications=["localized-fat"],
        ),
    )
    plan = treatments.plan_create(
        caller=t.caller(),
        patient=t.patient,
        protocol=Protocol.objects.get(clinic__isnull=True, code="localized-fat"),
        data=treatments.PlanIn(
            planned_sessions=5, areas=["flank-left", "flank-right"], formula_ids=[formula.pk]
        ),
    )
    document = shown(t, plan)
    assert {f.code for f in document.refusals} == {"banned-in-jurisdiction"} and len(document.refusals) == 2
    assert "banned in FR" in document.text and "decree 2011-382" in document.text
    with pytest.raises(FindingsRefused) as refused:
        services.consent_sign(**sign_args(t, document))  # type: ignore[arg-type]
    assert codes(refused.value) == {"banned-in-jurisdiction"}
    assert not Consent.objects.exists()


def test_a_consent_is_never_changed_in_place(t: Treat) -> None:
    consent = sign_consent(t.plan)
    consent.text = "Something else."
    with pytest.raises(ImmutableError):
        consent.save()
    with pytest.raises(ImmutableError):
        Consent.objects.filter(pk=consent.pk).update(text="Something else.")
    with pytest.raises(ImmutableError):
        Consent.objects.filter(pk=consent.pk).delete()
    with pytest.raises(ImmutableError):
        consent.delete()
    fresh = Consent.objects.get(pk=consent.pk)
    fresh.typed_name = "X"
    with pytest.raises(ImmutableError):
        fresh.save(update_fields=["typed_name", "withdrawn_at"])
    assert Consent.objects.get(pk=consent.pk).text != "Something else."
    countersigned = Countersignature.objects.create(
        consent=consent,
        practitioner=t.practitioner,
        signed_at=consent.signed_at,
        pdf_name="x.pdf",
        pdf_sha256="0" * 64,
    )
    with pytest.raises(ImmutableError):
        countersigned.save()
    version = ConsentTemplateVersion.objects.first()
    assert version is not None
    with pytest.raises(ImmutableError):
        version.save()


def test_the_consent_is_in_the_patients_language_and_the_portal_signature_is_the_patients(db: None) -> None:
    t = treat(consented=False)
    portal_user = UserFactory.create()
    t.patient.user = portal_user
    t.patient.preferred_language = "fr"
    t.patient.save()
    set_price(t.plan, "350.00")
    plan = TreatmentPlan.objects.select_related(
        "clinic", "patient__clinic", "protocol_version__protocol"
    ).get(pk=t.plan.pk)
    french = services.consent_document(caller=Caller(user=portal_user), plan=plan)
    assert french.language == "fr" and french.text.startswith(
        "# Consentement à un traitement par mésothérapie"
    )
    assert "Hyaluronic acid" in french.text and re.search(r"350,00\sEUR", french.text)
    assert "décret n° 2011-382" in french.text
    english = services.consent_document(caller=Caller(user=portal_user), plan=plan, language="en")
    assert english.language == "en" and english.text_sha256 != french.text_sha256
    with pytest.raises(ValidationError):
        services.consent_document(caller=Caller(user=portal_user), plan=plan, language="de")
    consent = sign_consent(plan, user=portal_user, ip="198.51.100.77")
    assert (consent.signed_via, consent.recorded_by_id, consent.language) == ("portal", portal_user.pk, "fr")
    assert consent.signed_ip == "198.51.100.77"
    # The patient withdraws it themselves.
    mine = services.consent_get(caller=Caller(user=portal_user), consent_id=consent.pk)
    services.consent_withdraw(caller=Caller(user=portal_user), consent=mine)
    event = AuditEvent.objects.get(action=Action.CONSENT_WITHDRAW)
    assert event.detail == {"by_patient": True} and event.patient_id == t.patient.pk
