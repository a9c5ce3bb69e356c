"""Every read and write of consents, consent templates, the education library and the clinic's consent
settings: authorised by the policy, audited, atomic. Views and the API both call these; the rules live in
``consent.rules``.

Signing: the patient reads the consent rendered from live data (``consent_document``) and signs that exact
text — the request names the template version and the SHA-256 of what was shown, and the server renders again
and compares, so that a template, price or plan that changed in between refuses the signature instead of
binding the patient to text they never saw. The consent row is then never updated except to record a
withdrawal; the practitioner's countersignature is a row of its own, with the PDF of the complete document in
the default storage and its SHA-256. The hashes are also written into the (HMAC-chained) audit trail, so that
``consent_verify`` detects a stored text edited together with its hash."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm, authorize, can, may_see_clinic
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.audit.services import Actor, audit_record
from mesoclinic.clinics.models import Clinic
from mesoclinic.consent import rules
from mesoclinic.consent.models import (
    DEFAULT_VALIDITY_MONTHS,
    MAX_VALIDITY_MONTHS,
    Article,
    ArticleVersion,
    Consent,
    ConsentSettings,
    ConsentTemplate,
    ConsentTemplateVersion,
    Countersignature,
    SessionPrice,
    Topic,
)
from mesoclinic.consent.signature import SignatureProblem, clean_signature
from mesoclinic.formulary import rules as formulary_rules
from mesoclinic.formulary import services as formulary
from mesoclinic.formulary.models import FormulaComponent, FormulaVersion, Indication
from mesoclinic.lib.findings import Finding, FindingsRefused
from mesoclinic.lib.ids import id_or_404
from mesoclinic.patients.models import Patient
from mesoclinic.treatments import rules as treatment_rules
from mesoclinic.treatments.models import PlanArea, PlanFormula, PlanProcedure, ProtocolVersion, TreatmentPlan
from mesoclinic.treatments.services import area_label, plan_get

LANGUAGES = tuple(code for code, _name in settings.LANGUAGES)
FALLBACK_LANGUAGE = "en"
OPEN_PLAN_STATUSES = (TreatmentPlan.Status.DRAFT, TreatmentPlan.Status.ACTIVE)


def valid_indication(value: str) -> str:
    return _indication(value)


def _user(caller: Caller) -> User:
    return cast(User, caller.user)


def _refuse(field_name: str, message: str) -> ValidationError:
    return ValidationError({field_name: [message]})


def _indication(value: str, field_name: str = "indication") -> str:
    if value and value not in Indication.values:
        raise _refuse(field_name, _("Unknown indication."))
    return value


def indication_label(code: str) -> str:
    return str(Indication(code).label) if code in Indication.values else code


def _language(value: str | None, field_name: str = "language") -> str:
    if value is None or value == "":
        return FALLBACK_LANGUAGE
    if value not in LANGUAGES:
        raise _refuse(field_name, _("Choose one of: %(codes)s.") % {"codes": ", ".join(LANGUAGES)})
    return value


# --- per-clinic settings (R-COST: prices are clinic data) ---------------------------------------------------


@dataclass(frozen=True)
class ClinicTerms:
    clinic: Clinic
    validity_months: int
    prices: dict[str, Decimal]  # indication ("" = default) → price per session, in the clinic's currency

    @property
    def currency(self) -> str:
        return self.clinic.currency

    def price_for(self, indication: str) -> Decimal | None:
        return rules.price_for(self.prices, indication)


def terms_of(clinic: Clinic) -> ClinicTerms:
    """The clinic's consent period and prices (the defaults when it never set them). Two queries."""
    row = ConsentSettings.objects.filter(clinic=clinic).first()
    prices = dict(SessionPrice.objects.filter(clinic=clinic).values_list("indication", "price_per_session"))
    return ClinicTerms(
        clinic=clinic, validity_months=row.validity_months if row else DEFAULT_VALIDITY_MONTHS, prices=prices
    )


def terms_get(*, caller: Caller, clinic: Clinic) -> ClinicTerms:
    authorize(caller.user, Perm.CONSENT_SETTINGS_MANAGE, clinic_id=clinic.pk)
    return terms_of(clinic)


def terms_update(
    *, caller: Caller, clinic: Clinic, validity_months: Any, prices: Mapping[str, Any]
) -> ClinicTerms:
    """Set how long a consent lasts (1–60 months) and the price per session by indication ("" = default);
    a blank price removes it. Consents already signed keep the period and costs they state."""
    authorize(caller.user, Perm.CONSENT_SETTINGS_MANAGE, clinic_id=clinic.pk)
    errors: dict[str, list[str]] = {}
    try:
        months = int(validity_months)
    except (TypeError, ValueError):
        months = 0
    if isinstance(validity_months, bool) or not 1 <= months <= MAX_VALIDITY_MONTHS:
        errors["validity_months"] = [_("Between 1 and %(max)d months.") % {"max": MAX_VALIDITY_MONTHS}]
    cleaned: dict[str, Decimal] = {}
    for indication, value in prices.items():
        name = f"prices.{indication or 'default'}"
        if indication and indication not in Indication.values:
            errors[name] = [_("Unknown indication.")]
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        problem = rules.price_problem(value)
        if problem:
            errors[name] = [problem]
        else:
            cleaned[indication] = Decimal(str(value))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        ConsentSettings.objects.update_or_create(clinic=clinic, defaults={"validity_months": months})
        SessionPrice.objects.filter(clinic=clinic).delete()
        SessionPrice.objects.bulk_create(
            SessionPrice(clinic=clinic, indication=indication, price_per_session=price)
            for indication, price in sorted(cleaned.items())
        )
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.CONSENT_SETTINGS_WRITE,
            clinic_id=clinic.pk,
            detail={
                "validity_months": months,
                "prices": {key or "default": str(value) for key, value in cleaned.items()},
                "currency": clinic.currency,
            },
        )
    return terms_of(clinic)


