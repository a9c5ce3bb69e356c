"""Intake (portal and desk), intake history, the screening panel and page, the review form, invitations.

Thin: every read and write goes through ``screening.services``, exactly as the API does."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.models import Membership
from mesoclinic.accounts.policy import Perm, can, clinics_with
from mesoclinic.clinics.models import Clinic
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_get
from mesoclinic.screening.forms import (
    IntakeForm,
    MedicationFormSet,
    MedicineForm,
    MedicineNamesForm,
    ReviewForm,
    ScreeningParamsForm,
    answers_from,
    apply_errors,
    apply_intake_errors,
    intake_initial,
)
from mesoclinic.screening.services import (
    InvitationNotSent,
    NoIntake,
    answers_of,
    intake_get,
    intake_history,
    intake_invite,
    intake_submit,
    medicine_add,
    medicine_catalogue,
    medicine_get,
    medicine_names_add,
    review_get,
    review_sign,
    screening_run,
)

FIELD_LABELS = {
    "pregnancy": gettext_lazy("Pregnancy"),
    "conditions": gettext_lazy("Conditions"),
    "medications": gettext_lazy("Medicines"),
    "allergies": gettext_lazy("Allergies"),
    "weight_stable": gettext_lazy("Weight stable"),
    "goals": gettext_lazy("Goals"),
    "previous_treatments": gettext_lazy("Previous treatments"),
}


def _own_patient(request: HttpRequest, perm: Perm) -> Patient:
    if not request.user.is_authenticated:
        raise Http404
    patient_id = Patient.objects.filter(user_id=request.user.pk).values_list("pk", flat=True).first()
    if patient_id is None:
        raise Http404(_("There is no patient record linked to this account."))
    return patient_get(caller=Caller.of(request), patient_id=patient_id, perm=perm, audit=False)


def _intake_page(request: HttpRequest, patient: Patient, *, done_url: str, portal: bool) -> HttpResponseBase:
    caller = Caller.of(request)
    if request.method == "POST":
        form = IntakeForm(request.POST)
        formset = MedicationFormSet(request.POST, prefix="medications")
        if form.is_valid() and formset.is_valid():
            answers, rows = answers_from(form, formset)
            try:
                intake = intake_submit(caller=caller, patient=patient, answers=answers)
            except ValidationError as error:
                apply_intake_errors(form, formset, error, rows)
            else:
                text = (
                    _("Thank you: your answers are saved (version %(version)d).")
                    if portal
                    else _("Intake saved (version %(version)d).")
                )
                messages.success(request, text % {"version": intake.version})
                return redirect(done_url)
    else:
        latest = intake_get(caller=caller, patient=patient)
        initial, medications = intake_initial(answers_of(latest) if latest else None)
        form = IntakeForm(initial=initial)
        formset = MedicationFormSet(initial=medications, prefix="medications")
    invalid = bool(form.errors or any(formset.errors) or formset.non_form_errors())
    return render(
        request,
        "screening/intake_form.html",
        {"form": form, "formset": formset, "patient": patient, "portal": portal, "cancel_url": done_url},
        status=400 if invalid else 200,
    )


@login_required
def portal_intake(request: HttpRequest) -> HttpResponseBase:
    """The patient fills or updates their own questionnaire."""
    patient = _own_patient(request, Perm.INTAKE_EDIT)
    return _intake_page(request, patient, done_url=reverse("portal:home"), portal=True)


@login_required
def desk_intake(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    """Staff fill the questionnaire with the patient at the desk."""
    patient = patient_get(
        caller=Caller.of(request), patient_id=patient_id, perm=Perm.INTAKE_EDIT, audit=False
    )
    return _intake_page(
        request, patient, done_url=reverse("patients:detail", args=[patient.pk]), portal=False
    )


@login_required
def history(request: HttpRequest, patient_id: int) -> HttpResponse:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.INTAKE_VIEW, audit=False)
    versions = [
        {
            "intake": version.intake,
            "answers": version.answers,
            "changes": [
                {
                    "label": FIELD_LABELS.get(change.field, change.field),
                    "before": change.before,
                    "after": change.after,
                    "added": change.added,
                    "removed": change.removed,
                }
                for change in version.changes
            ],
        }
        for version in intake_history(caller=caller, patient=patient)
    ]
    return render(request, "screening/history.html", {"patient": patient, "versions": versions})


@require_POST
@login_required
def invite(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.INTAKE_INVITE, audit=False)
    try:
        user = intake_invite(caller=caller, patient=patient, site_url=request.build_absolute_uri("/"))
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    except InvitationNotSent as failure:
        messages.error(request, failure.message)
    else:
        messages.success(
            request,
            _("Invitation sent to %(email)s (sign-in name: %(username)s).")
            % {"email": user.email, "username": user.get_username()},
        )
    return redirect("patients:detail", patient_id=patient.pk)


def _permissions(request: HttpRequest, patient: Patient) -> dict[str, bool]:
    def has(perm: Perm) -> bool:
        return can(request.user, perm, clinic_id=patient.clinic_id, patient=patient)

    return {
        "can_view_intake": has(Perm.INTAKE_VIEW),
        "can_edit_intake": has(Perm.INTAKE_EDIT),
        "can_invite": has(Perm.INTAKE_INVITE),
        "can_screen": has(Perm.SCREENING_VIEW),
        "can_review": has(Perm.SCREENING_REVIEW),
        "can_manage_medicines": has(Perm.MEDICINE_MANAGE),
    }


@login_required
def panel(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The intake and screening section of the patient page (loaded by htmx; a page of its own without)."""
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, audit=False)
    perms = _permissions(request, patient)
    context: dict[str, Any] = {"patient": patient, **perms, "intake": None, "result": None, "review": None}
    if perms["can_screen"]:
        try:
            result = screening_run(caller=caller, patient=patient)
        except NoIntake:
            result = None
        except ValidationError as error:
            context["screening_error"] = " ".join(error.messages)
            result = None
        context["result"] = result
        context["intake"] = result.intake if result else None
        context["review"] = review_get(
            caller=caller,
            patient=patient,
            latest_intake_version=result.intake.version if result else None,
            audit=False,
        )
    elif perms["can_view_intake"]:
        context["intake"] = intake_get(caller=caller, patient=patient)
    template = "screening/_panel.html" if request.headers.get("HX-Request") else "screening/panel_page.html"
    return render(request, template, context)


