"""The global ingredient catalogue (R-FORM), allergy groups (R-CAND-ALLERGY/XALLERGY), the teratogen flag
(R-CAND-ANDRO), product limits (R-TECH) and regulatory statuses for the US, France and Brazil (R-REG).

Seeds cited by file name (../shared/seeds/): 001_5e54515e35d4687b.txt, 003_f92b52b170801ca0.txt,
004_99daaf86bc4fb4d2.txt. Everything else is "literature: …". Where no status is recorded for a jurisdiction
the checks say so (``regulatory-unknown``, info) rather than guess: the software never claims an approval an
ingredient lacks (domain.md R-REG). Clinics add their own ingredients; this data stays frozen here, later
corrections come as new migrations."""

from django.db import migrations

FAT = ["localized-fat", "weight-loss"]
AESTHETIC = [
    "localized-fat",
    "weight-loss",
    "cellulite",
    "wrinkles",
    "sagging-skin",
    "rejuvenation",
    "pigmentation",
    "hair-loss",
    "acne",
    "scars",
    "stretch-marks",
]

S_SEED_CLASSES = "001_5e54515e35d4687b.txt, 003_f92b52b170801ca0.txt, 004_99daaf86bc4fb4d2.txt"
S_SEED_LIPOLYSIS = "004_99daaf86bc4fb4d2.txt (injection lipolysis: phosphatidylcholine and deoxycholate)"
S_SEED_HAIR = "004_99daaf86bc4fb4d2.txt (hair loss: finasteride and minoxidil)"
S_SEED_US = (
    "003_f92b52b170801ca0.txt, 004_99daaf86bc4fb4d2.txt: mesotherapy is not FDA-approved; many ingredients are, "
    "and their use in it is off-label"
)
S_FR_DECREE = (
    "literature: France, décret n° 2011-382 du 11 avril 2011 (lyse adipocytaire à visée esthétique), upheld for "
    "injection techniques by the Conseil d'État, 17 February 2012, n° 349431"
)
S_BR_ANVISA = "literature: ANVISA (Brazil) suspended injectable Lipostabil for aesthetic use, 2003"
S_US_KYBELLA = (
    "literature: FDA approval of Kybella (deoxycholic acid injection 10 mg/mL), April 2015, for submental fat"
)
S_US_UNAPPROVED_PCDC = (
    "literature: FDA — compounded phosphatidylcholine/deoxycholate ('Lipodissolve') is an unapproved drug "
    "(warning letters, 2010)"
)
S_FR_BUFLOMEDIL = "literature: ANSM suspended buflomedil (Fonzylane) marketing authorisations, February 2011"
S_USP797 = "literature: USP <797>"

ALLERGY_GROUPS = [
    ("soy", "Soy"),
    ("amide-local-anaesthetics", "Local anaesthetics (amide type)"),
    ("ester-local-anaesthetics", "Local anaesthetics (ester type)"),
    ("paba", "Para-aminobenzoic acid (PABA)"),
    ("bee-wasp-venom", "Bee or wasp venom"),
    ("aminoglycosides", "Aminoglycoside antibiotics"),
    ("fish", "Fish (salmon)"),
    ("benzyl-alcohol", "Benzyl alcohol"),
    ("thyroid-hormones", "Thyroid hormones"),
    ("xanthines", "Methylxanthines (caffeine, theophylline)"),
]