def _money_or(terms: ClinicTerms, indication: str, fallback: str) -> str:
    price = terms.price_for(indication)
    return rules.format_money(price, terms.currency) if price is not None else fallback


def placeholder_values(clinic: Clinic, terms: ClinicTerms, indication: str) -> dict[str, str]:
    """What {clinic_name}, {clinic_phone} and {price_per_session} say (in the active language)."""
    return {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone or _("the clinic's usual number"),
        "price_per_session": _money_or(terms, indication, _("the price on your written quote")),
    }


# --- versioned content: the education library and consent templates -----------------------------------------


def _latest_versions(model: Any, parent_field: str, parent_ids: Sequence[int]) -> dict[int, Any]:
    """The newest version of each parent, in one query."""
    newest = (
        model.objects.filter(**{parent_field: OuterRef(parent_field)}).order_by("-number").values("pk")[:1]
    )
    rows = model.objects.filter(**{f"{parent_field}__in": parent_ids}).filter(pk=Subquery(newest))
    return {getattr(row, f"{parent_field}_id"): row for row in rows}


def articles_for(clinic: Clinic) -> models.QuerySet[Article]:
    """The seeded articles and this clinic's own (never another clinic's)."""
    return Article.objects.filter(Q(clinic__isnull=True) | Q(clinic=clinic))


def templates_for(clinic: Clinic) -> models.QuerySet[ConsentTemplate]:
    return ConsentTemplate.objects.filter(Q(clinic__isnull=True) | Q(clinic=clinic))


@dataclass(frozen=True)
class RenderedArticle:
    """An article filled with the clinic's data, in one language: blocks for a page or a message's HTML,
    plain text for a message body."""

    article_id: int
    version_id: int
    version: int
    topic: str
    indication: str
    language: str
    title: str
    blocks: list[rules.Block]
    text: str  # canonical text, placeholders filled
    source: str

    @property
    def plain_text(self) -> str:
        return f"{self.title}\n\n{rules.plain_text(self.text)}"

    def attachment(self) -> ArticleAttachment:
        """The article as a file to attach to a message (e-mail): a small, self-contained HTML page in the
        article's language (no external style sheet or image), named after the topic and the language."""
        from django.template.loader import render_to_string

        html = render_to_string("consent/article_attachment.html", {"article": self})
        return ArticleAttachment(
            name=f"{self.topic}{'-' + self.indication if self.indication else ''}-{self.language}.html",
            content=html.encode("utf-8"),
            mimetype="text/html",
        )


@dataclass(frozen=True)
class ArticleAttachment:
    """Same fields as ``scheduling.transports.Attachment``: ``Attachment(**dataclasses.asdict(a))``."""

    name: str
    content: bytes
    mimetype: str


def _render_article(
    article: Article, version: ArticleVersion, clinic: Clinic, terms: ClinicTerms, indication: str
) -> RenderedArticle:
    with translation.override(article.language):
        values = placeholder_values(clinic, terms, indication or article.indication)
        text = rules.normalise(rules.fill(version.body, values))
        title = rules.fill(version.title, values)
    return RenderedArticle(
        article_id=article.pk,
        version_id=version.pk,
        version=version.number,
        topic=article.topic,
        indication=article.indication,
        language=article.language,
        title=title,
        blocks=rules.blocks(text),
        text=text,
        source=version.source,
    )


def library(*, clinic: Clinic, language: str, indication: str = "") -> list[RenderedArticle]:
    """The article on each topic that speaks for this indication, in ``language`` (English where the clinic
    has none in that language), in reading order. Four queries whatever the library's size."""
    language = language if language in LANGUAGES else FALLBACK_LANGUAGE
    articles = list(articles_for(clinic).filter(language__in={language, FALLBACK_LANGUAGE}))
    versions = _latest_versions(ArticleVersion, "article", [a.pk for a in articles])
    by_id = {article.pk: article for article in articles if article.pk in versions}
    terms = terms_of(clinic)
    chosen: list[RenderedArticle] = []
    for topic in Topic.values:
        for wanted in dict.fromkeys([language, FALLBACK_LANGUAGE]):
            key = rules.choose(
                (
                    rules.Candidate(a.pk, a.clinic_id is not None, a.indication)
                    for a in by_id.values()
                    if a.topic == topic and a.language == wanted
                ),
                indication=indication,
            )
            if key is not None:
                chosen.append(_render_article(by_id[key], versions[key], clinic, terms, indication))
                break
    return chosen


def article_for_patient(
    *, patient: Patient, topic: str, indication: str = "", language: str | None = None
) -> RenderedArticle | None:
    """The article to attach to a message for this patient: the clinic's text on ``topic`` for the
    indication, in the patient's language (or ``language``). Reads no patient data but the clinic and the
    language, and is not audited: the caller authorises and audits the message it sends."""
    wanted = language or patient.preferred_language
    for item in library(clinic=patient.clinic, language=wanted, indication=indication):
        if item.topic == topic:
            return item
    return None


def article_get(
    *, caller: Caller, clinic: Clinic, article_id: int, perm: Perm = Perm.EDUCATION_VIEW
) -> Article:
    authorize(caller.user, perm, clinic_id=clinic.pk)
    article = articles_for(clinic).filter(pk=id_or_404(article_id)).first()
    if article is None:
        raise Http404(_("Not found."))
    return article