@login_required
def screening_page(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    """The full screening for a planned session (date, formula, areas) and the practitioner's review form."""
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.SCREENING_VIEW, audit=False)
    source = request.POST if request.method == "POST" else request.GET
    params = ScreeningParamsForm(source or None)
    on = formula_id = None
    areas: list[str] = []
    if params.is_bound and params.is_valid():
        on = params.cleaned_data["on"]
        formula_id = params.cleaned_data["formula"]
        areas = [area for area in params.cleaned_data["areas"].split(",") if area.strip()]
    context: dict[str, Any] = {"patient": patient, "params": params, **_permissions(request, patient)}
    try:
        result = screening_run(caller=caller, patient=patient, on=on, formula_id=formula_id, areas=areas)
    except NoIntake:
        return render(request, "screening/screening.html", {**context, "result": None, "review": None})
    except ValidationError as error:
        for field, problems in error.message_dict.items():
            for problem in problems:
                params.add_error(field if field in params.fields else None, problem)
        return render(
            request, "screening/screening.html", {**context, "result": None, "review": None}, status=400
        )
    initial = {
        "intake_version": result.intake.version,
        "on": result.session_date,
        "formula": formula_id,
        "areas": ",".join(result.areas),
    }
    form = ReviewForm(
        request.POST if request.method == "POST" else None, initial=initial, warnings=result.warnings
    )
    if request.method == "POST" and form.is_valid():
        try:
            review_sign(
                caller=caller,
                patient=patient,
                decision=form.cleaned_data["decision"],
                intake_version=form.cleaned_data["intake_version"],
                acknowledgements=form.acknowledgements(),
                note=form.cleaned_data["note"],
                on=form.cleaned_data["on"],
                formula_id=form.cleaned_data["formula"],
                areas=[area for area in form.cleaned_data["areas"].split(",") if area.strip()],
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(field if field in ("decision", "note") else None, problem)
        else:
            messages.success(request, _("Review signed."))
            return redirect("patients:detail", patient_id=patient.pk)
    review = review_get(
        caller=caller, patient=patient, latest_intake_version=result.intake.version, audit=False
    )
    return render(
        request,
        "screening/screening.html",
        {
            **context,
            "result": result,
            "review": review,
            "form": form,
            "ack_fields": form.acknowledgement_fields(),
        },
        status=400 if form.errors else 200,
    )


# --- the medicine catalogue -----------------------------------------------------------------------------


def _catalogue_clinic(request: HttpRequest) -> Clinic:
    """The clinic whose catalogue this is: ``clinic`` in the query or form when given (the link from a
    patient's screening names the patient's clinic), else the clinic the user works in now."""
    raw = request.POST.get("clinic") or request.GET.get("clinic")
    if raw:
        clinic = Clinic.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        if clinic is None or clinic.pk not in clinics_with(request.user, Perm.MEDICINE_MANAGE):
            raise PermissionDenied
        return clinic
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, Perm.MEDICINE_MANAGE, clinic_id=clinic.pk):
        raise PermissionDenied
    return clinic


