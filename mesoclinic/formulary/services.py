"""Every write of the formulary, and every read that lists patients: authorised by the policy, audited,
atomic. Stock moves only here, under a row lock on the lot (SQLite's IMMEDIATE transactions serialise the
writers anyway), so concurrent preparations never take more than a lot or an opened vial holds."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Case, F, Func, Prefetch, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Round
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.policy import Perm, authorize, can, may_see_clinic
from mesoclinic.accounts.rules import jurisdiction_covers
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import audit_record
from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary import rules
from mesoclinic.formulary.models import (
    ZERO,
    AllergyGroup,
    ConcentrationUnit,
    CrossSensitivity,
    Formula,
    FormulaComponent,
    FormulaVersion,
    ImmutableError,
    Indication,
    Ingredient,
    IngredientClass,
    Lot,
    Preparation,
    PreparationLine,
    Product,
    ProductComponent,
    ProductLimit,
    RegulatoryStatus,
    StockMovement,
    VialOpening,
)
from mesoclinic.lib.findings import Finding
from mesoclinic.lib.ids import MAX_ID, is_valid_id
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_get
from mesoclinic.screening.models import Intake

M = TypeVar("M", bound=models.Model)
_QUANTUM = rules.VOLUME_LIMITS.quantum
EXPIRING_SOON_DAYS = 30
# Primary keys are 64-bit integers on both databases: a bigger id names nothing (and SQLite cannot even
# bind it in an ``IN`` list).


def _volume(value: Any, field_name: str, *, allow_negative: bool = False) -> Decimal:
    """A volume in mL, to the microlitre; zero, negative (unless allowed), absurd or more precise values are
    refused (never rounded)."""
    try:
        volume = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError({field_name: [_("Give a volume in mL.")]}) from None
    problem = rules.decimal_problem(volume, rules.VOLUME_LIMITS, signed=allow_negative)
    if problem is not None:
        raise ValidationError({field_name: [problem]})
    return volume.quantize(_QUANTUM)


def _decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _text(
    value: Any, field_name: str, *, max_length: int, required: bool = False, errors: dict[str, list[str]]
) -> str:
    """Stripped text for a column: a required field that is blank, text over the column's length or with a
    NUL character (PostgreSQL cannot store it) is an error on the field."""
    text = "" if value is None else str(value).strip()
    if required and not text:
        errors[field_name] = [_("This field cannot be blank.")]
    elif len(text) > max_length:
        errors[field_name] = [_("At most %(count)d characters.") % {"count": max_length}]
    elif "\x00" in text:
        errors[field_name] = [_("This text contains a character that is not allowed (NUL).")]
    return text


def _save_unique(obj: models.Model, field_name: str, message: str) -> None:
    """Insert a row whose uniqueness was checked before: when another writer inserted the same key in
    between (a race), the database's unique constraint answers, and it becomes an error on the field. Its own
    savepoint, so the caller's transaction survives."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise ValidationError({field_name: [ValidationError(message, code="unique")]}) from None


def _in_clinic(caller: Caller, model: type[M], pk: int, perm: Perm, *, related: Sequence[str] = ()) -> M:
    """The object if the caller may act on it: another clinic's object or a missing id is a 404 (never telling
    which), a visible object without the permission a 403."""
    if not is_valid_id(pk):
        raise Http404(_("Not found."))
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
    if not is_valid_id(vial_id):
        raise Http404(_("Not found."))
    vial = VialOpening.objects.select_related("lot__product", "lot__clinic").filter(pk=vial_id).first()
    if vial is None or not may_see_clinic(caller.user, vial.lot.clinic_id):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=vial.lot.clinic_id)
    return vial


def ingredient_get(*, caller: Caller, ingredient_id: int, clinic: Clinic) -> Ingredient:
    authorize(caller.user, Perm.FORMULARY_VIEW, clinic_id=clinic.pk)
    found = ingredients_for(clinic).filter(pk=ingredient_id).first() if is_valid_id(ingredient_id) else None
    if found is None:
        raise Http404(_("Not found."))
    return found


def ingredients_for(clinic: Clinic) -> models.QuerySet[Ingredient]:
    """The global catalogue plus this clinic's own ingredients."""
    return Ingredient.objects.filter(Q(clinic__isnull=True) | Q(clinic=clinic))


# --- ingredients ------------------------------------------------------------------------------------------


