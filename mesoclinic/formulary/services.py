"""Every write of the formulary, and every read that lists patients: authorised by the policy, audited,
atomic. Stock moves only here, under a row lock on the lot (SQLite's IMMEDIATE transactions serialise the
writers anyway), so concurrent preparations never take more than a lot or an opened vial holds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, Prefetch, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.policy import Perm, authorize, may_see_clinic
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import audit_record
from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary import rules
from mesoclinic.formulary.models import (
    VOLUME,
    ZERO,
    AllergyGroup,
    ConcentrationUnit,
    CrossSensitivity,
    Formula,
    FormulaComponent,
    FormulaVersion,
    Indication,
    Ingredient,
    IngredientClass,
    Lot,
    Preparation,
    PreparationLine,
    Product,
    ProductComponent,
    RegulatoryStatus,
    StockMovement,
    VialOpening,
)
from mesoclinic.lib.findings import Finding
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_get

M = TypeVar("M", bound=models.Model)
_QUANTUM = Decimal(1).scaleb(-VOLUME["decimal_places"])
_MAX_VOLUME = Decimal(10) ** (VOLUME["max_digits"] - VOLUME["decimal_places"]) - _QUANTUM
EXPIRING_SOON_DAYS = 30


def clinic_today(clinic: Clinic) -> date:
    return timezone.localdate(timezone=clinic.zone)


def _volume(value: Any, field_name: str, *, allow_negative: bool = False) -> Decimal:
    """A volume in mL, to the microlitre; zero, negative (unless allowed) or absurd values are refused."""
    try:
        volume = Decimal(str(value)).quantize(_QUANTUM)
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError({field_name: [_("Give a volume in mL.")]}) from None
    if not volume.is_finite() or abs(volume) > _MAX_VOLUME:
        raise ValidationError({field_name: [_("This volume is out of range.")]})
    if volume == 0 or (volume < 0 and not allow_negative):
        raise ValidationError({field_name: [_("The quantity must be more than zero.")]})
    return volume


def _decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _in_clinic(caller: Caller, model: type[M], pk: int, perm: Perm, *, related: Sequence[str] = ()) -> M:
    """The object if the caller may act on it: another clinic's object or a missing id is a 404 (never telling
    which), a visible object without the permission a 403."""
    obj = model._default_manager.select_related("clinic", *related).filter(pk=pk).first()
    clinic_id = getattr(obj, "clinic_id", None) if obj is not None else None
    if obj is None or clinic_id is None or not may_see_clinic(caller.user, clinic_id):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=clinic_id)
    return obj


def formula_get(*, caller: Caller, formula_id: int, perm: Perm = Perm.FORMULARY_VIEW) -> Formula:
    return _in_clinic(caller, Formula, formula_id, perm)


def product_get(*, caller: Caller, product_id: int, perm: Perm = Perm.FORMULARY_VIEW) -> Product:
    return _in_clinic(caller, Product, product_id, perm)


def lot_get(*, caller: Caller, lot_id: int, perm: Perm = Perm.FORMULARY_VIEW) -> Lot:
    return _in_clinic(caller, Lot, lot_id, perm, related=("product",))


def vial_get(*, caller: Caller, vial_id: int, perm: Perm = Perm.FORMULARY_VIEW) -> VialOpening:
    vial = VialOpening.objects.select_related("lot__product", "lot__clinic").filter(pk=vial_id).first()
    if vial is None or not may_see_clinic(caller.user, vial.lot.clinic_id):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=vial.lot.clinic_id)
    return vial


def ingredient_get(*, caller: Caller, ingredient_id: int, clinic: Clinic) -> Ingredient:
    authorize(caller.user, Perm.FORMULARY_VIEW, clinic_id=clinic.pk)
    found = ingredients_for(clinic).filter(pk=ingredient_id).first()
    if found is None:
        raise Http404(_("Not found."))
    return found


def ingredients_for(clinic: Clinic) -> models.QuerySet[Ingredient]:
    """The global catalogue plus this clinic's own ingredients."""
    return Ingredient.objects.filter(Q(clinic__isnull=True) | Q(clinic=clinic))


# --- ingredients ------------------------------------------------------------------------------------------


