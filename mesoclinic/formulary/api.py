"""The formulary's JSON API: thin — parse, find the clinic, call a service, shape the answer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.policy import Perm, clinic_roles, clinics_with
from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary import documents, schemas, services
from mesoclinic.formulary.models import (
    AllergyGroup,
    CrossSensitivity,
    Formula,
    FormulaComponent,
    FormulaVersion,
    Ingredient,
    Lot,
    Preparation,
    Product,
    ProductComponent,
    ProductLimit,
    RegulatoryStatus,
    StockMovement,
    VialOpening,
)
from mesoclinic.lib.findings import Finding
from mesoclinic.lib.ids import is_valid_id
from mesoclinic.patients.services import patient_get

router = Router(tags=["formulary"])


def _clinic(request: HttpRequest, perm: Perm, clinic_id: int | None) -> Clinic:
    """The clinic a call acts in: the one named, or the caller's only clinic with this permission."""
    allowed = clinics_with(request.user, perm)
    if clinic_id is None:
        if len(allowed) != 1:
            if not allowed:
                raise PermissionDenied
            raise ValidationError({"clinic_id": [_("You work in several clinics: say which one.")]})
        clinic_id = allowed[0]
    elif clinic_id not in allowed:
        raise PermissionDenied
    return Clinic.objects.get(pk=clinic_id)


def _finding(finding: Finding) -> dict[str, str]:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "rule": finding.rule,
        "message": finding.message,
        "source": finding.source,
    }


# --- ingredients -----------------------------------------------------------------------------------------


def _ingredient_out(ingredient: Ingredient) -> dict[str, Any]:
    return {
        "id": ingredient.pk,
        "clinic_id": ingredient.clinic_id,
        "code": ingredient.code,
        "name": ingredient.name,
        "ingredient_class": ingredient.ingredient_class,
        "description": ingredient.description,
        "teratogen": ingredient.teratogen,
        "source": ingredient.source,
        "allergy_groups": sorted(group.code for group in ingredient.allergy_groups.all()),
        "cautions": [
            {"id": c.pk, "group": c.group.code, "note": c.note, "source": c.source}
            for c in ingredient.cautions.all()
        ],
        "statuses": [_status_out(row) for row in ingredient.statuses.all()],
        "limits": [
            {name: getattr(limit, name) for name in schemas.LimitOut.model_fields}
            for limit in ingredient.limits.all()
        ],
    }


def _status_out(row: RegulatoryStatus) -> dict[str, Any]:
    return {
        "id": row.pk,
        "clinic_id": row.clinic_id,
        "ingredient_id": row.ingredient_id,
        "jurisdiction": row.jurisdiction,
        "status": row.status,
        "indications": list(row.indications or []),
        "use": row.use,
        "source": row.source,
    }


def _ingredients_query(clinic: Clinic) -> Any:
    return services.ingredients_for(clinic).prefetch_related(
        "allergy_groups",
        Prefetch("cautions", queryset=CrossSensitivity.objects.select_related("group").order_by("id")),
        Prefetch("statuses", queryset=services.statuses_for(clinic).order_by("jurisdiction", "id")),
        Prefetch("limits", queryset=ProductLimit.objects.order_by("id")),
    )


@router.get(
    "/formulary/allergy-groups", response=list[schemas.AllergyGroupOut], summary="List allergy groups"
)
def list_allergy_groups(request: HttpRequest) -> Any:
    if not clinics_with(request.user, Perm.FORMULARY_VIEW):
        raise PermissionDenied
    return list(AllergyGroup.objects.order_by("code").values("code", "name"))


@router.get("/formulary/ingredients", response=list[schemas.IngredientOut], summary="List ingredients")
def list_ingredients(request: HttpRequest, q: str = "", clinic_id: int | None = None) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_VIEW, clinic_id)
    rows = _ingredients_query(clinic).order_by("name")
    text = q.replace("\x00", "").strip()[:60]
    if text:
        rows = rows.filter(Q(name__icontains=text) | Q(code__icontains=text))
    return [_ingredient_out(ingredient) for ingredient in rows]