def ingredient_create(*, caller: Caller, clinic: Clinic, data: Mapping[str, Any]) -> Ingredient:
    """A clinic's own ingredient (the global catalogue comes from the seed migration). Audited."""
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk)
    errors: dict[str, list[str]] = {}
    code = _text(data.get("code"), "code", max_length=60, required=True, errors=errors).lower()
    name = _text(data.get("name"), "name", max_length=120, required=True, errors=errors)
    description = _text(data.get("description"), "description", max_length=2000, errors=errors)
    source = _text(data.get("source"), "source", max_length=300, errors=errors)
    klass = str(data.get("ingredient_class", ""))
    if klass not in IngredientClass.values:
        errors["ingredient_class"] = [_("Unknown class.")]
    wanted_groups = [str(code_) for code_ in data.get("allergy_groups", []) or []]
    if len(wanted_groups) > 20:
        errors["allergy_groups"] = [_("At most %(count)d allergy groups.") % {"count": 20}]
        wanted_groups = []
    groups = list(AllergyGroup.objects.filter(code__in=wanted_groups))
    unknown = set(wanted_groups) - {group.code for group in groups}
    if unknown:
        errors["allergy_groups"] = [
            _("Unknown allergy group: %(codes)s.") % {"codes": ", ".join(sorted(unknown))}
        ]
    ingredient = Ingredient(
        clinic=clinic,
        code=code,
        name=name,
        ingredient_class=klass,
        description=description,
        teratogen=bool(data.get("teratogen", False)),
        source=source,
    )
    try:
        ingredient.full_clean(exclude=["clinic", *errors], validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    message = _("An ingredient with this code exists already.")
    if not errors and ingredients_for(clinic).filter(code=code).exists():
        errors["code"] = [message]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        _save_unique(ingredient, "code", message)
        ingredient.allergy_groups.set(groups)
        _audit_change(caller, clinic.pk, ingredient, "ingredient", "create", {"code": code})
    return ingredient


def _audit_change(
    caller: Caller, clinic_id: int, obj: models.Model, what: str, op: str, detail: Mapping[str, Any]
) -> None:
    """Reference data a clinic configures (its ingredients, cautions, limits, regulatory statuses) is
    audited: a changed status or limit changes what the checks say about every patient."""
    audit_record(
        actor=caller.actor(clinic_id),
        action=Action.FORMULARY_CHANGE,
        clinic_id=clinic_id,
        obj=obj,
        detail={"what": what, "op": op, **detail},
    )


# --- the clinic's own reference data: regulatory statuses, cautions and product limits --------------------

_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
MAX_LIMIT_COUNT = 10_000  # injections per session, days between sessions, sessions
SPACING_LIMITS = rules.DecimalLimits(max_digits=5, decimal_places=2)


def regulatory_statuses_of(clinic: Clinic) -> models.QuerySet[RegulatoryStatus]:
    """The clinic's own regulatory statuses, ingredient first (the procedure's rows last)."""
    return (
        RegulatoryStatus.objects.filter(clinic=clinic)
        .select_related("ingredient")
        .order_by("ingredient__name", "jurisdiction", "id")
    )


def regulatory_status_create(
    *,
    caller: Caller,
    clinic: Clinic,
    ingredient_id: int | None,
    jurisdiction: str,
    status: str,
    indications: Sequence[str],
    use: str,
    source: str,
) -> RegulatoryStatus:
    """The clinic's own regulatory status for an ingredient (or, with no ingredient, for mesotherapy
    mixtures as such) in its jurisdiction, for some uses or any use: it overrides the seeded rows of the same
    jurisdiction for this clinic (R-REG: clinic configuration, not code). Audited."""
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=clinic.pk)
    errors: dict[str, list[str]] = {}
    jurisdiction = _text(jurisdiction, "jurisdiction", max_length=10, required=True, errors=errors).upper()
    use = _text(use, "use", max_length=300, required=True, errors=errors)
    source = _text(source, "source", max_length=300, required=True, errors=errors)
    ingredient = None
    if ingredient_id is not None:
        ingredient = (
            ingredients_for(clinic).filter(pk=ingredient_id).first() if is_valid_id(ingredient_id) else None
        )
        if ingredient is None:
            errors["ingredient_id"] = [_("Unknown ingredient.")]
    if "jurisdiction" not in errors:
        if not _JURISDICTION.match(jurisdiction):
            errors["jurisdiction"] = [_('Give a country code ("FR") or a country and region code ("US-NY").')]
        elif not jurisdiction_covers(jurisdiction, clinic.jurisdiction):
            errors["jurisdiction"] = [
                _("This status would never apply here: the clinic's jurisdiction is %(jurisdiction)s.")
                % {"jurisdiction": clinic.jurisdiction}
            ]
    if status not in RegulatoryStatus.Status.values:
        errors["status"] = [_("Unknown status.")]
    uses = sorted({str(item) for item in indications})
    if len(uses) > len(Indication.values) or set(uses) - set(Indication.values):
        errors["indications"] = [_("Unknown indication.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        duplicate = [
            row
            for row in RegulatoryStatus.objects.filter(
                clinic=clinic, ingredient=ingredient, jurisdiction=jurisdiction, status=status
            )
            if sorted(row.indications or []) == uses
        ]
        if duplicate:
            raise ValidationError({"status": [_("The clinic already records this status.")]})
        row = RegulatoryStatus.objects.create(
            clinic=clinic,
            ingredient=ingredient,
            jurisdiction=jurisdiction,
            status=status,
            indications=uses,
            use=use,
            source=source,
        )
        _audit_change(
            caller,
            clinic.pk,
            row,
            "regulatory-status",
            "create",
            {
                "ingredient": ingredient.code if ingredient else None,
                "jurisdiction": jurisdiction,
                "status": status,
                "indications": uses,
            },
        )
    return row


def _visible(caller: Caller, obj: M | None, clinic_id: int | None) -> M:
    """A reference row, if the caller may see it: seeded rows (no clinic) are everyone's, a clinic's rows are
    that clinic's (another clinic's, or a missing id, is a 404)."""
    if obj is None or (clinic_id is not None and not may_see_clinic(caller.user, clinic_id)):
        raise Http404(_("Not found."))
    return obj


def _seeded_refused() -> ValidationError:
    return ValidationError(
        {
            NON_FIELD_ERRORS: [
                _(
                    "The seeded catalogue cannot be changed here (corrections come with the software); add "
                    "the clinic's own row instead."
                )
            ]
        }
    )


def regulatory_status_delete(*, caller: Caller, status_id: int) -> int:
    """Remove one of the clinic's own statuses (the seeded rows speak again). Answers the clinic's id."""
    found = RegulatoryStatus.objects.filter(pk=status_id).first() if is_valid_id(status_id) else None
    row = _visible(caller, found, found.clinic_id if found else None)
    clinic_id = row.clinic_id
    if clinic_id is None:
        raise _seeded_refused()
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=clinic_id)
    with transaction.atomic():
        _audit_change(
            caller, clinic_id, row, "regulatory-status", "delete", {"jurisdiction": row.jurisdiction}
        )
        row.delete()
    return clinic_id


def _own_ingredient(caller: Caller, ingredient: Ingredient) -> int:
    """Cautions and limits are added to the clinic's own ingredients (the seeded ones change by migration)."""
    if ingredient.clinic_id is None:
        raise _seeded_refused()
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=ingredient.clinic_id)
    return ingredient.clinic_id


def caution_create(
    *, caller: Caller, ingredient: Ingredient, group: str, note: str, source: str
) -> CrossSensitivity:
    """R-CAND-XALLERGY for a clinic ingredient: an allergy to ``group`` is a caution (warn), not a ban."""
    clinic_id = _own_ingredient(caller, ingredient)
    errors: dict[str, list[str]] = {}
    note = _text(note, "note", max_length=300, required=True, errors=errors)
    source = _text(source, "source", max_length=300, required=True, errors=errors)
    found = AllergyGroup.objects.filter(code=str(group)).first()
    if found is None:
        errors["group"] = [_("Unknown allergy group.")]
    message = _("This ingredient already has a caution for this allergy group.")
    if found is not None and CrossSensitivity.objects.filter(ingredient=ingredient, group=found).exists():
        errors["group"] = [message]
    if errors:
        raise ValidationError(errors)
    caution = CrossSensitivity(ingredient=ingredient, group=found, note=note, source=source)
    with transaction.atomic():
        _save_unique(caution, "group", message)
        _audit_change(caller, clinic_id, caution, "caution", "create", {"ingredient": ingredient.code})
    return caution


