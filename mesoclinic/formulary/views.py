"""Formulary pages: thin — parse, authorise through the services, render. htmx fragments where useful."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.forms import BaseForm, BaseFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.audit.models import Action
from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary import documents, rules, services
from mesoclinic.formulary.forms import (
    ComponentFormSet,
    FormulaForm,
    LineFormSet,
    LotReceiveForm,
    MovementForm,
    PreparationForm,
    RecallForm,
)
from mesoclinic.formulary.models import (
    CrossSensitivity,
    Formula,
    FormulaComponent,
    FormulaVersion,
    IngredientClass,
    Lot,
    Product,
    VialOpening,
)
from mesoclinic.patients.services import patient_get

# The recall report page lists patients by pages (letters drafted for those shown); CSV and PDF list them all.
EXPOSURE_PAGE_SIZE = 100


def _clinic(request: HttpRequest, perm: Perm) -> Clinic:
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, perm, clinic_id=clinic.pk):
        raise PermissionDenied
    return clinic


def _apply_errors(form: BaseForm, error: ValidationError, formset: BaseFormSet[Any] | None = None) -> None:
    """Put a service's field errors on the form (``components.2.unit`` lands on row 2 of the formset)."""
    for name, messages_ in error.message_dict.items():
        parts = name.split(".")
        if (
            formset is not None
            and len(parts) == 3
            and parts[1].isdigit()
            and int(parts[1]) < len(formset.forms)
        ):
            row = formset.forms[int(parts[1])]
            target = {"ingredient_id": "ingredient", "lot_id": "lot", "vial_id": "vial"}.get(
                parts[2], parts[2]
            )
            for message in messages_:
                row.add_error(target if target in row.fields else None, message)
            continue
        target = {"diluent_id": "diluent", "product_id": "product"}.get(name, name)
        for message in messages_:
            form.add_error(target if target in form.fields else None, message)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.FORMULARY_VIEW)
    formulas = Formula.objects.filter(clinic=clinic, is_active=True).order_by("name")
    return render(
        request,
        "formulary/home.html",
        {
            "clinic": clinic,
            "formulas": formulas,
            "can_manage": can(request.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk),
        },
    )


@login_required
def ingredients(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.FORMULARY_VIEW)
    rows = (
        services.ingredients_for(clinic)
        .prefetch_related(
            "allergy_groups",
            Prefetch("cautions", queryset=CrossSensitivity.objects.select_related("group")),
            "statuses",
            "limits",
        )
        .order_by("ingredient_class", "name")
    )
    klass = request.GET.get("class", "")
    if klass in IngredientClass.values:
        rows = rows.filter(ingredient_class=klass)
    table = []
    for ingredient in rows:
        statuses = rules.applicable_statuses(
            [services.status_facts(row) for row in ingredient.statuses.all()],
            clinic.jurisdiction,
            frozenset(),
        )
        table.append({"ingredient": ingredient, "statuses": statuses})
    context = {"clinic": clinic, "rows": table, "classes": IngredientClass.choices, "klass": klass}
    template = (
        "formulary/_ingredients.html" if request.headers.get("HX-Request") else "formulary/ingredients.html"
    )
    return render(request, template, context)


@login_required
def formula_detail(request: HttpRequest, formula_id: int) -> HttpResponse:
    caller = Caller.of(request)
    formula = services.formula_get(caller=caller, formula_id=formula_id)
    versions = list(formula.versions.order_by("-number"))
    current = versions[0]
    return render(
        request,
        "formulary/formula_detail.html",
        {
            "formula": formula,
            "version": current,
            "components": FormulaComponent.objects.filter(version=current).select_related("ingredient"),
            "versions": versions,
            "findings": services.formula_jurisdiction_findings(caller=caller, formula=formula),
            "can_manage": can(request.user, Perm.FORMULARY_MANAGE, clinic_id=formula.clinic_id),
        },
    )


def _formula_content(form: FormulaForm, formset: BaseFormSet[Any]) -> services.FormulaContent:
    components = [
        services.ComponentIn(
            row.cleaned_data["ingredient"].pk if row.cleaned_data.get("ingredient") else None,
            row.cleaned_data.get("concentration"),
            row.cleaned_data.get("unit") or "",
        )
        for row in formset.forms
        if row.cleaned_data.get("ingredient") or row.cleaned_data.get("concentration")
    ]
    diluent = form.cleaned_data.get("diluent")
    return services.FormulaContent(
        components=components,
        total_volume_ml=form.cleaned_data.get("total_volume_ml"),
        indications=form.cleaned_data.get("indications") or [],
        diluent_id=diluent.pk if diluent else None,
        preparation_notes=form.cleaned_data.get("preparation_notes") or "",
    )