def ingredient_create(*, caller: Caller, clinic: Clinic, data: Mapping[str, Any]) -> Ingredient:
    """A clinic's own ingredient (the global catalogue comes from the seed migration)."""
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk)
    errors: dict[str, list[str]] = {}
    code = str(data.get("code", "")).strip().lower()
    name = str(data.get("name", "")).strip()
    klass = str(data.get("ingredient_class", ""))
    if not name:
        errors["name"] = [_("This field cannot be blank.")]
    if klass not in IngredientClass.values:
        errors["ingredient_class"] = [_("Unknown class.")]
    groups = list(AllergyGroup.objects.filter(code__in=list(data.get("allergy_groups", []))))
    unknown = set(data.get("allergy_groups", [])) - {group.code for group in groups}
    if unknown:
        errors["allergy_groups"] = [
            _("Unknown allergy group: %(codes)s.") % {"codes": ", ".join(sorted(unknown))}
        ]
    ingredient = Ingredient(
        clinic=clinic,
        code=code,
        name=name,
        ingredient_class=klass,
        description=str(data.get("description", "")),
        teratogen=bool(data.get("teratogen", False)),
        source=str(data.get("source", "")),
    )
    try:
        ingredient.full_clean(exclude=["clinic", *errors])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not errors and ingredients_for(clinic).filter(code=code).exists():
        errors["code"] = [_("An ingredient with this code exists already.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        ingredient.save()
        ingredient.allergy_groups.set(groups)
    return ingredient


# --- formulas ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentIn:
    ingredient_id: int | None
    concentration: Any
    unit: str


@dataclass(frozen=True)
class FormulaContent:
    components: Sequence[ComponentIn]
    total_volume_ml: Any
    indications: Sequence[str]
    diluent_id: int | None = None
    preparation_notes: str = ""


def _check_content(clinic: Clinic, content: FormulaContent) -> dict[int, Ingredient]:
    problems = rules.formula_input_problems(
        rules.FormulaInput(
            components=tuple(
                rules.ComponentInput(c.ingredient_id, _decimal_or_none(c.concentration), c.unit or "")
                for c in content.components
            ),
            total_volume_ml=_decimal_or_none(content.total_volume_ml),
            indications=tuple(content.indications),
            known_units=frozenset(ConcentrationUnit.values),
            known_indications=frozenset(Indication.values),
        )
    )
    wanted = {c.ingredient_id for c in content.components if c.ingredient_id is not None}
    if content.diluent_id is not None:
        wanted.add(content.diluent_id)
    found = {ingredient.pk: ingredient for ingredient in ingredients_for(clinic).filter(pk__in=wanted)}
    for index, component in enumerate(content.components):
        if component.ingredient_id is not None and component.ingredient_id not in found:
            problems.setdefault(f"components.{index}.ingredient_id", [_("Unknown ingredient.")])
    if content.diluent_id is not None and content.diluent_id not in found:
        problems["diluent_id"] = [_("Unknown ingredient.")]
    if "total_volume_ml" not in problems:
        try:
            _volume(content.total_volume_ml, "total_volume_ml")
        except ValidationError as exc:
            problems.update(exc.message_dict)
    if problems:
        raise ValidationError(problems)
    return found


def _write_version(
    *, version: FormulaVersion, content: FormulaContent, ingredients: Mapping[int, Ingredient]
) -> FormulaVersion:
    version.diluent = ingredients.get(content.diluent_id) if content.diluent_id is not None else None
    version.total_volume_ml = _volume(content.total_volume_ml, "total_volume_ml")
    version.indications = sorted(set(content.indications))
    version.preparation_notes = content.preparation_notes.strip()
    version.save()
    FormulaComponent.objects.filter(version=version).delete()
    FormulaComponent.objects.bulk_create(
        FormulaComponent(
            version=version,
            ingredient=ingredients[c.ingredient_id],  # type: ignore[index]
            concentration=Decimal(str(c.concentration)),
            unit=c.unit,
            position=index,
        )
        for index, c in enumerate(content.components)
    )
    return version


def formula_create(*, caller: Caller, clinic: Clinic, name: str, content: FormulaContent) -> Formula:
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk)
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = [_("This field cannot be blank.")]
    elif len(name) > 200:
        errors["name"] = [_("At most 200 characters.")]
    elif Formula.objects.filter(clinic=clinic, name=name).exists():
        errors["name"] = [_("A formula with this name exists already.")]
    try:
        ingredients = _check_content(clinic, content)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    user = caller.user if caller.user.is_authenticated else None
    with transaction.atomic():
        formula = Formula.objects.create(clinic=clinic, name=name)
        version = FormulaVersion(formula=formula, number=1, created_by=user)
        _write_version(version=version, content=content, ingredients=ingredients)
    return formula


def formula_revise(*, caller: Caller, formula: Formula, content: FormulaContent) -> FormulaVersion:
    """Change a formula. The current version is rewritten while no preparation uses it; once used it is
    immutable and the change becomes the next version (R-FORM)."""
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=formula.clinic_id)
    ingredients = _check_content(formula.clinic, content)
    user = caller.user if caller.user.is_authenticated else None
    with transaction.atomic():
        Formula.objects.select_for_update().filter(pk=formula.pk).first()
        current = formula.versions.order_by("-number").first()
        if current is None or current.is_used:
            number = current.number + 1 if current else 1
            current = FormulaVersion(formula=formula, number=number, created_by=user)
        return _write_version(version=current, content=content, ingredients=ingredients)


def current_version(formula: Formula) -> FormulaVersion:
    version = formula.versions.order_by("-number").first()
    if version is None:  # a formula is always created with its first version
        raise Http404(_("Not found."))
    return version


def _facts_from_ingredient(
    ingredient: Ingredient,
    statuses: Iterable[RegulatoryStatus],
    cautions: Iterable[CrossSensitivity],
) -> rules.IngredientFacts:
    return rules.IngredientFacts(
        code=ingredient.code,
        name=ingredient.name,
        allergy_groups=frozenset(group.code for group in ingredient.allergy_groups.all()),
        cautions=tuple(rules.CautionFacts(c.group.code, c.note, c.source) for c in cautions),
        teratogen=ingredient.teratogen,
        statuses=tuple(status_facts(row) for row in statuses),
    )


