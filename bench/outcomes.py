"""The generator's outcomes family (mesoclinic.outcomes): the assessments and measurements of every plan.

Per plan (from what the sessions family wrote): a **baseline** Assessment on the first session's day (before
it, ``after_sessions`` 0) and one **session** Assessment per session (linked to it, ``after_sessions`` = its
number), recorded by the session's practitioner just after the session; per assessment, one **Measurement**
per measure its protocol asks (``outcomes.rules.due_measures``: photos aside, change-rating scales such as
GAIS and satisfaction not at baseline, height with weight at baseline), with the scale's version, unit, LOINC
code and rater, the five items of a Hexsel CSS, and the plan's **Landmark** for a circumference (one per
measure and plan, so that every circumference of a plan is taken at the same place).

Values: a baseline drawn per plan and measure inside a realistic range, then a drift towards the scale's
better end as sessions go on (most plans improve, some do not), with noise, on the scale's step and inside
its range (the database checks that too). Photos are bench/photos.py's; no outcome settings (the defaults), no
audit rows.

Built in this process from plain rows of the sessions (a few µs a row), written with ``Context.write``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bench.rows import SECONDS_PER_DAY, day_text, moment_text
from mesoclinic.outcomes import rules as outcome_rules
from mesoclinic.outcomes.models import Assessment, Landmark, Measurement
from mesoclinic.treatments.models import ProtocolVersion, TreatmentPlan, TreatmentSession

if TYPE_CHECKING:
    from bench.generate import ClinicData, Context, Counts

FIELDS_ASSESSMENT = (
    "id",
    "clinic",
    "plan",
    "patient",
    "kind",
    "session",
    "taken_on",
    "after_sessions",
    "note",
    "recorded_at",
    "recorded_by",
)
FIELDS_LANDMARK = ("id", "plan", "code", "fixed_point", "direction", "distance_cm", "side")
FIELDS_MEASUREMENT = (
    "assessment",
    "code",
    "scale_version",
    "value",
    "unit",
    "loinc",
    "rater",
    "items",
    "landmark",
    "derived",
)
# Baseline range and the change per session towards the better end (in the scale's unit), per measure.
BASELINES: dict[str, tuple[float, float, float]] = {
    "weight": (55.0, 95.0, 0.25),
    "height": (150.0, 185.0, 0.0),
    "waist-circumference": (72.0, 105.0, 0.6),
    "hip-circumference": (92.0, 120.0, 0.5),
    "thigh-circumference": (50.0, 66.0, 0.35),
    "gais": (3.0, 3.0, 0.2),
    "cr-smfrs": (2.0, 4.0, 0.3),
    "pr-smfrs": (2.0, 4.0, 0.3),
    "nurnberger-muller": (2.0, 3.0, 0.15),
    "hexsel-css": (7.0, 13.0, 0.6),
    "glogau": (2.0, 4.0, 0.1),
    "wrinkle-severity": (2.0, 5.0, 0.2),
    "norwood-hamilton": (2.0, 5.0, 0.05),
    "ludwig": (1.0, 3.0, 0.05),
    "hair-density": (90.0, 180.0, 4.0),
    "satisfaction": (3.0, 4.0, 0.15),
    "pain-nrs": (2.0, 6.0, 0.1),
}
# The landmark of each circumference: (fixed point, direction, distance in cm, side).
LANDMARKS: dict[str, tuple[str, str, str, str]] = {
    "waist-circumference": ("umbilicus", "at", "0.0", ""),
    "hip-circumference": ("greater-trochanter", "at", "0.0", ""),
    "thigh-circumference": ("inguinal-crease", "below", "10.0", "left"),
    "arm-circumference": ("acromion", "below", "15.0", "left"),
}
NON_RESPONDER_SHARE = 0.25  # plans whose measures do not move (noise only)
NOTES = ("", "", "", "", "Patient pleased with the progress.", "No visible change yet.", "Photos taken.")


class Measures:
    """What one protocol version asks, resolved once: (code, scale, version, rater) at baseline and after."""

    def __init__(self, codes: list[str]) -> None:
        self.baseline = [self._entry(code) for code in outcome_rules.due_measures(codes, baseline=True)]
        self.after = [self._entry(code) for code in outcome_rules.due_measures(codes, baseline=False)]

    @staticmethod
    def _entry(code: str) -> tuple[str, outcome_rules.Scale, str, str]:
        scale = outcome_rules.SCALES[code]
        version = outcome_rules.scale_version(code, gais_reversed=False)
        rater = scale.rater if scale.rater != "any" else "clinician"
        return code, scale, version, rater


def _value(scale: outcome_rules.Scale, value: float) -> Decimal:
    low, high = float(scale.minimum), float(scale.maximum)
    step = scale.step
    bounded = min(high, max(low, value))
    return (Decimal(bounded) / step).quantize(Decimal(1)) * step


def clinic_rows(ctx: Context, data: ClinicData) -> dict[str, list[tuple[Any, ...]]]:
    """The landmarks, assessments and measurements of one clinic's plans."""
    rng = ctx.rng("outcomes", data.number)
    rand = rng.random
    clinic_id = data.clinic.pk
    offset = data.utc_offset
    versions = {
        version.pk: Measures(list(version.outcome_measures))
        for version in ProtocolVersion.objects.filter(plans__clinic_id=clinic_id).distinct()
    }
    plans = dict(TreatmentPlan.objects.filter(clinic_id=clinic_id).values_list("id", "protocol_version_id"))
    sessions = (
        TreatmentSession.objects.filter(clinic_id=clinic_id)
        .order_by("plan_id", "number")
        .values_list("id", "plan_id", "patient_id", "number", "session_date", "practitioner_id", "status")
    )
    out: dict[str, list[tuple[Any, ...]]] = {"landmark": [], "assessment": [], "measurement": []}
    landmarks, assessments, measurements = out["landmark"], out["assessment"], out["measurement"]
    current_plan = -1
    base: dict[str, float] = {}
    drift = 1.0
    plan_landmarks: dict[str, int] = {}
    measures: Measures | None = None
    rows = list(sessions)
    assessment_ids = iter(ctx.next_ids(Assessment, len(rows) + len(plans)))
    landmark_ids = iter(ctx.next_ids(Landmark, len(plans) * 3))
    for session_id, plan, patient, number, on, practitioner, _status in rows:
        ordinal = on.toordinal()
        if plan != current_plan:
            current_plan = plan
            measures = versions[plans[plan]]
            drift = 0.0 if rand() < NON_RESPONDER_SHARE else 0.6 + 0.8 * rand()
            base = {}
            plan_landmarks = {}
            for code, scale, _version, _rater in measures.baseline + measures.after:
                if code in base:
                    continue
                low, high, _per = BASELINES.get(code, (float(scale.minimum), float(scale.maximum), 0.0))
                base[code] = low + (high - low) * rand()
                if scale.landmark and code in LANDMARKS and len(plan_landmarks) < 3:
                    landmark = next(landmark_ids)
                    plan_landmarks[code] = landmark
                    landmarks.append((landmark, plan, code, *LANDMARKS[code]))
            baseline = next(assessment_ids)
            assessments.append(
                (
                    baseline,
                    clinic_id,
                    plan,
                    patient,
                    "baseline",
                    None,
                    day_text(ordinal),
                    0,
                    "",
                    moment_text(ordinal * SECONDS_PER_DAY + 9 * 3600 + int(rand() * 9 * 3600), offset),
                    practitioner,
                )
            )
            measurements.extend(_measured(rand, baseline, measures.baseline, base, 0, drift, plan_landmarks))
        if measures is None:  # pragma: no cover - set with the first session of every plan
            continue
        assessment = next(assessment_ids)
        assessments.append(
            (
                assessment,
                clinic_id,
                plan,
                patient,
                "session",
                session_id,
                day_text(ordinal),
                number,
                NOTES[int(rand() * len(NOTES))],
                moment_text(ordinal * SECONDS_PER_DAY + 19 * 3600 + int(rand() * 3600), offset),
                practitioner,
            )
        )
        measurements.extend(_measured(rand, assessment, measures.after, base, number, drift, plan_landmarks))
    return out


