"""Consent, education and settings pages: the staff's, the patient's in the portal, and the signing page both
use (the portal, or the clinic's tablet at the desk).

Thin: every read and write goes through ``consent.services``, exactly as the API does."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.clinics.models import Clinic
from mesoclinic.consent import rules, services
from mesoclinic.consent.documents import pdf_response
from mesoclinic.consent.forms import (
    ArticleForm,
    SignForm,
    TemplateForm,
    TermsForm,
    WithdrawForm,
    apply_errors,
)
from mesoclinic.consent.models import Topic
from mesoclinic.formulary.models import Indication
from mesoclinic.lib.findings import FindingsRefused
from mesoclinic.lib.ids import id_or_404
from mesoclinic.patients.services import patient_get
from mesoclinic.treatments.models import TreatmentPlan


def _clinic(request: HttpRequest, *perms: Perm) -> Clinic:
    clinic = current_clinic(request)
    if clinic is None or not any(can(request.user, perm, clinic_id=clinic.pk) for perm in perms):
        raise PermissionDenied
    return clinic


def _field_errors(form: Any, name: str) -> list[str]:
    return [str(message) for message in form.errors.get(name, [])]


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for field_messages in error.message_dict.values() for message in field_messages]
    return list(error.messages)


# --- the staff's library, templates and settings -----------------------------------------------------------


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The clinic's consent templates and education articles (seeded ones and its own copies)."""
    clinic = _clinic(request, Perm.CONSENT_TEMPLATE_VIEW, Perm.EDUCATION_VIEW)
    templates = list(
        services.templates_for(clinic).order_by("indication", "jurisdiction", "language", "clinic_id")
    )
    articles = list(services.articles_for(clinic).order_by("topic", "indication", "language", "clinic_id"))
    topics = dict(Topic.choices)
    return render(
        request,
        "consent/home.html",
        {
            "clinic": clinic,
            "templates": templates,
            "articles": [(article, topics.get(article.topic, article.topic)) for article in articles],
            "can_manage_settings": can(request.user, Perm.CONSENT_SETTINGS_MANAGE, clinic_id=clinic.pk),
        },
    )


@login_required
def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    clinic = _clinic(request, Perm.CONSENT_TEMPLATE_VIEW)
    template = services.template_get(caller=Caller.of(request), clinic=clinic, template_id=template_id)
    return render(
        request,
        "consent/template_detail.html",
        {
            "template": template,
            "version": services.template_current(template),
            "versions": services.template_versions(template),
            "can_manage": can(request.user, Perm.CONSENT_TEMPLATE_MANAGE, clinic_id=clinic.pk),
        },
    )


@login_required
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse | HttpResponseBase:
    clinic = _clinic(request, Perm.CONSENT_TEMPLATE_MANAGE)
    caller = Caller.of(request)
    template = services.template_get(
        caller=caller, clinic=clinic, template_id=template_id, perm=Perm.CONSENT_TEMPLATE_MANAGE
    )
    current = services.template_current(template)
    initial = {
        "indication": template.indication,
        "jurisdiction": template.jurisdiction,
        **{name: getattr(current, name) for name in (*services.TEMPLATE_SECTIONS, "source")},
    }
    form = TemplateForm(request.POST or None, initial=initial)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.template_revise(
                caller=caller,
                clinic=clinic,
                template=template,
                content=services.TemplateContent(
                    **{name: data[name] for name in (*services.TEMPLATE_SECTIONS, "source")}
                ),
                indication=data["indication"],
                jurisdiction=data["jurisdiction"],
            )
        except ValidationError as error:
            problems = apply_errors(form, error)
        else:
            messages.success(request, _("Saved as version %(number)d.") % {"number": version.number})
            return redirect("consent:template", template_id=version.template_id)
    return render(
        request,
        "consent/template_form.html",
        {"template": template, "form": form, "problems": problems},
        status=422 if request.method == "POST" else 200,
    )


@login_required
def article_detail(request: HttpRequest, article_id: int) -> HttpResponse:
    clinic = _clinic(request, Perm.EDUCATION_VIEW)
    article = services.article_get(caller=Caller.of(request), clinic=clinic, article_id=article_id)
    return render(
        request,
        "consent/article_detail.html",
        {
            "article": article,
            "rendered": services.article_render(clinic=clinic, article=article),
            "versions": services.article_versions(article),
            "can_manage": can(request.user, Perm.EDUCATION_MANAGE, clinic_id=clinic.pk),
        },
    )


@login_required
def article_edit(request: HttpRequest, article_id: int) -> HttpResponse | HttpResponseBase:
    clinic = _clinic(request, Perm.EDUCATION_MANAGE)
    caller = Caller.of(request)
    article = services.article_get(
        caller=caller, clinic=clinic, article_id=article_id, perm=Perm.EDUCATION_MANAGE
    )
    current = services.article_versions(article)[0]
    form = ArticleForm(
        request.POST or None,
        initial={
            "indication": article.indication,
            "title": current.title,
            "body": current.body,
            "source": current.source,
        },
    )
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.article_revise(
                caller=caller,
                clinic=clinic,
                article=article,
                title=data["title"],
                body=data["body"],
                source=data["source"],
                indication=data["indication"],
            )
        except ValidationError as error:
            problems = apply_errors(form, error)
        else:
            messages.success(request, _("Saved as version %(number)d.") % {"number": version.number})
            return redirect("consent:article", article_id=version.article_id)
    return render(
        request,
        "consent/article_form.html",
        {"article": article, "form": form, "problems": problems},
        status=422 if request.method == "POST" else 200,
    )