def status_facts(row: RegulatoryStatus) -> rules.StatusFacts:
    return rules.StatusFacts(
        jurisdiction=row.jurisdiction,
        status=row.status,
        use=row.use,
        source=row.source,
        indications=frozenset(row.indications or ()),
    )


def planned_formula_facts(
    *, clinic: Clinic, formula_version_id: int | None = None, formula_id: int | None = None
) -> rules.PlannedFormulaFacts:
    """The facts the pure checks need about a formula of this clinic (its current version when given the
    formula). Five queries whatever the formula's size. Not authorised here: callers have done it."""
    versions = FormulaVersion.objects.filter(formula__clinic=clinic).select_related("formula")
    if formula_version_id is not None:
        version = versions.filter(pk=formula_version_id).first()
    elif formula_id is not None:
        version = versions.filter(formula_id=formula_id).order_by("-number").first()
    else:
        raise ValueError("formula_version_id or formula_id")
    if version is None:
        raise Http404(_("Not found."))
    ingredient_rows = (
        Ingredient.objects.filter(
            Q(pk__in=FormulaComponent.objects.filter(version=version).values("ingredient_id"))
            | Q(pk=version.diluent_id or 0)
        )
        .prefetch_related(
            "allergy_groups",
            Prefetch("cautions", queryset=CrossSensitivity.objects.select_related("group")),
            "statuses",
        )
        .order_by("name")
    )
    ingredients = tuple(
        _facts_from_ingredient(row, row.statuses.all(), row.cautions.all()) for row in ingredient_rows
    )
    procedure = tuple(status_facts(row) for row in RegulatoryStatus.objects.filter(ingredient__isnull=True))
    return rules.PlannedFormulaFacts(
        name=version.formula.name,
        version=version.number,
        ingredients=ingredients,
        indications=frozenset(version.indications or ()),
        procedure_statuses=procedure,
    )


def formula_jurisdiction_findings(*, caller: Caller, formula: Formula) -> list[Finding]:
    """R-REG findings of a formula's current version in its clinic's jurisdiction (for the formula page)."""
    authorize(caller.user, Perm.FORMULARY_VIEW, clinic_id=formula.clinic_id)
    facts = planned_formula_facts(clinic=formula.clinic, formula_id=formula.pk)
    return rules.regulatory_findings(facts, formula.clinic.jurisdiction)


# --- products, lots, vials and stock ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProductComponentIn:
    ingredient_id: int | None
    strength: Any
    unit: str