# code, name, class, allergy groups, teratogen, description, source
INGREDIENTS = [
    ("phosphatidylcholine", "Phosphatidylcholine", "lipolytic", [], False,
     "Soy-derived phospholipid used for injection lipolysis.", S_SEED_LIPOLYSIS),
    ("sodium-deoxycholate", "Sodium deoxycholate", "lipolytic", [], False,
     "Bile salt; detergent that lyses fat cells (with phosphatidylcholine in compounded mixtures).",
     S_SEED_LIPOLYSIS),
    ("deoxycholic-acid", "Deoxycholic acid", "lipolytic", [], False,
     "Synthetic deoxycholic acid 10 mg/mL (Kybella/Belkyra).", S_SEED_LIPOLYSIS),
    ("caffeine", "Caffeine", "methylxanthine", ["xanthines"], False,
     "Methylxanthine used in lipolytic and cellulite cocktails.", S_SEED_CLASSES),
    ("aminophylline", "Aminophylline", "methylxanthine", ["xanthines"], False,
     "Theophylline salt used in lipolytic cocktails.", S_SEED_CLASSES),
    ("l-carnitine", "L-carnitine (levocarnitine)", "amino-acid", [], False,
     "Amino-acid derivative used in lipolytic cocktails.", S_SEED_CLASSES),
    ("yohimbine", "Yohimbine", "prescription", [], False,
     "Alpha-2 antagonist used in some lipolytic cocktails.", S_SEED_CLASSES),
    ("hyaluronidase", "Hyaluronidase", "enzyme", [], False,
     "Enzyme (bovine, ovine or recombinant) named by the seeds.", "004_99daaf86bc4fb4d2.txt (enzymes)"),
    ("collagenase", "Collagenase", "enzyme", [], False,
     "Clostridial collagenase, named by the seeds for fibrous bands.", "004_99daaf86bc4fb4d2.txt (enzymes)"),
    ("procaine", "Procaine", "local-anaesthetic", ["ester-local-anaesthetics"], False,
     "Ester local anaesthetic, the classic mesotherapy anaesthetic (Pistor).", S_SEED_CLASSES),
    ("lidocaine", "Lidocaine", "local-anaesthetic", ["amide-local-anaesthetics"], False,
     "Amide local anaesthetic.", S_SEED_CLASSES),
    ("mepivacaine", "Mepivacaine", "local-anaesthetic", ["amide-local-anaesthetics"], False,
     "Amide local anaesthetic.", S_SEED_CLASSES),
    ("minoxidil", "Minoxidil", "vasodilator", [], False, "Vasodilator used for hair loss.", S_SEED_HAIR),
    ("finasteride", "Finasteride", "antiandrogen", [], True,
     "5-alpha-reductase inhibitor used for hair loss; teratogenic to a male foetus.", S_SEED_HAIR),
    ("dutasteride", "Dutasteride", "antiandrogen", [], True,
     "5-alpha-reductase inhibitor used for hair loss; teratogenic to a male foetus.",
     "literature: dutasteride mesotherapy for androgenetic alopecia"),
    ("buflomedil", "Buflomedil", "vasodilator", [], False,
     "Vasodilator of classic French mesotherapy cocktails.", "004_99daaf86bc4fb4d2.txt (vasodilators)"),
    ("pentoxifylline", "Pentoxifylline", "vasodilator", ["xanthines"], False,
     "Xanthine vasodilator used in cellulite cocktails.", "004_99daaf86bc4fb4d2.txt (vasodilators)"),
    ("calcitonin", "Calcitonin (salmon)", "hormone", [], False,
     "Hormone named by the seeds.", "004_99daaf86bc4fb4d2.txt (hormones: calcitonin, thyroxin)"),
    ("thyroxin", "Thyroxin (levothyroxine)", "hormone", ["thyroid-hormones"], False,
     "Hormone named by the seeds.", "004_99daaf86bc4fb4d2.txt (hormones: calcitonin, thyroxin)"),
    ("gentamicin", "Gentamicin", "antibiotic", ["aminoglycosides"], False,
     "Aminoglycoside antibiotic.", "004_99daaf86bc4fb4d2.txt (antibiotics)"),
    ("tranexamic-acid", "Tranexamic acid", "prescription", [], False,
     "Antifibrinolytic used for pigmentation (melasma).", "literature: tranexamic acid mesotherapy for melasma"),
    ("biotin", "Biotin (vitamin B7)", "vitamin", [], False, "Vitamin used in hair cocktails.", S_SEED_CLASSES),
    ("vitamin-a", "Vitamin A (retinol)", "vitamin", [], False,
     "Vitamin; high systemic doses are teratogenic, mesotherapy doses are small.", S_SEED_CLASSES),
    ("vitamin-b-complex", "Vitamin B complex", "vitamin", [], False, "B vitamins.", S_SEED_CLASSES),
    ("dexpanthenol", "Dexpanthenol (vitamin B5)", "vitamin", [], False, "Provitamin B5.", S_SEED_CLASSES),
    ("niacinamide", "Niacinamide (vitamin B3)", "vitamin", [], False, "Vitamin B3.", S_SEED_CLASSES),
    ("vitamin-c", "Vitamin C (ascorbic acid)", "vitamin", [], False, "Antioxidant vitamin.", S_SEED_CLASSES),
    ("vitamin-e", "Vitamin E (tocopherol)", "vitamin", [], False, "Antioxidant vitamin.", S_SEED_CLASSES),
    ("vitamin-k", "Vitamin K (phytonadione)", "vitamin", [], False, "Vitamin K1.", S_SEED_CLASSES),
    ("zinc", "Zinc", "mineral", [], False, "Trace element.", S_SEED_CLASSES),
    ("copper", "Copper", "mineral", [], False, "Trace element (copper salts, copper peptides).", S_SEED_CLASSES),
    ("selenium", "Selenium", "mineral", [], False, "Trace element.", S_SEED_CLASSES),
    ("magnesium", "Magnesium", "mineral", [], False, "Mineral.", S_SEED_CLASSES),
    ("organic-silicon", "Organic silicon (monomethylsilanetriol)", "mineral", [], False,
     "Silicon used in revitalising and cellulite cocktails.", S_SEED_CLASSES),
    ("amino-acids", "Amino acids (mixture)", "amino-acid", [], False, "Amino-acid solution.", S_SEED_CLASSES),
    ("glutathione", "Glutathione", "amino-acid", [], False, "Tripeptide antioxidant used for pigmentation.",
     S_SEED_CLASSES),
    ("hyaluronic-acid", "Hyaluronic acid (non-cross-linked)", "skin-conditioner", [], False,
     "Non-cross-linked sodium hyaluronate for skin hydration (not a filler).",
     "literature: skin-booster mesotherapy"),
    ("dmae", "DMAE (dimethylaminoethanol)", "skin-conditioner", [], False, "Skin-firming agent.",
     "literature: DMAE in facial mesotherapy"),
    ("polynucleotides", "Polynucleotides (PDRN)", "skin-conditioner", ["fish"], False,
     "Salmon-DNA fragments used for skin rejuvenation.", "literature: PDRN skin boosters"),
    ("artichoke-extract", "Artichoke extract (Cynara scolymus)", "plant-extract", [], False,
     "Plant extract of cellulite cocktails.", "004_99daaf86bc4fb4d2.txt (herbal extracts)"),
    ("ginkgo-extract", "Ginkgo biloba extract", "plant-extract", [], False,
     "Plant extract of circulation and hair cocktails.", "004_99daaf86bc4fb4d2.txt (herbal extracts)"),
    ("centella-extract", "Centella asiatica extract", "plant-extract", [], False,
     "Plant extract of cellulite and stretch-mark cocktails.", "004_99daaf86bc4fb4d2.txt (herbal extracts)"),
    ("melilotus-extract", "Melilotus (sweet clover) extract", "plant-extract", [], False,
     "Plant extract of cellulite cocktails.", "004_99daaf86bc4fb4d2.txt (herbal extracts)"),
    ("sodium-chloride", "Sodium chloride 0.9%", "diluent", [], False, "Isotonic saline diluent.", S_USP797),
    ("bacteriostatic-saline", "Bacteriostatic sodium chloride 0.9% (benzyl alcohol)", "diluent",
     ["benzyl-alcohol"], False, "Saline preserved with 0.9% benzyl alcohol, for multi-dose use.", S_USP797),
    ("water-for-injection", "Sterile water for injection", "diluent", [], False, "Diluent.", S_USP797),
]

