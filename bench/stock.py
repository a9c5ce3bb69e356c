"""The generator's formulary families (mesoclinic.formulary): each clinic's formulas and products, then its
lots, opened vials, preparations, preparation lines and stock movements.

:func:`gen_formulary` (small tables, through the ORM): each clinic keeps 3–8 of the formula templates below,
those its jurisdiction does not ban (``formulary.rules.regulatory_findings``: no fat lysis by injection in
France, no phosphatidylcholine in Brazil), with 1–3 versions over its history, and one product per
ingredient they use, from the seeded global catalogue (ampoules, syringes, two multi-dose vials).

:func:`gen_stock` (big tables, one job per clinic in the worker processes): one preparation per treatment
visit planned by bench/clinical.py, of the formula version current that day, halved for a small area; each
ingredient drawn from a lot, first to expire first, exactly as ``formulary.services.preparation_create``
would: whole single-dose ampoules (a partial one's remainder wasted), multi-dose vials punctured and used
until empty, beyond their 28-day use or their lot's recall or expiry (then discarded). Lots are delivered
when a product runs low, sized to the last three months' use, with 12–36 months of shelf life; slow products
expire with stock left (most written off, some still on the shelf "today"); about 1 % of lots are recalled
(the rest returned to the supplier), and every clinic has one recent recall whose exposure report has
patients in it. So each lot's stock, the sum of its movements, never goes below zero and matches the
preparations; every line draws from a lot of the patient's clinic.

Lots and opened vials are numbered inside their clinic's job (how many there are is only known once it has
run); this process shifts those numbers to ids as each clinic's rows arrive (``write_table_jobs(each=…)``).
Lines and movements take their ids from the database (nothing refers to them)."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch

from bench.rows import (
    SECONDS_PER_DAY,
    RowJob,
    Visits,
    ceil_div,
    day_text,
    local_moment,
    local_stamp_text,
    ml,
    ml_text,
    months_later,
    next_open_day,
)
from mesoclinic.accounts.models import Role
from mesoclinic.formulary import rules as formulary_rules
from mesoclinic.formulary.models import (
    CrossSensitivity,
    Formula,
    FormulaComponent,
    FormulaVersion,
    Ingredient,
    Lot,
    Preparation,
    PreparationLine,
    Product,
    ProductComponent,
    RegulatoryStatus,
    StockMovement,
    VialOpening,
)
from mesoclinic.formulary.services import planned_formula_facts, status_facts

if TYPE_CHECKING:
    from bench.generate import ClinicData, Context, Counts

SINGLE_DOSE_HOURS = 1  # an opened ampoule is used at once
MULTI_DOSE_HOURS = 28 * 24  # USP <797>: 28 days after the first puncture


@dataclass(frozen=True)
class ProductSpec:
    name: str
    supplier: str
    vial_ml: float
    components: tuple[tuple[str, str, str], ...]  # (ingredient code, strength, unit)
    multi_dose: bool = False
    low_stock_vials: int = 5
    shelf_months: tuple[int, int] = (12, 36)
    prefix: str = "L"
    box: int = 10  # vials per box: deliveries are whole boxes

    @property
    def vial_ul(self) -> int:
        return ml(self.vial_ml)


# Keyed by a short name that the formula templates use.
PRODUCTS: dict[str, ProductSpec] = {
    "caffeine": ProductSpec(
        "Caffeine 20 mg/mL, 2 mL ampoule", "Mesopharm", 2, (("caffeine", "20", "mg/mL"),), prefix="CAF"
    ),
    "artichoke": ProductSpec(
        "Artichoke extract 5 %, 2 mL ampoule",
        "PhytoMeso",
        2,
        (("artichoke-extract", "5", "%"),),
        shelf_months=(9, 18),
        prefix="ART",
        box=10,
    ),
    "silicon": ProductSpec(
        "Organic silicon 0.5 %, 5 mL ampoule",
        "Mesopharm",
        5,
        (("organic-silicon", "0.5", "%"),),
        prefix="SIL",
    ),
    "procaine": ProductSpec(
        "Procaine 2 %, 2 mL ampoule",
        "Anesthia",
        2,
        (("procaine", "2", "%"),),
        shelf_months=(24, 36),
        prefix="PRC",
    ),
    "lidocaine": ProductSpec(
        "Lidocaine 1 %, 20 mL multi-dose vial",
        "Anesthia",
        20,
        (("lidocaine", "10", "mg/mL"),),
        multi_dose=True,
        low_stock_vials=2,
        shelf_months=(24, 36),
        prefix="LID",
        box=1,
    ),
    "saline": ProductSpec(
        "Bacteriostatic sodium chloride 0.9 %, 30 mL multi-dose vial",
        "Fresenius",
        30,
        (("bacteriostatic-saline", "0.9", "%"),),
        multi_dose=True,
        low_stock_vials=2,
        shelf_months=(18, 36),
        prefix="BNS",
        box=5,
    ),
    "hyaluronic": ProductSpec(
        "Non-cross-linked hyaluronic acid 10 mg/mL, 3 mL syringe",
        "DermaBoost",
        3,
        (("hyaluronic-acid", "10", "mg/mL"),),
        shelf_months=(12, 24),
        prefix="HYA",
        box=5,
    ),
    "vitamin-c": ProductSpec(
        "Ascorbic acid 100 mg/mL, 2 mL ampoule",
        "Mesopharm",
        2,
        (("vitamin-c", "100", "mg/mL"),),
        shelf_months=(12, 24),
        prefix="VTC",
    ),
    "dmae": ProductSpec("DMAE 3 %, 5 mL ampoule", "DermaBoost", 5, (("dmae", "3", "%"),), prefix="DMA"),
    "b-complex": ProductSpec(
        "Vitamin B complex, 2 mL ampoule",
        "Mesopharm",
        2,
        (("vitamin-b-complex", "10", "mg/mL"),),
        shelf_months=(12, 24),
        prefix="VTB",
    ),
    "biotin": ProductSpec(
        "Biotin 5 mg/mL, 1 mL ampoule", "Mesopharm", 1, (("biotin", "5", "mg/mL"),), prefix="BIO"
    ),
    "dexpanthenol": ProductSpec(
        "Dexpanthenol 250 mg/2 mL ampoule", "Mesopharm", 2, (("dexpanthenol", "125", "mg/mL"),), prefix="DXP"
    ),
    "tranexamic": ProductSpec(
        "Tranexamic acid 100 mg/mL, 5 mL ampoule",
        "Pharmatrix",
        5,
        (("tranexamic-acid", "100", "mg/mL"),),
        shelf_months=(24, 36),
        prefix="TXA",
    ),
    "glutathione": ProductSpec(
        "Glutathione 600 mg/5 mL vial",
        "Pharmatrix",
        5,
        (("glutathione", "120", "mg/mL"),),
        shelf_months=(12, 24),
        prefix="GSH",
        box=5,
    ),
    "centella": ProductSpec(
        "Centella asiatica extract 2 %, 2 mL ampoule",
        "PhytoMeso",
        2,
        (("centella-extract", "2", "%"),),
        shelf_months=(9, 18),
        prefix="CEN",
    ),
    "pdrn": ProductSpec(
        "Polynucleotides 20 mg/mL, 2 mL syringe",
        "DermaBoost",
        2,
        (("polynucleotides", "20", "mg/mL"),),
        shelf_months=(9, 15),
        prefix="PDR",
        box=5,
    ),
    "pcdc": ProductSpec(
        "Phosphatidylcholine 50 mg/mL + sodium deoxycholate 24 mg/mL, 5 mL ampoule",
        "Lipomed",
        5,
        (("phosphatidylcholine", "50", "mg/mL"), ("sodium-deoxycholate", "24", "mg/mL")),
        shelf_months=(18, 24),
        prefix="PCD",
    ),
    "carnitine": ProductSpec(
        "L-carnitine 200 mg/mL, 5 mL ampoule",
        "Mesopharm",
        5,
        (("l-carnitine", "200", "mg/mL"),),
        prefix="CAR",
    ),
}


@dataclass(frozen=True)
class FormulaTemplate:
    key: str
    name: str
    indications: tuple[str, ...]
    areas: tuple[str, ...]
    weight_female: float
    weight_male: float
    draws: tuple[tuple[str, float], ...]  # (product, mL per preparation)
    diluent: tuple[str, float] | None = None  # (product, mL): the formula's diluent
    revisions: tuple[dict[str, float], ...] = ()  # later versions: product → new mL
    notes: str = ""


TEMPLATES: tuple[FormulaTemplate, ...] = (
    FormulaTemplate(
        "cellulite",
        "Cellulite — caffeine, artichoke, silicon",
        ("cellulite",),
        ("thighs", "buttocks", "hips"),
        1.0,
        0.1,
        (("caffeine", 2), ("artichoke", 2), ("silicon", 5), ("procaine", 2)),
        ("saline", 4),
        ({"saline": 3}, {"saline": 3, "caffeine": 4}),
        "Mix in a 20 mL syringe; use within the hour.",
    ),
    FormulaTemplate(
        "booster",
        "Skin booster — hyaluronic acid, vitamin C, DMAE",
        ("rejuvenation", "wrinkles"),
        ("face", "neck", "decollete"),
        1.0,
        0.3,
        (("hyaluronic", 3), ("vitamin-c", 1), ("dmae", 1)),
        None,
        ({"vitamin-c": 2},),
    ),
    FormulaTemplate(
        "hair",
        "Hair revitalisation — biotin, dexpanthenol, B vitamins",
        ("hair-loss",),
        ("scalp",),
        0.4,
        1.0,
        (("biotin", 1), ("dexpanthenol", 2), ("b-complex", 2), ("lidocaine", 1)),
        None,
        ({"lidocaine": 0.5},),
    ),
    FormulaTemplate(
        "pigmentation",
        "Pigmentation — tranexamic acid, glutathione",
        ("pigmentation",),
        ("face", "cheeks"),
        0.6,
        0.3,
        (("tranexamic", 1), ("glutathione", 2), ("vitamin-c", 2)),
        ("saline", 1),
        ({"saline": 2},),
    ),
    FormulaTemplate(
        "lipolysis",
        "Injection lipolysis — phosphatidylcholine, deoxycholate",
        ("localized-fat",),
        ("abdomen", "flanks", "submental"),
        0.6,
        0.6,
        (("pcdc", 10),),
        ("saline", 5),
        ({"saline": 4},),
    ),
    FormulaTemplate(
        "lipolytic",
        "Lipolytic cocktail — caffeine, L-carnitine",
        ("localized-fat",),
        ("abdomen", "flanks", "thighs"),
        0.6,
        0.5,
        (("caffeine", 4), ("carnitine", 5), ("lidocaine", 1)),
        ("saline", 5),
        ({"carnitine": 10, "saline": 3},),
    ),
    FormulaTemplate(
        "stretch-marks",
        "Stretch marks — centella, silicon, vitamin C",
        ("stretch-marks",),
        ("abdomen", "hips", "thighs"),
        0.5,
        0.05,
        (("centella", 2), ("silicon", 5), ("vitamin-c", 2)),
    ),
    FormulaTemplate(
        "pdrn",
        "Polynucleotide booster",
        ("rejuvenation",),
        ("face", "periorbital", "neck"),
        0.5,
        0.2,
        (("pdrn", 2), ("lidocaine", 0.2)),
    ),
)


@dataclass(frozen=True)
class VersionPlan:
    version_id: int
    number: int
    created: int  # clinic-local second since day 1 (ordinal × 86,400 + second)
    draws: tuple[tuple[str, int], ...]  # (product key, µL), the diluent last
    facts: formulary_rules.PlannedFormulaFacts  # what the screening rules read about it


@dataclass(frozen=True)
class FormulaPlan:
    """A generated formula, for the intakes family (which plans who gets it) and the stock family."""

    formula_id: int
    template: str
    name: str
    indications: tuple[str, ...]
    areas: tuple[str, ...]
    weight_female: float
    weight_male: float
    versions: tuple[VersionPlan, ...]  # in number order

    def version_on(self, day: int) -> VersionPlan:
        return self.version_at(day * SECONDS_PER_DAY + SECONDS_PER_DAY - 1)

    def version_at(self, moment: int) -> VersionPlan:
        current = self.versions[0]
        for version in self.versions:
            if version.created <= moment:
                current = version
        return current


@dataclass(frozen=True)
class ProductPlan:
    product_id: int
    key: str
    vial_ul: int
    multi_dose: bool
    beyond_use_seconds: int
    low_stock_vials: int
    shelf_months: tuple[int, int]
    prefix: str
    box: int


class IngredientCatalogue:
    """The global ingredients as the formulary rules see them, read once: enough to tell which templates a
    jurisdiction bans before any formula exists (the generated formulas then get their facts from
    ``formulary.services.planned_formula_facts`` itself)."""

    def __init__(self) -> None:
        # The seeded statuses only: generated clinics have no regulatory configuration of their own.
        seeded = RegulatoryStatus.objects.filter(clinic__isnull=True)
        ingredients = {
            row.code: row
            for row in Ingredient.objects.filter(clinic__isnull=True).prefetch_related(
                "allergy_groups", Prefetch("statuses", queryset=seeded)
            )
        }
        cautions: dict[int, list[CrossSensitivity]] = {}
        for caution in CrossSensitivity.objects.select_related("group"):
            cautions.setdefault(caution.ingredient_id, []).append(caution)
        self.rows = ingredients
        self.facts = {
            code: formulary_rules.IngredientFacts(
                code=row.code,
                name=row.name,
                allergy_groups=frozenset(group.code for group in row.allergy_groups.all()),
                cautions=tuple(
                    formulary_rules.CautionFacts(c.group.code, c.note, c.source)
                    for c in cautions.get(row.pk, [])
                ),
                teratogen=row.teratogen,
                statuses=tuple(status_facts(status) for status in row.statuses.all()),
            )
            for code, row in ingredients.items()
        }
        self.procedure = tuple(status_facts(row) for row in seeded.filter(ingredient__isnull=True))

    def planned(
        self, name: str, number: int, codes: set[str], indications: tuple[str, ...]
    ) -> formulary_rules.PlannedFormulaFacts:
        return formulary_rules.PlannedFormulaFacts(
            name=name,
            version=number,
            ingredients=tuple(sorted((self.facts[code] for code in codes), key=lambda facts: facts.name)),
            indications=frozenset(indications),
            procedure_statuses=self.procedure,
        )


def _ingredient_codes(draws: tuple[tuple[str, int], ...]) -> set[str]:
    return {code for product, _volume in draws for code, _strength, _unit in PRODUCTS[product].components}


def _version_draws(
    template: FormulaTemplate, revision: dict[str, float] | None
) -> tuple[tuple[str, int], ...]:
    changes = revision or {}
    draws = [(product, ml(changes.get(product, volume))) for product, volume in template.draws]
    if template.diluent is not None:
        product, volume = template.diluent
        draws.append((product, ml(changes.get(product, volume))))
    return tuple(draws)


def gen_formulary(ctx: Context) -> Counts:
    """Per clinic: formulas (1–3 versions) from the templates its jurisdiction allows, and its products."""
    catalogue = IngredientCatalogue()
    banned: dict[tuple[str, str], bool] = {}
    plans: list[tuple[ClinicData, list[FormulaTemplate], dict[str, float]]] = []
    for data in ctx.clinics:
        rng = ctx.rng("formulary", data.number)
        jurisdiction = data.clinic.jurisdiction
        allowed = []
        for template in TEMPLATES:
            banned_key = (template.key, jurisdiction)
            if banned_key not in banned:
                facts = catalogue.planned(
                    template.name, 1, _ingredient_codes(_version_draws(template, None)), template.indications
                )
                findings = formulary_rules.regulatory_findings(facts, jurisdiction)
                banned[banned_key] = any(finding.severity == "block" for finding in findings)
            if not banned[banned_key]:
                allowed.append(template)
        chosen = [template for template in allowed if rng.random() < 0.85]
        for template in allowed:
            if len(chosen) >= 3:
                break
            if template not in chosen:
                chosen.append(template)
        chosen.sort(key=TEMPLATES.index)
        popularities = {template.key: rng.uniform(0.5, 2.0) for template in chosen}
        plans.append((data, chosen, popularities))

    # Products: one per product key the clinic's formulas use.
    products: list[Product] = []
    for data, chosen, _popularity in plans:
        keys = sorted({product for template in chosen for product, _volume in _version_draws(template, None)})
        products.extend(
            Product(
                clinic=data.clinic,
                name=PRODUCTS[key].name,
                supplier=PRODUCTS[key].supplier,
                vial_volume_ml=Decimal(ml_text(PRODUCTS[key].vial_ul)),
                multi_dose=PRODUCTS[key].multi_dose,
                beyond_use_hours=MULTI_DOSE_HOURS if PRODUCTS[key].multi_dose else SINGLE_DOSE_HOURS,
                low_stock_vials=PRODUCTS[key].low_stock_vials,
            )
            for key in keys
        )
    products = ctx.insert(products)
    key_of = {spec.name: key for key, spec in PRODUCTS.items()}
    components: list[ProductComponent] = []
    for product in products:
        for code, strength, unit in PRODUCTS[key_of[product.name]].components:
            components.append(
                ProductComponent(
                    product=product, ingredient=catalogue.rows[code], strength=Decimal(strength), unit=unit
                )
            )
    ctx.insert(components)

    # Formulas and their versions.
    formulas: list[Formula] = []
    owners: list[int] = []  # the clinic (index into plans) of each formula
    version_specs: list[tuple[int, int, int, FormulaTemplate, tuple[tuple[str, int], ...]]] = []
    for clinic_index, (data, chosen, _popularity) in enumerate(plans):
        rng = ctx.rng("formulas", data.number)
        start, end = ctx.history_start.toordinal(), ctx.as_of.toordinal()
        for template in chosen:
            first = start - 14 - int(rng.random() * 170)
            created = [first * SECONDS_PER_DAY + 36_000 + int(rng.random() * 25_000)]
            revisions = [revision for revision in template.revisions if rng.random() < 0.45]
            later = sorted(start + 30 + int(rng.random() * max(end - start - 60, 1)) for _ in revisions)
            created += [day * SECONDS_PER_DAY + 36_000 + int(rng.random() * 25_000) for day in later]
            formulas.append(
                Formula(
                    clinic=data.clinic,
                    name=template.name,
                    created_at=local_moment(*divmod(created[0], SECONDS_PER_DAY), data.utc_offset),
                )
            )
            owners.append(clinic_index)
            for moment, revision in zip(created, [None, *revisions], strict=True):
                version_specs.append(
                    (clinic_index, len(formulas) - 1, moment, template, _version_draws(template, revision))
                )
    formulas = ctx.insert(formulas)
    versions: list[FormulaVersion] = []
    numbers: dict[int, int] = {}
    for clinic_index, formula_index, moment, template, draws in version_specs:
        data = plans[clinic_index][0]
        formula = formulas[formula_index]
        numbers[formula_index] = numbers.get(formula_index, 0) + 1
        total = sum(volume for _product, volume in draws)
        diluent = catalogue.rows[PRODUCTS[template.diluent[0]].components[0][0]] if template.diluent else None
        director = data.staff[Role.MEDICAL_DIRECTOR.value][0]
        versions.append(
            FormulaVersion(
                formula=formula,
                number=numbers[formula_index],
                diluent=diluent,
                total_volume_ml=Decimal(ml_text(total)),
                indications=list(template.indications),
                preparation_notes=template.notes,
                created_at=local_moment(*divmod(moment, SECONDS_PER_DAY), data.utc_offset),
                created_by=director,
            )
        )
    versions = ctx.insert(versions)
    formula_components: list[FormulaComponent] = []
    plan_versions: dict[int, list[VersionPlan]] = {}
    known_facts: dict[tuple[str, int, str], formulary_rules.PlannedFormulaFacts] = {}
    for version, (_clinic, _formula, _moment, template, draws) in zip(versions, version_specs, strict=True):
        total = sum(volume for _product, volume in draws)
        position = 0
        ingredient_draws = draws[:-1] if template.diluent else draws
        for product_key, volume in ingredient_draws:
            for code, strength, unit in PRODUCTS[product_key].components:
                concentration = (Decimal(strength) * volume / total).quantize(Decimal("0.0001"))
                formula_components.append(
                    FormulaComponent(
                        version=version,
                        ingredient=catalogue.rows[code],
                        concentration=concentration,
                        unit=unit,
                        position=position,
                    )
                )
                position += 1
    ctx.insert(formula_components)
    for version, (_clinic, formula_index, moment, template, draws) in zip(
        versions, version_specs, strict=True
    ):
        # The application's own facts (what screening and preparation_create read), once per template,
        # version and jurisdiction: generated clinics have no regulatory configuration of their own.
        data = plans[owners[formula_index]][0]
        facts_key = (template.key, version.number, data.clinic.jurisdiction)
        if facts_key not in known_facts:
            known_facts[facts_key] = planned_formula_facts(clinic=data.clinic, formula_version_id=version.pk)
        facts = known_facts[facts_key]
        plan_versions.setdefault(formula_index, []).append(
            VersionPlan(version.pk, version.number, moment, draws, facts)
        )

    template_of = {template.name: template for template in TEMPLATES}
    for index, (formula, owner) in enumerate(zip(formulas, owners, strict=True)):
        data, _chosen, shares = plans[owner]
        template = template_of[formula.name]
        popularity = shares[template.key]
        data.formulas.append(
            FormulaPlan(
                formula_id=formula.pk,
                template=template.key,
                name=formula.name,
                indications=template.indications,
                areas=template.areas,
                weight_female=template.weight_female * popularity,
                weight_male=template.weight_male * popularity,
                versions=tuple(plan_versions[index]),
            )
        )
    clinic_of = {data.clinic.pk: data for data, _chosen, _popularity in plans}
    for product in products:
        key = key_of[product.name]
        spec = PRODUCTS[key]
        data = clinic_of[product.clinic_id]
        data.products[key] = ProductPlan(
            product_id=product.pk,
            key=key,
            vial_ul=spec.vial_ul,
            multi_dose=spec.multi_dose,
            beyond_use_seconds=(MULTI_DOSE_HOURS if spec.multi_dose else SINGLE_DOSE_HOURS) * 3600,
            low_stock_vials=spec.low_stock_vials,
            shelf_months=spec.shelf_months,
            prefix=spec.prefix,
            box=spec.box,
        )
    return {
        "formula": len(formulas),
        "formula version": len(versions),
        "formula component": len(formula_components),
        "product": len(products),
        "product component": len(components),
    }


# --- Stock: lots, vials, preparations, lines, movements -----------------------------------------------------

LOT_FIELDS = (
    "id",
    "clinic",
    "product",
    "number",
    "expires_on",
    "received_on",
    "received_vials",
    "recalled_at",
    "recall_reason",
    "recalled_by",
    "created_at",
    "stock_ml",
)
VIAL_FIELDS = ("id", "lot", "opened_at", "beyond_use_at", "closed_at", "opened_by")
PREPARATION_FIELDS = (
    "id",
    "clinic",
    "patient",
    "formula_version",
    "prepared_at",
    "prepared_by",
    "total_volume_ml",
    "notes",
)
LINE_FIELDS = ("preparation", "lot", "vial", "volume_ml")
MOVEMENT_FIELDS = ("clinic", "lot", "vial", "kind", "quantity_ml", "reason", "preparation", "at", "by")

RECALL_SHARE = 0.01
SHORT_DATED_SHARE = 0.12
RECALL_REASONS = (
    "Manufacturer recall: particles found in vials of this lot.",
    "Supplier notice: sterility not assured for this lot.",
    "ANSM/FDA alert: labelling error on this lot (wrong concentration printed).",
    "Manufacturer recall: endotoxin above specification.",
)
REMAINDER = "Single-dose vial remainder discarded"
EXPIRED = "Expired: discarded"
BROKEN = "Ampoule broken"
RETURNED = "Returned to the supplier after the recall"
DISCARDED = "Opened vial discarded"
BEYOND_USE = "Beyond-use date reached: discarded"


class _Lot:
    __slots__ = (
        "balance",
        "expires",
        "id",
        "last_use",
        "number",
        "product",
        "received",
        "received_vials",
        "recall_at",
        "unopened",
        "used",
    )

    def __init__(
        self, lot_id: int, product: ProductPlan, number: str, received: int, expires: int, unopened: int
    ) -> None:
        self.id = lot_id
        self.received_vials = unopened
        self.product = product
        self.number = number
        self.received = received  # day
        self.expires = expires  # day (usable through it)
        self.unopened = unopened  # vials
        self.recall_at: int | None = None  # local moment
        self.last_use = 0
        self.used = False
        self.balance = 0  # µL: the sum of the lot's movements, its stored ``stock_ml``

    def usable(self, moment: int) -> bool:
        return moment // SECONDS_PER_DAY <= self.expires and (
            self.recall_at is None or moment < self.recall_at
        )


class _Vial:
    __slots__ = ("beyond_use", "closed", "id", "last_draw", "left", "lot", "opened", "opened_by")

    def __init__(self, vial_id: int, lot: _Lot, opened: int, beyond_use: int, left: int, opened_by: int):
        self.id = vial_id
        self.lot = lot
        self.opened = opened
        self.beyond_use = beyond_use
        self.left = left
        self.opened_by = opened_by
        self.closed: int | None = None
        self.last_draw = opened


class _ClinicStock:
    """The simulation of one clinic's shelves over its history (see the module docstring)."""

    def __init__(
        self,
        rng: random.Random,
        clinic_id: int,
        utc_offset: int,
        products: dict[str, ProductPlan],
        desk: tuple[int, ...],
        director: int,
        as_of: int,
    ) -> None:
        self.rng = rng
        self.clinic_id = clinic_id
        self.offset = utc_offset
        self.products = products
        self.desk = desk
        self.director = director
        self.as_of = as_of
        self.lots: dict[str, list[_Lot]] = {key: [] for key in products}
        self.all_lots: list[_Lot] = []
        self.open: dict[str, _Vial | None] = dict.fromkeys(products)
        self.vials: list[_Vial] = []
        self.pending: dict[str, int] = {}  # product → the day an ordered lot arrives
        self.used: dict[str, deque[tuple[int, int]]] = {key: deque() for key in products}  # (day, µL)
        self.used_total: dict[str, int] = dict.fromkeys(products, 0)  # µL in ``used`` (the last 90 days)
        self.serial: dict[str, int] = dict.fromkeys(products, 0)
        self.movements: list[tuple[Any, ...]] = []

    def at(self, moment: int) -> str:
        return local_stamp_text(moment // SECONDS_PER_DAY, moment % SECONDS_PER_DAY, self.offset)

    def move(
        self,
        lot: _Lot,
        vial: _Vial | None,
        kind: str,
        microlitres: int,
        reason: str,
        preparation: int | None,
        moment: int,
        by: int | None,
    ) -> None:
        lot.balance += microlitres
        self.movements.append(
            (
                self.clinic_id,
                lot.id,
                vial.id if vial is not None else None,
                kind,
                ml_text(microlitres),
                reason,
                preparation,
                self.at(moment),
                by,
            )
        )

    def receive(self, key: str, day: int) -> _Lot:
        """A delivery: enough vials for about three months at the recent pace."""
        product = self.products[key]
        rand = self.rng.random
        used = self.used[key]
        while used and used[0][0] <= day - 90:
            self.used_total[key] -= used.popleft()[1]
        wanted = self.used_total[key] / product.vial_ul * (0.8 + 1.2 * rand())  # ~3 months, give or take
        vials = product.box * max(1, min(40, ceil_div(round(wanted), product.box)))
        shortest, longest = (1.5, 3.0) if rand() < SHORT_DATED_SHARE else product.shelf_months
        expires = months_later(day, shortest + rand() * (longest - shortest))  # short-dated: may expire
        self.serial[key] += 1
        year = date.fromordinal(day).year % 100
        number = f"{product.prefix}{year:02d}{self.serial[key]:04d}{chr(65 + int(rand() * 6))}"
        lot = _Lot(len(self.all_lots) + 1, product, number, day, expires, vials)
        if rand() < RECALL_SHARE:
            lot.recall_at = (day + 10 + int(rand() * 290)) * SECONDS_PER_DAY + 32_400 + int(rand() * 30_000)
        self.lots[key].append(lot)  # the lots that may still give: first to expire first
        self.lots[key].sort(key=lambda item: (item.expires, item.id))
        self.all_lots.append(lot)
        moment = day * SECONDS_PER_DAY + 28_800 + int(rand() * 1_800)  # 08:00–08:30, before the first visit
        self.move(
            lot,
            None,
            "received",
            vials * product.vial_ul,
            "",
            None,
            moment,
            self.desk[int(rand() * len(self.desk))],
        )
        self.pending.pop(key, None)
        return lot

    def lot_for(self, key: str, vials: int, moment: int) -> _Lot:
        """First to expire first, among the lots usable now with ``vials`` unopened; a delivery otherwise."""
        day = moment // SECONDS_PER_DAY
        arrival = self.pending.get(key)
        if arrival is not None and arrival <= day:
            self.receive(key, arrival)
        active = self.lots[key]
        found = None
        for lot in active:
            if lot.unopened >= vials and lot.usable(moment):
                found = lot
                break
        if len(active) > 4:  # forget the lots that cannot give any more (empty, expired, recalled)
            active[:] = [lot for lot in active if lot.unopened > 0 and lot.usable(moment)]
        return found if found is not None else self.receive(key, day)

    def reorder(self, key: str, moment: int) -> None:
        """Order a lot when the usable unopened vials fall under the product's low-stock threshold."""
        if key in self.pending:
            return
        product = self.products[key]
        usable = sum(lot.unopened for lot in self.lots[key] if lot.usable(moment))
        if usable < product.low_stock_vials:
            self.pending[key] = next_open_day(moment // SECONDS_PER_DAY + 1 + int(self.rng.random() * 3))

    def close(self, vial: _Vial, moment: int, reason: str) -> None:
        vial.closed = moment
        if vial.left > 0:
            self.move(vial.lot, vial, "wasted", -vial.left, reason, None, moment, vial.opened_by)
            vial.left = 0

    def draw(
        self, key: str, microlitres: int, moment: int, preparation: int, by: int
    ) -> tuple[_Lot, _Vial | None]:
        product = self.products[key]
        self.used[key].append((moment // SECONDS_PER_DAY, microlitres))
        self.used_total[key] += microlitres
        if product.multi_dose:
            vial = self.open[key]
            closed_at = 0
            if vial is not None and (
                vial.left < microlitres or moment >= vial.beyond_use or not vial.lot.usable(moment)
            ):
                if moment >= vial.beyond_use:
                    self.close(vial, vial.beyond_use, BEYOND_USE)
                elif vial.lot.recall_at is not None and moment >= vial.lot.recall_at:
                    self.close(vial, vial.lot.recall_at, DISCARDED)
                else:
                    self.close(vial, max(vial.last_draw, moment - 60), DISCARDED)
                closed_at = vial.closed or 0
                vial = None
            if vial is None:
                lot = self.lot_for(key, 1, moment)
                lot.unopened -= 1
                opened = max(moment - 30, closed_at)  # punctured just before the draw
                vial = _Vial(
                    len(self.vials) + 1, lot, opened, opened + product.beyond_use_seconds, product.vial_ul, by
                )
                self.vials.append(vial)
                self.open[key] = vial
            vial.left -= microlitres
            vial.last_draw = moment
            lot = vial.lot
            self.move(lot, vial, "prepared", -microlitres, "", preparation, moment, by)
        else:
            vial = None
            count = ceil_div(microlitres, product.vial_ul)
            lot = self.lot_for(key, count, moment)
            lot.unopened -= count
            self.move(lot, None, "prepared", -microlitres, "", preparation, moment, by)
            remainder = count * product.vial_ul - microlitres
            if remainder > 0:
                self.move(lot, None, "wasted", -remainder, REMAINDER, preparation, moment, by)
            if lot.unopened > 0 and self.rng.random() < 0.002:
                lot.unopened -= 1
                self.move(lot, None, "wasted", -product.vial_ul, BROKEN, None, moment + 30, by)
        lot.used = True
        lot.last_use = moment
        self.reorder(key, moment)
        return lot, vial

    def finish(self, *, force_recall: bool) -> None:
        """ "Today": discard vials past their beyond-use time, write most expired stock off, return recalled
        stock, and make sure one recent recall has patients to contact."""
        rand = self.rng.random
        now = self.as_of * SECONDS_PER_DAY
        for vial in self.vials:
            if vial.closed is None and vial.beyond_use <= now:
                self.close(vial, vial.beyond_use, BEYOND_USE)
        used = [lot for lot in self.all_lots if lot.used and lot.recall_at is None]
        if (
            force_recall
            and used
            and not any(
                lot.recall_at is not None and lot.recall_at <= now and lot.used for lot in self.all_lots
            )
        ):
            # A lot last used 3 to 120 days ago: recalled three days before "today", after its last use,
            # so that the last days' preparations (the open sessions of bench/treatments.py) stay usable.
            settled = now - 3 * SECONDS_PER_DAY - 7_200
            recent = [lot for lot in used if now - 120 * SECONDS_PER_DAY <= lot.last_use < settled] or used
            lot = recent[int(rand() * len(recent))]
            lot.recall_at = min(now - 3_600, max(lot.last_use + 7_200, now - 3 * SECONDS_PER_DAY))
        for lot in self.all_lots:
            recalled = lot.recall_at is not None and lot.recall_at <= now
            if recalled and lot.recall_at is not None:
                for vial in self.vials:
                    if vial.lot is lot and vial.closed is None:
                        self.close(vial, lot.recall_at, DISCARDED)
                returned = lot.recall_at + (1 + int(rand() * 5)) * SECONDS_PER_DAY
                if lot.unopened > 0 and returned < now:
                    self.move(
                        lot,
                        None,
                        "returned",
                        -lot.unopened * lot.product.vial_ul,
                        RETURNED,
                        None,
                        returned,
                        self.director,
                    )
                    lot.unopened = 0
            elif lot.expires < self.as_of and lot.unopened > 0 and rand() < 0.85:
                moment = min((lot.expires + 1 + int(rand() * 10)) * SECONDS_PER_DAY + 30_600, now - 3_600)
                self.move(
                    lot,
                    None,
                    "wasted",
                    -lot.unopened * lot.product.vial_ul,
                    EXPIRED,
                    None,
                    moment,
                    self.desk[0],
                )
                lot.unopened = 0
            if lot.expires < self.as_of and recalled is False:
                for vial in self.vials:
                    if vial.lot is lot and vial.closed is None:
                        self.close(
                            vial,
                            max(vial.opened + 60, min(vial.beyond_use, (lot.expires + 1) * SECONDS_PER_DAY)),
                            DISCARDED,
                        )

    def lot_rows(self) -> list[tuple[Any, ...]]:
        now = self.as_of * SECONDS_PER_DAY
        rows = []
        for lot in self.all_lots:
            recalled = lot.recall_at is not None and lot.recall_at <= now
            received = lot.received * SECONDS_PER_DAY + 28_800
            rows.append(
                (
                    lot.id,
                    self.clinic_id,
                    lot.product.product_id,
                    lot.number,
                    day_text(lot.expires),
                    day_text(lot.received),
                    lot.received_vials,
                    self.at(lot.recall_at) if recalled and lot.recall_at is not None else None,
                    RECALL_REASONS[lot.id % len(RECALL_REASONS)] if recalled else "",
                    self.director if recalled else None,
                    self.at(received),
                    ml_text(lot.balance),
                )
            )
        return rows

    def vial_rows(self) -> list[tuple[Any, ...]]:
        return [
            (
                vial.id,
                vial.lot.id,
                self.at(vial.opened),
                self.at(vial.beyond_use),
                self.at(vial.closed) if vial.closed is not None else None,
                vial.opened_by,
            )
            for vial in self.vials
        ]


# A clinic's products are simulated in this many groups (independent: a product's lots only depend on the
# draws of that product), each group a job of its own, so that even a one-clinic scale uses every core.
PRODUCT_GROUPS = 2


def product_groups(keys: list[str]) -> list[frozenset[str]]:
    ordered = sorted(keys)
    return [frozenset(ordered[group::PRODUCT_GROUPS]) for group in range(PRODUCT_GROUPS)]


def stock_rows(
    stream: str,
    clinic_id: int,
    utc_offset: int,
    as_of: int,
    products: dict[str, ProductPlan],
    formulas: dict[int, FormulaPlan],
    visits: Visits,
    first_preparation: int,
    desk: tuple[int, ...],
    director: int,
    group: frozenset[str],
    first_group: bool,
) -> dict[str, list[tuple[Any, ...]]]:
    """The lots, opened vials, lines and movements of one group of a clinic's products (lot and vial ids
    numbered from 1 in this job: the caller shifts them) and, for the first group, the clinic's preparations
    and its one recent recall. A pure function of its arguments."""
    rng = random.Random(stream)  # noqa: S311 (generated data)
    own = {key: plan for key, plan in products.items() if key in group}
    shelves = _ClinicStock(rng, clinic_id, utc_offset, own, desk, director, as_of)
    preparations: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    for index in range(len(visits)):
        preparation = first_preparation + index
        moment = visits.day[index] * SECONDS_PER_DAY + visits.second[index] - 600  # 10 minutes before
        version = formulas[visits.formula[index]].version_at(moment)
        practitioner = visits.practitioner[index]
        half = visits.half[index]
        total = 0
        for key, volume in version.draws:
            drawn = max(100, volume // 2) if half else volume
            total += drawn
            if key in group:
                lot, vial = shelves.draw(key, drawn, moment, preparation, practitioner)
                lines.append((preparation, lot.id, vial.id if vial is not None else None, ml_text(drawn)))
        if first_group:
            preparations.append(
                (
                    preparation,
                    clinic_id,
                    visits.patient[index],
                    version.version_id,
                    shelves.at(moment),
                    practitioner,
                    ml_text(total),
                    "Small area: half the usual volume." if half else "",
                )
            )
    shelves.finish(force_recall=first_group)
    return {
        "lot": shelves.lot_rows(),
        "vial": shelves.vial_rows(),
        "preparation": preparations,
        "line": lines,
        "movement": shelves.movements,
    }


def stock_jobs(ctx: Context) -> list[RowJob]:
    """One :func:`stock_rows` job per clinic and product group. Takes the preparation ids: call it once."""
    jobs: list[RowJob] = []
    for data in ctx.clinics:
        visits = data.visits
        if not len(visits) or not data.products:
            continue
        visits.preparation_ids = ctx.next_ids(Preparation, len(visits))
        desk = tuple(user.pk for user in data.staff.get(Role.FRONT_DESK.value, []))
        director = data.staff[Role.MEDICAL_DIRECTOR.value][0].pk
        formulas = {formula.formula_id: formula for formula in data.formulas}
        for index, group in enumerate(product_groups(list(data.products))):
            jobs.append(
                RowJob(
                    stock_rows,
                    (
                        ctx.stream("stock", data.number, index),
                        data.clinic.pk,
                        data.utc_offset,
                        ctx.as_of.toordinal(),
                        data.products,
                        formulas,
                        visits,
                        visits.preparation_ids.start,
                        desk or (director,),
                        director,
                        group,
                        index == 0,
                    ),
                )
            )

    return jobs


def gen_stock(ctx: Context) -> Counts:
    """Each clinic's stock history, built by the worker processes (a job per clinic and product group),
    written here."""
    jobs = stock_jobs(ctx)

    def shift(_index: int, result: dict[str, Any]) -> None:
        lot_base = ctx.next_ids(Lot, len(result["lot"])).start - 1
        vial_base = ctx.next_ids(VialOpening, len(result["vial"])).start - 1
        result["lot"] = [(row[0] + lot_base, *row[1:]) for row in result["lot"]]
        result["vial"] = [(row[0] + vial_base, row[1] + lot_base, *row[2:]) for row in result["vial"]]
        result["line"] = [
            (preparation, lot + lot_base, None if vial is None else vial + vial_base, volume)
            for preparation, lot, vial, volume in result["line"]
        ]
        result["movement"] = [
            (clinic, lot + lot_base, None if vial is None else vial + vial_base, kind, quantity, *rest)
            for clinic, lot, vial, kind, quantity, *rest in result["movement"]
        ]

    counts = ctx.write_table_jobs(
        {
            "lot": (Lot, LOT_FIELDS),
            "vial": (VialOpening, VIAL_FIELDS),
            "preparation": (Preparation, PREPARATION_FIELDS),
            "line": (PreparationLine, LINE_FIELDS),
            "movement": (StockMovement, MOVEMENT_FIELDS),
        },
        jobs,
        shift,
    )
    return {
        "lot": counts["lot"],
        "opened vial": counts["vial"],
        "preparation": counts["preparation"],
        "preparation line": counts["line"],
        "stock movement": counts["movement"],
    }