def caution_delete(*, caller: Caller, caution_id: int) -> Ingredient:
    """Remove a caution of a clinic ingredient. Answers the ingredient."""
    found = (
        CrossSensitivity.objects.select_related("ingredient").filter(pk=caution_id).first()
        if is_valid_id(caution_id)
        else None
    )
    caution = _visible(caller, found, found.ingredient.clinic_id if found else None)
    return _delete_ingredient_row(caller, caution, "caution")


def _delete_ingredient_row(caller: Caller, row: CrossSensitivity | ProductLimit, what: str) -> Ingredient:
    ingredient = row.ingredient
    clinic_id = _own_ingredient(caller, ingredient)
    with transaction.atomic():
        _audit_change(caller, clinic_id, row, what, "delete", {"ingredient": ingredient.code})
        row.delete()
    return ingredient


def _optional_decimal(
    data: Mapping[str, Any], name: str, limits: rules.DecimalLimits, errors: dict[str, list[str]]
) -> Decimal | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return None
    value = _decimal_or_none(raw)
    problem = rules.decimal_problem(value, limits)
    if problem is not None:
        errors[name] = [problem]
        return None
    return value


def _optional_count(data: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> int | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 < raw <= MAX_LIMIT_COUNT:
        errors[name] = [_("Give a whole number from 1 to %(count)d.") % {"count": MAX_LIMIT_COUNT}]
        return None
    return raw


LIMIT_FIELDS = (
    "max_volume_per_injection_ml",
    "min_injection_spacing_cm",
    "max_injections_per_session",
    "max_volume_per_session_ml",
    "min_interval_days",
    "max_sessions",
)


def product_limit_create(*, caller: Caller, ingredient: Ingredient, data: Mapping[str, Any]) -> ProductLimit:
    """R-TECH product limits for one strength of a clinic ingredient (per injection, per session, between
    sessions, number of sessions), enforced when sessions are charted. At least one limit; each positive and
    within what its column holds; a per-injection volume no larger than the per-session one."""
    clinic_id = _own_ingredient(caller, ingredient)
    errors: dict[str, list[str]] = {}
    label = _text(data.get("label"), "label", max_length=200, required=True, errors=errors)
    source = _text(data.get("source"), "source", max_length=300, required=True, errors=errors)
    concentration = _decimal_or_none(data.get("concentration"))
    if (problem := rules.decimal_problem(concentration, rules.STRENGTH_LIMITS)) is not None:
        errors["concentration"] = [problem]
    unit = str(data.get("concentration_unit", ""))
    if unit not in ConcentrationUnit.values:
        errors["concentration_unit"] = [_("A concentration needs a unit.")]
    values: dict[str, Any] = {
        "max_volume_per_injection_ml": _optional_decimal(
            data, "max_volume_per_injection_ml", rules.VOLUME_LIMITS, errors
        ),
        "min_injection_spacing_cm": _optional_decimal(
            data, "min_injection_spacing_cm", SPACING_LIMITS, errors
        ),
        "max_injections_per_session": _optional_count(data, "max_injections_per_session", errors),
        "max_volume_per_session_ml": _optional_decimal(
            data, "max_volume_per_session_ml", rules.VOLUME_LIMITS, errors
        ),
        "min_interval_days": _optional_count(data, "min_interval_days", errors),
        "max_sessions": _optional_count(data, "max_sessions", errors),
    }
    if not errors and all(value is None for value in values.values()):
        errors[NON_FIELD_ERRORS] = [_("Give at least one limit.")]
    per_injection, per_session = values["max_volume_per_injection_ml"], values["max_volume_per_session_ml"]
    if per_injection is not None and per_session is not None and per_injection > per_session:
        errors["max_volume_per_injection_ml"] = [_("More than the volume allowed per session.")]
    if errors:
        raise ValidationError(errors)
    limit = ProductLimit(
        ingredient=ingredient,
        label=label,
        concentration=cast(Decimal, concentration),
        concentration_unit=unit,
        source=source,
        **values,
    )
    with transaction.atomic():
        limit.save()
        _audit_change(caller, clinic_id, limit, "product-limit", "create", {"ingredient": ingredient.code})
    return limit


def product_limit_delete(*, caller: Caller, limit_id: int) -> Ingredient:
    """Remove a product limit of a clinic ingredient. Answers the ingredient."""
    found = (
        ProductLimit.objects.select_related("ingredient").filter(pk=limit_id).first()
        if is_valid_id(limit_id)
        else None
    )
    limit = _visible(caller, found, found.ingredient.clinic_id if found else None)
    return _delete_ingredient_row(caller, limit, "product-limit")


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


MAX_COMPONENTS = 40


def _check_content(clinic: Clinic, content: FormulaContent) -> dict[int, Ingredient]:
    if len(content.components) > MAX_COMPONENTS:
        raise ValidationError(
            {"components": [_("At most %(count)d ingredients.") % {"count": MAX_COMPONENTS}]}
        )
    if len(content.indications) > len(Indication.values):
        raise ValidationError({"indications": [_("Unknown indication.")]})
    problems = rules.formula_input_problems(
        rules.FormulaInput(
            components=tuple(
                rules.ComponentInput(c.ingredient_id, _decimal_or_none(c.concentration), c.unit or "")
                for c in content.components
            ),
            total_volume_ml=_decimal_or_none(content.total_volume_ml),
            indications=tuple(str(item) for item in content.indications),
            known_units=frozenset(ConcentrationUnit.values),
            known_indications=frozenset(Indication.values),
        )
    )
    _text(content.preparation_notes, "preparation_notes", max_length=4000, errors=problems)
    wanted = {c.ingredient_id for c in content.components if is_valid_id(c.ingredient_id)}
    if is_valid_id(content.diluent_id):
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
    version.save()  # ImmutableError if a preparation uses it by now (formula_revise turns it into a 422)
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
    name = _text(name, "name", max_length=200, required=True, errors=errors)
    message = _("A formula with this name exists already.")
    if not errors and Formula.objects.filter(clinic=clinic, name=name).exists():
        errors["name"] = [message]
    try:
        ingredients = _check_content(clinic, content)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    user = caller.user if caller.user.is_authenticated else None
    with transaction.atomic():
        formula = Formula(clinic=clinic, name=name)
        _save_unique(formula, "name", message)
        version = FormulaVersion(formula=formula, number=1, created_by=user)
        _write_version(version=version, content=content, ingredients=ingredients)
    return formula


def formula_revise(*, caller: Caller, formula: Formula, content: FormulaContent) -> FormulaVersion:
    """Change a formula. The current version is rewritten while no preparation uses it; once used it is
    immutable and the change becomes the next version (R-FORM).

    The formula and its current version are locked (a preparation locks the version it uses, so the two
    wait for each other). Should a preparation still take the version between the check and the write, the
    version refuses the write (``ImmutableError``) and the revision is refused with a clear message and
    nothing written: revising again makes the next version."""
    authorize(caller.user, Perm.FORMULARY_MANAGE, clinic_id=formula.clinic_id)
    ingredients = _check_content(formula.clinic, content)
    user = caller.user if caller.user.is_authenticated else None
    try:
        with transaction.atomic():
            Formula.objects.select_for_update().filter(pk=formula.pk).first()
            current = (
                FormulaVersion.objects.select_for_update().filter(formula=formula).order_by("-number").first()
            )
            if current is None or current.is_used:
                number = current.number + 1 if current else 1
                current = FormulaVersion(formula=formula, number=number, created_by=user)
            return _write_version(version=current, content=content, ingredients=ingredients)
    except ImmutableError:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    ValidationError(
                        _(
                            "This version was just used by a preparation, so it can no longer change: "
                            "nothing was saved. Revise again to make the next version."
                        ),
                        code="version-used",
                    )
                ]
            }
        ) from None


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
        clinic=row.clinic_id is not None,
    )


