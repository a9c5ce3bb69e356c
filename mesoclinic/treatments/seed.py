"""The seeded reference data of the treatments app: techniques (R-TECH) and protocol templates (R-IND,
R-SERIES, R-ALT, R-EVID, R-AE). Body areas come from ``bodymap_data``. Loaded by migration 0002; clinics copy
the templates and edit their copies, so this data is never edited in place once released — corrections come
as new migrations."""

from __future__ import annotations

from typing import Any


def _(text: str) -> str:
    """Marks a technique name for the translation catalogue; stored in English, translated when shown."""
    return text


SEED_000 = "000_2edeac59aef879af.txt"
SEED_001 = "001_5e54515e35d4687b.txt"
SEED_002 = "002_31eeec912ef0d88d.txt"
SEED_003 = "003_f92b52b170801ca0.txt"
SEED_004 = "004_99daaf86bc4fb4d2.txt"
LIT_SIM = "literature: Italian Society of Mesotherapy technique descriptions, as quoted in domain.md R-TECH"

TECHNIQUES: list[dict[str, Any]] = [
    {
        "code": "intraepidermal",
        "name": _("Intraepidermal (IED)"),
        "depth_min_mm": "0.1",
        "depth_max_mm": "1.0",
        "needles": "30G–32G, 4 mm",
        "volume_per_point_min_ml": "0.005",
        "volume_per_point_max_ml": "0.02",
        "many_punctures": True,
        "source": LIT_SIM,
    },
    {
        "code": "nappage",
        "name": _("Nappage (superficial intradermal)"),
        "depth_min_mm": "1.0",
        "depth_max_mm": "2.0",
        "needles": "30G–32G, 4 mm",
        "volume_per_point_min_ml": "0.01",
        "volume_per_point_max_ml": "0.05",
        "many_punctures": True,
        "source": f"{SEED_004}: a very fine, short needle, 1 to 4 mm deep; {LIT_SIM}",
    },
    {
        "code": "papule",
        "name": _("Papule"),
        "depth_min_mm": "1.0",
        "depth_max_mm": "2.0",
        "needles": "30G, 4 mm",
        "volume_per_point_min_ml": "0.02",
        "volume_per_point_max_ml": "0.05",
        "many_punctures": False,
        "source": LIT_SIM,
    },
    {
        "code": "intradermal",
        "name": _("Intradermal (point by point)"),
        "depth_min_mm": "1.0",
        "depth_max_mm": "4.0",
        "needles": "30G, 4 mm",
        "volume_per_point_min_ml": "0.05",
        "volume_per_point_max_ml": "0.2",
        "many_punctures": False,
        "source": f"{SEED_004}: 1 to 4 mm deep depending on the condition; {LIT_SIM}",
    },
    {
        "code": "point-by-point-deep",
        "name": _("Point by point, deep (fat)"),
        "depth_min_mm": "4.0",
        "depth_max_mm": "13.0",
        "needles": "27G–30G, 6–13 mm",
        "volume_per_point_min_ml": "0.1",
        "volume_per_point_max_ml": "0.2",
        "many_punctures": False,
        "source": f"{LIT_SIM}: 0.10–0.20 mL per point, points 2–3 cm apart; deep fat techniques 4–13 mm",
    },
    {
        "code": "linear-retrograde",
        "name": _("Linear retrograde"),
        "depth_min_mm": "1.0",
        "depth_max_mm": "6.0",
        "needles": "30G, 13 mm",
        "volume_per_point_min_ml": "0.05",
        "volume_per_point_max_ml": "0.2",
        "many_punctures": False,
        "source": LIT_SIM,
    },
    {
        "code": "mesoperfusion",
        "name": _("Mesoperfusion (slow infusion)"),
        "depth_min_mm": "4.0",
        "depth_max_mm": "13.0",
        "needles": "30G, 13 mm, on an infusion line",
        "volume_per_point_min_ml": "0.5",
        "volume_per_point_max_ml": "5.0",
        "many_punctures": False,
        "source": LIT_SIM,
    },
    {
        "code": "multi-injector-gun",
        "name": _("Multi-injector gun"),
        "depth_min_mm": "1.0",
        "depth_max_mm": "4.0",
        "needles": "Multi-needle plate (5–18 × 30G–32G) or single 30G, depth set on the gun",
        "volume_per_point_min_ml": "0.01",
        "volume_per_point_max_ml": "0.05",
        "many_punctures": True,
        "source": f"{SEED_004}: a mechanical gun or other device may deliver many injections in a row",
    },
]