@login_required
def formula_edit(request: HttpRequest, formula_id: int | None = None) -> HttpResponseBase:
    """Create a formula, or revise one (a new version once the current one is used)."""
    caller = Caller.of(request)
    formula = (
        services.formula_get(caller=caller, formula_id=formula_id, perm=Perm.FORMULARY_MANAGE)
        if formula_id is not None
        else None
    )
    clinic = formula.clinic if formula else _clinic(request, Perm.FORMULARY_MANAGE)
    initial: dict[str, Any] = {}
    initial_rows: list[dict[str, Any]] = []
    if formula is not None:
        version = services.current_version(formula)
        initial = {
            "name": formula.name,
            "indications": version.indications,
            "total_volume_ml": version.total_volume_ml,
            "diluent": version.diluent_id,
            "preparation_notes": version.preparation_notes,
        }
        initial_rows = [
            {"ingredient": c.ingredient_id, "concentration": c.concentration, "unit": c.unit}
            for c in FormulaComponent.objects.filter(version=version)
        ]
    form = FormulaForm(request.POST or None, initial=initial)
    formset = ComponentFormSet(request.POST or None, initial=initial_rows or None, prefix="components")
    catalogue = services.ingredients_for(clinic).order_by("name")
    form.fields["diluent"].queryset = catalogue.filter(ingredient_class=IngredientClass.DILUENT)  # type: ignore[attr-defined]
    if formula is not None:
        form.fields["name"].disabled = True
    for row in formset.forms:
        row.fields["ingredient"].queryset = catalogue  # type: ignore[attr-defined]
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        content = _formula_content(form, formset)
        try:
            if formula is None:
                formula = services.formula_create(
                    caller=caller, clinic=clinic, name=form.cleaned_data["name"], content=content
                )
            else:
                services.formula_revise(caller=caller, formula=formula, content=content)
        except ValidationError as error:
            _apply_errors(form, error, formset)
        else:
            return redirect("formulary:formula", formula_id=formula.pk)
    title = _("Revise %(name)s") % {"name": formula.name} if formula else _("New formula")
    return render(
        request,
        "formulary/formula_form.html",
        {"form": form, "formset": formset, "title": title, "formula": formula},
        status=400 if form.errors or any(row.errors for row in formset.forms) else 200,
    )


@login_required
def stock(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.FORMULARY_VIEW)
    overview = services.stock_overview(caller=Caller.of(request), clinic=clinic)
    return render(
        request,
        "formulary/stock.html",
        {
            "clinic": clinic,
            "overview": overview,
            "can_stock": can(request.user, Perm.STOCK_MANAGE, clinic_id=clinic.pk),
        },
    )


@login_required
def lot_new(request: HttpRequest) -> HttpResponseBase:
    clinic = _clinic(request, Perm.STOCK_MANAGE)
    form = LotReceiveForm(
        request.POST or None, products=Product.objects.filter(clinic=clinic, is_active=True).order_by("name")
    )
    if request.method == "POST" and form.is_valid():
        try:
            lot = services.lot_receive(
                caller=Caller.of(request),
                product=form.cleaned_data["product"],
                number=form.cleaned_data["number"],
                expires_on=form.cleaned_data["expires_on"],
                received_on=form.cleaned_data["received_on"],
                received_vials=form.cleaned_data["received_vials"],
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            return redirect("formulary:lot", lot_id=lot.pk)
    return render(
        request,
        "formulary/form.html",
        {"form": form, "title": _("Receive a lot"), "back": "formulary:stock"},
        status=400 if form.errors else 200,
    )


@login_required
def lot_detail(request: HttpRequest, lot_id: int) -> HttpResponse:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id)
    vials = [
        (vial, services.vial_remaining(vial))
        for vial in VialOpening.objects.filter(lot=lot, closed_at__isnull=True).select_related("lot__product")
    ]
    return render(
        request,
        "formulary/lot_detail.html",
        {
            "lot": lot,
            "stock_ml": services.lot_stock(lot),
            "movements": services.lot_movements(caller=caller, lot=lot),
            "vials": vials,
            "movement_form": MovementForm(),
            "recall_form": RecallForm(),
            "can_stock": can(request.user, Perm.STOCK_MANAGE, clinic_id=lot.clinic_id),
            "can_prepare": can(request.user, Perm.PREPARATION_CREATE, clinic_id=lot.clinic_id),
            "can_recall": can(request.user, Perm.LOT_RECALL, clinic_id=lot.clinic_id),
            "can_exposure": can(request.user, Perm.EXPOSURE_VIEW, clinic_id=lot.clinic_id),
        },
    )


def _flash_errors(request: HttpRequest, error: ValidationError) -> None:
    for messages_ in error.message_dict.values():
        for message in messages_:
            messages.error(request, message)


@login_required
@require_POST
def lot_movement(request: HttpRequest, lot_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.STOCK_MANAGE)
    form = MovementForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, str(message))
        return redirect("formulary:lot", lot_id=lot.pk)
    try:
        services.stock_move(
            caller=caller,
            lot=lot,
            kind=form.cleaned_data["kind"],
            quantity_ml=form.cleaned_data["quantity_ml"],
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, _("Movement recorded."))
    return redirect("formulary:lot", lot_id=lot.pk)