def statuses_for(clinic: Clinic) -> models.QuerySet[RegulatoryStatus]:
    """The seeded regulatory statuses plus this clinic's own (never another clinic's)."""
    return RegulatoryStatus.objects.filter(Q(clinic__isnull=True) | Q(clinic=clinic))


def _ingredient_facts(clinic: Clinic, which: Q) -> tuple[rules.IngredientFacts, ...]:
    """The rules' view of some ingredients, with this clinic's statuses (four queries)."""
    rows = (
        Ingredient.objects.filter(which)
        .prefetch_related(
            "allergy_groups",
            Prefetch("cautions", queryset=CrossSensitivity.objects.select_related("group")),
            Prefetch("statuses", queryset=statuses_for(clinic)),
        )
        .order_by("name")
    )
    return tuple(_facts_from_ingredient(row, row.statuses.all(), row.cautions.all()) for row in rows)


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
    ingredients = _ingredient_facts(
        clinic,
        Q(pk__in=FormulaComponent.objects.filter(version=version).values("ingredient_id"))
        | Q(pk=version.diluent_id or 0),
    )
    procedure = tuple(status_facts(row) for row in statuses_for(clinic).filter(ingredient__isnull=True))
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


MAX_LOW_STOCK_VIALS = 100_000


def product_create(
    *, caller: Caller, clinic: Clinic, data: Mapping[str, Any], components: Sequence[ProductComponentIn]
) -> Product:
    """A product the clinic buys: supplier, vial volume, single- or multi-dose, beyond-use time after opening
    (at most a year), low-stock threshold, and the strength of each ingredient."""
    authorize(caller.user, Perm.STOCK_MANAGE, clinic_id=clinic.pk)
    errors: dict[str, list[str]] = {}
    name = _text(data.get("name"), "name", max_length=200, required=True, errors=errors)
    supplier = _text(data.get("supplier"), "supplier", max_length=200, required=True, errors=errors)
    hours = data.get("beyond_use_hours")
    if (problem := rules.beyond_use_hours_problem(hours)) is not None:
        errors["beyond_use_hours"] = [problem]
    low = data.get("low_stock_vials", 0)
    low = 0 if low is None or low == "" else low
    if not isinstance(low, int) or isinstance(low, bool) or not 0 <= low <= MAX_LOW_STOCK_VIALS:
        errors["low_stock_vials"] = [
            _("Give a number of vials from 0 to %(count)d.") % {"count": MAX_LOW_STOCK_VIALS}
        ]
    product = Product(
        clinic=clinic,
        name=name,
        supplier=supplier,
        multi_dose=bool(data.get("multi_dose", False)),
        beyond_use_hours=cast(int, hours) if "beyond_use_hours" not in errors else 1,
        low_stock_vials=low if "low_stock_vials" not in errors else 0,
    )
    try:
        product.vial_volume_ml = _volume(data.get("vial_volume_ml"), "vial_volume_ml")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not components:
        errors["components"] = [_("A product contains at least one ingredient.")]
    elif len(components) > MAX_COMPONENTS:
        errors["components"] = [_("At most %(count)d ingredients.") % {"count": MAX_COMPONENTS}]
        components = []
    found = {
        i.pk: i
        for i in ingredients_for(clinic).filter(
            pk__in=[c.ingredient_id for c in components if is_valid_id(c.ingredient_id)]
        )
    }
    seen: set[int] = set()
    strengths: list[Decimal] = []
    for index, component in enumerate(components):
        if component.ingredient_id not in found or component.ingredient_id in seen:
            errors[f"components.{index}.ingredient_id"] = [_("Unknown or repeated ingredient.")]
        else:
            seen.add(component.ingredient_id)
        strength = _decimal_or_none(component.strength)
        if strength is None or strength <= 0:
            errors[f"components.{index}.strength"] = [_("The strength must be more than zero.")]
        elif (bounds := rules.decimal_bounds_problem(strength, rules.STRENGTH_LIMITS)) is not None:
            errors[f"components.{index}.strength"] = [bounds]
        else:
            strengths.append(strength)
        if component.unit not in ConcentrationUnit.values:
            errors[f"components.{index}.unit"] = [_("A strength needs a unit.")]
    message = _("A product with this name exists already.")
    if not errors and Product.objects.filter(clinic=clinic, name=name).exists():
        errors["name"] = [message]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        _save_unique(product, "name", message)
        ProductComponent.objects.bulk_create(
            ProductComponent(
                product=product,
                ingredient=found[c.ingredient_id],  # type: ignore[index]
                strength=strength,
                unit=c.unit,
            )
            for c, strength in zip(components, strengths, strict=True)
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
    today = product.clinic.today()
    received_on = received_on or today
    errors: dict[str, list[str]] = {}
    number = _text(number, "number", max_length=60, errors=errors)
    for name, problems in rules.lot_receipt_problems(
        number=number,
        expires_on=expires_on,
        received_on=received_on,
        received_vials=received_vials,
        today=today,
    ).items():
        errors.setdefault(name, problems)
    if not product.is_active:
        errors["product_id"] = [_("This product is no longer in use.")]
    if errors:
        raise ValidationError(errors)
    quantity = _volume(product.vial_volume_ml * received_vials, "received_vials")
    message = _("This lot number is already recorded for this product.")
    with transaction.atomic():
        if Lot.objects.filter(product=product, number=number).exists():
            raise ValidationError({"number": [ValidationError(message, code="unique")]})
        lot = Lot(
            clinic_id=product.clinic_id,
            product=product,
            number=number,
            expires_on=expires_on,
            received_on=received_on,
            received_vials=received_vials,
        )
        _save_unique(lot, "number", message)
        _write_movements(
            [
                StockMovement(
                    clinic_id=product.clinic_id,
                    lot=lot,
                    kind=StockMovement.Kind.RECEIVED,
                    quantity_ml=quantity,
                    at=now,
                    by=_actor_user(caller),
                )
            ]
        )
        lot.stock_ml = quantity
    return lot


def _lot_stock(lot_id: int) -> Decimal:
    total = StockMovement.objects.filter(lot_id=lot_id).aggregate(total=Sum("quantity_ml"))["total"]
    return total if total is not None else ZERO


_BALANCE = Lot._meta.get_field("stock_ml")


def _write_movements(movements: Sequence[StockMovement]) -> None:
    """Insert stock movements (their ids set) and move each lot's stored balance, ``Lot.stock_ml``, by as
    much: the only writer of either, inside the caller's transaction (which holds the lots' locks), so the
    balance is the sum of the lot's movements whenever a transaction commits. One INSERT and one UPDATE.
    The new balance is rounded to the microlitre (SQLite adds decimals as floating point numbers)."""
    StockMovement.objects.bulk_create(movements)
    deltas: dict[int, Decimal] = defaultdict(Decimal)
    for movement in movements:
        deltas[movement.lot_id] += Decimal(movement.quantity_ml)
    moved = {lot_id: delta for lot_id, delta in deltas.items() if delta}
    if moved:
        shift = Case(
            *(When(pk=lot_id, then=Value(change, output_field=_BALANCE)) for lot_id, change in moved.items()),
            default=Value(ZERO, output_field=_BALANCE),
            output_field=_BALANCE,
        )
        Lot.objects.filter(pk__in=sorted(moved)).update(
            stock_ml=Round(F("stock_ml") + shift, 3, output_field=_BALANCE)
        )


def stock_discrepancies(clinic_id: int | None = None) -> dict[int, tuple[Decimal, Decimal]]:
    """The lots whose stored balance is not the sum of their movements: ``{lot id: (stored, sum)}``, empty
    when all is well (the check of ``Lot.stock_ml``; reads every movement)."""
    lots = Lot.objects.all() if clinic_id is None else Lot.objects.filter(clinic_id=clinic_id)
    sums = dict(
        StockMovement.objects.filter(lot__in=lots)
        .order_by()
        .values("lot_id")
        .annotate(total=Sum("quantity_ml"))
        .values_list("lot_id", "total")
    )
    found = {}
    for lot_id, stored in lots.values_list("pk", "stock_ml"):
        total = (sums.get(lot_id) or ZERO).quantize(_QUANTUM)
        if stored != total:
            found[lot_id] = (stored, total)
    return found


def lot_open_vials(*, caller: Caller, lot: Lot) -> list[tuple[VialOpening, Decimal]]:
    """The lot's opened vials that are not closed, with what each holds, oldest first. One query."""
    authorize(caller.user, Perm.FORMULARY_VIEW, clinic_id=lot.clinic_id)
    return sorted(_open_vials(lot.pk), key=lambda row: (row[0].opened_at, row[0].pk))


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
        .filter(pk__in=sorted({pk for pk in lot_ids if is_valid_id(pk)}), clinic_id=clinic_id)
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
            today=lot.clinic.today(),
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
    errors: dict[str, list[str]] = {}
    reason = _text(reason, "reason", max_length=300, errors=errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        _lock_lots([vial.lot_id], vial.lot.clinic_id)
        fresh = VialOpening.objects.select_related("lot__product").get(pk=vial.pk)
        if fresh.closed_at is not None:
            raise ValidationError({"vial_id": [_("This vial is already closed.")]})
        left = vial_remaining(fresh)
        if left > 0:
            _write_movements(
                [
                    StockMovement(
                        clinic_id=fresh.lot.clinic_id,
                        lot=fresh.lot,
                        vial=fresh,
                        kind=StockMovement.Kind.WASTED,
                        quantity_ml=-left,
                        reason=reason or _("Opened vial discarded"),
                        at=now,
                        by=_actor_user(caller),
                    )
                ]
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
    errors: dict[str, list[str]] = {}
    reason = _text(reason, "reason", max_length=300, errors=errors)
    if adjusting and not reason and not errors:
        errors["reason"] = [_("An adjustment needs its reason.")]
    if errors:
        raise ValidationError(errors)
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
        movement = StockMovement(
            clinic_id=locked.clinic_id,
            lot=locked,
            kind=kind,
            quantity_ml=signed,
            reason=reason,
            at=now,
            by=_actor_user(caller),
        )
        _write_movements([movement])
        return movement


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
    (and, for a multi-dose product, an opened vial). Nothing is written, and every reason is given (422),
    when:

    - a draw is blocked (R-FORM, R-SIGNAL), or a line's product contains none of the formula's ingredients;
    - the formula is banned in the clinic's jurisdiction (R-REG, on ``formula_version_id``);
    - the patient has no intake questionnaire yet (screening precedes treatment), or the formulary's checks on
      the latest intake block this formula for this patient (R-CAND-ALLERGY, R-CAND-ANDRO; on ``patient_id``).
      Warnings (a caution, a teratogen for a woman who cannot become pregnant) are the screening review's to
      acknowledge, not this step's.

    The formula version's row is locked and its components read after the lock, so that a concurrent
    ``formula_revise`` (which locks it too) cannot change a version while it becomes used."""
    authorize(caller.user, Perm.PREPARATION_CREATE, clinic_id=patient.clinic_id, patient=patient)
    clinic = patient.clinic
    if formula_version.formula.clinic_id != clinic.pk:
        raise ValidationError({"formula_version_id": [_("Unknown formula version.")]})
    now = now or timezone.now()
    today = clinic.today()
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

    with transaction.atomic():
        # Lock the version, then read what it is made of: a revision waits for this preparation.
        formula_version = FormulaVersion.objects.select_for_update().get(pk=formula_version.pk)
        facts = planned_formula_facts(clinic=clinic, formula_version_id=formula_version.pk)
        _collect_findings(errors, "formula_version_id", rules.regulatory_findings(facts, clinic.jurisdiction))
        intake = Intake.objects.filter(patient_id=patient.pk).order_by("-version").first()
        if intake is None:
            errors.setdefault("patient_id", []).append(
                ValidationError(
                    _(
                        "This patient has no intake questionnaire yet: screening comes before any "
                        "preparation. Fill the intake first."
                    ),
                    code="no-intake",
                )
            )
        else:
            patient_facts = rules.PatientFacts(
                allergies=tuple(str(entry) for entry in intake.allergies),
                pregnancy=intake.pregnancy,
                sex=patient.sex,
            )
            _collect_findings(errors, "patient_id", rules.patient_findings(facts, patient_facts))
        needed = set(
            FormulaComponent.objects.filter(version=formula_version).values_list("ingredient_id", flat=True)
        )
        if formula_version.diluent_id is not None:
            needed.add(formula_version.diluent_id)
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
            if not product_ingredients[product.pk] & needed:
                errors[f"lines.{index}.lot_id"] = [
                    _("Lot %(lot)s (%(product)s) contains none of this formula's ingredients.")
                    % {"lot": lot.number, "product": product.name}
                ]
                continue
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
        _write_movements(movements)
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.PREPARATION_CREATE,
            clinic_id=clinic.pk,
            patient_id=patient.pk,
            obj=preparation,
            detail={
                "formula_version": formula_version.pk,
                "lots": sorted({lot.pk for lot, _vial, _volume, _count in plan}),
                "intake_version": intake.version if intake is not None else None,
            },
        )
    return preparation


def _collect_findings(errors: dict[str, list[Any]], field_name: str, findings: Sequence[Finding]) -> None:
    """Add the blocking findings to ``errors`` under ``field_name``, each with its finding code."""
    for finding in findings:
        if finding.severity == "block":
            errors.setdefault(field_name, []).append(ValidationError(finding.message, code=finding.code))


def preparation_get(*, caller: Caller, preparation_id: int) -> Preparation:
    """One preparation (patient data): 404 for another clinic's, audited as a read of the patient. Its
    clinical notes are for clinical roles only (``notes_visible``)."""
    preparation = (
        Preparation.objects.select_related("patient", "clinic", "formula_version__formula")
        .filter(pk=preparation_id)
        .first()
        if is_valid_id(preparation_id)
        else None
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
        detail={"notes": notes_visible(caller=caller, clinic_id=preparation.clinic_id)},
    )
    return preparation


def notes_visible(*, caller: Caller, clinic_id: int) -> bool:
    """Whether the caller may read clinical free text (preparation notes) in this clinic: the front desk,
    which sees preparations to contact patients after a recall, never does (targets.md #3)."""
    return can(caller.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=clinic_id)


def preparable_version(*, clinic: Clinic, formula_version_id: Any) -> FormulaVersion:
    """The formula version a new preparation may use: a version of this clinic's formulas, of a formula still
    in use, and its current version (an older version stays readable, but nobody prepares from a recipe that
    has been replaced). Anything else is an error on ``formula_version_id``."""
    version = (
        FormulaVersion.objects.select_related("formula__clinic")
        .filter(pk=formula_version_id, formula__clinic=clinic)
        .first()
        if is_valid_id(formula_version_id)
        else None
    )
    if version is None:
        raise ValidationError({"formula_version_id": [_("Unknown formula version.")]})
    if not version.formula.is_active:
        raise ValidationError(
            {
                "formula_version_id": [
                    ValidationError(
                        _("%(formula)s is no longer in use.") % {"formula": version.formula.name},
                        code="formula-inactive",
                    )
                ]
            }
        )
    latest = FormulaVersion.objects.filter(formula_id=version.formula_id).order_by("-number").first()
    if latest is not None and latest.pk != version.pk:
        raise ValidationError(
            {
                "formula_version_id": [
                    ValidationError(
                        _(
                            "Version %(number)d of %(formula)s has been replaced by version %(current)d: "
                            "prepare from the current version."
                        )
                        % {
                            "number": version.number,
                            "formula": version.formula.name,
                            "current": latest.number,
                        },
                        code="version-not-current",
                    )
                ]
            }
        )
    return version


# --- direct administration --------------------------------------------------------------------------------


def product_regulatory_findings(
    *, clinic: Clinic, product: Product, indications: Iterable[str]
) -> list[Finding]:
    """R-REG for a product given as it is (no preparation), for these uses, in the clinic's jurisdiction."""
    ingredient_ids = ProductComponent.objects.filter(product=product).values("ingredient_id")
    facts = rules.PlannedFormulaFacts(
        name=product.name,
        ingredients=_ingredient_facts(clinic, Q(pk__in=ingredient_ids)),
        indications=frozenset(indications),
        procedure_statuses=tuple(
            status_facts(row) for row in statuses_for(clinic).filter(ingredient__isnull=True)
        ),
    )
    return rules.regulatory_findings(facts, clinic.jurisdiction)


def lot_administer(
    *,
    caller: Caller,
    patient: Patient,
    lot: Lot,
    volume_ml: Any,
    vial_id: int | None = None,
    indications: Sequence[str] = (),
    now: datetime | None = None,
) -> StockMovement:
    """A product injected for a patient straight from the lot, without a preparation (a ready-to-use
    cocktail vial, deoxycholic acid 10 mg/mL): the ``administered`` movement that names the patient, so that
    the recall report and "which lots did patient Y receive" find it (R-SIGNAL).

    The same lot checks as a preparation (R-FORM, R-SIGNAL: ``lot-recalled``, ``lot-expired``,
    ``lot-beyond-use``, ``lot-insufficient`` → an error on ``lot_id`` carrying the finding codes); a
    multi-dose product is drawn from an opened vial of the lot (``vial_id``), a single-dose product takes
    whole vials and the remainder is recorded as waste. With ``indications`` (the plan's), a product banned
    for them in the clinic's jurisdiction is refused (R-REG, ``banned-in-jurisdiction`` on ``indications``).
    Nothing is written unless everything passes. Atomic, and a savepoint inside the caller's transaction:
    session charting calls it in its own, so the stock moves with the chart or not at all. Audited as
    ``lot.administer`` on the patient."""
    authorize(caller.user, Perm.LOT_ADMINISTER, clinic_id=patient.clinic_id, patient=patient)
    clinic = patient.clinic
    errors: dict[str, list[Any]] = {}
    if lot.clinic_id != clinic.pk:
        raise ValidationError({"lot_id": [_("Unknown lot.")]})
    try:
        volume = _volume(volume_ml, "volume_ml")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if vial_id is not None and not is_valid_id(vial_id):
        errors["vial_id"] = [_("Unknown or closed vial of this lot.")]
    uses = [str(use) for use in indications]
    if set(uses) - set(Indication.values):
        errors["indications"] = [_("Unknown indication.")]
    if errors:
        raise ValidationError(errors)
    now = now or timezone.now()
    if uses:
        _raise_findings(
            "indications", product_regulatory_findings(clinic=clinic, product=lot.product, indications=uses)
        )
    with transaction.atomic():
        locked = _lock_lots([lot.pk], clinic.pk)[lot.pk]
        product = locked.product
        vial: VialOpening | None = None
        if product.multi_dose:
            if vial_id is None:
                raise ValidationError({"vial_id": [_("Open a vial of this multi-dose product first.")]})
            vial = (
                VialOpening.objects.filter(pk=vial_id, lot=locked, closed_at__isnull=True)
                .annotate(used=Coalesce(Sum("movements__quantity_ml"), Value(ZERO)))
                .first()
            )
            if vial is None:
                raise ValidationError({"vial_id": [_("Unknown or closed vial of this lot.")]})
            available = product.vial_volume_ml + vial.used
            vial_count, drawn = 0, volume
        else:
            if vial_id is not None:
                raise ValidationError({"vial_id": [_("Single-dose products are drawn from the lot.")]})
            vial_count = rules.single_dose_vials(volume, product.vial_volume_ml)
            available = _unopened_stock(locked.pk) // product.vial_volume_ml * product.vial_volume_ml
            drawn = product.vial_volume_ml * vial_count
        findings = rules.lot_findings(
            _lot_facts(locked, available, vial), volume_ml=drawn, today=clinic.today(), now=now
        )
        _raise_findings("lot_id", findings)
        by = _actor_user(caller)
        movement = StockMovement(
            clinic=clinic,
            lot=locked,
            vial=vial,
            kind=StockMovement.Kind.ADMINISTERED,
            quantity_ml=-volume,
            patient=patient,
            at=now,
            by=by,
        )
        movements = [movement]
        if drawn > volume:
            movements.append(
                StockMovement(
                    clinic=clinic,
                    lot=locked,
                    kind=StockMovement.Kind.WASTED,
                    quantity_ml=-(drawn - volume),
                    reason=_("Single-dose vial remainder discarded"),
                    at=now,
                    by=by,
                )
            )
        _write_movements(movements)
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.LOT_ADMINISTER,
            clinic_id=clinic.pk,
            patient_id=patient.pk,
            obj=movement,
            detail={
                "lot": locked.pk,
                "vial": vial.pk if vial is not None else None,
                "volume_ml": str(volume),
                "indications": sorted(set(uses)),
            },
        )
    return movement


# --- recalls and exposure ---------------------------------------------------------------------------------


def lot_recall(*, caller: Caller, lot: Lot, reason: str, now: datetime | None = None) -> Lot:
    """Recall a lot: from this moment no preparation or administration may draw from it (R-SIGNAL)."""
    authorize(caller.user, Perm.LOT_RECALL, clinic_id=lot.clinic_id)
    errors: dict[str, list[str]] = {}
    reason = _text(reason, "reason", max_length=2000, errors=errors)
    if not reason and not errors:
        errors["reason"] = [_("Say why the lot is recalled.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = _lock_lots([lot.pk], lot.clinic_id)[lot.pk]
        if locked.recalled_at is not None:
            raise ValidationError({"reason": [_("This lot is already recalled.")]})
        locked.recalled_at = now or timezone.now()
        locked.recall_reason = reason
        locked.recalled_by = _actor_user(caller)
        locked.save(update_fields=["recalled_at", "recall_reason", "recalled_by"])
        totals = _exposure_totals(locked.pk)
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.LOT_RECALL,
            clinic_id=locked.clinic_id,
            obj=locked,
            detail={"reason": reason[:500], **totals},
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
class ExposedAdministration:
    """A direct administration from the lot (a stock movement), without a preparation."""

    id: int
    administered_at: datetime
    volume_ml: Decimal
    product: str


@dataclass
class ExposedPatient:
    patient: Patient
    preparations: list[ExposedPreparation] = field(default_factory=list)
    administrations: list[ExposedAdministration] = field(default_factory=list)

    @property
    def exposure_dates(self) -> list[datetime]:
        """Every moment the patient received the lot, in order (for the message drafts)."""
        return sorted(
            [p.prepared_at for p in self.preparations] + [a.administered_at for a in self.administrations]
        )


@dataclass
class ExposureReport:
    lot: Lot
    patients: list[ExposedPatient]  # all of them, or the page asked for
    patient_count: int  # in the whole report
    preparation_count: int
    offset: int = 0
    administration_count: int = 0


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


def _administrations(lot_id: int) -> models.QuerySet[StockMovement]:
    return StockMovement.objects.filter(lot_id=lot_id, kind=StockMovement.Kind.ADMINISTERED)


def _exposed_patients(lot_id: int) -> models.QuerySet[Patient]:
    """Every patient who received the lot: through a preparation, or by direct administration."""
    return Patient.objects.filter(
        Q(pk__in=Preparation.objects.filter(lines__lot_id=lot_id).values("patient_id"))
        | Q(pk__in=_administrations(lot_id).values("patient_id"))
    )


def _exposure_totals(lot_id: int) -> dict[str, int]:
    """Patients, preparations and direct administrations of the lot, in one query."""

    def count(queryset: models.QuerySet[Any], column: str) -> Subquery:
        return Subquery(queryset.order_by().annotate(n=Func(F(column), function="COUNT")).values("n")[:1])

    row = (
        Lot.objects.filter(pk=lot_id)
        .values_list(
            count(_exposed_patients(lot_id), "id"),
            count(
                Preparation.objects.filter(
                    pk__in=PreparationLine.objects.filter(lot_id=lot_id).values("preparation_id")
                ),
                "id",
            ),
            count(_administrations(lot_id), "id"),
        )
        .first()
    )
    patients, preparations, administrations = row if row is not None else (0, 0, 0)
    return {
        "patients": patients or 0,
        "preparations": preparations or 0,
        "administrations": administrations or 0,
    }


def lot_exposure(
    *,
    caller: Caller,
    lot: Lot,
    action: Action = Action.EXPOSURE_READ,
    limit: int | None = None,
    offset: int = 0,
) -> ExposureReport:
    """Who received lot X: every patient who received it, through a preparation or by direct administration,
    with contact details and each exposure, patients in name order (``limit``/``offset`` page by patient).
    Four queries whatever the size (totals, patients, preparation lines, administrations) and the audit
    append; audited as a read, a print or an export of exactly the patients listed."""
    authorize(caller.user, Perm.EXPOSURE_VIEW, clinic_id=lot.clinic_id)
    totals = _exposure_totals(lot.pk)
    patients_query = (
        _exposed_patients(lot.pk)
        .order_by("family_name_folded", "given_name_folded", "id")
        .values_list(*_PATIENT_FIELDS)
    )
    if limit is not None:
        offset = max(0, min(offset, MAX_ID))
        patients_query = patients_query[offset : offset + limit]
    patients = {
        row[0]: ExposedPatient(patient=Patient(**dict(zip(_PATIENT_FIELDS, row, strict=True))))
        for row in patients_query
    }
    lines = PreparationLine.objects.filter(lot_id=lot.pk)
    administrations = _administrations(lot.pk)
    if limit is not None:
        lines = lines.filter(preparation__patient_id__in=list(patients))
        administrations = administrations.filter(patient_id__in=list(patients))
    for patient_id, preparation_id, prepared_at, volume, formula, version in lines.order_by(
        "preparation__prepared_at", "preparation_id", "id"
    ).values_list(
        "preparation__patient_id",
        "preparation_id",
        "preparation__prepared_at",
        "volume_ml",
        "preparation__formula_version__formula__name",
        "preparation__formula_version__number",
    ):
        exposed = patients[patient_id].preparations
        if exposed and exposed[-1].id == preparation_id:
            exposed[-1].volume_ml += volume  # two lines of one preparation from the same lot
        else:
            exposed.append(ExposedPreparation(preparation_id, prepared_at, volume, formula, version))
    product = lot.product.name
    for patient_id, movement_id, at, quantity in administrations.order_by("at", "id").values_list(
        "patient_id", "id", "at", "quantity_ml"
    ):
        patients[patient_id].administrations.append(
            ExposedAdministration(movement_id, at, -quantity, product)
        )
    audit_record(
        actor=caller.actor(lot.clinic_id),
        action=action,
        clinic_id=lot.clinic_id,
        obj=lot,
        detail={"lot": lot.number, "patients": list(patients), "total_patients": totals["patients"]},
    )
    return ExposureReport(
        lot=lot,
        patients=list(patients.values()),
        patient_count=totals["patients"],
        preparation_count=totals["preparations"],
        administration_count=totals["administrations"],
        offset=offset,
    )


@dataclass
class ReceivedLot:
    """One time a patient received a lot: a preparation line, or a direct administration."""

    kind: str  # "preparation" or "administration"
    lot_id: int
    lot_number: str
    product: str
    expires_on: date
    recalled: bool
    at: datetime
    volume_ml: Decimal
    preparation_id: int | None = None
    administration_id: int | None = None
    formula: str = ""


def patient_lots(*, caller: Caller, patient_id: int) -> tuple[Patient, list[ReceivedLot]]:
    """Which lots did patient Y receive (preparations and direct administrations), newest first; audited as a
    read of that patient. Two queries for the rows."""
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.EXPOSURE_VIEW, audit=False)
    lines = (
        PreparationLine.objects.filter(preparation__patient=patient)
        .select_related("lot__product", "preparation__formula_version__formula")
        .order_by("-preparation__prepared_at", "preparation_id", "id")
    )
    received = [
        ReceivedLot(
            kind="preparation",
            lot_id=line.lot_id,
            lot_number=line.lot.number,
            product=line.lot.product.name,
            expires_on=line.lot.expires_on,
            recalled=line.lot.recalled_at is not None,
            at=line.preparation.prepared_at,
            volume_ml=line.volume_ml,
            preparation_id=line.preparation_id,
            formula=str(line.preparation.formula_version),
        )
        for line in lines
    ]
    received += [
        ReceivedLot(
            kind="administration",
            lot_id=movement.lot_id,
            lot_number=movement.lot.number,
            product=movement.lot.product.name,
            expires_on=movement.lot.expires_on,
            recalled=movement.lot.recalled_at is not None,
            at=movement.at,
            volume_ml=-movement.quantity_ml,
            administration_id=movement.pk,
        )
        for movement in StockMovement.objects.filter(
            patient=patient, kind=StockMovement.Kind.ADMINISTERED
        ).select_related("lot__product")
    ]
    received.sort(key=lambda row: row.at, reverse=True)  # stable: preparation lines keep their order
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
    clinic-local today, products under their low-stock threshold, opened vials. Three queries, none of which
    reads the clinic's history: a lot's stock is its stored balance (``Lot.stock_ml``, the sum of its
    movements), an open vial's what it held less its own few movements."""
    authorize(caller.user, Perm.FORMULARY_VIEW, clinic_id=clinic.pk)
    today = today or clinic.today()
    soon = today + timedelta(days=soon_days)
    products = {
        product.pk: ProductStock(product)
        for product in Product.objects.filter(clinic=clinic, is_active=True).order_by("name")
    }
    lots = Lot.objects.filter(clinic=clinic, product__is_active=True, stock_ml__gt=0).order_by(
        "expires_on", "number"
    )
    for lot in lots:
        row = products[lot.product_id]
        lot.product = row.product  # the screen names it: no query per lot
        row.lots.append(
            LotStock(
                lot=lot,
                stock_ml=lot.stock_ml,
                expired=today > lot.expires_on,
                expiring_soon=lot.expires_on <= soon,
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
