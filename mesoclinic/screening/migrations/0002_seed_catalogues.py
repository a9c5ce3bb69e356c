"""Seed the global medicine and condition catalogues (clinic = NULL). Clinics add their own rows beside them.

Kept self-contained (a migration must not change when the code does): the data is written out here."""

import unicodedata

from django.db import migrations

SEED_000 = "seed 000_2edeac59aef879af.txt"
SEED_003 = "seed 003_f92b52b170801ca0.txt"
LIT_KYBELLA = "literature: Kybella (deoxycholic acid) label"

# code, English label, finding code, severity, rule, source
CONDITIONS = [
    ("bleeding-disorder", "Bleeding disorder", "significant-condition", "block", "R-CAND-MED",
     f"{SEED_000}; literature: bleeding disorders contraindicate injections"),
    ("active-cancer", "Active cancer or cancer treatment", "significant-condition", "block", "R-CAND-MED",
     f"{SEED_000}; literature"),
    ("autoimmune", "Autoimmune disease", "significant-condition", "warn", "R-CAND-MED",
     f"{SEED_000}; literature"),
    ("diabetes-uncontrolled", "Uncontrolled diabetes", "significant-condition", "warn", "R-CAND-MED",
     f"{SEED_000}; literature"),
    ("site-infection", "Infection at the area to treat", "site-infection", "block", "R-CAND-SITE",
     f"{SEED_000}; {LIT_KYBELLA}"),
    ("skin-disease-at-site", "Skin disease at the area to treat", "site-infection", "block", "R-CAND-SITE",
     LIT_KYBELLA),
    ("liver-disease", "Liver disease", "health-concern", "warn", "R-CAND-HEALTH", f"{SEED_000}; {SEED_003}"),
    ("kidney-disease", "Kidney disease", "health-concern", "warn", "R-CAND-HEALTH", f"{SEED_000}; {SEED_003}"),
    ("severe-cardiovascular", "Severe heart or circulation disease", "health-concern", "warn", "R-CAND-HEALTH",
     f"{SEED_000}; {SEED_003}"),
    ("psychiatric-unstable", "Psychological condition that is not stable", "health-concern", "warn",
     "R-CAND-HEALTH", SEED_003),
    ("dysphagia", "Difficulty swallowing (dysphagia)", "significant-condition", "warn", "R-CAND-MED",
     LIT_KYBELLA),
]

AC, AP, NSAID = "anticoagulant", "antiplatelet", "nsaid"
ARI, ISO, IMM, OTHER = "5-alpha-reductase-inhibitor", "isotretinoin", "immunosuppressant", "other"