@router.get(
    "/formulary/ingredients/{ingredient_id}", response=schemas.IngredientOut, summary="Read an ingredient"
)
def read_ingredient(request: HttpRequest, ingredient_id: int, clinic_id: int | None = None) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_VIEW, clinic_id)
    ingredient = (
        _ingredients_query(clinic).filter(pk=ingredient_id).first() if is_valid_id(ingredient_id) else None
    )
    if ingredient is None:
        raise Http404(_("Not found."))
    return _ingredient_out(ingredient)


@router.post(
    "/formulary/ingredients", response={201: schemas.IngredientOut}, summary="Add a clinic ingredient"
)
def create_ingredient(request: HttpRequest, payload: schemas.IngredientIn) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_MANAGE, payload.clinic_id)
    ingredient = services.ingredient_create(
        caller=Caller.of(request), clinic=clinic, data=payload.model_dump(exclude={"clinic_id"})
    )
    return Status(201, _ingredient_out(_ingredients_query(clinic).get(pk=ingredient.pk)))


def _own_ingredient(request: HttpRequest, ingredient_id: int) -> Ingredient:
    """An ingredient the caller's clinics can see, for adding cautions and limits (the service refuses the
    seeded ones and checks formulary.manage in the ingredient's clinic)."""
    found = Ingredient.objects.filter(pk=ingredient_id).first() if is_valid_id(ingredient_id) else None
    if found is None or (found.clinic_id is not None and found.clinic_id not in clinic_roles(request.user)):
        raise Http404(_("Not found."))
    if found.clinic_id is None and not clinics_with(request.user, Perm.FORMULARY_VIEW):
        raise PermissionDenied
    return found


@router.get(
    "/formulary/regulatory-statuses",
    response=list[schemas.StatusOut],
    summary="The clinic's own regulatory statuses (overrides of the seeded ones)",
)
def list_regulatory_statuses(request: HttpRequest, clinic_id: int | None = None) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_VIEW, clinic_id)
    return [_status_out(row) for row in services.regulatory_statuses_of(clinic)]


@router.post(
    "/formulary/regulatory-statuses",
    response={201: schemas.StatusOut},
    summary="Add the clinic's own regulatory status for its jurisdiction",
)
def create_regulatory_status(request: HttpRequest, payload: schemas.RegulatoryStatusIn) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_MANAGE, payload.clinic_id)
    row = services.regulatory_status_create(
        caller=Caller.of(request),
        clinic=clinic,
        ingredient_id=payload.ingredient_id,
        jurisdiction=payload.jurisdiction,
        status=payload.status,
        indications=payload.indications,
        use=payload.use,
        source=payload.source,
    )
    return Status(201, _status_out(row))


@router.delete(
    "/formulary/regulatory-statuses/{status_id}",
    response={204: None},
    summary="Remove one of the clinic's own regulatory statuses",
)
def delete_regulatory_status(request: HttpRequest, status_id: int) -> Any:
    services.regulatory_status_delete(caller=Caller.of(request), status_id=status_id)
    return Status(204, None)


@router.post(
    "/formulary/ingredients/{ingredient_id}/cautions",
    response={201: schemas.CautionOut},
    summary="Add a cross-sensitivity caution to a clinic ingredient",
)
def create_caution(request: HttpRequest, ingredient_id: int, payload: schemas.CautionIn) -> Any:
    caution = services.caution_create(
        caller=Caller.of(request),
        ingredient=_own_ingredient(request, ingredient_id),
        group=payload.group,
        note=payload.note,
        source=payload.source,
    )
    return Status(
        201, {"id": caution.pk, "group": caution.group.code, "note": caution.note, "source": caution.source}
    )


@router.delete("/formulary/cautions/{caution_id}", response={204: None}, summary="Remove a caution")
def delete_caution(request: HttpRequest, caution_id: int) -> Any:
    services.caution_delete(caller=Caller.of(request), caution_id=caution_id)
    return Status(204, None)