def product_create(
    *, caller: Caller, clinic: Clinic, data: Mapping[str, Any], components: Sequence[ProductComponentIn]
) -> Product:
    authorize(caller.user, Perm.STOCK_MANAGE, clinic_id=clinic.pk)
    errors: dict[str, list[str]] = {}
    product = Product(
        clinic=clinic,
        name=str(data.get("name", "")).strip(),
        supplier=str(data.get("supplier", "")).strip(),
        multi_dose=bool(data.get("multi_dose", False)),
        beyond_use_hours=data.get("beyond_use_hours") or 0,
        low_stock_vials=data.get("low_stock_vials", 0),
    )
    try:
        product.vial_volume_ml = _volume(data.get("vial_volume_ml"), "vial_volume_ml")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    hours = data.get("beyond_use_hours")
    if not isinstance(hours, int) or hours <= 0:
        errors["beyond_use_hours"] = [_("Give the hours a vial may be used after opening (more than zero).")]
    try:
        product.full_clean(exclude=["clinic", *errors])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not components:
        errors["components"] = [_("A product contains at least one ingredient.")]
    found = {i.pk: i for i in ingredients_for(clinic).filter(pk__in=[c.ingredient_id for c in components])}
    seen: set[int] = set()
    for index, component in enumerate(components):
        if component.ingredient_id not in found or component.ingredient_id in seen:
            errors[f"components.{index}.ingredient_id"] = [_("Unknown or repeated ingredient.")]
        else:
            seen.add(component.ingredient_id)
        strength = _decimal_or_none(component.strength)
        if strength is None or strength <= 0:
            errors[f"components.{index}.strength"] = [_("The strength must be more than zero.")]
        if component.unit not in ConcentrationUnit.values:
            errors[f"components.{index}.unit"] = [_("A strength needs a unit.")]
    if not errors and Product.objects.filter(clinic=clinic, name=product.name).exists():
        errors["name"] = [_("A product with this name exists already.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        product.save()
        ProductComponent.objects.bulk_create(
            ProductComponent(
                product=product,
                ingredient=found[c.ingredient_id],  # type: ignore[index]
                strength=Decimal(str(c.strength)),
                unit=c.unit,
            )
            for c in components
        )
    return product


def _actor_user(caller: Caller) -> Any:
    return caller.user if caller.user.is_authenticated else None


def lot_receive(
    *,
    caller: Caller,
    product: Product,
    number: str,
    expires_on: date,
    received_on: date | None,
    received_vials: int,
    now: datetime | None = None,
) -> Lot:
    """A delivery: the lot and its ``received`` movement (stock = vials × vial volume)."""
    authorize(caller.user, Perm.STOCK_MANAGE, clinic_id=product.clinic_id)
    now = now or timezone.now()
    received_on = received_on or clinic_today(product.clinic)
    errors: dict[str, list[str]] = {}
    number = number.strip()
    if not number:
        errors["number"] = [_("This field cannot be blank.")]
    elif len(number) > 60:
        errors["number"] = [_("At most 60 characters.")]
    if not isinstance(received_vials, int) or received_vials <= 0:
        errors["received_vials"] = [_("The quantity must be more than zero.")]
    if expires_on < received_on:
        errors["expires_on"] = [_("The expiry date is before the date of receipt.")]
    if received_on > clinic_today(product.clinic):
        errors["received_on"] = [_("The date of receipt is in the future.")]
    if not product.is_active:
        errors["product_id"] = [_("This product is no longer in use.")]
    if not errors and Lot.objects.filter(product=product, number=number).exists():
        errors["number"] = [_("This lot number is already recorded for this product.")]
    if errors:
        raise ValidationError(errors)
    quantity = _volume(product.vial_volume_ml * received_vials, "received_vials")
    with transaction.atomic():
        lot = Lot.objects.create(
            clinic_id=product.clinic_id,
            product=product,
            number=number,
            expires_on=expires_on,
            received_on=received_on,
            received_vials=received_vials,
        )
        StockMovement.objects.create(
            clinic_id=product.clinic_id,
            lot=lot,
            kind=StockMovement.Kind.RECEIVED,
            quantity_ml=quantity,
            at=now,
            by=_actor_user(caller),
        )
    return lot


def _lot_stock(lot_id: int) -> Decimal:
    total = StockMovement.objects.filter(lot_id=lot_id).aggregate(total=Sum("quantity_ml"))["total"]
    return total if total is not None else ZERO


def _open_vials(lot_id: int) -> list[tuple[VialOpening, Decimal]]:
    """The lot's opened vials that are not closed, with what each holds."""
    vials = list(
        VialOpening.objects.filter(lot_id=lot_id, closed_at__isnull=True)
        .select_related("lot__product")
        .annotate(used=Coalesce(Sum("movements__quantity_ml"), Value(ZERO)))
    )
    return [(vial, vial.lot.product.vial_volume_ml + vial.used) for vial in vials]


def _unopened_stock(lot_id: int) -> Decimal:
    return _lot_stock(lot_id) - sum((left for _vial, left in _open_vials(lot_id)), ZERO)


def _lock_lots(lot_ids: Iterable[int], clinic_id: int) -> dict[int, Lot]:
    """Lock the lots in id order (no deadlock between two preparations taking the same lots)."""
    locked = {}
    for lot in (
        Lot.objects.select_for_update()
        .filter(pk__in=sorted(set(lot_ids)), clinic_id=clinic_id)
        .order_by("pk")
    ):
        locked[lot.pk] = lot
    # select_related cannot go with select_for_update on every backend (nullable joins): read separately.
    products = Product.objects.in_bulk({lot.product_id for lot in locked.values()})
    for lot in locked.values():
        lot.product = products[lot.product_id]
    return locked


def _raise_findings(field_name: str, findings: Sequence[Finding]) -> None:
    blocking = [finding for finding in findings if finding.severity == "block"]
    if blocking:
        raise ValidationError(
            {field_name: [ValidationError(finding.message, code=finding.code) for finding in blocking]}
        )


def _lot_facts(lot: Lot, available: Decimal, vial: VialOpening | None = None) -> rules.LotFacts:
    return rules.LotFacts(
        number=lot.number,
        expires_on=lot.expires_on,
        recalled=lot.recalled_at is not None,
        recall_reason=lot.recall_reason,
        available_ml=available,
        vial_beyond_use_at=vial.beyond_use_at if vial is not None else None,
    )


def vial_open(*, caller: Caller, lot: Lot, now: datetime | None = None) -> VialOpening:
    """Puncture a new multi-dose vial of the lot: usable until the product's beyond-use time."""
    authorize(caller.user, Perm.PREPARATION_CREATE, clinic_id=lot.clinic_id)
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_lots([lot.pk], lot.clinic_id)[lot.pk]
        product = locked.product
        if not product.multi_dose:
            raise ValidationError(
                {"lot_id": [_("Single-dose vials are not opened ahead: draw from the lot.")]}
            )
        findings = rules.lot_findings(
            _lot_facts(locked, _unopened_stock(locked.pk)),
            volume_ml=product.vial_volume_ml,
            today=clinic_today(lot.clinic),
            now=now,
        )
        _raise_findings("lot_id", findings)
        return VialOpening.objects.create(
            lot=locked,
            opened_at=now,
            beyond_use_at=rules.beyond_use_at(now, product.beyond_use_hours),
            opened_by=_actor_user(caller),
        )


def vial_remaining(vial: VialOpening) -> Decimal:
    used = vial.movements.aggregate(total=Sum("quantity_ml"))["total"] or ZERO
    return vial.lot.product.vial_volume_ml + used


def vial_close(
    *, caller: Caller, vial: VialOpening, reason: str = "", now: datetime | None = None
) -> VialOpening:
    """Discard an opened vial: what it still holds is wasted."""
    authorize(caller.user, Perm.STOCK_MANAGE, clinic_id=vial.lot.clinic_id)
    now = now or timezone.now()
    with transaction.atomic():
        _lock_lots([vial.lot_id], vial.lot.clinic_id)
        fresh = VialOpening.objects.select_related("lot__product").get(pk=vial.pk)
        if fresh.closed_at is not None:
            raise ValidationError({"vial_id": [_("This vial is already closed.")]})
        left = vial_remaining(fresh)
        if left > 0:
            StockMovement.objects.create(
                clinic_id=fresh.lot.clinic_id,
                lot=fresh.lot,
                vial=fresh,
                kind=StockMovement.Kind.WASTED,
                quantity_ml=-left,
                reason=reason.strip() or _("Opened vial discarded"),
                at=now,
                by=_actor_user(caller),
            )
        fresh.closed_at = now
        fresh.save(update_fields=["closed_at"])
    return fresh


MANUAL_KINDS = (StockMovement.Kind.WASTED, StockMovement.Kind.RETURNED, StockMovement.Kind.ADJUSTED)


def stock_move(
    *,
    caller: Caller,
    lot: Lot,
    kind: str,
    quantity_ml: Any,
    reason: str = "",
    now: datetime | None = None,
) -> StockMovement:
    """A manual movement: waste or a return to the supplier (a positive quantity, taken out), or an
    adjustment (signed, with its reason). Stock never goes below zero."""
    authorize(caller.user, Perm.STOCK_MANAGE, clinic_id=lot.clinic_id)
    now = now or timezone.now()
    if kind not in MANUAL_KINDS:
        raise ValidationError({"kind": [_("Choose wasted, returned or adjusted.")]})
    adjusting = kind == StockMovement.Kind.ADJUSTED
    quantity = _volume(quantity_ml, "quantity_ml", allow_negative=adjusting)
    reason = reason.strip()
    if adjusting and not reason:
        raise ValidationError({"reason": [_("An adjustment needs its reason.")]})
    if len(reason) > 300:
        raise ValidationError({"reason": [_("At most 300 characters.")]})
    signed = quantity if adjusting else -quantity
    with transaction.atomic():
        locked = _lock_lots([lot.pk], lot.clinic_id)[lot.pk]
        if signed < 0:
            available = _unopened_stock(locked.pk)
            if -signed > available:
                raise ValidationError(
                    {
                        "quantity_ml": [
                            ValidationError(
                                _("Lot %(lot)s has %(left)s mL in unopened vials; %(wanted)s mL asked.")
                                % {"lot": locked.number, "left": available, "wanted": -signed},
                                code="lot-insufficient",
                            )
                        ]
                    }
                )
        return StockMovement.objects.create(
            clinic_id=locked.clinic_id,
            lot=locked,
            kind=kind,
            quantity_ml=signed,
            reason=reason,
            at=now,
            by=_actor_user(caller),
        )


# --- preparations -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineIn:
    lot_id: int
    volume_ml: Any
    vial_id: int | None = None


def preparation_create(
    *,
    caller: Caller,
    patient: Patient,
    formula_version: FormulaVersion,
    lines: Sequence[LineIn],
    notes: str = "",
    now: datetime | None = None,
) -> Preparation:
    """Prepare a syringe or cocktail for a patient from a formula version, drawing each ingredient from a lot
    (and, for a multi-dose product, an opened vial). Any blocked draw (R-FORM, R-SIGNAL) or a formula banned
    in the clinic's jurisdiction (R-REG) stops it with the reason; nothing is written."""
    authorize(caller.user, Perm.PREPARATION_CREATE, clinic_id=patient.clinic_id, patient=patient)
    clinic = patient.clinic
    if formula_version.formula.clinic_id != clinic.pk:
        raise ValidationError({"formula_version_id": [_("Unknown formula version.")]})
    now = now or timezone.now()
    today = clinic_today(clinic)
    errors: dict[str, list[Any]] = {}
    if not lines:
        errors["lines"] = [_("Record the lot of every ingredient.")]
    volumes: list[Decimal] = []
    for index, line in enumerate(lines):
        try:
            volumes.append(_volume(line.volume_ml, f"lines.{index}.volume_ml"))
        except ValidationError as exc:
            errors.update(exc.message_dict)
            volumes.append(ZERO)
    if len(notes) > 2000:
        errors["notes"] = [_("At most 2000 characters.")]
    if errors:
        raise ValidationError(errors)

    facts = planned_formula_facts(clinic=clinic, formula_version_id=formula_version.pk)
    _raise_findings("formula_version_id", rules.regulatory_findings(facts, clinic.jurisdiction))

    with transaction.atomic():
        lots = _lock_lots([line.lot_id for line in lines], clinic.pk)
        vial_ids = [line.vial_id for line in lines if line.vial_id is not None]
        vials: dict[int, Any] = {
            vial.pk: vial
            for vial in VialOpening.objects.filter(pk__in=vial_ids).annotate(
                used=Coalesce(Sum("movements__quantity_ml"), Value(ZERO))
            )
        }
        # What each lot has left, in unopened vials and per opened vial, as the draws of this preparation
        # take it (two lines may draw from the same lot).
        unopened: dict[int, Decimal] = {}
        left_in_vial: dict[int, Decimal] = {}
        covered: set[int] = set()
        product_ingredients: dict[int, set[int]] = defaultdict(set)
        for product_id, ingredient_id in ProductComponent.objects.filter(
            product_id__in=[lot.product_id for lot in lots.values()]
        ).values_list("product_id", "ingredient_id"):
            product_ingredients[product_id].add(ingredient_id)
        plan: list[tuple[Lot, VialOpening | None, Decimal, int]] = []  # lot, vial, volume, single-dose vials
        for index, (line, volume) in enumerate(zip(lines, volumes, strict=True)):
            lot = lots.get(line.lot_id)
            if lot is None:
                errors[f"lines.{index}.lot_id"] = [_("Unknown lot.")]
                continue
            product = lot.product
            covered |= product_ingredients[product.pk]
            if lot.pk not in unopened:
                unopened[lot.pk] = _unopened_stock(lot.pk)
            vial = None
            if product.multi_dose:
                if line.vial_id is None:
                    errors[f"lines.{index}.vial_id"] = [_("Open a vial of this multi-dose product first.")]
                    continue
                vial = vials.get(line.vial_id)
                if vial is None or vial.lot_id != lot.pk or vial.closed_at is not None:
                    errors[f"lines.{index}.vial_id"] = [_("Unknown or closed vial of this lot.")]
                    continue
                if vial.pk not in left_in_vial:
                    left_in_vial[vial.pk] = product.vial_volume_ml + vial.used
                available = left_in_vial[vial.pk]
                vial_count = 0
            else:
                if line.vial_id is not None:
                    errors[f"lines.{index}.vial_id"] = [_("Single-dose products are drawn from the lot.")]
                    continue
                vial_count = rules.single_dose_vials(volume, product.vial_volume_ml)
                available = unopened[lot.pk] // product.vial_volume_ml * product.vial_volume_ml
            findings = rules.lot_findings(
                _lot_facts(lot, available, vial),
                volume_ml=volume if vial is not None else product.vial_volume_ml * vial_count,
                today=today,
                now=now,
            )
            blocking = [f for f in findings if f.severity == "block"]
            if blocking:
                errors[f"lines.{index}.lot_id"] = [ValidationError(f.message, code=f.code) for f in blocking]
                continue
            if vial is not None:
                left_in_vial[vial.pk] -= volume
                unopened_delta = ZERO
            else:
                unopened_delta = product.vial_volume_ml * vial_count
            unopened[lot.pk] -= unopened_delta
            plan.append((lot, vial, volume, vial_count))
        needed = set(
            FormulaComponent.objects.filter(version=formula_version).values_list("ingredient_id", flat=True)
        )
        if formula_version.diluent_id is not None:
            needed.add(formula_version.diluent_id)
        missing = needed - covered
        if missing and not errors:
            names = ", ".join(
                sorted(Ingredient.objects.filter(pk__in=missing).values_list("name", flat=True))
            )
            errors["lines"] = [_("No lot recorded for: %(names)s.") % {"names": names}]
        if errors:
            raise ValidationError(errors)

        preparation = Preparation.objects.create(
            clinic=clinic,
            patient=patient,
            formula_version=formula_version,
            prepared_at=now,
            prepared_by=_actor_user(caller),
            total_volume_ml=sum(volumes, ZERO),
            notes=notes.strip(),
        )
        PreparationLine.objects.bulk_create(
            PreparationLine(preparation=preparation, lot=lot, vial=vial, volume_ml=volume)
            for lot, vial, volume, _count in plan
        )
        movements = []
        for lot, vial, volume, vial_count in plan:
            movements.append(
                StockMovement(
                    clinic=clinic,
                    lot=lot,
                    vial=vial,
                    kind=StockMovement.Kind.PREPARED,
                    quantity_ml=-volume,
                    preparation=preparation,
                    at=now,
                    by=_actor_user(caller),
                )
            )
            remainder = lot.product.vial_volume_ml * vial_count - volume if vial is None else ZERO
            if remainder > 0:
                movements.append(
                    StockMovement(
                        clinic=clinic,
                        lot=lot,
                        kind=StockMovement.Kind.WASTED,
                        quantity_ml=-remainder,
                        reason=_("Single-dose vial remainder discarded"),
                        preparation=preparation,
                        at=now,
                        by=_actor_user(caller),
                    )
                )
        StockMovement.objects.bulk_create(movements)
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.PREPARATION_CREATE,
            clinic_id=clinic.pk,
            patient_id=patient.pk,
            obj=preparation,
            detail={
                "formula_version": formula_version.pk,
                "lots": sorted({lot.pk for lot, _vial, _volume, _count in plan}),
            },
        )
    return preparation


def preparation_get(*, caller: Caller, preparation_id: int) -> Preparation:
    """One preparation (patient data): 404 for another clinic's, audited as a read of the patient."""
    preparation = (
        Preparation.objects.select_related("patient", "clinic", "formula_version__formula")
        .filter(pk=preparation_id)
        .first()
    )
    if preparation is None or not may_see_clinic(caller.user, preparation.clinic_id):
        raise Http404(_("Not found."))
    authorize(caller.user, Perm.EXPOSURE_VIEW, clinic_id=preparation.clinic_id, patient=preparation.patient)
    audit_record(
        actor=caller.actor(preparation.clinic_id),
        action=Action.EXPOSURE_READ,
        clinic_id=preparation.clinic_id,
        patient_id=preparation.patient_id,
        obj=preparation,
    )
    return preparation


# --- recalls and exposure ---------------------------------------------------------------------------------


def lot_recall(*, caller: Caller, lot: Lot, reason: str, now: datetime | None = None) -> Lot:
    """Recall a lot: from this moment no preparation may draw from it (R-SIGNAL)."""
    authorize(caller.user, Perm.LOT_RECALL, clinic_id=lot.clinic_id)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": [_("Say why the lot is recalled.")]})
    if len(reason) > 2000:
        raise ValidationError({"reason": [_("At most 2000 characters.")]})
    with transaction.atomic():
        locked = _lock_lots([lot.pk], lot.clinic_id)[lot.pk]
        if locked.recalled_at is not None:
            raise ValidationError({"reason": [_("This lot is already recalled.")]})
        locked.recalled_at = now or timezone.now()
        locked.recall_reason = reason
        locked.recalled_by = _actor_user(caller)
        locked.save(update_fields=["recalled_at", "recall_reason", "recalled_by"])
        exposed = Preparation.objects.filter(lines__lot=locked).aggregate(
            patients=Count("patient_id", distinct=True), preparations=Count("id", distinct=True)
        )
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.LOT_RECALL,
            clinic_id=locked.clinic_id,
            obj=locked,
            detail={"reason": reason[:500], **exposed},
        )
    return locked


