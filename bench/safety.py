"""The generator's safety family (mesoclinic.safety): the side effects that followed the generated sessions.

After about 3 % of the signed sessions (R-AE's "a few percent"), one **AdverseEvent**, recorded by the
staff: mostly bruising, then swelling, redness, pain, itching, bumps, a little numbness or discoloration,
with its onset on the day of the session or the next two, a severity (mostly mild), what was done and a
resolution inside the kind's expected course (bruising within 2–5 days, so that no next session of the
series was due while it was open: the check-in gate would have stopped it). Rarely (1 session in 2,000) an
**infection**, 1–8 weeks after the session, moderate, treated with antibiotics, resolving in weeks.
Events whose course reaches past ``as_of`` are still open ("recovering"). Reviewed by the medical director
within 3 days.

Each event has its **AdverseEventSession** links as ``safety.rules.link_sessions`` makes them (the last
session before the onset; for an infection every session of the previous 12 weeks), with the copies a
signal scan groups by (day, practitioner, room, device, kind, onset), and its **AdverseEventLot** links:
every lot in the preparations of the linked sessions. No follow-ups, signals or photos (the scan and the
application make those), no audit rows.

Built in this process from plain rows of the sessions (a few µs a row), written with ``Context.write``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING, Any

from bench.rows import SECONDS_PER_DAY, day_text, moment_text
from mesoclinic.accounts.models import Role
from mesoclinic.formulary.models import PreparationLine
from mesoclinic.safety import rules as safety_rules
from mesoclinic.safety.models import AdverseEvent, AdverseEventLot, AdverseEventSession
from mesoclinic.treatments.models import TreatmentSession

if TYPE_CHECKING:
    from bench.generate import ClinicData, Context, Counts

FIELDS_EVENT = (
    "id",
    "clinic",
    "patient",
    "kind",
    "other_kind",
    "area",
    "severity",
    "serious",
    "serious_criteria",
    "onset_on",
    "resolved_on",
    "expected_end_on",
    "outcome",
    "actions",
    "actions_note",
    "description",
    "clinical_note",
    "reported_via",
    "reported_at",
    "reported_by",
    "reviewed_at",
    "reviewed_by",
    "updated_at",
    "updated_by",
    "photo_name",
    "photo_content_type",
    "photo_added_at",
    "retracted_at",
    "retracted_by",
    "retract_reason",
)
FIELDS_EVENT_SESSION = (
    "event",
    "session",
    "primary",
    "days_after",
    "clinic",
    "kind",
    "onset_on",
    "session_date",
    "practitioner",
    "room",
    "device",
)
FIELDS_EVENT_LOT = ("event", "lot", "session", "via", "exposed_on", "clinic", "kind", "onset_on")
EVENT_SHARE = 0.03  # of the signed sessions
INFECTION_SHARE = 0.0005
# Local side effects: (kind, weight, days to resolve (fewest, most), actions, what the patient said).
LOCAL_KINDS: tuple[tuple[str, float, tuple[int, int], str, str], ...] = (
    ("bruising", 0.5, (2, 5), '["cold-compress", "arnica"]', "Bruises where the injections were."),
    ("swelling", 0.14, (1, 2), '["cold-compress"]', "Swollen the evening after."),
    ("redness", 0.1, (1, 3), '["none"]', "Red for a day."),
    ("pain", 0.08, (1, 3), '["analgesic"]', "Sore for a couple of days."),
    ("itching", 0.06, (1, 2), '["antihistamine"]', "Itchy the next day."),
    ("bumps", 0.06, (1, 2), '["none"]', "Small bumps under the skin."),
    ("numbness", 0.03, (3, 10), '["none"]', "A numb patch."),
    ("discoloration", 0.03, (20, 80), '["none"]', "A darker patch of skin."),
)
SEVERITY = (("mild", 0.8), ("moderate", 0.98), ("severe", 1.0))


def _local_kind(pick: float) -> tuple[str, float, tuple[int, int], str, str]:
    """The local side effect at ``pick`` along the cumulative weights."""
    for entry in LOCAL_KINDS:
        pick -= entry[1]
        if pick <= 0:
            return entry
    return LOCAL_KINDS[-1]


def _signed_sessions() -> dict[int, list[tuple[Any, ...]]]:
    """Every signed session, by clinic, in (patient, day, id) order. One pass over the table: its plain
    indexes are dropped during the load, so a query per clinic would scan it once per clinic (at chain scale
    that, and the same for the lots below, was 93 s of the family's 95)."""
    by_clinic: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    rows = (
        TreatmentSession.objects.filter(status=TreatmentSession.Status.SIGNED)
        .order_by("clinic_id", "patient_id", "session_date", "id")
        .values_list(
            "clinic_id", "id", "patient_id", "session_date", "practitioner_id", "room_id", "device_id"
        )
    )
    for row in rows.iterator(chunk_size=20_000):
        by_clinic[row[0]].append(row[1:])
    return by_clinic


def _lots_of(session_ids: set[int]) -> dict[int, list[int]]:
    """The lots in the preparations of ``session_ids``, each session's in lot order: one pass over the
    preparation lines (the session's preparation is found through its unique index)."""
    lots: dict[int, set[int]] = defaultdict(set)
    if not session_ids:
        return {}
    rows = PreparationLine.objects.filter(preparation__session_use__isnull=False).values_list(
        "preparation__session_use__session_id", "lot_id"
    )
    for session_id, lot_id in rows.iterator(chunk_size=20_000):
        if session_id in session_ids:
            lots[session_id].add(lot_id)
    return {session_id: sorted(ids) for session_id, ids in lots.items()}


def clinic_rows(
    ctx: Context, data: ClinicData, sessions: list[tuple[Any, ...]]
) -> tuple[dict[str, list[tuple[Any, ...]]], set[int]]:
    """The events of one clinic and their session links (event ids taken here), from its signed
    ``sessions`` (:func:`_signed_sessions`), and the sessions linked; :func:`lot_rows` adds the lot links."""
    rng = ctx.rng("safety", data.number)
    rand = rng.random
    clinic_id = data.clinic.pk
    offset = data.utc_offset
    as_of = ctx.as_of
    staff = [user.pk for user in data.staff.get(Role.FRONT_DESK.value, [])]
    director = data.staff[Role.MEDICAL_DIRECTOR.value][0].pk
    by_patient: dict[int, list[safety_rules.SessionFacts]] = defaultdict(list)
    facts: dict[int, tuple[Any, ...]] = {}
    for row in sessions:
        by_patient[row[1]].append(safety_rules.SessionFacts(row[0], row[2]))
        facts[row[0]] = row
    out: dict[str, list[tuple[Any, ...]]] = {"event": [], "session": [], "lot": []}
    chosen: list[tuple[int, tuple[Any, ...], str, date, tuple[int, int], str, str]] = []
    total_local = sum(weight for _kind, weight, *_rest in LOCAL_KINDS)
    for row in sessions:
        draw = rand()
        if draw < INFECTION_SHARE:
            onset = date.fromordinal(row[2].toordinal() + 7 + int(rand() * 50))
            chosen.append((row[0], row, "infection", onset, (14, 40), '["culture", "oral-antibiotic"]', ""))
        elif draw < EVENT_SHARE:
            kind, _weight, days, actions, said = _local_kind(rand() * total_local)
            onset = date.fromordinal(row[2].toordinal() + int(rand() * 3))
            chosen.append((row[0], row, kind, onset, days, actions, said))
    chosen = [entry for entry in chosen if entry[3] < as_of]
    first_event = ctx.next_ids(AdverseEvent, len(chosen)).start
    linked_sessions: set[int] = set()
    for index, (session_id, row, kind, onset, days, actions, said) in enumerate(chosen):
        event_id = first_event + index
        patient = row[1]
        resolved_ordinal = onset.toordinal() + days[0] + int(rand() * (days[1] - days[0] + 1))
        is_open = resolved_ordinal > as_of.toordinal()
        draw = rand()
        severity = "moderate" if kind == "infection" else next(s for s, bound in SEVERITY if draw < bound)
        reported = onset.toordinal() * SECONDS_PER_DAY + 9 * 3600 + int(rand() * 9 * 3600)
        reviewed = reported + int(rand() * 3 * SECONDS_PER_DAY)
        course = safety_rules.KINDS[kind].course_days
        out["event"].append(
            (
                event_id,
                clinic_id,
                patient,
                kind,
                "",
                None,
                severity,
                False,
                "[]",
                day_text(onset.toordinal()),
                None if is_open else day_text(resolved_ordinal),
                day_text(onset.toordinal() + course) if course is not None else None,
                "recovering" if is_open else "recovered",
                actions,
                "",
                said,
                "Swab sent; antibiotics started." if kind == "infection" else "",
                "staff",
                moment_text(reported, offset),
                staff[int(rand() * len(staff))] if staff and kind != "infection" else director,
                moment_text(reviewed, offset) if reviewed < as_of.toordinal() * SECONDS_PER_DAY else None,
                director if reviewed < as_of.toordinal() * SECONDS_PER_DAY else None,
                None,
                None,
                "",
                "",
                None,
                None,
                None,
                "",
            )
        )
        for link in safety_rules.link_sessions(kind, onset, by_patient[patient], named=session_id):
            linked = facts[link.session_id]
            linked_sessions.add(link.session_id)
            out["session"].append(
                (
                    event_id,
                    link.session_id,
                    link.primary,
                    link.days_after,
                    clinic_id,
                    kind,
                    day_text(onset.toordinal()),
                    day_text(link.on.toordinal()),
                    linked[3],
                    linked[4],
                    linked[5],
                )
            )
    return out, linked_sessions


def lot_rows(out: dict[str, list[tuple[Any, ...]]], lots: dict[int, list[int]]) -> None:
    """The lot links of ``out``'s events: every lot of each linked session's preparation."""
    for event_id, session_id, _primary, _days, clinic_id, kind, onset_text, on_text, *_rest in out["session"]:
        for lot in lots.get(session_id, []):
            out["lot"].append(
                (event_id, lot, session_id, "preparation", on_text, clinic_id, kind, onset_text)
            )


def gen_safety(ctx: Context) -> Counts:
    """Adverse events and their session and lot links, per clinic."""
    counts = {"adverse event": 0, "event session link": 0, "event lot link": 0}
    sessions = _signed_sessions()
    per_clinic = [clinic_rows(ctx, data, sessions.get(data.clinic.pk, [])) for data in ctx.clinics]
    lots = _lots_of(set().union(*(linked for _out, linked in per_clinic)))
    for out, _linked in per_clinic:
        lot_rows(out, lots)
        counts["adverse event"] += ctx.write(AdverseEvent, FIELDS_EVENT, out["event"])
        counts["event session link"] += ctx.write(AdverseEventSession, FIELDS_EVENT_SESSION, out["session"])
        counts["event lot link"] += ctx.write(AdverseEventLot, FIELDS_EVENT_LOT, out["lot"])
    return counts