# generic name, classes, other generic spellings, brand names
MEDICINES = [
    ("apixaban", [AC], [], ["Eliquis"]),
    ("rivaroxaban", [AC], [], ["Xarelto"]),
    ("edoxaban", [AC], [], ["Savaysa", "Lixiana"]),
    ("dabigatran", [AC], ["dabigatran etexilate"], ["Pradaxa", "Pradax"]),
    ("warfarin", [AC], [], ["Coumadin", "Jantoven", "Marevan"]),
    ("acenocoumarol", [AC], [], ["Sintrom"]),
    ("fluindione", [AC], [], ["Previscan"]),
    ("heparin", [AC], [], []),
    ("enoxaparin", [AC], [], ["Lovenox", "Clexane"]),
    ("dalteparin", [AC], [], ["Fragmin"]),
    ("tinzaparin", [AC], [], ["Innohep"]),
    ("fondaparinux", [AC], [], ["Arixtra"]),
    ("clopidogrel", [AP], [], ["Plavix"]),
    ("ticagrelor", [AP], [], ["Brilinta", "Brilique"]),
    ("prasugrel", [AP], [], ["Effient", "Efient"]),
    ("ticlopidine", [AP], [], ["Ticlid"]),
    ("dipyridamole", [AP], [], ["Persantine"]),
    ("cilostazol", [AP], [], ["Pletal"]),
    ("aspirin", [NSAID, AP], ["acetylsalicylic acid", "ASA", "baby aspirin", "low-dose aspirin"],
     ["Bufferin", "Bayer", "Bayer Aspirin", "Ecotrin", "Aspegic", "Kardegic", "Excedrin", "Alka-Seltzer"]),
    ("aspirin/dipyridamole", [NSAID, AP], [], ["Aggrenox"]),
    ("ibuprofen", [NSAID], [], ["Advil", "Motrin", "Nurofen", "Brufen", "Advil Liqui-Gels"]),
    ("naproxen", [NSAID], ["naproxen sodium"], ["Aleve", "Naprosyn", "Anaprox", "Apranax"]),
    ("diclofenac", [NSAID], [], ["Voltaren", "Voltarene", "Cataflam", "Zorvolex", "Arthrotec"]),
    ("celecoxib", [NSAID], [], ["Celebrex"]),
    ("etoricoxib", [NSAID], [], ["Arcoxia"]),
    ("meloxicam", [NSAID], [], ["Mobic", "Mobicox"]),
    ("ketoprofen", [NSAID], [], ["Orudis", "Profenid", "Bi-Profenid"]),
    ("ketorolac", [NSAID], [], ["Toradol"]),
    ("indomethacin", [NSAID], ["indometacin"], ["Indocin"]),
    ("etodolac", [NSAID], [], ["Lodine"]),
    ("nabumetone", [NSAID], [], ["Relafen"]),
    ("piroxicam", [NSAID], [], ["Feldene"]),
    ("finasteride", [ARI], [], ["Propecia", "Proscar"]),
    ("dutasteride", [ARI], [], ["Avodart", "Avolve"]),
    ("dutasteride/tamsulosin", [ARI], [], ["Jalyn", "Combodart"]),
    ("isotretinoin", [ISO], [], ["Accutane", "Roaccutane", "Absorica", "Claravis", "Amnesteem", "Myorisan",
                                 "Zenatane", "Curacne", "Contracne", "Procuta"]),
    ("methotrexate", [IMM], [], ["Trexall", "Otrexup", "Rasuvo", "Metoject", "Novatrex"]),
    ("prednisone", [IMM], [], ["Deltasone", "Rayos", "Cortancyl"]),
    ("prednisolone", [IMM], [], ["Orapred", "Solupred"]),
    ("ciclosporin", [IMM], ["cyclosporine", "cyclosporin"], ["Neoral", "Sandimmune", "Sandimmun"]),
    ("tacrolimus", [IMM], [], ["Prograf", "Advagraf", "Envarsus"]),
    ("azathioprine", [IMM], [], ["Imuran", "Imurel"]),
    ("mycophenolate", [IMM], ["mycophenolate mofetil", "mycophenolic acid"], ["CellCept", "Myfortic"]),
    ("adalimumab", [IMM], [], ["Humira"]),
    ("etanercept", [IMM], [], ["Enbrel"]),
    ("infliximab", [IMM], [], ["Remicade"]),
    ("paracetamol", [OTHER], ["acetaminophen"], ["Tylenol", "Doliprane", "Dafalgan", "Efferalgan", "Panadol"]),
    ("levothyroxine", [OTHER], [], ["Synthroid", "Levothyrox", "Euthyrox"]),
    ("metformin", [OTHER], [], ["Glucophage"]),
    ("atorvastatin", [OTHER], [], ["Lipitor", "Tahor"]),
    ("amlodipine", [OTHER], [], ["Norvasc", "Amlor"]),
    ("lisinopril", [OTHER], [], ["Zestril", "Prinivil"]),
    ("omeprazole", [OTHER], [], ["Prilosec", "Mopral"]),
    ("sertraline", [OTHER], [], ["Zoloft"]),
    ("cetirizine", [OTHER], [], ["Zyrtec"]),
    ("loratadine", [OTHER], [], ["Claritin", "Clarityne"]),
    ("minoxidil", [OTHER], [], ["Rogaine", "Regaine"]),
    ("vitamin d", [OTHER], ["cholecalciferol", "colecalciferol"], []),
]


def fold(text):
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def seed(apps, schema_editor):
    Condition = apps.get_model("screening", "Condition")
    Medicine = apps.get_model("screening", "Medicine")
    MedicineName = apps.get_model("screening", "MedicineName")
    for position, (code, label, finding_code, severity, rule, source) in enumerate(CONDITIONS):
        Condition.objects.update_or_create(
            code=code,
            defaults={"label": label, "finding_code": finding_code, "severity": severity, "rule": rule,
                      "source": source, "position": position},
        )
    for generic, classes, generics, brands in MEDICINES:
        medicine, _ = Medicine.objects.update_or_create(
            clinic=None, generic_name=generic, defaults={"classes": classes}
        )
        for name, is_brand in [(generic, False)] + [(n, False) for n in generics] + [(n, True) for n in brands]:
            MedicineName.objects.update_or_create(
                clinic=None,
                name_folded=fold(name),
                defaults={"medicine": medicine, "name": name, "is_brand": is_brand},
            )


def unseed(apps, schema_editor):
    apps.get_model("screening", "MedicineName").objects.filter(clinic=None).delete()
    apps.get_model("screening", "Medicine").objects.filter(clinic=None).delete()
    apps.get_model("screening", "Condition").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("screening", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