@dataclass
class ExposedPreparation:
    id: int
    prepared_at: datetime
    volume_ml: Decimal
    formula: str
    version: int


@dataclass
class ExposedPatient:
    patient: Patient
    preparations: list[ExposedPreparation] = field(default_factory=list)


@dataclass
class ExposureReport:
    lot: Lot
    patients: list[ExposedPatient]  # all of them, or the page asked for
    patient_count: int  # in the whole report
    preparation_count: int
    offset: int = 0


_PATIENT_FIELDS = (
    "id",
    "clinic_id",
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


def lot_exposure(
    *,
    caller: Caller,
    lot: Lot,
    action: Action = Action.EXPOSURE_READ,
    limit: int | None = None,
    offset: int = 0,
) -> ExposureReport:
    """Who received lot X: every patient and preparation that drew from it, with contact details, patients in
    name order (``limit``/``offset`` page by patient). Three queries whatever the size; audited as a read, a
    print or an export of exactly the patients listed."""
    authorize(caller.user, Perm.EXPOSURE_VIEW, clinic_id=lot.clinic_id)
    lines = PreparationLine.objects.filter(lot_id=lot.pk)
    totals = lines.aggregate(
        patients=Count("preparation__patient_id", distinct=True),
        preparations=Count("preparation_id", distinct=True),
    )
    if limit is not None:
        exposed = Preparation.objects.filter(lines__lot_id=lot.pk).values("patient_id")
        shown = list(
            Patient.objects.filter(pk__in=exposed)
            .order_by("family_name_folded", "given_name_folded", "id")
            .values_list("id", flat=True)[offset : offset + limit]
        )
        lines = lines.filter(preparation__patient_id__in=shown)
    rows = lines.order_by(
        "preparation__patient__family_name_folded",
        "preparation__patient__given_name_folded",
        "preparation__patient_id",
        "preparation__prepared_at",
        "preparation_id",
    ).values_list(
        *(f"preparation__patient__{name}" for name in _PATIENT_FIELDS),
        "preparation_id",
        "preparation__prepared_at",
        "volume_ml",
        "preparation__formula_version__formula__name",
        "preparation__formula_version__number",
    )
    patients: list[ExposedPatient] = []
    width = len(_PATIENT_FIELDS)
    for row in rows.iterator(chunk_size=5000):
        if not patients or patients[-1].patient.pk != row[0]:
            patients.append(
                ExposedPatient(patient=Patient(**dict(zip(_PATIENT_FIELDS, row[:width], strict=True))))
            )
        current = patients[-1]
        preparation_id, prepared_at, volume, formula, version = row[width:]
        if current.preparations and current.preparations[-1].id == preparation_id:
            current.preparations[-1].volume_ml += volume  # two lines of one preparation from the same lot
        else:
            current.preparations.append(
                ExposedPreparation(preparation_id, prepared_at, volume, formula, version)
            )
    audit_record(
        actor=caller.actor(lot.clinic_id),
        action=action,
        clinic_id=lot.clinic_id,
        obj=lot,
        detail={
            "lot": lot.number,
            "patients": [row.patient.pk for row in patients],
            "total_patients": totals["patients"],
        },
    )
    return ExposureReport(
        lot=lot,
        patients=patients,
        patient_count=totals["patients"],
        preparation_count=totals["preparations"],
        offset=offset,
    )


@dataclass
class ReceivedLot:
    lot_id: int
    lot_number: str
    product: str
    expires_on: date
    recalled: bool
    preparation_id: int
    prepared_at: datetime
    volume_ml: Decimal
    formula: str


def patient_lots(*, caller: Caller, patient_id: int) -> tuple[Patient, list[ReceivedLot]]:
    """Which lots did patient Y receive, newest first; audited as a read of that patient."""
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.EXPOSURE_VIEW, audit=False)
    lines = (
        PreparationLine.objects.filter(preparation__patient=patient)
        .select_related("lot__product", "preparation__formula_version__formula")
        .order_by("-preparation__prepared_at", "preparation_id", "id")
    )
    received = [
        ReceivedLot(
            lot_id=line.lot_id,
            lot_number=line.lot.number,
            product=line.lot.product.name,
            expires_on=line.lot.expires_on,
            recalled=line.lot.recalled_at is not None,
            preparation_id=line.preparation_id,
            prepared_at=line.preparation.prepared_at,
            volume_ml=line.volume_ml,
            formula=str(line.preparation.formula_version),
        )
        for line in lines
    ]
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.EXPOSURE_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
        detail={"lots": sorted({row.lot_id for row in received})},
    )
    return patient, received