def _catalogue_url(clinic: Clinic, query: str) -> str:
    return f"{reverse('screening:medicines')}?{urlencode({'clinic': str(clinic.pk), 'q': query})}"


@login_required
def medicines(request: HttpRequest) -> HttpResponseBase:
    """The medicine catalogue as this clinic sees it: search it, add a medicine, add names to one."""
    caller = Caller.of(request)
    clinic = _catalogue_clinic(request)
    action = request.POST.get("action") if request.method == "POST" else None
    initial_name = request.GET.get("name", "")[:100]
    add_form = MedicineForm(request.POST if action == "add" else None, initial={"generic_name": initial_name})
    names_form = MedicineNamesForm(request.POST if action == "names" else None)
    if action == "add" and add_form.is_valid():
        try:
            medicine = medicine_add(
                caller=caller,
                clinic=clinic,
                generic_name=add_form.cleaned_data["generic_name"],
                classes=add_form.cleaned_data["classes"],
                names=add_form.name_list(),
            )
        except ValidationError as error:
            apply_errors(add_form, error)
        else:
            messages.success(request, _("%(name)s added to the catalogue.") % {"name": medicine.generic_name})
            return redirect(_catalogue_url(clinic, medicine.generic_name))
    if action == "names" and names_form.is_valid():
        try:
            medicine = medicine_get(
                caller=caller, clinic=clinic, medicine_id=names_form.cleaned_data["medicine"]
            )
            medicine_names_add(caller=caller, clinic=clinic, medicine=medicine, names=names_form.name_list())
        except ValidationError as error:
            apply_errors(names_form, error)
        else:
            messages.success(request, _("Names added to %(name)s.") % {"name": medicine.generic_name})
            return redirect(_catalogue_url(clinic, medicine.generic_name))
    query = (request.GET.get("q") or initial_name).strip()[:100]
    found = medicine_catalogue(caller=caller, clinic=clinic, q=query) if query or not initial_name else []
    invalid = bool(add_form.errors or names_form.errors)
    return render(
        request,
        "screening/medicines.html",
        {
            "clinic": clinic,
            "query": query,
            "medicines": found,
            "add_form": add_form,
            "names_form": names_form,
            "names_medicine": names_form.data.get("medicine") if names_form.is_bound else None,
        },
        status=400 if invalid else 200,
    )


class InvitationView(auth_views.PasswordResetConfirmView):
    """The emailed invitation: the patient chooses a password, is signed in and lands on the questionnaire.
    The link is Django's password-reset token: single use (it dies with the password change) and expiring.
    Only a portal account (linked to a patient record, with no staff membership) can be reached this way:
    staff reset their password through the sign-in page, where MFA applies."""

    template_name = "screening/invitation_accept.html"
    success_url = reverse_lazy("screening:portal_intake")
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        if user is None:
            return None
        is_patient = Patient.objects.filter(user_id=user.pk).exists()
        is_staff = user.is_staff or user.is_superuser or Membership.objects.filter(user_id=user.pk).exists()
        return user if is_patient and not is_staff else None