def article_render(*, clinic: Clinic, article: Article) -> RenderedArticle:
    version = _latest_versions(ArticleVersion, "article", [article.pk])[article.pk]
    return _render_article(article, version, clinic, terms_of(clinic), article.indication)


def article_versions(article: Article) -> list[ArticleVersion]:
    return list(article.versions.select_related("created_by").order_by("-number"))


def _clinic_copy(model: type[Any], clinic: Clinic, base: Any, keys: Mapping[str, str]) -> Any:
    """The clinic's own row for these keys: found, or copied from ``base`` (a seeded or own row)."""
    own = model.objects.select_for_update().filter(clinic=clinic, **keys).first()
    if own is None:
        own = model.objects.create(clinic=clinic, copied_from=base, **keys)
    return own


def _next_number(versions: models.QuerySet[Any]) -> int:
    latest = versions.order_by("-number").values_list("number", flat=True).first()
    return int(latest or 0) + 1


def article_revise(
    *,
    caller: Caller,
    clinic: Clinic,
    article: Article,
    title: str,
    body: str,
    source: str = "",
    indication: str | None = None,
) -> ArticleVersion:
    """A new version of the clinic's article on this topic and language (copied from the seeded one on the
    first edit); ``indication`` makes or revises the clinic's article for one indication instead."""
    authorize(caller.user, Perm.EDUCATION_MANAGE, clinic_id=clinic.pk)
    if article.clinic_id not in (None, clinic.pk):
        raise Http404(_("Not found."))
    target_indication = _indication(article.indication if indication is None else indication)
    errors: dict[str, list[str]] = {}
    for name, value, limit, required in (
        ("title", title, 200, True),
        ("body", body, rules.MAX_TEXT, True),
        ("source", source, 500, False),
    ):
        problem = rules.text_problem(value, required=required, limit=limit)
        if problem:
            errors[name] = [problem]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        own = _clinic_copy(
            Article,
            clinic,
            article,
            {"topic": article.topic, "indication": target_indication, "language": article.language},
        )
        version = ArticleVersion.objects.create(
            article=own,
            number=_next_number(own.versions.all()),
            title=" ".join(title.split()),
            body=rules.normalise(body),
            source=source.strip(),
            created_by=_user(caller),
        )
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.EDUCATION_WRITE,
            clinic_id=clinic.pk,
            obj=version,
            detail={"article": own.pk, "version": version.number, "from": article.pk},
        )
    return version


def template_get(
    *, caller: Caller, clinic: Clinic, template_id: int, perm: Perm = Perm.CONSENT_TEMPLATE_VIEW
) -> ConsentTemplate:
    authorize(caller.user, perm, clinic_id=clinic.pk)
    template = templates_for(clinic).filter(pk=id_or_404(template_id)).first()
    if template is None:
        raise Http404(_("Not found."))
    return template


def template_current(template: ConsentTemplate) -> ConsentTemplateVersion:
    version = template.versions.order_by("-number").first()
    if version is None:
        raise Http404(_("This template has no version."))
    return version


def template_versions(template: ConsentTemplate) -> list[ConsentTemplateVersion]:
    return list(template.versions.select_related("created_by").order_by("-number"))


TEMPLATE_SECTIONS = ("title", "procedure", "risks", "evidence", "declaration")


@dataclass(frozen=True)
class TemplateContent:
    title: str
    procedure: str
    risks: str
    evidence: str
    declaration: str
    source: str = ""


def _jurisdiction(value: str) -> str:
    text = value.strip().upper()
    if text and not rules.JURISDICTION.match(text):
        raise _refuse("jurisdiction", _("A country code (FR) or a subdivision (US-NY), or blank for any."))
    return text


def template_revise(
    *,
    caller: Caller,
    clinic: Clinic,
    template: ConsentTemplate,
    content: TemplateContent,
    indication: str | None = None,
    jurisdiction: str | None = None,
) -> ConsentTemplateVersion:
    """A new version of the clinic's template for this indication, jurisdiction and language (copied from
    the seeded one on the first edit). Patients who read the previous version and sign afterwards are
    refused (out of date) and read the new one."""
    authorize(caller.user, Perm.CONSENT_TEMPLATE_MANAGE, clinic_id=clinic.pk)
    if template.clinic_id not in (None, clinic.pk):
        raise Http404(_("Not found."))
    keys = {
        "indication": _indication(template.indication if indication is None else indication),
        "jurisdiction": _jurisdiction(template.jurisdiction if jurisdiction is None else jurisdiction),
        "language": template.language,
    }
    errors: dict[str, list[str]] = {}
    for name in TEMPLATE_SECTIONS:
        problem = rules.text_problem(getattr(content, name), limit=200 if name == "title" else rules.MAX_TEXT)
        if problem:
            errors[name] = [problem]
    if problem := rules.text_problem(content.source, required=False, limit=500):
        errors["source"] = [problem]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        own = _clinic_copy(ConsentTemplate, clinic, template, keys)
        version = ConsentTemplateVersion.objects.create(
            template=own,
            number=_next_number(own.versions.all()),
            title=" ".join(content.title.split()),
            procedure=rules.normalise(content.procedure),
            risks=rules.normalise(content.risks),
            evidence=rules.normalise(content.evidence),
            declaration=rules.normalise(content.declaration),
            source=content.source.strip(),
            created_by=_user(caller),
        )
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.CONSENT_TEMPLATE_WRITE,
            clinic_id=clinic.pk,
            obj=version,
            detail={"template": own.pk, "version": version.number, "from": template.pk, **keys},
        )
    return version