def _measured(
    rand: Any,
    assessment: int,
    entries: list[tuple[str, outcome_rules.Scale, str, str]],
    base: dict[str, float],
    after: int,
    drift: float,
    landmarks: dict[str, int],
) -> Iterator[tuple[Any, ...]]:
    for code, scale, version, rater in entries:
        if scale.landmark and code not in landmarks:
            continue
        _low, _high, per = BASELINES.get(code, (0.0, 0.0, 0.0))
        towards = -1.0 if scale.better == "lower" else 1.0 if scale.better == "higher" else 0.0
        noise = (rand() - 0.5) * (float(scale.step) * 2 if scale.kind == "quantity" else 0.8)
        items = None
        if scale.kind == "items":
            total = int(_value(scale, base[code] + towards * per * after * drift + noise))
            parts = [0] * len(scale.items)
            for index in range(total):
                parts[index % len(parts)] += 1
            items = json.dumps(parts)
            value = Decimal(sum(parts))
        else:
            value = _value(scale, base[code] + towards * per * after * drift + noise)
        yield (
            assessment,
            code,
            version,
            f"{value:f}",
            scale.unit,
            scale.loinc,
            rater,
            items,
            landmarks.get(code),
            False,
        )


def gen_outcomes(ctx: Context) -> Counts:
    """Landmarks, assessments and measurements of every clinic's plans."""
    counts = {"landmark": 0, "assessment": 0, "measurement": 0}
    tables = {
        "landmark": (Landmark, FIELDS_LANDMARK),
        "assessment": (Assessment, FIELDS_ASSESSMENT),
        "measurement": (Measurement, FIELDS_MEASUREMENT),
    }
    for data in ctx.clinics:
        out = clinic_rows(ctx, data)
        for key, (model, fields) in tables.items():
            if out[key]:
                counts[key] += ctx.write(model, fields, out[key])
    return counts
