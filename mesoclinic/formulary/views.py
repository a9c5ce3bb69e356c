"""Formulary pages: thin — parse, authorise through the services, render. htmx fragments where useful.

Read-only pages answer GET and HEAD only; forms GET and POST; actions POST only (anything else is a 405)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.forms import BaseForm, BaseFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import audit_record
from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary import documents, rules, services
from mesoclinic.formulary.forms import (
    CautionForm,
    ComponentFormSet,
    FormulaForm,
    IngredientForm,
    LimitForm,
    LineFormSet,
    LotReceiveForm,
    MovementForm,
    PreparationForm,
    ProductComponentFormSet,
    ProductForm,
    RecallForm,
    RegulatoryStatusForm,
)
from mesoclinic.formulary.models import (
    CrossSensitivity,
    Formula,
    FormulaComponent,
    FormulaVersion,
    Ingredient,
    IngredientClass,
    Lot,
    Product,
    ProductLimit,
)
from mesoclinic.patients.services import patient_get

# The recall report page lists patients by pages (letters drafted for those shown); the CSV lists them all,
# the PDF prints them by parts of documents.PDF_PART_PATIENTS.
EXPOSURE_PAGE_SIZE = 100
MAX_PAGE = 1_000_000

require_form = require_http_methods(["GET", "HEAD", "POST"])


def _clinic(request: HttpRequest, perm: Perm) -> Clinic:
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, perm, clinic_id=clinic.pk):
        raise PermissionDenied
    return clinic


def _page_number(request: HttpRequest, name: str) -> int:
    """A page or part number from the query string: 1 when missing or nonsense, at most MAX_PAGE."""
    raw = request.GET.get(name, "1")
    return min(max(int(raw), 1), MAX_PAGE) if raw.isdigit() and len(raw) < 10 else 1


# A service's field name → the form field that shows its error (None: the form's own errors).
FORM_FIELDS: dict[str, str | None] = {
    "diluent_id": "diluent",
    "product_id": "product",
    "ingredient_id": "ingredient",
    "formula_version_id": None,
}


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
        on_field = FORM_FIELDS.get(name, name)
        for message in messages_:
            form.add_error(on_field if on_field in form.fields else None, message)


def _status(*forms_: BaseForm | BaseFormSet[Any]) -> int:
    """400 when a form shows errors (the page is shown again, nothing was written), else 200."""
    for form in forms_:
        if isinstance(form, BaseFormSet):
            if form.is_bound and (form.non_form_errors() or any(row.errors for row in form.forms)):
                return 400
        elif form.errors:
            return 400
    return 200


def _flash_errors(request: HttpRequest, error: ValidationError) -> None:
    for messages_ in error.message_dict.values():
        for message in messages_:
            messages.error(request, message)


@login_required
@require_safe
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


def _ingredient_rows(clinic: Clinic) -> Any:
    return services.ingredients_for(clinic).prefetch_related(
        "allergy_groups",
        Prefetch("cautions", queryset=CrossSensitivity.objects.select_related("group").order_by("id")),
        Prefetch("statuses", queryset=services.statuses_for(clinic).order_by("jurisdiction", "id")),
        Prefetch("limits", queryset=ProductLimit.objects.order_by("id")),
    )


@login_required
@require_safe
def ingredients(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.FORMULARY_VIEW)
    rows = _ingredient_rows(clinic).order_by("ingredient_class", "name")
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
    context = {
        "clinic": clinic,
        "rows": table,
        "classes": IngredientClass.choices,
        "klass": klass,
        "can_manage": can(request.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk),
    }
    template = (
        "formulary/_ingredients.html" if request.headers.get("HX-Request") else "formulary/ingredients.html"
    )
    return render(request, template, context)


@login_required
@require_form
def ingredient_new(request: HttpRequest) -> HttpResponseBase:
    """Add one of the clinic's own ingredients (the seeded catalogue is everyone's)."""
    clinic = _clinic(request, Perm.FORMULARY_MANAGE)
    form = IngredientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data, "allergy_groups": [g.code for g in form.cleaned_data["allergy_groups"]]}
        try:
            ingredient = services.ingredient_create(caller=Caller.of(request), clinic=clinic, data=data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Ingredient added."))
            return redirect("formulary:ingredient", ingredient_id=ingredient.pk)
    return render(
        request,
        "formulary/form.html",
        {"form": form, "title": _("New ingredient"), "back": "formulary:ingredients"},
        status=_status(form),
    )


def _ingredient_in_clinic(request: HttpRequest, ingredient_id: int, perm: Perm) -> tuple[Clinic, Ingredient]:
    """An ingredient of the current clinic's catalogue (seeded, or its own); another clinic's is a 404."""
    clinic = _clinic(request, perm)
    ingredient = _ingredient_rows(clinic).filter(pk=ingredient_id).first()
    if ingredient is None:
        raise Http404(_("Not found."))
    return clinic, ingredient


def _ingredient_page(
    request: HttpRequest,
    clinic: Clinic,
    ingredient: Ingredient,
    *,
    caution_form: CautionForm | None = None,
    limit_form: LimitForm | None = None,
    status: int = 200,
) -> HttpResponse:
    can_manage = can(request.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk)
    own = ingredient.clinic_id == clinic.pk
    statuses = list(ingredient.statuses.all())
    facts = [services.status_facts(row) for row in statuses]
    speaking = rules.applicable_statuses(facts, clinic.jurisdiction, frozenset())
    speaking_ids = {row.pk for row, fact in zip(statuses, facts, strict=True) if fact in speaking}
    return render(
        request,
        "formulary/ingredient_detail.html",
        {
            "clinic": clinic,
            "ingredient": ingredient,
            "statuses": statuses,
            "speaking_ids": speaking_ids,
            "own": own,
            "can_manage": can_manage,
            "caution_form": caution_form or (CautionForm() if own and can_manage else None),
            "limit_form": limit_form or (LimitForm() if own and can_manage else None),
        },
        status=status,
    )


@login_required
@require_safe
def ingredient_detail(request: HttpRequest, ingredient_id: int) -> HttpResponse:
    clinic, ingredient = _ingredient_in_clinic(request, ingredient_id, Perm.FORMULARY_VIEW)
    return _ingredient_page(request, clinic, ingredient)


@login_required
@require_POST
def caution_add(request: HttpRequest, ingredient_id: int) -> HttpResponseBase:
    clinic, ingredient = _ingredient_in_clinic(request, ingredient_id, Perm.FORMULARY_MANAGE)
    form = CautionForm(request.POST)
    if form.is_valid():
        try:
            services.caution_create(
                caller=Caller.of(request),
                ingredient=ingredient,
                group=form.cleaned_data["group"].code,
                note=form.cleaned_data["note"],
                source=form.cleaned_data["source"],
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Caution added."))
            return redirect("formulary:ingredient", ingredient_id=ingredient.pk)
    return _ingredient_page(request, clinic, ingredient, caution_form=form, status=400)


@login_required
@require_POST
def limit_add(request: HttpRequest, ingredient_id: int) -> HttpResponseBase:
    clinic, ingredient = _ingredient_in_clinic(request, ingredient_id, Perm.FORMULARY_MANAGE)
    form = LimitForm(request.POST)
    if form.is_valid():
        try:
            services.product_limit_create(
                caller=Caller.of(request), ingredient=ingredient, data=form.cleaned_data
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Product limit added."))
            return redirect("formulary:ingredient", ingredient_id=ingredient.pk)
    return _ingredient_page(request, clinic, ingredient, limit_form=form, status=400)


@login_required
@require_POST
def caution_delete(request: HttpRequest, caution_id: int) -> HttpResponseBase:
    try:
        ingredient = services.caution_delete(caller=Caller.of(request), caution_id=caution_id)
    except ValidationError as error:
        _flash_errors(request, error)
        return redirect("formulary:ingredients")
    messages.success(request, _("Caution removed."))
    return redirect("formulary:ingredient", ingredient_id=ingredient.pk)


@login_required
@require_POST
def limit_delete(request: HttpRequest, limit_id: int) -> HttpResponseBase:
    try:
        ingredient = services.product_limit_delete(caller=Caller.of(request), limit_id=limit_id)
    except ValidationError as error:
        _flash_errors(request, error)
        return redirect("formulary:ingredients")
    messages.success(request, _("Product limit removed."))
    return redirect("formulary:ingredient", ingredient_id=ingredient.pk)


@login_required
@require_form
def regulatory(request: HttpRequest) -> HttpResponseBase:
    """The clinic's own regulatory statuses (R-REG: clinic configuration), which override the seeded ones
    for its jurisdiction, and the form to add one."""
    clinic = _clinic(request, Perm.FORMULARY_VIEW)
    can_manage = can(request.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk)
    if request.method == "POST" and not can_manage:
        raise PermissionDenied
    form = RegulatoryStatusForm(request.POST or None, initial={"jurisdiction": clinic.jurisdiction})
    form.fields["ingredient"].queryset = services.ingredients_for(clinic).order_by("name")  # type: ignore[attr-defined]
    if request.method == "POST" and form.is_valid():
        ingredient = form.cleaned_data["ingredient"]
        try:
            services.regulatory_status_create(
                caller=Caller.of(request),
                clinic=clinic,
                ingredient_id=ingredient.pk if ingredient else None,
                jurisdiction=form.cleaned_data["jurisdiction"],
                status=form.cleaned_data["status"],
                indications=form.cleaned_data["indications"],
                use=form.cleaned_data["use"],
                source=form.cleaned_data["source"],
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Regulatory status added."))
            return redirect("formulary:regulatory")
    return render(
        request,
        "formulary/regulatory.html",
        {
            "clinic": clinic,
            "rows": services.regulatory_statuses_of(clinic),
            "form": form if can_manage else None,
        },
        status=_status(form),
    )


@login_required
@require_POST
def regulatory_delete(request: HttpRequest, status_id: int) -> HttpResponseBase:
    try:
        services.regulatory_status_delete(caller=Caller.of(request), status_id=status_id)
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, _("Regulatory status removed: the seeded status applies again."))
    return redirect("formulary:regulatory")


@login_required
@require_safe
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
@require_form
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
        status=_status(form, formset),
    )


@login_required
@require_safe
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
@require_form
def product_new(request: HttpRequest) -> HttpResponseBase:
    """Add a product (supplier, vial, single- or multi-dose, beyond-use time, the strength of each
    ingredient), so that its lots can be received."""
    clinic = _clinic(request, Perm.STOCK_MANAGE)
    form = ProductForm(request.POST or None)
    formset = ProductComponentFormSet(request.POST or None, prefix="components")
    catalogue = services.ingredients_for(clinic).order_by("name")
    for row in formset.forms:
        row.fields["ingredient"].queryset = catalogue  # type: ignore[attr-defined]
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        components = [
            services.ProductComponentIn(
                row.cleaned_data["ingredient"].pk if row.cleaned_data.get("ingredient") else None,
                row.cleaned_data.get("strength"),
                row.cleaned_data.get("unit") or "",
            )
            for row in formset.forms
            if row.cleaned_data.get("ingredient") or row.cleaned_data.get("strength")
        ]
        try:
            product = services.product_create(
                caller=Caller.of(request), clinic=clinic, data=form.cleaned_data, components=components
            )
        except ValidationError as error:
            _apply_errors(form, error, formset)
        else:
            messages.success(request, _("Product added: its lots can now be received."))
            return redirect(f"{reverse('formulary:lot_new')}?product={product.pk}")
    return render(
        request,
        "formulary/product_form.html",
        {"form": form, "formset": formset, "title": _("New product")},
        status=_status(form, formset),
    )


@login_required
@require_form
def lot_new(request: HttpRequest) -> HttpResponseBase:
    clinic = _clinic(request, Perm.STOCK_MANAGE)
    products = Product.objects.filter(clinic=clinic, is_active=True).order_by("name")
    chosen = request.GET.get("product", "")
    initial = {"product": int(chosen)} if chosen.isdigit() and len(chosen) < 19 else {}
    form = LotReceiveForm(request.POST or None, products=products, initial=initial)
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
        "formulary/lot_form.html",
        {
            "form": form,
            "title": _("Receive a lot"),
            "back": "formulary:stock",
            "has_products": products.exists(),
        },
        status=_status(form),
    )


@login_required
@require_safe
def lot_detail(request: HttpRequest, lot_id: int) -> HttpResponse:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id)
    return render(
        request,
        "formulary/lot_detail.html",
        {
            "lot": lot,
            "stock_ml": services.lot_stock(lot),
            "movements": services.lot_movements(caller=caller, lot=lot),
            "vials": services.lot_open_vials(caller=caller, lot=lot),
            "movement_form": MovementForm(),
            "recall_form": RecallForm(),
            "can_stock": can(request.user, Perm.STOCK_MANAGE, clinic_id=lot.clinic_id),
            "can_prepare": can(request.user, Perm.PREPARATION_CREATE, clinic_id=lot.clinic_id),
            "can_recall": can(request.user, Perm.LOT_RECALL, clinic_id=lot.clinic_id),
            "can_exposure": can(request.user, Perm.EXPOSURE_VIEW, clinic_id=lot.clinic_id),
        },
    )


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
@require_safe
def exposure(request: HttpRequest, lot_id: int) -> HttpResponse:
    """The recall report: every patient exposed to the lot (preparations and direct administrations), with a
    message draft each."""
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
    page = _page_number(request, "page")
    report = services.lot_exposure(
        caller=caller, lot=lot, limit=EXPOSURE_PAGE_SIZE, offset=(page - 1) * EXPOSURE_PAGE_SIZE
    )
    parts = documents.pdf_parts(report.patient_count)
    return render(
        request,
        "formulary/exposure.html",
        {
            "lot": lot,
            "report": report,
            "rows": documents.with_messages(report, lot.clinic),
            "page": page,
            "has_next": page * EXPOSURE_PAGE_SIZE < report.patient_count,
            "pdf_parts": [
                (
                    part,
                    (part - 1) * documents.PDF_PART_PATIENTS + 1,
                    min(part * documents.PDF_PART_PATIENTS, report.patient_count),
                )
                for part in range(1, parts + 1)
            ]
            if parts > 1
            else [],
        },
    )


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _safe_filename(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)[:60] or "lot"


@login_required
@require_safe
def exposure_csv(request: HttpRequest, lot_id: int) -> HttpResponse:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
    report = services.lot_exposure(caller=caller, lot=lot, action=Action.PATIENT_EXPORT)
    response = HttpResponse(documents.recall_csv(report), content_type="text/csv; charset=utf-8")
    return _attachment(response, f"recall-{_safe_filename(lot.number)}.csv")


@login_required
@require_safe
def exposure_pdf(request: HttpRequest, lot_id: int) -> HttpResponse:
    """The recall report as a PDF, by parts of documents.PDF_PART_PATIENTS patients (``?part=2``…): a
    request never lays out more than that (a whole big recall: ``manage.py recall_report``)."""
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
    part = _page_number(request, "part")
    size = documents.PDF_PART_PATIENTS
    report = services.lot_exposure(
        caller=caller, lot=lot, action=Action.PATIENT_PRINT, limit=size, offset=(part - 1) * size
    )
    if part > documents.pdf_parts(report.patient_count):
        raise Http404(_("Not found."))
    response = HttpResponse(
        documents.recall_pdf(report, lot.clinic, part=part), content_type="application/pdf"
    )
    suffix = f"-part{part}" if documents.pdf_parts(report.patient_count) > 1 else ""
    return _attachment(response, f"recall-{_safe_filename(lot.number)}{suffix}.pdf")


@login_required
@require_safe
def patient_lots(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient, received = services.patient_lots(caller=Caller.of(request), patient_id=patient_id)
    return render(request, "formulary/patient_lots.html", {"patient": patient, "received": received})


def _version_refusal(clinic: Clinic, chosen: str) -> str:
    """Why the posted formula version is not one the page offers: another clinic's, an older version, a
    formula no longer in use, or nothing at all."""
    if chosen.isdigit() and len(chosen) < 20:
        try:
            services.preparable_version(clinic=clinic, formula_version_id=int(chosen))
        except ValidationError as error:
            return str(error.messages[0])
    return _("Choose a formula version.")


@login_required
@require_form
def preparation_new(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    """Prepare the current version of a formula in use for a patient, choosing the lot (and opened vial) of
    every ingredient. Showing the patient on the page is audited as a read of the record."""
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.PREPARATION_CREATE, audit=False)
    current = {
        formula_id: number
        for formula_id, number in FormulaVersion.objects.filter(
            formula__clinic_id=patient.clinic_id, formula__is_active=True
        )
        .order_by("formula_id", "number")
        .values_list("formula_id", "number")
    }
    versions = [
        version
        for version in FormulaVersion.objects.filter(formula_id__in=list(current))
        .select_related("formula")
        .order_by("formula__name", "-number")
        if current[version.formula_id] == version.number
    ]
    chosen_id = request.POST.get("formula_version") or request.GET.get("formula_version") or ""
    version = next((v for v in versions if str(v.pk) == chosen_id), None)
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
        form.add_error(None, _version_refusal(patient.clinic, chosen_id))
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
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.PATIENT_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail={"page": "formulary.prepare"},
    )
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
        status=_status(form, formset),
    )