def template_for_plan(plan: TreatmentPlan, language: str) -> ConsentTemplateVersion:
    """The current version of the template that speaks for the plan (its indication, the clinic's
    jurisdiction) in ``language``, else in English."""
    clinic = plan.clinic
    candidates = list(
        templates_for(clinic).filter(
            language__in={language, FALLBACK_LANGUAGE}, indication__in=("", plan.indication)
        )
    )
    for wanted in dict.fromkeys([language, FALLBACK_LANGUAGE]):
        key = rules.choose(
            (
                rules.Candidate(t.pk, t.clinic_id is not None, t.indication, t.jurisdiction)
                for t in candidates
                if t.language == wanted
            ),
            indication=plan.indication,
            jurisdiction=clinic.jurisdiction,
        )
        if key is not None:
            template = next(t for t in candidates if t.pk == key)
            version = template_current(template)
            version.template = template
            return version
    raise _refuse("plan", _("There is no consent template for this plan: ask the clinic to write one."))


# --- what a consent covers ----------------------------------------------------------------------------------


def plan_covers(plans: Sequence[TreatmentPlan]) -> dict[int, rules.Cover]:
    """Each plan as a consent sees it: indication, areas, and each formula's current content (ingredients,
    strengths, diluent). Four queries whatever the number of plans."""
    plan_ids = [plan.pk for plan in plans]
    areas: dict[int, list[str]] = {pk: [] for pk in plan_ids}
    for plan_id, code in PlanArea.objects.filter(plan_id__in=plan_ids).values_list("plan_id", "area__code"):
        areas[plan_id].append(code)
    newest = (
        FormulaVersion.objects.filter(formula_id=OuterRef("formula_id")).order_by("-number").values("pk")[:1]
    )
    uses = list(
        PlanFormula.objects.filter(plan_id__in=plan_ids)
        .annotate(version_id=Subquery(newest))
        .values_list("plan_id", "version_id")
    )
    versions = {
        version.pk: version
        for version in FormulaVersion.objects.filter(pk__in={pk for _plan, pk in uses if pk is not None})
        .select_related("formula", "diluent")
        .prefetch_related(
            Prefetch("components", queryset=FormulaComponent.objects.select_related("ingredient"))
        )
    }
    formulas: dict[int, list[rules.FormulaCover]] = {pk: [] for pk in plan_ids}
    for plan_id, version_id in uses:
        version = versions.get(version_id) if version_id is not None else None
        if version is None:
            continue
        formulas[plan_id].append(
            rules.FormulaCover(
                formula_id=version.formula_id,
                name=version.formula.name,
                version=version.number,
                components=tuple(
                    (row.ingredient.code, str(row.concentration.quantize(Decimal("0.0001"))), row.unit)
                    for row in version.components.all()
                ),
                diluent=version.diluent.code if version.diluent else "",
            )
        )
    return {
        plan.pk: rules.Cover(
            indication=plan.indication,
            areas=tuple(areas[plan.pk]),
            formulas=tuple(sorted(formulas[plan.pk], key=lambda item: item.formula_id)),
        )
        for plan in plans
    }


def plan_cover(plan: TreatmentPlan) -> rules.Cover:
    return plan_covers([plan])[plan.pk]


# --- the consent document -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentDocument:
    plan: TreatmentPlan
    language: str
    template_version: ConsentTemplateVersion
    text: str
    text_sha256: str
    cover: rules.Cover
    fingerprint: str
    signed_on: date
    valid_until: date
    refusals: list[Finding] = field(default_factory=list)  # R-REG blocks: a banned ingredient or mixture

    @property
    def blocks(self) -> list[rules.Block]:
        return rules.blocks(self.text)


def consent_parts(
    plan: TreatmentPlan,
    version: ProtocolVersion,
    template_version: ConsentTemplateVersion,
    terms: ClinicTerms,
    facts: Sequence[formulary_rules.PlannedFormulaFacts],
    *,
    patient: Patient | None = None,
    on: date = date.min,
    valid_until: date = date.min,
    areas: tuple[str, ...] = (),
    combined: tuple[str, ...] = (),
) -> rules.ConsentParts:
    """Everything a consent for ``plan`` (of protocol ``version``) says, in the active language. Without a
    ``patient``, the patient's and the plan's own parts (name, dates, areas, combined procedures) are left
    empty, for a caller that fills them in per patient (the benchmark's generator, bench/consent.py)."""
    clinic = plan.clinic
    values = placeholder_values(clinic, terms, plan.indication)
    template = template_version.template
    return rules.ConsentParts(
        title=rules.fill(template_version.title, values),
        clinic_name=clinic.name,
        clinic_phone=values["clinic_phone"],
        patient_name=patient.full_name if patient else "",
        date_of_birth=patient.date_of_birth if patient else date.min,
        record_number=patient.record_number if patient else "",
        on=on,
        valid_until=valid_until,
        validity_months=terms.validity_months,
        protocol_name=version.protocol.name,
        indication_label=indication_label(plan.indication),
        areas=areas,
        combined=combined,
        procedure=rules.fill(template_version.procedure, values),
        risks=rules.fill(template_version.risks, values),
        evidence=rules.fill(template_version.evidence, values),
        declaration=rules.fill(template_version.declaration, values),
        formulas=rules.formula_texts(facts, jurisdiction=clinic.jurisdiction, indication=plan.indication),
        alternatives=tuple(treatment_rules.procedure_label(code) for code in version.alternatives),
        sessions_min=version.sessions_min,
        sessions_max=version.sessions_max,
        planned_sessions=plan.planned_sessions if patient else 0,
        interval_min_days=version.interval_min_days,
        interval_max_days=version.interval_max_days,
        currency=clinic.currency,
        price_per_session=terms.price_for(plan.indication),
        template_label=_("Consent template %(id)d, version %(number)d (%(scope)s).")
        % {
            "id": template.pk,
            "number": template_version.number,
            "scope": " · ".join(
                part
                for part in (
                    indication_label(template.indication) if template.indication else _("every indication"),
                    template.jurisdiction or _("any jurisdiction"),
                    template.language,
                )
            ),
        },
    )


