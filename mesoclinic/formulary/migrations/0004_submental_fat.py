"""R-REG seed correction: deoxycholic acid 10 mg/mL (Kybella) is FDA-approved for submental fat, so a formula
for the new ``submental-fat`` indication is ``approved`` in the US, and off-label for every other use. Submental
fat is fat lysis for aesthetic purposes, so the French ban (décret 2011-382) and the Brazilian suspension
name it too. Only the seeded rows (no clinic) change; clinics' own rows are theirs."""

from django.db import migrations

SUBMENTAL = "submental-fat"
S_US_KYBELLA = (
    "literature: FDA approval of Kybella (deoxycholic acid injection 10 mg/mL), April 2015, for submental fat"
)
APPROVED_USE = "submental fat (Kybella 10 mg/mL)"
# Seeded rows whose indication list is a ban on fat lysis or aesthetic use: (ingredient code or None, jurisdiction).
BANS = [
    (None, "FR"),
    ("phosphatidylcholine", "FR"),
    ("sodium-deoxycholate", "FR"),
    ("deoxycholic-acid", "FR"),
    ("phosphatidylcholine", "BR"),
]


def _bans(RegulatoryStatus):
    for code, jurisdiction in BANS:
        rows = RegulatoryStatus.objects.filter(
            clinic__isnull=True, jurisdiction=jurisdiction, status="banned"
        )
        rows = (
            rows.filter(ingredient__isnull=True)
            if code is None
            else rows.filter(ingredient__clinic__isnull=True, ingredient__code=code)
        )
        yield from (row for row in rows if row.indications)  # a ban for named uses, not for any use


def forward(apps, schema_editor):
    Ingredient = apps.get_model("formulary", "Ingredient")
    RegulatoryStatus = apps.get_model("formulary", "RegulatoryStatus")
    dca = Ingredient.objects.filter(clinic__isnull=True, code="deoxycholic-acid").first()
    if dca is not None:
        RegulatoryStatus.objects.get_or_create(
            ingredient=dca,
            clinic=None,
            jurisdiction="US",
            status="approved",
            use=APPROVED_USE,
            defaults={"indications": [SUBMENTAL], "source": S_US_KYBELLA},
        )
    for row in _bans(RegulatoryStatus):
        if SUBMENTAL not in row.indications:
            row.indications = [*row.indications, SUBMENTAL]
            row.save(update_fields=["indications"])


def backward(apps, schema_editor):
    RegulatoryStatus = apps.get_model("formulary", "RegulatoryStatus")
    RegulatoryStatus.objects.filter(
        clinic__isnull=True,
        ingredient__code="deoxycholic-acid",
        jurisdiction="US",
        status="approved",
        use=APPROVED_USE,
    ).delete()
    for row in _bans(RegulatoryStatus):
        if SUBMENTAL in row.indications:
            row.indications = [item for item in row.indications if item != SUBMENTAL]
            row.save(update_fields=["indications"])


class Migration(migrations.Migration):
    dependencies = [("formulary", "0003_administrations_clinic_statuses")]

    operations = [migrations.RunPython(forward, backward)]