@router.post(
    "/formulary/ingredients/{ingredient_id}/limits",
    response={201: schemas.LimitOut},
    summary="Add a product limit to a clinic ingredient",
)
def create_limit(request: HttpRequest, ingredient_id: int, payload: schemas.LimitIn) -> Any:
    limit = services.product_limit_create(
        caller=Caller.of(request),
        ingredient=_own_ingredient(request, ingredient_id),
        data=payload.model_dump(),
    )
    return Status(201, {name: getattr(limit, name) for name in schemas.LimitOut.model_fields})


@router.delete("/formulary/limits/{limit_id}", response={204: None}, summary="Remove a product limit")
def delete_limit(request: HttpRequest, limit_id: int) -> Any:
    services.product_limit_delete(caller=Caller.of(request), limit_id=limit_id)
    return Status(204, None)


# --- formulas --------------------------------------------------------------------------------------------


def _content(payload: schemas.FormulaContentIn) -> services.FormulaContent:
    return services.FormulaContent(
        components=[
            services.ComponentIn(c.ingredient_id, c.concentration, c.unit) for c in payload.components
        ],
        total_volume_ml=payload.total_volume_ml,
        indications=payload.indications,
        diluent_id=payload.diluent_id,
        preparation_notes=payload.preparation_notes,
    )


def _version_out(version: FormulaVersion) -> dict[str, Any]:
    components = FormulaComponent.objects.filter(version=version).select_related("ingredient")
    return {
        "id": version.pk,
        "number": version.number,
        "diluent_id": version.diluent_id,
        "total_volume_ml": version.total_volume_ml,
        "indications": list(version.indications or []),
        "preparation_notes": version.preparation_notes,
        "created_at": version.created_at,
        "used": version.is_used,
        "components": [
            {
                "ingredient_id": c.ingredient_id,
                "ingredient": c.ingredient.name,
                "concentration": c.concentration,
                "unit": c.unit,
            }
            for c in components
        ],
    }


def _formula_out(request: HttpRequest, formula: Formula) -> dict[str, Any]:
    version = services.current_version(formula)
    return {
        "id": formula.pk,
        "clinic_id": formula.clinic_id,
        "name": formula.name,
        "current_version": _version_out(version),
        "versions": list(formula.versions.order_by("number").values_list("id", flat=True)),
        "findings": [
            _finding(f)
            for f in services.formula_jurisdiction_findings(caller=Caller.of(request), formula=formula)
        ],
    }


@router.get("/formulary/formulas", response=list[schemas.FormulaSummary], summary="List formulas")
def list_formulas(request: HttpRequest, clinic_id: int | None = None) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_VIEW, clinic_id)
    latest = {
        formula_id: (version_id, number)
        for formula_id, version_id, number in FormulaVersion.objects.filter(formula__clinic=clinic)
        .order_by("formula_id", "number")
        .values_list("formula_id", "id", "number")
    }
    return [
        {
            "id": formula.pk,
            "name": formula.name,
            "current_version_id": latest[formula.pk][0],
            "current_version": latest[formula.pk][1],
        }
        for formula in Formula.objects.filter(clinic=clinic, is_active=True).order_by("name")
        if formula.pk in latest
    ]


@router.post("/formulary/formulas", response={201: schemas.FormulaOut}, summary="Create a formula")
def create_formula(request: HttpRequest, payload: schemas.FormulaIn) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_MANAGE, payload.clinic_id)
    formula = services.formula_create(
        caller=Caller.of(request), clinic=clinic, name=payload.name, content=_content(payload)
    )
    return Status(201, _formula_out(request, formula))


@router.get("/formulary/formulas/{formula_id}", response=schemas.FormulaOut, summary="Read a formula")
def read_formula(request: HttpRequest, formula_id: int) -> Any:
    return _formula_out(request, services.formula_get(caller=Caller.of(request), formula_id=formula_id))