def _document(plan: TreatmentPlan, language: str, now: datetime) -> ConsentDocument:
    clinic, patient, version = plan.clinic, plan.patient, plan.protocol_version
    on = timezone.localdate(now, timezone=clinic.zone)
    template_version = template_for_plan(plan, language)
    language = template_version.template.language
    terms = terms_of(clinic)
    cover = plan_cover(plan)
    facts = [
        formulary.planned_formula_facts(clinic=clinic, formula_id=item.formula_id) for item in cover.formulas
    ]
    until = rules.valid_until(on, terms.validity_months)
    areas = list(PlanArea.objects.filter(plan=plan).select_related("area"))
    procedures = list(PlanProcedure.objects.filter(plan=plan))
    with translation.override(language):
        parts = consent_parts(
            plan,
            version,
            template_version,
            terms,
            facts,
            patient=patient,
            on=on,
            valid_until=until,
            areas=tuple(area_label(row.area) for row in areas),
            combined=tuple(treatment_rules.procedure_label(row.procedure) for row in procedures),
        )
        text = rules.consent_text(parts)
        refusals = rules.regulatory_blocks(
            facts, jurisdiction=clinic.jurisdiction, indication=plan.indication
        )
    return ConsentDocument(
        plan=plan,
        language=language,
        template_version=template_version,
        text=text,
        text_sha256=rules.sha256_text(text),
        cover=cover,
        fingerprint=rules.fingerprint(cover),
        signed_on=on,
        valid_until=until,
        refusals=refusals,
    )


def consent_document(
    *, caller: Caller, plan: TreatmentPlan, language: str | None = None, now: datetime | None = None
) -> ConsentDocument:
    """The consent for this plan as the patient is to read it now, in their language (or ``language``).
    Audited as a read of the patient's record."""
    authorize(caller.user, Perm.CONSENT_VIEW, clinic_id=plan.clinic_id, patient=plan.patient)
    wanted = _language(language or plan.patient.preferred_language)
    document = _document(plan, wanted, now or timezone.now())
    audit_record(
        actor=caller.actor(plan.clinic_id),
        action=Action.CONSENT_RENDER,
        clinic_id=plan.clinic_id,
        patient_id=plan.patient_id,
        obj=plan,
        detail={
            "template_version": document.template_version.pk,
            "language": document.language,
            "text_sha256": document.text_sha256,
        },
    )
    return document


# --- consent states -----------------------------------------------------------------------------------------


def _facts(consent: Consent) -> rules.ConsentFacts:
    """The rules' view of a consent (loaded with its clinic and countersignature)."""
    withdrawn_on = (
        timezone.localdate(consent.withdrawn_at, timezone=consent.clinic.zone)
        if consent.withdrawn_at
        else None
    )
    return rules.ConsentFacts(
        consent_id=consent.pk,
        signed_on=consent.signed_on,
        valid_until=consent.valid_until,
        countersigned=_countersignature(consent) is not None,
        withdrawn_on=withdrawn_on,
        fingerprint=consent.fingerprint,
    )


def _countersignature(consent: Consent) -> Countersignature | None:
    try:
        return consent.countersignature
    except Countersignature.DoesNotExist:
        return None


@dataclass(frozen=True)
class ConsentView:
    consent: Consent
    state: rules.State
    countersignature: Countersignature | None
    changes: list[str]


def _views(consents: Sequence[Consent], covers: Mapping[int, rules.Cover], on: date) -> list[ConsentView]:
    views: list[ConsentView] = []
    for consent in consents:
        cover = covers[consent.plan_id]
        views.append(
            ConsentView(
                consent=consent,
                state=rules.consent_state(
                    _facts(consent), on=on, current_fingerprint=rules.fingerprint(cover)
                ),
                countersignature=_countersignature(consent),
                changes=rules.cover_changes(consent.covers, cover),
            )
        )
    return views


def _consent_queryset() -> models.QuerySet[Consent]:
    return Consent.objects.select_related(
        "clinic",
        "patient__clinic",
        "plan__clinic",
        "plan__patient__clinic",
        "plan__protocol_version__protocol",
        "template_version__template",
        "recorded_by",
        "withdrawn_by",
        "countersignature__practitioner",
    ).defer("signature_png")


def consent_gate(plan: TreatmentPlan, on: date) -> list[Finding]:
    """The check-in gate's ``no-consent`` hook (R-PRE-CONSENT): a block unless a signed, countersigned,
    current consent covers the plan as it is now on the session date (registered in ConsentConfig.ready)."""
    consents = list(
        Consent.objects.filter(plan_id=plan.pk)
        .select_related("clinic", "countersignature")
        .only(
            "id",
            "plan_id",
            "clinic__time_zone",
            "signed_on",
            "valid_until",
            "withdrawn_at",
            "fingerprint",
            "countersignature__id",
        )
    )
    current = rules.fingerprint(plan_cover(plan)) if consents else ""
    return rules.gate_findings([_facts(c) for c in consents], on=on, current_fingerprint=current)