@login_required
def terms(request: HttpRequest) -> HttpResponse | HttpResponseBase:
    """How long a consent lasts and the price of a session (R-COST), in the clinic's currency."""
    clinic = _clinic(request, Perm.CONSENT_SETTINGS_MANAGE)
    caller = Caller.of(request)
    current = services.terms_get(caller=caller, clinic=clinic)
    initial: dict[str, Any] = {"validity_months": current.validity_months}
    for indication, price in current.prices.items():
        initial[f"price_{indication or 'default'}"] = price
    form = TermsForm(request.POST or None, initial=initial, currency=clinic.currency)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            services.terms_update(
                caller=caller,
                clinic=clinic,
                validity_months=form.cleaned_data["validity_months"],
                prices=form.prices(),
            )
        except ValidationError as error:
            names = {f"prices.{code}": f"price_{code}" for code in [*Indication.values, "default"]}
            problems = apply_errors(form, error, names)
        else:
            messages.success(request, _("Saved. Consents already signed keep what they say."))
            return redirect("consent:settings")
    return render(
        request,
        "consent/settings.html",
        {"form": form, "clinic": clinic, "problems": problems},
        status=422 if request.method == "POST" else 200,
    )


# --- a patient's consents -----------------------------------------------------------------------------------


@login_required
def panel(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient page's "Consent" section (loaded by htmx, so the record itself opens at once)."""
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=id_or_404(patient_id), perm=Perm.CONSENT_VIEW, audit=False
    )
    overview = services.patient_consents(caller=caller, patient=patient)
    template = "consent/_panel.html" if request.headers.get("HX-Request") else "consent/panel_page.html"
    return render(request, template, {"patient": patient, "overview": overview})


def _plan_page_context(request: HttpRequest, plan: TreatmentPlan) -> dict[str, Any]:
    caller = Caller.of(request)
    overview = services.plan_consents(caller=caller, plan=plan)
    return {
        "plan": plan,
        "overview": overview,
        "can_sign": can(request.user, Perm.CONSENT_SIGN, clinic_id=plan.clinic_id, patient=plan.patient),
        "is_patient": request.user.pk == plan.patient.user_id,
    }


@login_required
def plan_page(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = services.plan_for(caller=Caller.of(request), plan_id=plan_id)
    return render(request, "consent/plan.html", _plan_page_context(request, plan))


def _sign_page(
    request: HttpRequest,
    plan: TreatmentPlan,
    *,
    language: str | None,
    form: SignForm | None = None,
    problems: list[str] | None = None,
    refused: FindingsRefused | None = None,
    status: int = 200,
) -> HttpResponse:
    caller = Caller.of(request)
    if language not in services.LANGUAGES:
        language = None
    try:
        document = services.consent_document(caller=caller, plan=plan, language=language)
    except ValidationError as error:  # no template speaks for this plan
        return render(
            request, "consent/problem.html", {"plan": plan, "problems": _messages(error)}, status=409
        )
    overview = services.plan_consents(caller=caller, plan=plan, audit=False)
    fresh = SignForm(
        initial={
            "patient_id": plan.patient_id,
            "template_version_id": document.template_version.pk,
            "text_sha256": document.text_sha256,
            "language": document.language,
        }
    )
    if form is not None:  # keep what was typed and the errors; what was shown is the new document
        fresh.initial["typed_name"] = form.data.get("typed_name", "")
        fresh._errors = form.errors  # type: ignore[attr-defined]
    return render(
        request,
        "consent/sign.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "document": document,
            "form": fresh,
            "problems": problems or [],
            "refusals": refused.findings if refused else document.refusals,
            "can_sign": overview.can_sign and not document.refusals,
            "at_desk": request.user.pk != plan.patient.user_id,
        },
        status=status,
    )