@router.post(
    "/formulary/formulas/{formula_id}/versions",
    response={201: schemas.VersionOut},
    summary="Revise a formula (a new version once the current one is used)",
)
def revise_formula(request: HttpRequest, formula_id: int, payload: schemas.FormulaContentIn) -> Any:
    caller = Caller.of(request)
    formula = services.formula_get(caller=caller, formula_id=formula_id, perm=Perm.FORMULARY_MANAGE)
    version = services.formula_revise(caller=caller, formula=formula, content=_content(payload))
    return Status(201, _version_out(version))


@router.get(
    "/formulary/formulas/{formula_id}/versions/{number}",
    response=schemas.VersionOut,
    summary="Read a version",
)
def read_version(request: HttpRequest, formula_id: int, number: int) -> Any:
    formula = services.formula_get(caller=Caller.of(request), formula_id=formula_id)
    version = formula.versions.filter(number=number).first()
    if version is None:
        raise Http404(_("Not found."))
    return _version_out(version)


# --- products, lots, vials, stock ------------------------------------------------------------------------


def _product_out(product: Product) -> dict[str, Any]:
    return {
        "id": product.pk,
        "clinic_id": product.clinic_id,
        "name": product.name,
        "supplier": product.supplier,
        "vial_volume_ml": product.vial_volume_ml,
        "multi_dose": product.multi_dose,
        "beyond_use_hours": product.beyond_use_hours,
        "low_stock_vials": product.low_stock_vials,
        "components": [
            {
                "ingredient_id": c.ingredient_id,
                "ingredient": c.ingredient.name,
                "concentration": c.strength,
                "unit": c.unit,
            }
            for c in ProductComponent.objects.filter(product=product).select_related("ingredient")
        ],
    }


@router.get("/formulary/products", response=list[schemas.ProductOut], summary="List products")
def list_products(request: HttpRequest, clinic_id: int | None = None) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_VIEW, clinic_id)
    products = Product.objects.filter(clinic=clinic, is_active=True).prefetch_related(
        Prefetch("components", queryset=ProductComponent.objects.select_related("ingredient"))
    )
    return [
        {
            **{key: getattr(p, key) for key in ("id", "clinic_id", "name", "supplier", "vial_volume_ml")},
            "multi_dose": p.multi_dose,
            "beyond_use_hours": p.beyond_use_hours,
            "low_stock_vials": p.low_stock_vials,
            "components": [
                {
                    "ingredient_id": c.ingredient_id,
                    "ingredient": c.ingredient.name,
                    "concentration": c.strength,
                    "unit": c.unit,
                }
                for c in p.components.all()
            ],
        }
        for p in products
    ]


@router.post("/formulary/products", response={201: schemas.ProductOut}, summary="Add a product")
def create_product(request: HttpRequest, payload: schemas.ProductIn) -> Any:
    clinic = _clinic(request, Perm.STOCK_MANAGE, payload.clinic_id)
    product = services.product_create(
        caller=Caller.of(request),
        clinic=clinic,
        data=payload.model_dump(exclude={"clinic_id", "components"}),
        components=[
            services.ProductComponentIn(c.ingredient_id, c.strength, c.unit) for c in payload.components
        ],
    )
    return Status(201, _product_out(product))


@router.get("/formulary/products/{product_id}", response=schemas.ProductOut, summary="Read a product")
def read_product(request: HttpRequest, product_id: int) -> Any:
    return _product_out(services.product_get(caller=Caller.of(request), product_id=product_id))


def _lot_out(lot: Lot, stock: Decimal | None = None) -> dict[str, Any]:
    return {
        "id": lot.pk,
        "product_id": lot.product_id,
        "product": lot.product.name,
        "number": lot.number,
        "expires_on": lot.expires_on,
        "received_on": lot.received_on,
        "received_vials": lot.received_vials,
        "stock_ml": services.lot_stock(lot) if stock is None else stock,
        "recalled_at": lot.recalled_at,
        "recall_reason": lot.recall_reason,
    }