@dataclass(frozen=True)
class PlanConsents:
    plan: TreatmentPlan
    consents: list[ConsentView]
    gate: list[Finding]  # what the check-in gate says about consent today

    @property
    def valid(self) -> bool:
        return any(view.state == "valid" for view in self.consents)

    @property
    def can_sign(self) -> bool:
        """No consent waits or covers the plan, and the plan is still open."""
        return self.plan.status in OPEN_PLAN_STATUSES and not any(
            view.state in ("valid", "awaiting-countersignature") for view in self.consents
        )


def plan_consents(*, caller: Caller, plan: TreatmentPlan, audit: bool = True) -> PlanConsents:
    authorize(caller.user, Perm.CONSENT_VIEW, clinic_id=plan.clinic_id, patient=plan.patient)
    consents = list(_consent_queryset().filter(plan=plan))
    cover = plan_cover(plan)
    today = plan.clinic.today()
    views = _views(consents, {plan.pk: cover}, today)
    gate = rules.gate_findings(
        [_facts(view.consent) for view in views], on=today, current_fingerprint=rules.fingerprint(cover)
    )
    if audit:
        audit_record(
            actor=caller.actor(plan.clinic_id),
            action=Action.CONSENT_READ,
            clinic_id=plan.clinic_id,
            patient_id=plan.patient_id,
            obj=plan,
            detail={"consents": [view.consent.pk for view in views]},
        )
    return PlanConsents(plan=plan, consents=views, gate=gate)


@dataclass(frozen=True)
class PatientConsents:
    patient: Patient
    plans: list[PlanConsents]


def patient_consents(*, caller: Caller, patient: Patient, audit: bool = True) -> PatientConsents:
    """Every plan of the patient with its consents and what the gate says today: the patient page's panel
    and the portal. A fixed number of queries per plan."""
    authorize(caller.user, Perm.CONSENT_VIEW, clinic_id=patient.clinic_id, patient=patient)
    plans = list(
        TreatmentPlan.objects.filter(patient=patient)
        .select_related("clinic", "patient__clinic", "protocol_version__protocol")
        .order_by("-created_at", "-id")
    )
    consents = list(_consent_queryset().filter(patient=patient))
    today = patient.clinic.today()
    covers = plan_covers(plans)
    views = _views(consents, covers, today)
    rows: list[PlanConsents] = []
    for plan in plans:
        own = [view for view in views if view.consent.plan_id == plan.pk]
        gate = rules.gate_findings(
            [_facts(view.consent) for view in own],
            on=today,
            current_fingerprint=rules.fingerprint(covers[plan.pk]),
        )
        rows.append(PlanConsents(plan=plan, consents=own, gate=gate))
    if audit:
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.CONSENT_READ,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=patient,
            detail={"consents": [consent.pk for consent in consents]},
        )
    return PatientConsents(patient=patient, plans=rows)


def consent_get(
    *, caller: Caller, consent_id: int, perm: Perm = Perm.CONSENT_VIEW, audit: bool = True
) -> Consent:
    """The consent, if the caller may act on it: another clinic's or a missing id is a 404 that says
    nothing; a visible consent without the right a 403."""
    consent = _consent_queryset().filter(pk=id_or_404(consent_id)).first()
    if consent is None or not may_see_clinic(caller.user, consent.clinic_id, consent.patient):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=consent.clinic_id, patient=consent.patient)
    if audit:
        audit_record(
            actor=caller.actor(consent.clinic_id),
            action=Action.CONSENT_READ,
            clinic_id=consent.clinic_id,
            patient_id=consent.patient_id,
            obj=consent,
        )
    return consent


def consent_view(consent: Consent) -> ConsentView:
    return _views([consent], {consent.plan_id: plan_cover(consent.plan)}, consent.clinic.today())[0]


def consent_signature(consent: Consent) -> bytes:
    return bytes(Consent.objects.filter(pk=consent.pk).values_list("signature_png", flat=True).get())


# --- signing, countersigning, withdrawing -------------------------------------------------------------------


def _plan_for_signature(plan_id: int) -> TreatmentPlan:
    return (
        TreatmentPlan.objects.select_for_update(of=("self",))
        .select_related("clinic", "patient__clinic", "protocol_version__protocol")
        .get(pk=plan_id)
    )