BODY_AFTERCARE = [
    "bruising",
    "swelling",
    "arnica",
    "no-exercise",
    "loose-clothing",
    "day-off",
    "no-nsaid",
    "infection-watch",
]
FACE_AFTERCARE = ["bruising", "swelling", "sun", "arnica", "no-nsaid", "infection-watch"]


def _sides(*codes: str) -> list[str]:
    return [f"{code}-{side}" for code in codes for side in ("left", "right")]


PROTOCOLS: list[dict[str, Any]] = [
    {
        "code": "localized-fat",
        "name": "Localized fat (body contouring)",
        "indication": "localized-fat",
        "summary": (
            "Small amounts of stubborn fat in a patient with a stable weight (000); mesotherapy supplements "
            "a "
            "healthy lifestyle and does not replace weight loss."
        ),
        "formula_note": (
            "Injection lipolysis with phosphatidylcholine and deoxycholate (004), or a cocktail of caffeine, "
            "L-carnitine and aminophylline (001, 003). Not for aesthetic fat lysis in France (R-REG)."
        ),
        "sessions": (4, 10),
        "interval": (7, 10),
        "taper": (14, 30),
        "maintenance": 60,
        "areas": [
            ("point-by-point-deep", "6", "13", ["abdomen", *_sides("flank", "hip")]),
            ("point-by-point-deep", "6", "13", _sides("thigh-front", "thigh-inner", "thigh-back", "buttock")),
            ("point-by-point-deep", "4", "10", [*_sides("arm-back", "knee"), "back-upper", "back-lower"]),
        ],
        "measures": [
            "weight",
            "waist-circumference",
            "hip-circumference",
            "thigh-circumference",
            "photos",
            "satisfaction",
            "pain-nrs",
        ],
        "non_responder_after": 4,
        "responder_rule": "A reduction of at least 2 cm in the treated circumference from baseline.",
        "combinations": ["diet-exercise", "radiofrequency"],
        "alternatives": ["injection-lipolysis", "laser-liposuction", "liposuction"],
        "aftercare": BODY_AFTERCARE,
        "source": f"{SEED_000}: about 5–7 sessions; {SEED_004}: 3 to 15 visits every 7–10 days, then two "
        "weeks "
        "or a month; SmartLipo for non-responders (000); liposuction (004)",
    },
    {
        "code": "cellulite",
        "name": "Cellulite",
        "indication": "cellulite",
        "summary": "Cellulite of the thighs, hips and buttocks; two formulas may be used in a session (003).",
        "formula_note": (
            "One formula to dissolve fat and one for the fibrous bands (003), e.g. phosphatidylcholine, "
            "caffeine, "
            "L-carnitine, plant extracts, collagenase or hyaluronidase."
        ),
        "sessions": (6, 12),
        "interval": (7, 14),
        "taper": (14, 30),
        "maintenance": 60,
        "areas": [
            ("intradermal", "2", "4", _sides("thigh-back", "thigh-front", "buttock")),
            ("point-by-point-deep", "4", "8", _sides("hip")),
        ],
        "measures": ["nurnberger-muller", "hexsel-css", "thigh-circumference", "photos", "satisfaction"],
        "non_responder_after": 6,
        "responder_rule": "At least 1 grade better on Nürnberger-Müller, or 3 points better on Hexsel CSS.",
        "combinations": ["velasmooth"],
        "alternatives": ["velasmooth", "radiofrequency"],
        "aftercare": BODY_AFTERCARE,
        "source": f"{SEED_003}: about 10 sessions 1–2 weeks apart; {SEED_000}: Velasmooth with mesotherapy",
    },
    {
        "code": "facial-rejuvenation",
        "name": "Facial rejuvenation",
        "indication": "rejuvenation",
        "summary": "Fine lines, dull or dehydrated skin of the face, neck and décolletage.",
        "formula_note": "Non-cross-linked hyaluronic acid, vitamins (A, C, E, B), minerals and amino acids.",
        "sessions": (4, 8),
        "interval": (7, 14),
        "taper": (14, 30),
        "maintenance": 90,
        "areas": [
            (
                "nappage",
                "1",
                "2",
                ["forehead", *_sides("periorbital", "cheek"), "perioral", "neck", "decolletage"],
            ),
        ],
        "measures": ["gais", "glogau", "wrinkle-severity", "photos", "satisfaction"],
        "non_responder_after": 4,
        "responder_rule": "GAIS 3 (improved) or better on the clinician's rating.",
        "combinations": ["botulinum-toxin", "dermal-filler"],
        "alternatives": ["chemical-peel", "microneedling", "botulinum-toxin", "dermal-filler"],
        "aftercare": FACE_AFTERCARE,
        "source": f"{SEED_001}, {SEED_003}: Botox and/or Restylane for facial wrinkles; {SEED_002}",
    },
    {
        "code": "loose-skin",
        "name": "Loose skin (face and neck)",
        "indication": "sagging-skin",
        "summary": "Sagging skin of the lower face and neck.",
        "formula_note": "Organic silicon, hyaluronic acid, vitamins and amino acids.",
        "sessions": (4, 8),
        "interval": (7, 14),
        "taper": (14, 30),
        "maintenance": 90,
        "areas": [("intradermal", "2", "4", [*_sides("jawline", "cheek"), "neck", "decolletage"])],
        "measures": ["gais", "photos", "satisfaction"],
        "non_responder_after": 4,
        "responder_rule": "GAIS 3 (improved) or better on the clinician's rating.",
        "combinations": ["radiofrequency", "dermal-filler"],
        "alternatives": ["radiofrequency", "dermal-filler"],
        "aftercare": FACE_AFTERCARE,
        "source": f"{SEED_003}: sagging or loose skin of the face and neck",
    },
    {
        "code": "hair-loss",
        "name": "Hair loss (alopecia)",
        "indication": "hair-loss",
        "summary": "Androgenetic hair loss; measure density in a marked 1 cm² area.",
        "formula_note": "Finasteride and/or minoxidil (the only two with evidence for hair, 004) and biotin.",
        "sessions": (6, 12),
        "interval": (7, 14),
        "taper": (14, 30),
        "maintenance": 60,
        "areas": [
            (
                "nappage",
                "1",
                "2",
                ["scalp-frontal", "scalp-midscalp", "scalp-vertex", *_sides("scalp-temporal")],
            ),
        ],
        "measures": ["hair-density", "norwood-hamilton", "ludwig", "photos", "satisfaction"],
        "non_responder_after": 6,
        "responder_rule": "Hair density up by at least 10 % in the marked 1 cm² area.",
        "combinations": ["topical-minoxidil", "oral-finasteride"],
        "alternatives": ["topical-minoxidil", "oral-finasteride", "hair-transplant"],
        "aftercare": ["hair-washing", "swelling", "no-nsaid", "infection-watch"],
        "source": f"{SEED_004}: hair loss uses finasteride and minoxidil",
    },
    {
        "code": "submental-deoxycholic-acid",
        "name": "Submental fat — deoxycholic acid 10 mg/mL (label)",
        "indication": "submental-fat",
        "summary": (
            "Moderate to severe submental fat, with deoxycholic acid injection 10 mg/mL as labelled "
            "(Kybella): "
            "approved in the US for submental fat only."
        ),
        "formula_note": (
            "Deoxycholic acid 10 mg/mL, undiluted: 0.2 mL per injection 1 cm apart, at most 50 injections "
            "(10 mL) per session, at most 6 sessions at least 1 month apart (label)."
        ),
        "sessions": (1, 6),
        "interval": (28, 60),
        "taper": None,
        "maintenance": None,
        "areas": [("point-by-point-deep", "4", "10", ["submental"])],
        "measures": ["cr-smfrs", "pr-smfrs", "photos", "satisfaction", "pain-nrs"],
        "non_responder_after": 4,
        "responder_rule": "At least 1 grade better on both CR-SMFRS and PR-SMFRS (REFINE-1).",
        "combinations": [],
        "alternatives": ["liposuction", "laser-liposuction"],
        "aftercare": ["swelling", "bruising", "numbness", "no-nsaid", "infection-watch"],
        "source": "literature: Kybella (deoxycholic acid) injection label, FDA 2015; REFINE-1 trial",
    },
    {
        "code": "pain",
        "name": "Pain (musculoskeletal)",
        "indication": "pain",
        "summary": "The technique's original use (Pistor, 1952): local intradermal injections for pain.",
        "formula_note": "Procaine or lidocaine, with or without an anti-inflammatory, as prescribed.",
        "sessions": (3, 6),
        "interval": (7, 14),
        "taper": (14, 30),
        "maintenance": None,
        "areas": [("intradermal", "2", "4", ["back-upper", "back-lower", *_sides("knee")])],
        "measures": ["pain-nrs", "satisfaction"],
        "non_responder_after": 3,
        "responder_rule": "Pain (NRS 0–10) down by at least 2 points from baseline.",
        "combinations": ["physiotherapy"],
        "alternatives": ["physiotherapy"],
        "aftercare": ["bruising", "swelling", "no-nsaid", "infection-watch"],
        "source": f"{SEED_003}, {SEED_004}: developed in 1952 by Michel Pistor to relieve pain",
    },
]