@router.post("/formulary/lots", response={201: schemas.LotOut}, summary="Receive a lot")
def receive_lot(request: HttpRequest, payload: schemas.LotIn) -> Any:
    caller = Caller.of(request)
    product = services.product_get(caller=caller, product_id=payload.product_id, perm=Perm.STOCK_MANAGE)
    lot = services.lot_receive(
        caller=caller,
        product=product,
        number=payload.number,
        expires_on=payload.expires_on,
        received_on=payload.received_on,
        received_vials=payload.received_vials,
    )
    return Status(201, _lot_out(lot))


@router.get("/formulary/lots/{lot_id}", response=schemas.LotOut, summary="Read a lot")
def read_lot(request: HttpRequest, lot_id: int) -> Any:
    return _lot_out(services.lot_get(caller=Caller.of(request), lot_id=lot_id))


def _movement_out(movement: StockMovement) -> dict[str, Any]:
    return {
        "id": movement.pk,
        "lot_id": movement.lot_id,
        "vial_id": movement.vial_id,
        "kind": movement.kind,
        "quantity_ml": movement.quantity_ml,
        "reason": movement.reason,
        "preparation_id": movement.preparation_id,
        "patient_id": movement.patient_id,
        "at": movement.at,
    }


@router.get("/formulary/lots/{lot_id}/movements", response=list[schemas.MovementOut], summary="Lot movements")
def list_movements(request: HttpRequest, lot_id: int) -> Any:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id)
    return [_movement_out(m) for m in services.lot_movements(caller=caller, lot=lot)]


@router.post(
    "/formulary/lots/{lot_id}/movements",
    response={201: schemas.MovementOut},
    summary="Record waste, a return to the supplier or an adjustment",
)
def create_movement(request: HttpRequest, lot_id: int, payload: schemas.MovementIn) -> Any:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.STOCK_MANAGE)
    movement = services.stock_move(
        caller=caller, lot=lot, kind=payload.kind, quantity_ml=payload.quantity_ml, reason=payload.reason
    )
    return Status(201, _movement_out(movement))


def _vial_out(vial: VialOpening, remaining: Decimal | None = None) -> dict[str, Any]:
    return {
        "id": vial.pk,
        "lot_id": vial.lot_id,
        "opened_at": vial.opened_at,
        "beyond_use_at": vial.beyond_use_at,
        "closed_at": vial.closed_at,
        "remaining_ml": services.vial_remaining(vial) if remaining is None else remaining,
    }


@router.post(
    "/formulary/lots/{lot_id}/vials", response={201: schemas.VialOut}, summary="Open a multi-dose vial"
)
def open_vial(request: HttpRequest, lot_id: int) -> Any:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.PREPARATION_CREATE)
    return Status(201, _vial_out(services.vial_open(caller=caller, lot=lot)))


@router.post("/formulary/vials/{vial_id}/close", response=schemas.VialOut, summary="Discard an opened vial")
def close_vial(request: HttpRequest, vial_id: int, payload: schemas.VialCloseIn) -> Any:
    caller = Caller.of(request)
    vial = services.vial_get(caller=caller, vial_id=vial_id, perm=Perm.STOCK_MANAGE)
    return _vial_out(services.vial_close(caller=caller, vial=vial, reason=payload.reason))


@router.get("/formulary/stock", response=schemas.StockOut, summary="Current stock, expiring lots, low stock")
def read_stock(request: HttpRequest, clinic_id: int | None = None, soon_days: int = 30) -> Any:
    clinic = _clinic(request, Perm.FORMULARY_VIEW, clinic_id)
    overview = services.stock_overview(
        caller=Caller.of(request), clinic=clinic, soon_days=max(0, min(soon_days, 3650))
    )
    return {
        "today": overview.today,
        "products": [
            {
                "product_id": p.product.pk,
                "product": p.product.name,
                "stock_ml": p.stock_ml,
                "usable_vials": p.usable_vials,
                "low_stock_vials": p.product.low_stock_vials,
                "low": p.low,
                "lots": [
                    {
                        "lot_id": row.lot.pk,
                        "number": row.lot.number,
                        "expires_on": row.lot.expires_on,
                        "stock_ml": row.stock_ml,
                        "expired": row.expired,
                        "expiring_soon": row.expiring_soon,
                        "recalled": row.recalled,
                    }
                    for row in p.lots
                ],
            }
            for p in overview.products
        ],
        "open_vials": [_vial_out(vial, left) for vial, left in overview.open_vials],
    }