def consent_sign(
    *,
    caller: Caller,
    plan: TreatmentPlan,
    patient_id: Any,
    template_version_id: Any,
    text_sha256: Any,
    typed_name: str,
    signature: str | bytes,
    language: str | None = None,
    now: datetime | None = None,
) -> Consent:
    """The patient signs the consent they read (in the portal, or on the clinic's tablet). Refused, with
    nothing written, for: another patient's plan, an out-of-date template version, a text that changed since
    it was shown, an empty or invalid signature, a typed name that is not the patient's, a closed plan, a
    plan a consent already covers, or a formula banned in the clinic's jurisdiction (R-REG)."""
    authorize(caller.user, Perm.CONSENT_SIGN, clinic_id=plan.clinic_id, patient=plan.patient)
    now = now or timezone.now()
    patient = plan.patient
    errors: dict[str, list[str]] = {}
    if str(patient_id) != str(patient.pk):
        errors["patient_id"] = [
            _("This consent is for %(name)s's plan, not for another patient: open the right patient's plan.")
            % {"name": patient.full_name}
        ]
    if problem := rules.typed_name_problem(
        str(typed_name), given_name=patient.given_name, family_name=patient.family_name
    ):
        errors["typed_name"] = [problem]
    try:
        png = clean_signature(signature)
    except SignatureProblem as refused:
        errors["signature"] = [refused.message]
        png = b""
    if errors.keys() & {"patient_id"}:
        raise ValidationError(errors)
    wanted = _language(language or patient.preferred_language)
    with transaction.atomic():
        locked = _plan_for_signature(plan.pk)
        if locked.status not in OPEN_PLAN_STATUSES:
            raise _refuse("plan", _("This plan is completed or stopped: it needs no consent."))
        document = _document(locked, wanted, now)
        if str(template_version_id) != str(document.template_version.pk):
            errors["template_version_id"] = [
                _(
                    "This consent is out of date: version %(number)d of the template is now current. Read "
                    "the "
                    "new text and sign it."
                )
                % {"number": document.template_version.number}
            ]
        elif str(text_sha256) != document.text_sha256:
            errors["text_sha256"] = [
                _(
                    "The consent changed after it was shown (the plan, a price or the date): read it again "
                    "and sign."
                )
            ]
        existing = list(_consent_queryset().filter(plan=locked))
        states = {
            rules.consent_state(_facts(c), on=document.signed_on, current_fingerprint=document.fingerprint)
            for c in existing
        }
        if states & {"valid", "awaiting-countersignature"}:
            errors["plan"] = [_("A signed consent already covers this plan.")]
        if errors:
            raise ValidationError(errors)
        if document.refusals:
            raise FindingsRefused(
                document.refusals,
                _("This plan's formula is banned in the clinic's jurisdiction: it cannot be consented to."),
            )
        consent = Consent.objects.create(
            clinic=locked.clinic,
            patient=locked.patient,
            plan=locked,
            template_version=document.template_version,
            language=document.language,
            text=document.text,
            text_sha256=document.text_sha256,
            covers=document.cover.as_dict(),
            fingerprint=document.fingerprint,
            signed_at=now,
            signed_on=document.signed_on,
            valid_until=document.valid_until,
            typed_name=" ".join(str(typed_name).split()),
            signature_png=png,
            signature_sha256=hashlib.sha256(png).hexdigest(),
            signed_ip=caller.ip,
            signed_via=Consent.Via.PORTAL if _user(caller).pk == locked.patient.user_id else Consent.Via.DESK,
            recorded_by=_user(caller),
        )
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.CONSENT_SIGN,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=consent,
            detail={
                "plan": locked.pk,
                "template_version": document.template_version.pk,
                "text_sha256": consent.text_sha256,
                "signature_sha256": consent.signature_sha256,
                "fingerprint": consent.fingerprint,
                "via": consent.signed_via,
            },
        )
    return consent


def _usable_for_countersignature(consent: Consent, on: date) -> None:
    if consent.withdrawn_at is not None:
        raise _refuse("consent", _("The patient withdrew this consent."))
    if Countersignature.objects.filter(consent_id=consent.pk).exists():
        raise _refuse("consent", _("This consent is countersigned already."))
    state = rules.consent_state(
        _facts(consent), on=on, current_fingerprint=rules.fingerprint(plan_cover(consent.plan))
    )
    if state == "plan-changed":
        raise _refuse(
            "consent", _("The plan changed after the patient signed: the patient signs a new consent.")
        )
    if state == "expired":
        raise _refuse("consent", _("This consent has expired: the patient signs a new one."))


def consent_countersign(*, caller: Caller, consent: Consent, now: datetime | None = None) -> Countersignature:
    """The practitioner countersigns; the complete document (text, both signatures) is printed to PDF,
    kept in the default storage with its SHA-256, and the consent then covers the plan."""
    from mesoclinic.consent.documents import consent_pdf

    authorize(caller.user, Perm.CONSENT_COUNTERSIGN, clinic_id=consent.clinic_id, patient=consent.patient)
    now = now or timezone.now()
    on = timezone.localdate(now, timezone=consent.clinic.zone)
    _usable_for_countersignature(consent, on)
    practitioner = _user(caller)
    # Printed before the transaction: a PDF takes long, and SQLite holds its write lock for the transaction.
    pdf = consent_pdf(
        consent,
        signature_png=consent_signature(consent),
        practitioner=practitioner,
        countersigned_at=now,
        countersigned_ip=caller.ip,
    )
    name = default_storage.save(
        f"consent/{consent.clinic_id}/consent-{consent.pk}-{secrets.token_hex(8)}.pdf", ContentFile(pdf)
    )
    try:
        with transaction.atomic():
            locked = _consent_queryset().select_for_update(of=("self",)).get(pk=consent.pk)
            _usable_for_countersignature(locked, on)
            countersignature = Countersignature.objects.create(
                consent=locked,
                practitioner=practitioner,
                signed_at=now,
                ip=caller.ip,
                pdf_name=name,
                pdf_sha256=hashlib.sha256(pdf).hexdigest(),
            )
            audit_record(
                actor=caller.actor(locked.clinic_id),
                action=Action.CONSENT_COUNTERSIGN,
                clinic_id=locked.clinic_id,
                patient_id=locked.patient_id,
                obj=locked,
                detail={"pdf_sha256": countersignature.pdf_sha256, "pdf": name},
            )
    except BaseException:
        default_storage.delete(name)
        raise
    return countersignature