# --- stock screens ----------------------------------------------------------------------------------------


@dataclass
class LotStock:
    lot: Lot
    stock_ml: Decimal
    expired: bool
    expiring_soon: bool

    @property
    def recalled(self) -> bool:
        return self.lot.recalled_at is not None


@dataclass
class ProductStock:
    product: Product
    lots: list[LotStock] = field(default_factory=list)

    @property
    def stock_ml(self) -> Decimal:
        return sum((row.stock_ml for row in self.lots if not row.recalled and not row.expired), ZERO)

    @property
    def usable_vials(self) -> Decimal:
        return (self.stock_ml / self.product.vial_volume_ml).quantize(Decimal("0.1"))

    @property
    def low(self) -> bool:
        return self.stock_ml < self.product.vial_volume_ml * self.product.low_stock_vials


@dataclass
class StockOverview:
    today: date
    products: list[ProductStock]
    open_vials: list[tuple[VialOpening, Decimal]]

    @property
    def expiring(self) -> list[LotStock]:
        return [row for p in self.products for row in p.lots if row.expiring_soon and not row.recalled]

    @property
    def low(self) -> list[ProductStock]:
        return [product for product in self.products if product.low]


def stock_overview(
    *, caller: Caller, clinic: Clinic, today: date | None = None, soon_days: int = EXPIRING_SOON_DAYS
) -> StockOverview:
    """Current stock by product and lot (lots with stock left), lots expiring within ``soon_days`` of the
    clinic-local today, products under their low-stock threshold, opened vials. Three queries."""
    authorize(caller.user, Perm.FORMULARY_VIEW, clinic_id=clinic.pk)
    today = today or clinic_today(clinic)
    soon = today + timedelta(days=soon_days)
    products = {
        product.pk: ProductStock(product)
        for product in Product.objects.filter(clinic=clinic, is_active=True).order_by("name")
    }
    lots = (
        Lot.objects.filter(clinic=clinic, product__is_active=True)
        .annotate(stock=Sum("movements__quantity_ml"))
        .filter(stock__gt=0)
        .order_by("expires_on", "number")
    )
    for lot in lots:
        stock = lot.stock
        products[lot.product_id].lots.append(
            LotStock(
                lot=lot, stock_ml=stock, expired=today > lot.expires_on, expiring_soon=lot.expires_on <= soon
            )
        )
    open_vials: list[tuple[VialOpening, Decimal]] = [
        (vial, vial.lot.product.vial_volume_ml + vial.used)
        for vial in VialOpening.objects.filter(lot__clinic=clinic, closed_at__isnull=True)
        .select_related("lot__product")
        .annotate(used=Coalesce(Sum("movements__quantity_ml"), Value(ZERO)))
        .order_by("beyond_use_at")
    ]
    return StockOverview(today=today, products=list(products.values()), open_vials=open_vials)


def lot_movements(*, caller: Caller, lot: Lot, limit: int = 200) -> list[StockMovement]:
    authorize(caller.user, Perm.FORMULARY_VIEW, clinic_id=lot.clinic_id)
    return list(StockMovement.objects.filter(lot=lot).select_related("by").order_by("-at", "-id")[:limit])


def lot_stock(lot: Lot) -> Decimal:
    return _lot_stock(lot.pk)


def formula_screening_facts(*, formula_id: int, clinic: Clinic) -> rules.PlannedFormulaFacts | None:
    """The hook screening calls for its ``formula`` parameter (screening.services.FORMULARY_HOOK): the current
    version of a formula of this clinic, or None for an unknown or foreign id."""
    try:
        return planned_formula_facts(clinic=clinic, formula_id=formula_id)
    except Http404:
        return None