CAUTIONS = [
    ("phosphatidylcholine", "soy",
     "phosphatidylcholine is soy-derived; a reaction is an inference, no label says so.",
     "domain.md R-CAND-XALLERGY (lit.)"),
    ("hyaluronidase", "bee-wasp-venom",
     "hyaluronidase is a venom component; consider a skin test (a caution, not a ban).",
     "domain.md R-CAND-XALLERGY (lit.); hyaluronidase labels (Hylenex, Vitrase)"),
    ("procaine", "paba",
     "procaine is metabolised to PABA; cross-sensitivity is possible.",
     "literature: ester local anaesthetic labels (PABA metabolite)"),
    ("calcitonin", "fish",
     "calcitonin is salmon-derived; allergic reactions are reported.",
     "literature: salmon calcitonin labels (hypersensitivity)"),
]

# ingredient code (None: mesotherapy mixtures as such), jurisdiction, status, indications, use, source
_US_OFF = "approved-other-indication"
STATUSES = [
    # The procedure.
    (None, "US", "not-approved", [], "mesotherapy as a procedure is not FDA-approved", S_SEED_US),
    (None, "FR", "banned", FAT, "fat lysis for aesthetic purposes by injection of mesotherapy mixtures",
     S_FR_DECREE),
    # Injection lipolysis (R-REG).
    ("phosphatidylcholine", "US", "not-approved", [], "compounded phosphatidylcholine is an unapproved drug",
     S_US_UNAPPROVED_PCDC),
    ("sodium-deoxycholate", "US", "not-approved", [], "compounded deoxycholate is an unapproved drug",
     S_US_UNAPPROVED_PCDC),
    ("deoxycholic-acid", "US", _US_OFF, [], "submental fat only (Kybella 10 mg/mL)", S_US_KYBELLA),
    ("phosphatidylcholine", "FR", "banned", FAT, "fat lysis for aesthetic purposes (injection)", S_FR_DECREE),
    ("sodium-deoxycholate", "FR", "banned", FAT, "fat lysis for aesthetic purposes (injection)", S_FR_DECREE),
    ("deoxycholic-acid", "FR", "banned", FAT, "fat lysis for aesthetic purposes (injection)", S_FR_DECREE),
    ("phosphatidylcholine", "BR", "banned", AESTHETIC, "injectable Lipostabil suspended for aesthetic use",
     S_BR_ANVISA),
    # US: ingredients approved as drugs for other indications (off-label in mesotherapy).
    ("caffeine", "US", _US_OFF, [], "caffeine citrate injection for apnoea of prematurity", S_SEED_US),
    ("aminophylline", "US", _US_OFF, [], "bronchospasm (injection)", S_SEED_US),
    ("l-carnitine", "US", _US_OFF, [], "carnitine deficiency (Carnitor injection)", S_SEED_US),
    ("hyaluronidase", "US", _US_OFF, [], "dispersion of injected drugs and fluids (Hylenex, Vitrase)",
     S_SEED_US),
    ("collagenase", "US", _US_OFF, [], "Dupuytren's contracture and Peyronie's disease (Xiaflex)", S_SEED_US),
    ("procaine", "US", _US_OFF, [], "local anaesthesia", S_SEED_US),
    ("lidocaine", "US", _US_OFF, [], "local anaesthesia", S_SEED_US),
    ("mepivacaine", "US", _US_OFF, [], "local anaesthesia", S_SEED_US),
    ("minoxidil", "US", _US_OFF, [], "hair loss (topical) and hypertension (oral); not for injection",
     S_SEED_US),
    ("finasteride", "US", _US_OFF, [], "male-pattern hair loss and BPH, oral; not for injection", S_SEED_US),
    ("dutasteride", "US", _US_OFF, [], "BPH, oral; not for injection", S_SEED_US),
    ("pentoxifylline", "US", _US_OFF, [], "intermittent claudication, oral", S_SEED_US),
    ("calcitonin", "US", _US_OFF, [], "Paget's disease and hypercalcaemia (injection)", S_SEED_US),
    ("thyroxin", "US", _US_OFF, [], "hypothyroidism and myxoedema coma", S_SEED_US),
    ("gentamicin", "US", _US_OFF, [], "serious bacterial infections", S_SEED_US),
    ("tranexamic-acid", "US", _US_OFF, [], "haemorrhage in haemophilia; heavy menstrual bleeding", S_SEED_US),
    ("vitamin-a", "US", _US_OFF, [], "vitamin A deficiency (injection)", S_SEED_US),
    ("vitamin-b-complex", "US", _US_OFF, [], "parenteral nutrition (multivitamin injection)", S_SEED_US),
    ("vitamin-c", "US", _US_OFF, [], "scurvy (ascorbic acid injection)", S_SEED_US),
    ("vitamin-k", "US", _US_OFF, [], "coagulation disorders (phytonadione injection)", S_SEED_US),
    ("zinc", "US", _US_OFF, [], "parenteral nutrition trace element", S_SEED_US),
    ("copper", "US", _US_OFF, [], "parenteral nutrition trace element", S_SEED_US),
    ("selenium", "US", _US_OFF, [], "parenteral nutrition trace element", S_SEED_US),
    ("magnesium", "US", _US_OFF, [], "magnesium deficiency (injection)", S_SEED_US),
    ("amino-acids", "US", _US_OFF, [], "parenteral nutrition", S_SEED_US),
    ("sodium-chloride", "US", "approved", [], "diluent for injection", S_SEED_US),
    ("bacteriostatic-saline", "US", "approved", [], "diluent for injection (not for neonates)", S_SEED_US),
    ("water-for-injection", "US", "approved", [], "diluent for injection", S_SEED_US),
    # US: no FDA approval as an injectable drug.
    ("yohimbine", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("buflomedil", "US", "not-approved", [], "never approved in the US", S_SEED_US),
    ("biotin", "US", "not-approved", [], "no approved single-ingredient injectable product", S_SEED_US),
    ("organic-silicon", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("glutathione", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("hyaluronic-acid", "US", "not-approved", [], "no approved non-cross-linked injectable", S_SEED_US),
    ("dmae", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("polynucleotides", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("artichoke-extract", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("ginkgo-extract", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("centella-extract", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    ("melilotus-extract", "US", "not-approved", [], "no approved injectable product", S_SEED_US),
    # France and Brazil: only what is well established; the rest shows as "no status recorded".
    ("buflomedil", "FR", "not-approved", [], "marketing authorisations suspended (neurological and cardiac "
     "toxicity)", S_FR_BUFLOMEDIL),
    ("lidocaine", "FR", _US_OFF, [], "local anaesthesia", "literature: ANSM marketing authorisation"),
    ("procaine", "FR", _US_OFF, [], "local anaesthesia", "literature: ANSM marketing authorisation"),
    ("mepivacaine", "FR", _US_OFF, [], "local anaesthesia", "literature: ANSM marketing authorisation"),
    ("minoxidil", "FR", _US_OFF, [], "hair loss (topical)", "literature: ANSM marketing authorisation"),
    ("finasteride", "FR", _US_OFF, [], "male-pattern hair loss and BPH, oral",
     "literature: ANSM marketing authorisation"),
    ("dutasteride", "FR", _US_OFF, [], "BPH, oral", "literature: ANSM marketing authorisation"),
    ("lidocaine", "BR", _US_OFF, [], "local anaesthesia", "literature: ANVISA registration"),
    ("minoxidil", "BR", _US_OFF, [], "hair loss (topical)", "literature: ANVISA registration"),
    ("finasteride", "BR", _US_OFF, [], "male-pattern hair loss and BPH, oral", "literature: ANVISA registration"),
    ("dutasteride", "BR", _US_OFF, [], "BPH, oral", "literature: ANVISA registration"),
]

# ingredient code, label, concentration, unit, mL/injection, spacing cm, injections/session, mL/session,
# min days between sessions, max sessions, source
LIMITS = [
    ("deoxycholic-acid", "Deoxycholic acid 10 mg/mL (Kybella)", "10", "mg/mL", "0.2", "1.0", 50, "10", 30, 6,
     "domain.md R-TECH; literature: Kybella label (0.2 mL per injection 1 cm apart, at most 50 injections "
     "(10 mL) per session, at most 6 sessions at least 1 month apart)"),
]


def seed(apps, schema_editor):
    AllergyGroup = apps.get_model("formulary", "AllergyGroup")
    Ingredient = apps.get_model("formulary", "Ingredient")
    CrossSensitivity = apps.get_model("formulary", "CrossSensitivity")
    RegulatoryStatus = apps.get_model("formulary", "RegulatoryStatus")
    ProductLimit = apps.get_model("formulary", "ProductLimit")
    groups = {}
    for code, name in ALLERGY_GROUPS:
        groups[code], _ = AllergyGroup.objects.get_or_create(code=code, defaults={"name": name})
    ingredients = {}
    for code, name, klass, allergy, teratogen, description, source in INGREDIENTS:
        ingredient, _ = Ingredient.objects.get_or_create(
            clinic=None,
            code=code,
            defaults={
                "name": name,
                "ingredient_class": klass,
                "teratogen": teratogen,
                "description": description,
                "source": source,
            },
        )
        ingredient.allergy_groups.set([groups[group] for group in allergy])
        ingredients[code] = ingredient
    for code, group, note, source in CAUTIONS:
        CrossSensitivity.objects.get_or_create(
            ingredient=ingredients[code], group=groups[group], defaults={"note": note, "source": source}
        )
    for code, jurisdiction, status, indications, use, source in STATUSES:
        RegulatoryStatus.objects.get_or_create(
            ingredient=ingredients[code] if code else None,
            jurisdiction=jurisdiction,
            status=status,
            use=use,
            defaults={"indications": indications, "source": source},
        )
    for code, label, conc, unit, per_injection, spacing, injections, per_session, interval, sessions, src in LIMITS:
        ProductLimit.objects.get_or_create(
            ingredient=ingredients[code],
            label=label,
            defaults={
                "concentration": conc,
                "concentration_unit": unit,
                "max_volume_per_injection_ml": per_injection,
                "min_injection_spacing_cm": spacing,
                "max_injections_per_session": injections,
                "max_volume_per_session_ml": per_session,
                "min_interval_days": interval,
                "max_sessions": sessions,
                "source": src,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("formulary", "RegulatoryStatus").objects.filter(ingredient__clinic__isnull=True).delete()
    apps.get_model("formulary", "RegulatoryStatus").objects.filter(ingredient__isnull=True).delete()
    apps.get_model("formulary", "Ingredient").objects.filter(clinic__isnull=True).delete()
    apps.get_model("formulary", "AllergyGroup").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("formulary", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