# --- preparations ----------------------------------------------------------------------------------------


def _preparation_out(request: HttpRequest, preparation: Preparation) -> dict[str, Any]:
    visible = services.notes_visible(caller=Caller.of(request), clinic_id=preparation.clinic_id)
    return {
        "id": preparation.pk,
        "patient_id": preparation.patient_id,
        "formula_version_id": preparation.formula_version_id,
        "prepared_at": preparation.prepared_at,
        "total_volume_ml": preparation.total_volume_ml,
        "notes": preparation.notes if visible else None,  # targets.md #3: field-level
        "lines": [
            {
                "lot_id": line.lot_id,
                "lot_number": line.lot.number,
                "vial_id": line.vial_id,
                "volume_ml": line.volume_ml,
            }
            for line in preparation.lines.select_related("lot").order_by("id")
        ],
    }


@router.post(
    "/formulary/preparations", response={201: schemas.PreparationOut}, summary="Prepare for a patient"
)
def create_preparation(request: HttpRequest, payload: schemas.PreparationIn) -> Any:
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=payload.patient_id, perm=Perm.PREPARATION_CREATE, audit=False
    )
    version = services.preparable_version(
        clinic=patient.clinic, formula_version_id=payload.formula_version_id
    )
    preparation = services.preparation_create(
        caller=caller,
        patient=patient,
        formula_version=version,
        lines=[services.LineIn(line.lot_id, line.volume_ml, line.vial_id) for line in payload.lines],
        notes=payload.notes,
    )
    return Status(201, _preparation_out(request, preparation))


@router.get(
    "/formulary/preparations/{preparation_id}", response=schemas.PreparationOut, summary="Read a preparation"
)
def read_preparation(request: HttpRequest, preparation_id: int) -> Any:
    return _preparation_out(
        request, services.preparation_get(caller=Caller.of(request), preparation_id=preparation_id)
    )


# --- recalls and exposure --------------------------------------------------------------------------------


@router.post("/formulary/lots/{lot_id}/recall", response=schemas.LotOut, summary="Recall a lot")
def recall_lot(request: HttpRequest, lot_id: int, payload: schemas.RecallIn) -> Any:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.LOT_RECALL)
    return _lot_out(services.lot_recall(caller=caller, lot=lot, reason=payload.reason))


@router.get("/formulary/lots/{lot_id}/exposure", response=schemas.ExposureOut, summary="Who received lot X")
def lot_exposure(request: HttpRequest, lot_id: int, page: Query[schemas.PageParams]) -> Any:
    caller = Caller.of(request)
    lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
    report = services.lot_exposure(caller=caller, lot=lot, limit=page.limit, offset=page.offset)
    messages = documents.with_messages(report, lot.clinic)
    return {
        "lot": _lot_out(lot),
        "patient_count": report.patient_count,
        "preparation_count": report.preparation_count,
        "administration_count": report.administration_count,
        "patients": [
            {
                "patient_id": row.patient.pk,
                **{
                    name: getattr(row.patient, name)
                    for name in (
                        "record_number",
                        "given_name",
                        "family_name",
                        "date_of_birth",
                        "email",
                        "phone",
                        "address_line",
                        "city",
                        "postal_code",
                        "preferred_language",
                    )
                },
                "preparations": [vars(p) for p in row.preparations],
                "administrations": [vars(a) for a in row.administrations],
                "message": message,
            }
            for row, message in messages
        ],
    }


@router.get(
    "/formulary/patients/{patient_id}/lots",
    response=schemas.PatientLotsOut,
    summary="Which lots did patient Y receive",
)
def patient_lots(request: HttpRequest, patient_id: int) -> Any:
    patient, received = services.patient_lots(caller=Caller.of(request), patient_id=patient_id)
    return {"patient_id": patient.pk, "items": [vars(row) for row in received]}