def consent_withdraw(
    *, caller: Caller, consent: Consent, reason: str = "", now: datetime | None = None
) -> Consent:
    """The patient withdraws the consent (themselves in the portal, or through the clinic): recorded on the
    consent — the only change a consent ever takes — and audited. Sessions then stop at the gate."""
    authorize(caller.user, Perm.CONSENT_WITHDRAW, clinic_id=consent.clinic_id, patient=consent.patient)
    text = str(reason).strip()
    if problem := rules.text_problem(text, required=False, limit=1000):
        raise _refuse("reason", problem)
    with transaction.atomic():
        locked = Consent.objects.select_for_update(of=("self",)).select_related("clinic").get(pk=consent.pk)
        if locked.withdrawn_at is not None:
            raise _refuse("consent", _("This consent was withdrawn already."))
        locked.withdrawn_at = now or timezone.now()
        locked.withdrawn_by = _user(caller)
        locked.withdrawal_reason = text
        locked.withdrawn_ip = caller.ip
        locked.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawal_reason", "withdrawn_ip"])
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.CONSENT_WITHDRAW,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"by_patient": _user(caller).pk == consent.patient.user_id},
        )
    return _consent_queryset().get(pk=consent.pk)


def consent_pdf_bytes(*, caller: Caller, consent: Consent) -> bytes:
    """The kept PDF of a countersigned consent, checked against its SHA-256 before it is served. Audited as a
    print of patient data."""
    authorize(caller.user, Perm.CONSENT_VIEW, clinic_id=consent.clinic_id, patient=consent.patient)
    countersignature = _countersignature(consent)
    if countersignature is None:
        raise _refuse(
            "consent", _("The PDF is made when the practitioner countersigns; this consent waits for it.")
        )
    try:
        with default_storage.open(countersignature.pdf_name, "rb") as handle:
            pdf = bytes(handle.read())
    except OSError:
        pdf = b""
    if hashlib.sha256(pdf).hexdigest() != countersignature.pdf_sha256:
        raise _refuse("consent", _("The stored PDF does not match the one signed: the clinic must check it."))
    audit_record(
        actor=caller.actor(consent.clinic_id),
        action=Action.CONSENT_PRINT,
        clinic_id=consent.clinic_id,
        patient_id=consent.patient_id,
        obj=consent,
        detail={"pdf_sha256": countersignature.pdf_sha256},
    )
    return pdf


def may_countersign(caller: Caller, consent: Consent) -> bool:
    return can(caller.user, Perm.CONSENT_COUNTERSIGN, clinic_id=consent.clinic_id, patient=consent.patient)


def own_patient(caller: Caller) -> Patient:
    """The portal user's own patient record."""
    if not caller.user.is_authenticated:
        raise PermissionDenied
    patient = Patient.objects.select_related("clinic").filter(user_id=caller.user.pk).first()
    if patient is None:
        raise Http404(_("There is no patient record linked to this account."))
    return patient


def plan_for(*, caller: Caller, plan_id: int, perm: Perm = Perm.CONSENT_VIEW) -> TreatmentPlan:
    """The plan, if the caller may act on its consent (404 for another clinic's or a missing one)."""
    return plan_get(caller=caller, plan_id=id_or_404(plan_id), perm=perm, audit=False)


# --- verification (manage.py consent_verify) ----------------------------------------------------------------


@dataclass(frozen=True)
class ConsentProblem:
    consent_id: int
    problem: str


def consent_problems() -> list[ConsentProblem]:
    """Every stored consent whose text, signature or PDF no longer matches what was signed: the hashes on the
    rows, the files in the storage, and the hashes written into the audit trail at signing."""
    events: dict[tuple[str, str], dict[str, Any]] = {}
    for action, object_id, detail in AuditEvent.objects.filter(
        action__in=[Action.CONSENT_SIGN, Action.CONSENT_COUNTERSIGN], object_type="consent.consent"
    ).values_list("action", "object_id", "detail"):
        events[(action, object_id)] = detail
    problems: list[ConsentProblem] = []
    rows = Consent.objects.select_related("countersignature").order_by("pk")
    for consent in rows.iterator(chunk_size=500):
        key = str(consent.pk)

        def report(message: str, consent_id: int = consent.pk) -> None:
            problems.append(ConsentProblem(consent_id, message))

        if rules.sha256_text(consent.text) != consent.text_sha256:
            report("the stored text does not match its SHA-256")
        png = bytes(consent.signature_png)
        if hashlib.sha256(png).hexdigest() != consent.signature_sha256:
            report("the stored signature does not match its SHA-256")
        signed = events.get((Action.CONSENT_SIGN, key))
        if signed is None:
            report("no signature is recorded in the audit trail")
        else:
            for name in ("text_sha256", "signature_sha256", "fingerprint"):
                if signed.get(name) != getattr(consent, name):
                    report(f"the {name} differs from the one recorded in the audit trail at signing")
        countersignature = _countersignature(consent)
        if countersignature is None:
            continue
        try:
            with default_storage.open(countersignature.pdf_name, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            report("the PDF is missing from the storage")
            continue
        if digest != countersignature.pdf_sha256:
            report("the stored PDF does not match its SHA-256")
        recorded = events.get((Action.CONSENT_COUNTERSIGN, key))
        if recorded is None or recorded.get("pdf_sha256") != countersignature.pdf_sha256:
            report("the PDF's SHA-256 differs from the one recorded in the audit trail")
    return problems


def record_verification(problems: Sequence[ConsentProblem], checked: int) -> None:
    audit_record(
        actor=Actor(user_id=None, username="manage.py consent_verify", role="", ip=None),
        action=Action.CONSENT_VERIFY,
        detail={"checked": checked, "problems": len(problems)},
    )
