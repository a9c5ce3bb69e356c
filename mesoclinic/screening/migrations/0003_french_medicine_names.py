"""French spellings and brand names for the seeded medicine catalogue (clinic = NULL).

Names are matched folded (case and accents ignored), so only spellings that differ once folded are added:
"diclofénac", "acénocoumarol", "finastéride", "dutastéride", "Kardégic", "Curacné", "Préviscan" already match
their seeded forms. Kept self-contained (a migration must not change when the code does)."""

import unicodedata

from django.db import migrations

# generic name of the seeded medicine, other generic spellings, brand names
NAMES = [
    ("ibuprofen", ["ibuprofène"], ["Antarène", "Spedifen", "Nureflex"]),
    ("ketoprofen", ["kétoprofène"], ["Ketum", "Toprec"]),
    ("naproxen", ["naproxène"], ["Naprosyne"]),
    ("diclofenac", [], ["Flector", "Voltarène Emulgel"]),
    ("aspirin", ["aspirine", "acide acétylsalicylique"], ["Aspro", "Aspirine du Rhône", "Aspirine UPSA"]),
    ("warfarin", ["warfarine"], ["Coumadine"]),
    ("acenocoumarol", [], ["Mini-Sintrom"]),
    ("heparin", ["héparine"], ["Calciparine"]),
    ("enoxaparin", ["énoxaparine"], []),
    ("tinzaparin", ["tinzaparine"], []),
    ("indomethacin", ["indométacine"], []),
    ("isotretinoin", ["isotrétinoïne"], []),
    ("finasteride", [], ["Chibro-Proscar"]),
    ("ciclosporin", ["ciclosporine"], []),
    ("paracetamol", [], ["Aspirin-Free Excedrin", "Aspirin Free Excedrin", "Excedrin Aspirin Free"]),
]


def fold(text):
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def seed(apps, schema_editor):
    Medicine = apps.get_model("screening", "Medicine")
    MedicineName = apps.get_model("screening", "MedicineName")
    for generic, generics, brands in NAMES:
        medicine = Medicine.objects.filter(clinic=None, generic_name=generic).first()
        if medicine is None:
            continue
        for name, is_brand in [(n, False) for n in generics] + [(n, True) for n in brands]:
            MedicineName.objects.get_or_create(
                clinic=None,
                name_folded=fold(name),
                defaults={"medicine": medicine, "name": name, "is_brand": is_brand},
            )


def unseed(apps, schema_editor):
    folded = [fold(name) for _, generics, brands in NAMES for name in generics + brands]
    apps.get_model("screening", "MedicineName").objects.filter(clinic=None, name_folded__in=folded).delete()


class Migration(migrations.Migration):
    dependencies = [("screening", "0002_seed_catalogues")]

    operations = [migrations.RunPython(seed, unseed)]