@login_required
@require_POST
def vial_open(request: HttpRequest, lot_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.PREPARATION_CREATE)
    try:
        services.vial_open(caller=caller, lot=lot)
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, _("Vial opened."))
    return redirect("formulary:lot", lot_id=lot.pk)


@login_required
@require_POST
def vial_close(request: HttpRequest, vial_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    vial = services.vial_get(caller=caller, vial_id=vial_id, perm=Perm.STOCK_MANAGE)
    try:
        services.vial_close(caller=caller, vial=vial, reason=request.POST.get("reason", "")[:300])
    except ValidationError as error:
        _flash_errors(request, error)
    return redirect("formulary:lot", lot_id=vial.lot_id)


@login_required
@require_POST
def lot_recall(request: HttpRequest, lot_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.LOT_RECALL)
    form = RecallForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"reason": [_("Say why the lot is recalled.")]})
        services.lot_recall(caller=caller, lot=lot, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        _flash_errors(request, error)
        return redirect("formulary:lot", lot_id=lot.pk)
    messages.success(request, _("Lot recalled: it can no longer be used."))
    return redirect("formulary:exposure", lot_id=lot.pk)


@login_required
def exposure(request: HttpRequest, lot_id: int) -> HttpResponse:
    """The recall report: every patient and preparation exposed to the lot, with a message draft each."""
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
    try:
        page = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        page = 1
    report = services.lot_exposure(
        caller=caller, lot=lot, limit=EXPOSURE_PAGE_SIZE, offset=(page - 1) * EXPOSURE_PAGE_SIZE
    )
    return render(
        request,
        "formulary/exposure.html",
        {
            "lot": lot,
            "report": report,
            "rows": documents.with_messages(report, lot.clinic),
            "page": page,
            "has_next": page * EXPOSURE_PAGE_SIZE < report.patient_count,
        },
    )


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _safe_filename(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)[:60] or "lot"


@login_required
def exposure_csv(request: HttpRequest, lot_id: int) -> HttpResponse:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
    report = services.lot_exposure(caller=caller, lot=lot, action=Action.PATIENT_EXPORT)
    response = HttpResponse(documents.recall_csv(report), content_type="text/csv; charset=utf-8")
    return _attachment(response, f"recall-{_safe_filename(lot.number)}.csv")


@login_required
def exposure_pdf(request: HttpRequest, lot_id: int) -> HttpResponse:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
    report = services.lot_exposure(caller=caller, lot=lot, action=Action.PATIENT_PRINT)
    response = HttpResponse(documents.recall_pdf(report, lot.clinic), content_type="application/pdf")
    return _attachment(response, f"recall-{_safe_filename(lot.number)}.pdf")


@login_required
def patient_lots(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient, received = services.patient_lots(caller=Caller.of(request), patient_id=patient_id)
    return render(request, "formulary/patient_lots.html", {"patient": patient, "received": received})


@login_required
def preparation_new(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    """Prepare a formula version for a patient, choosing the lot (and opened vial) of every ingredient."""
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.PREPARATION_CREATE, audit=False)
    versions = (
        FormulaVersion.objects.filter(formula__clinic_id=patient.clinic_id, formula__is_active=True)
        .select_related("formula")
        .order_by("formula__name", "-number")
    )
    chosen_id = request.POST.get("formula_version") or request.GET.get("formula_version")
    version = versions.filter(pk=chosen_id).first() if chosen_id and str(chosen_id).isdigit() else None
    form = PreparationForm(request.POST or None)
    formset = LineFormSet(request.POST or None, prefix="lines")
    lots = (
        Lot.objects.filter(clinic_id=patient.clinic_id, recalled_at__isnull=True)
        .select_related("product")
        .order_by("product__name", "expires_on")
    )
    for row in formset.forms:
        row.fields["lot"].queryset = lots  # type: ignore[attr-defined]
    if request.method == "POST" and version is None:
        form.add_error(None, _("Choose a formula version."))
    elif request.method == "POST" and version is not None and form.is_valid() and formset.is_valid():
        lines = [
            services.LineIn(
                row.cleaned_data["lot"].pk, row.cleaned_data.get("volume_ml"), row.cleaned_data.get("vial")
            )
            for row in formset.forms
            if row.cleaned_data.get("lot")
        ]
        try:
            services.preparation_create(
                caller=caller,
                patient=patient,
                formula_version=version,
                lines=lines,
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as error:
            _apply_errors(form, error, formset)
        else:
            messages.success(request, _("Preparation recorded."))
            return redirect("formulary:patient_lots", patient_id=patient.pk)
    components = (
        FormulaComponent.objects.filter(version=version).select_related("ingredient") if version else []
    )
    return render(
        request,
        "formulary/preparation_form.html",
        {
            "patient": patient,
            "versions": versions,
            "version": version,
            "components": components,
            "form": form,
            "formset": formset,
        },
        status=400 if form.errors or any(row.errors for row in formset.forms) else 200,
    )