def load(apps: Any, schema_editor: Any) -> None:
    from decimal import Decimal

    from mesoclinic.treatments.bodymap_data import AREAS

    BodyArea = apps.get_model("treatments", "BodyArea")
    Technique = apps.get_model("treatments", "Technique")
    Protocol = apps.get_model("treatments", "Protocol")
    ProtocolVersion = apps.get_model("treatments", "ProtocolVersion")
    ProtocolArea = apps.get_model("treatments", "ProtocolArea")

    areas = {}
    for position, spec in enumerate(AREAS):
        areas[spec["code"]], _created = BodyArea.objects.update_or_create(
            code=spec["code"],
            defaults={
                "region": spec["region"],
                "side": spec["side"],
                "view": spec["view"],
                "label": spec["label"],
                "outline": [[x, y] for x, y in spec["outline"]],
                "position": position,
            },
        )
    techniques = {}
    for position, technique_spec in enumerate(TECHNIQUES):
        techniques[technique_spec["code"]], _created = Technique.objects.update_or_create(
            code=technique_spec["code"],
            defaults={**{k: v for k, v in technique_spec.items() if k != "code"}, "position": position},
        )
    for protocol_spec in PROTOCOLS:
        if Protocol.objects.filter(clinic__isnull=True, code=protocol_spec["code"]).exists():
            continue
        protocol = Protocol.objects.create(
            code=protocol_spec["code"], name=protocol_spec["name"], indication=protocol_spec["indication"]
        )
        taper = protocol_spec["taper"] or (None, None)
        version = ProtocolVersion.objects.create(
            protocol=protocol,
            number=1,
            summary=protocol_spec["summary"],
            formula_note=protocol_spec["formula_note"],
            sessions_min=protocol_spec["sessions"][0],
            sessions_max=protocol_spec["sessions"][1],
            interval_min_days=protocol_spec["interval"][0],
            interval_max_days=protocol_spec["interval"][1],
            taper_interval_min_days=taper[0],
            taper_interval_max_days=taper[1],
            maintenance_interval_days=protocol_spec["maintenance"],
            outcome_measures=protocol_spec["measures"],
            non_responder_after_sessions=protocol_spec["non_responder_after"],
            responder_rule=protocol_spec["responder_rule"],
            combinations=protocol_spec["combinations"],
            alternatives=protocol_spec["alternatives"],
            aftercare=protocol_spec["aftercare"],
            source=protocol_spec["source"],
        )
        for technique_code, low, high, codes in protocol_spec["areas"]:
            for code in codes:
                ProtocolArea.objects.create(
                    version=version,
                    area=areas[code],
                    technique=techniques[technique_code],
                    depth_min_mm=Decimal(low),
                    depth_max_mm=Decimal(high),
                )