@login_required
def sign(request: HttpRequest, plan_id: int) -> HttpResponse | HttpResponseBase:
    """Read and sign: the patient in the portal or on the clinic's tablet (typed name, drawn signature)."""
    caller = Caller.of(request)
    plan = services.plan_for(caller=caller, plan_id=plan_id, perm=Perm.CONSENT_SIGN)
    if request.method != "POST":
        return _sign_page(request, plan, language=request.GET.get("language") or None)
    form = SignForm(request.POST)
    language = request.POST.get("language") or None
    if not form.is_valid():
        problems = [
            m
            for name in ("patient_id", "template_version_id", "text_sha256", "language")
            for m in _field_errors(form, name)
        ]
        return _sign_page(
            request,
            plan,
            language=None,
            form=form,
            problems=problems or [_("Some fields are not valid: see below.")],
            status=422,
        )
    data = form.cleaned_data
    try:
        consent = services.consent_sign(
            caller=caller,
            plan=plan,
            patient_id=data["patient_id"],
            template_version_id=data["template_version_id"],
            text_sha256=data["text_sha256"],
            typed_name=data["typed_name"],
            signature=data["signature"],
            language=data["language"],
        )
    except FindingsRefused as refused:
        return _sign_page(
            request, plan, language=language, problems=[refused.message], refused=refused, status=422
        )
    except ValidationError as error:
        problems = apply_errors(form, error)
        problems += [
            m
            for name in ("patient_id", "template_version_id", "text_sha256")
            for m in _field_errors(form, name)
        ]
        return _sign_page(request, plan, language=language, form=form, problems=problems, status=422)
    messages.success(request, _("Thank you: the consent is signed. The practitioner countersigns it next."))
    if request.user.pk == plan.patient.user_id:
        return redirect("consent:portal")
    return redirect("consent:consent", consent_id=consent.pk)


@login_required
def consent_detail(request: HttpRequest, consent_id: int) -> HttpResponse:
    caller = Caller.of(request)
    consent = services.consent_get(caller=caller, consent_id=consent_id)
    view = services.consent_view(consent)
    signature = base64.b64encode(services.consent_signature(consent)).decode("ascii")
    return render(
        request,
        "consent/detail.html",
        {
            "consent": consent,
            "view": view,
            "blocks": rules.blocks(consent.text),
            "signature": f"data:image/png;base64,{signature}",
            "can_countersign": view.state == "awaiting-countersignature"
            and services.may_countersign(caller, consent),
            "can_withdraw": consent.withdrawn_at is None
            and can(
                request.user, Perm.CONSENT_WITHDRAW, clinic_id=consent.clinic_id, patient=consent.patient
            ),
            "withdraw_form": WithdrawForm(),
            "is_patient": request.user.pk == consent.patient.user_id,
        },
    )


@login_required
@require_POST
def countersign(request: HttpRequest, consent_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    consent = services.consent_get(
        caller=caller, consent_id=consent_id, perm=Perm.CONSENT_COUNTERSIGN, audit=False
    )
    try:
        services.consent_countersign(caller=caller, consent=consent)
    except ValidationError as error:
        for message in _messages(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Countersigned: the consent now covers the plan, and its PDF is kept."))
    return redirect("consent:consent", consent_id=consent.pk)


@login_required
@require_POST
def withdraw(request: HttpRequest, consent_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    consent = services.consent_get(
        caller=caller, consent_id=consent_id, perm=Perm.CONSENT_WITHDRAW, audit=False
    )
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        for message in _field_errors(form, "reason"):
            messages.error(request, message)
        return redirect("consent:consent", consent_id=consent.pk)
    try:
        services.consent_withdraw(caller=caller, consent=consent, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        for message in _messages(error):
            messages.error(request, message)
    else:
        messages.success(request, _("The consent is withdrawn. No further session takes place under it."))
    return redirect("consent:consent", consent_id=consent.pk)


@login_required
def pdf(request: HttpRequest, consent_id: int) -> HttpResponse:
    caller = Caller.of(request)
    consent = services.consent_get(caller=caller, consent_id=consent_id, audit=False)
    try:
        content = services.consent_pdf_bytes(caller=caller, consent=consent)
    except ValidationError as error:
        return render(
            request,
            "consent/problem.html",
            {"consent": consent, "problems": _messages(error)},
            status=409,
        )
    return pdf_response(consent, content)


# --- the patient's own pages --------------------------------------------------------------------------------


@login_required
def portal(request: HttpRequest) -> HttpResponse:
    """The patient's plans with their consent, and what to read before treatment."""
    caller = Caller.of(request)
    own = services.own_patient(caller)
    patient = patient_get(caller=caller, patient_id=own.pk, perm=Perm.CONSENT_VIEW, audit=False)
    overview = services.patient_consents(caller=caller, patient=patient)
    indications = list(
        dict.fromkeys(
            row.plan.indication for row in overview.plans if row.plan.status in services.OPEN_PLAN_STATUSES
        )
    )
    return render(
        request,
        "consent/portal.html",
        {
            "patient": patient,
            "overview": overview,
            "topics": Topic.choices,
            "indication": indications[0] if indications else "",
        },
    )


@login_required
def portal_article(request: HttpRequest, topic: str) -> HttpResponse:
    caller = Caller.of(request)
    own = services.own_patient(caller)
    patient = patient_get(caller=caller, patient_id=own.pk, perm=Perm.EDUCATION_VIEW, audit=False)
    indication = request.GET.get("indication", "")
    if indication not in Indication.values:
        indication = ""
    language = getattr(request, "LANGUAGE_CODE", patient.preferred_language)
    article = next(
        (
            item
            for item in services.library(clinic=patient.clinic, language=language, indication=indication)
            if item.topic == topic
        ),
        None,
    )
    if article is None:
        raise Http404(_("Not found."))
    return render(
        request,
        "consent/portal_article.html",
        {"patient": patient, "article": article, "topics": Topic.choices, "indication": indication},
    )
