"""Consent templates, the education library, the clinic's consent settings, and a plan's consents: render,
sign, countersign, withdraw, the PDF. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import clinic_for_api
from mesoclinic.accounts.policy import Perm
from mesoclinic.consent import services
from mesoclinic.consent.documents import pdf_response
from mesoclinic.consent.models import Article, ConsentTemplate
from mesoclinic.consent.schemas import (
    ArticleOut,
    ArticleVersionIn,
    ClinicParams,
    ConsentOut,
    DocumentOut,
    DocumentParams,
    LibraryParams,
    PlanConsentsOut,
    SignIn,
    TemplateOut,
    TemplateVersionIn,
    TermsIn,
    TermsOut,
    WithdrawIn,
)
from mesoclinic.lib.ids import id_or_404
from mesoclinic.patients.services import patient_get

router = Router(tags=["consent"])


# --- shaping ------------------------------------------------------------------------------------------------


def _consent_out(view: services.ConsentView) -> dict[str, Any]:
    consent, countersignature = view.consent, view.countersignature
    return {
        "id": consent.pk,
        "plan": consent.plan_id,
        "patient": consent.patient_id,
        "state": view.state,
        "language": consent.language,
        "template_version_id": consent.template_version_id,
        "template_version": consent.template_version.number,
        "text": consent.text,
        "text_sha256": consent.text_sha256,
        "covers": consent.covers,
        "changes": view.changes,
        "signed_at": consent.signed_at,
        "signed_on": consent.signed_on,
        "valid_until": consent.valid_until,
        "typed_name": consent.typed_name,
        "signed_via": consent.signed_via,
        "signed_ip": consent.signed_ip,
        "signature_sha256": consent.signature_sha256,
        "countersigned_at": countersignature.signed_at if countersignature else None,
        "countersigned_by": countersignature.practitioner_id if countersignature else None,
        "pdf_sha256": countersignature.pdf_sha256 if countersignature else None,
        "withdrawn_at": consent.withdrawn_at,
        "withdrawal_reason": consent.withdrawal_reason,
    }


def _plan_consents_out(overview: services.PlanConsents) -> dict[str, Any]:
    plan = overview.plan
    return {
        "plan": plan.pk,
        "patient": plan.patient_id,
        "plan_status": plan.status,
        "valid": overview.valid,
        "can_sign": overview.can_sign,
        "gate": [finding.as_dict() for finding in overview.gate],
        "consents": [_consent_out(view) for view in overview.consents],
    }


def _template_out(template: ConsentTemplate) -> dict[str, Any]:
    version = services.template_current(template)
    return {
        "id": template.pk,
        "indication": template.indication,
        "jurisdiction": template.jurisdiction,
        "language": template.language,
        "clinic_owned": template.clinic_id is not None,
        "copied_from": template.copied_from_id,
        "version": {
            "id": version.pk,
            "number": version.number,
            "title": version.title,
            "procedure": version.procedure,
            "risks": version.risks,
            "evidence": version.evidence,
            "declaration": version.declaration,
            "source": version.source,
            "created_at": version.created_at,
        },
    }


def _article_out(article: Article | None, rendered: services.RenderedArticle) -> dict[str, Any]:
    return {
        "id": rendered.article_id,
        "topic": rendered.topic,
        "indication": rendered.indication,
        "language": rendered.language,
        "clinic_owned": article.clinic_id is not None if article is not None else False,
        "version_id": rendered.version_id,
        "version": rendered.version,
        "title": rendered.title,
        "text": rendered.text,
        "source": rendered.source,
    }


def _terms_out(terms: services.ClinicTerms) -> dict[str, Any]:
    return {
        "clinic_id": terms.clinic.pk,
        "currency": terms.currency,
        "validity_months": terms.validity_months,
        "prices": [
            {"indication": indication, "price_per_session": price}
            for indication, price in sorted(terms.prices.items())
        ],
    }


# --- settings -----------------------------------------------------------------------------------------------


@router.get(
    "/consent/settings", response=TermsOut, summary="The consent period and the session prices (R-COST)"
)
def read_terms(request: HttpRequest, params: Query[ClinicParams]) -> dict[str, Any]:
    clinic = clinic_for_api(request, Perm.CONSENT_SETTINGS_MANAGE, params.clinic_id)
    return _terms_out(services.terms_get(caller=Caller.of(request), clinic=clinic))


@router.put("/consent/settings", response=TermsOut, summary="Set the consent period and the session prices")
def update_terms(request: HttpRequest, payload: TermsIn) -> dict[str, Any]:
    clinic = clinic_for_api(request, Perm.CONSENT_SETTINGS_MANAGE, payload.clinic_id)
    indications = [row.indication for row in payload.prices]
    if len(indications) != len(set(indications)):
        raise ValidationError({"prices": [_("One price per indication.")]})
    terms = services.terms_update(
        caller=Caller.of(request),
        clinic=clinic,
        validity_months=payload.validity_months,
        prices={row.indication: row.price_per_session for row in payload.prices},
    )
    return _terms_out(terms)


# --- templates and the education library --------------------------------------------------------------------


@router.get(
    "/consent/templates", response=list[TemplateOut], summary="The seeded and the clinic's consent templates"
)
def list_templates(request: HttpRequest, params: Query[ClinicParams]) -> list[dict[str, Any]]:
    clinic = clinic_for_api(request, Perm.CONSENT_TEMPLATE_VIEW, params.clinic_id)
    templates = services.templates_for(clinic).order_by("indication", "jurisdiction", "language", "clinic_id")
    return [_template_out(template) for template in templates]


@router.get(
    "/consent/templates/{template_id}", response=TemplateOut, summary="A consent template, current version"
)
def read_template(request: HttpRequest, template_id: int, params: Query[ClinicParams]) -> dict[str, Any]:
    clinic = clinic_for_api(request, Perm.CONSENT_TEMPLATE_VIEW, params.clinic_id)
    return _template_out(
        services.template_get(caller=Caller.of(request), clinic=clinic, template_id=id_or_404(template_id))
    )


@router.post(
    "/consent/templates/{template_id}/versions",
    response={201: TemplateOut},
    summary="Revise a template (the clinic's own copy gets a new version)",
)
def revise_template(
    request: HttpRequest, template_id: int, payload: TemplateVersionIn
) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.CONSENT_TEMPLATE_MANAGE, payload.clinic_id)
    template = services.template_get(
        caller=caller,
        clinic=clinic,
        template_id=id_or_404(template_id),
        perm=Perm.CONSENT_TEMPLATE_MANAGE,
    )
    version = services.template_revise(
        caller=caller,
        clinic=clinic,
        template=template,
        content=services.TemplateContent(
            title=payload.title,
            procedure=payload.procedure,
            risks=payload.risks,
            evidence=payload.evidence,
            declaration=payload.declaration,
            source=payload.source,
        ),
        indication=payload.indication,
        jurisdiction=payload.jurisdiction,
    )
    return Status(201, _template_out(version.template))


@router.get(
    "/education/articles",
    response=list[ArticleOut],
    summary="The education library for an indication, in a language (R-EDU)",
)
def list_articles(request: HttpRequest, params: Query[LibraryParams]) -> list[dict[str, Any]]:
    clinic = clinic_for_api(request, Perm.EDUCATION_VIEW, params.clinic_id)
    indication = services.valid_indication(params.indication)
    items = services.library(clinic=clinic, language=params.language, indication=indication)
    articles = {a.pk: a for a in Article.objects.filter(pk__in=[item.article_id for item in items])}
    return [_article_out(articles.get(item.article_id), item) for item in items]


@router.get(
    "/education/articles/{article_id}",
    response=ArticleOut,
    summary="An article, filled with the clinic's data",
)
def read_article(request: HttpRequest, article_id: int, params: Query[ClinicParams]) -> dict[str, Any]:
    clinic = clinic_for_api(request, Perm.EDUCATION_VIEW, params.clinic_id)
    article = services.article_get(caller=Caller.of(request), clinic=clinic, article_id=id_or_404(article_id))
    return _article_out(article, services.article_render(clinic=clinic, article=article))


@router.post(
    "/education/articles/{article_id}/versions",
    response={201: ArticleOut},
    summary="Revise an article (the clinic's own copy gets a new version)",
)
def revise_article(
    request: HttpRequest, article_id: int, payload: ArticleVersionIn
) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.EDUCATION_MANAGE, payload.clinic_id)
    article = services.article_get(
        caller=caller, clinic=clinic, article_id=id_or_404(article_id), perm=Perm.EDUCATION_MANAGE
    )
    version = services.article_revise(
        caller=caller,
        clinic=clinic,
        article=article,
        title=payload.title,
        body=payload.body,
        source=payload.source,
        indication=payload.indication,
    )
    own = version.article
    return Status(201, _article_out(own, services.article_render(clinic=clinic, article=own)))


# --- a plan's consents --------------------------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/consents",
    response=list[PlanConsentsOut],
    summary="A patient's plans and consents",
)
def list_patient_consents(request: HttpRequest, patient_id: int) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=id_or_404(patient_id), perm=Perm.CONSENT_VIEW, audit=False
    )
    overview = services.patient_consents(caller=caller, patient=patient)
    return [_plan_consents_out(row) for row in overview.plans]


@router.get(
    "/consent/plan/{plan_id}", response=PlanConsentsOut, summary="A plan's consents and what the gate says"
)
def read_plan_consents(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_for(caller=caller, plan_id=plan_id)
    return _plan_consents_out(services.plan_consents(caller=caller, plan=plan))


@router.get(
    "/consent/plan/{plan_id}/document",
    response=DocumentOut,
    summary="The consent for the plan, rendered from live data, as the patient is to read it",
)
def read_document(request: HttpRequest, plan_id: int, params: Query[DocumentParams]) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_for(caller=caller, plan_id=plan_id)
    document = services.consent_document(caller=caller, plan=plan, language=params.language)
    overview = services.plan_consents(caller=caller, plan=plan, audit=False)
    return {
        "plan": plan.pk,
        "patient": plan.patient_id,
        "language": document.language,
        "template_version_id": document.template_version.pk,
        "template_version": document.template_version.number,
        "text": document.text,
        "text_sha256": document.text_sha256,
        "signed_on": document.signed_on,
        "valid_until": document.valid_until,
        "can_sign": overview.can_sign and not document.refusals,
        "refusals": [finding.as_dict() for finding in document.refusals],
    }


@router.post(
    "/consent/plan/{plan_id}/signatures",
    response={201: ConsentOut},
    summary="The patient signs the text that was shown (typed name and drawn signature)",
)
def sign(request: HttpRequest, plan_id: int, payload: SignIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    plan = services.plan_for(caller=caller, plan_id=plan_id, perm=Perm.CONSENT_SIGN)
    consent = services.consent_sign(
        caller=caller,
        plan=plan,
        patient_id=payload.patient_id,
        template_version_id=payload.template_version_id,
        text_sha256=payload.text_sha256,
        typed_name=payload.typed_name,
        signature=payload.signature,
        language=payload.language,
    )
    saved = services.consent_get(caller=caller, consent_id=consent.pk, perm=Perm.CONSENT_SIGN, audit=False)
    return Status(201, _consent_out(services.consent_view(saved)))


@router.get("/consent/consents/{consent_id}", response=ConsentOut, summary="A signed consent")
def read_consent(request: HttpRequest, consent_id: int) -> dict[str, Any]:
    consent = services.consent_get(caller=Caller.of(request), consent_id=consent_id)
    return _consent_out(services.consent_view(consent))


@router.post(
    "/consent/consents/{consent_id}/countersign",
    response=ConsentOut,
    summary="The practitioner countersigns; the PDF is made and kept",
)
def countersign(request: HttpRequest, consent_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    consent = services.consent_get(
        caller=caller, consent_id=consent_id, perm=Perm.CONSENT_COUNTERSIGN, audit=False
    )
    services.consent_countersign(caller=caller, consent=consent)
    return _consent_out(
        services.consent_view(services.consent_get(caller=caller, consent_id=consent_id, audit=False))
    )


@router.post("/consent/consents/{consent_id}/withdraw", response=ConsentOut, summary="Withdraw a consent")
def withdraw(request: HttpRequest, consent_id: int, payload: WithdrawIn) -> dict[str, Any]:
    caller = Caller.of(request)
    consent = services.consent_get(
        caller=caller, consent_id=consent_id, perm=Perm.CONSENT_WITHDRAW, audit=False
    )
    withdrawn = services.consent_withdraw(caller=caller, consent=consent, reason=payload.reason)
    return _consent_out(services.consent_view(withdrawn))


@router.get(
    "/consent/consents/{consent_id}/pdf",
    response={200: None},
    summary="The kept PDF of a countersigned consent (attachment, no-store)",
)
def read_pdf(request: HttpRequest, consent_id: int) -> HttpResponse:
    caller = Caller.of(request)
    consent = services.consent_get(caller=caller, consent_id=consent_id, audit=False)
    return pdf_response(consent, services.consent_pdf_bytes(caller=caller, consent=consent))
