"""Small pure helpers shared by the generator's families (bench/generate.py, bench/clinical.py,
bench/stock.py): row jobs that worker processes can run, dates, timestamps and volumes as the bulk writers
take them, and the plan of treatment visits that the families after the intakes read.

Nothing here touches the database or Django's models, so that families in several modules can share it
without importing each other."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class RowJob:
    """Rows from a module-level function of picklable arguments, so that a worker process can build them.

    ``build`` returns a list of row tuples (for ``Context.write_jobs``) or a dict of them by table key (for
    ``Context.write_table_jobs``)."""

    build: Callable[..., Any]
    args: tuple[Any, ...]


_DAY_TEXT: dict[int, str] = {}
_CLOCK_TEXT = [f" {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}" for second in range(86_400)]
SECONDS_PER_DAY = 86_400


def day_text(ordinal: int) -> str:
    """A date as both databases take it in bulk writes ("YYYY-MM-DD"), from ``date.toordinal()``; memoised."""
    text = _DAY_TEXT.get(ordinal)
    if text is None:
        text = _DAY_TEXT[ordinal] = date.fromordinal(ordinal).isoformat()
    return text


def stamp_text(ordinal: int, second: int) -> str:
    """A UTC timestamp as both databases take it in bulk writes ("YYYY-MM-DD HH:MM:SS": SQLite stores
    Django's datetimes so, and Django's PostgreSQL connections run in UTC). ``second``: of the day."""
    return day_text(ordinal) + _CLOCK_TEXT[second]


def local_stamp_text(ordinal: int, second: int, utc_offset: int) -> str:
    """:func:`stamp_text` of a clinic-local moment (day ordinal, second of the day), ``utc_offset`` seconds
    east of UTC (one offset per clinic: summer time is ignored, close enough for generated history)."""
    day, second = divmod(ordinal * SECONDS_PER_DAY + second - utc_offset, SECONDS_PER_DAY)
    return day_text(day) + _CLOCK_TEXT[second]


def moment_text(moment: int, utc_offset: int) -> str:
    """:func:`local_stamp_text` of a clinic-local moment given as one number (ordinal × 86,400 + second)."""
    day, second = divmod(moment - utc_offset, SECONDS_PER_DAY)
    return day_text(day) + _CLOCK_TEXT[second]


def utc_offset_seconds(time_zone: str, on: date) -> int:
    """The zone's offset from UTC on ``on`` (noon), in seconds."""
    offset = datetime(on.year, on.month, on.day, 12, tzinfo=ZoneInfo(time_zone)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


_ML_TEXT: dict[int, str] = {}


def ml_text(microlitres: int) -> str:
    """A volume in µL as a decimal text of mL with 3 places ("-2.500"): exact, what DecimalField(…, 3)
    stores, and what both bulk writers take as it is. Memoised (volumes repeat a lot)."""
    text = _ML_TEXT.get(microlitres)
    if text is None:
        sign = "-" if microlitres < 0 else ""
        whole, part = divmod(abs(microlitres), 1000)
        text = _ML_TEXT[microlitres] = f"{sign}{whole}.{part:03d}"
    return text


def ml(value: float) -> int:
    """mL → µL (the integer unit volumes are computed in, so that sums are exact)."""
    return round(value * 1000)


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def next_open_day(ordinal: int) -> int:
    """The same day, or the Monday after when it is a Sunday (clinics open Monday to Saturday)."""
    return ordinal + 1 if date.fromordinal(ordinal).isoweekday() == 7 else ordinal


def months_later(ordinal: int, months: float) -> int:
    return ordinal + math.floor(months * 30.44)


def days_between(start: date, end: date) -> int:
    return max((end - start).days, 1)


def day_after(day: date, days: int) -> date:
    return day + timedelta(days=days)


@dataclass
class Visits:
    """One clinic's treatment visits (the future sessions), in time order, as parallel arrays.

    Written by the intakes family (bench/clinical.py), which decides who is treated, with which formula and
    when (after a signed screening review); the stock family gives each visit its preparation, whose ids
    are ``preparation_ids`` in the same order. A sessions family reads the same arrays (see
    docs/performance.md, "Extending the generator")."""

    patient: array[int] = field(default_factory=lambda: array("q"))
    practitioner: array[int] = field(default_factory=lambda: array("q"))
    day: array[int] = field(default_factory=lambda: array("l"))  # clinic-local date, date.toordinal()
    second: array[int] = field(default_factory=lambda: array("l"))  # clinic-local second of the day
    formula: array[int] = field(default_factory=lambda: array("q"))  # Formula id
    series: array[int] = field(default_factory=lambda: array("l"))  # 1-based session number in its series
    half: array[int] = field(default_factory=lambda: array("b"))  # 1: a small area, half the formula's volume
    # The series' plan: how many sessions were planned (within its protocol's range) and whether the patient
    # stops before the end (1) — the sessions family makes the plan's status of them.
    planned: array[int] = field(default_factory=lambda: array("b"))
    stopped: array[int] = field(default_factory=lambda: array("b"))
    # Index into the clinic's active rooms (by id), -1 for none: given by :func:`spread_visits`.
    room: array[int] = field(default_factory=lambda: array("b"))
    preparation_ids: range = range(0)

    ARRAYS = (
        "patient",
        "practitioner",
        "day",
        "second",
        "formula",
        "series",
        "half",
        "planned",
        "stopped",
        "room",
    )

    def __len__(self) -> int:
        return len(self.patient)

    def extend(self, other: Visits) -> None:
        for name in self.ARRAYS:
            getattr(self, name).extend(getattr(other, name))

    def append(
        self,
        patient: int,
        practitioner: int,
        day: int,
        second: int,
        formula: int,
        series: int,
        half: int,
        planned: int = 0,
        stopped: int = 0,
        room: int = -1,
    ) -> None:
        self.patient.append(patient)
        self.practitioner.append(practitioner)
        self.day.append(day)
        self.second.append(second)
        self.formula.append(formula)
        self.series.append(series)
        self.half.append(half)
        self.planned.append(planned)
        self.stopped.append(stopped)
        self.room.append(room)

    def sliced(self, low: int, high: int) -> Visits:
        """Visits ``low`` to ``high`` (indexes in this clinic's order), for a job of their own."""
        out = Visits()
        for name in self.ARRAYS:
            setattr(out, name, getattr(self, name)[low:high])
        out.preparation_ids = self.preparation_ids[low:high]
        return out

    def in_time_order(self) -> Visits:
        """The same visits sorted by (day, second, patient): deterministic whatever order they came in."""
        order = sorted(
            range(len(self)), key=lambda index: (self.day[index], self.second[index], self.patient[index])
        )
        out = Visits()
        for name in self.ARRAYS:
            source = getattr(self, name)
            setattr(out, name, array(source.typecode, (source[index] for index in order)))
        return out


# How long a generated treatment visit holds its practitioner, room and patient (the clinics' session length
# in bench/scheduling.py's ScheduleSettings), and the latest a visit starts before another practitioner takes
# it (clinic-local seconds of the day).
VISIT_SECONDS = 30 * 60
LAST_START = 19 * 3600 + 30 * 60
GRID_SECONDS = 5 * 60  # appointments start on the 5-minute grid (scheduling.models)


def spread_visits(visits: Visits, rooms: int) -> Visits:
    """The visits of one clinic (in time order) moved so that nobody is in two places at once, as the
    calendar's double-booking guard wants it (scheduling migration 0002): each visit starts at its drawn
    slot or as soon as its practitioner and its patient are free (on the 5-minute grid), with another
    practitioner of the clinic who is free sooner when its own is booked past :data:`LAST_START`, in the
    first room free for the whole visit (index into the clinic's rooms; -1 when every room is taken).
    Returns them in time order again. Pure and deterministic."""
    count = len(visits)
    room_of = array("b", [-1]) * count
    seconds, days, practitioners, patients = visits.second, visits.day, visits.practitioner, visits.patient
    staff = sorted(set(practitioners))
    current = -1
    practitioner_free: dict[int, int] = {}
    patient_free: dict[int, int] = {}
    room_free = [0] * rooms
    for index in range(count):
        day = days[index]
        if day != current:
            current = day
            practitioner_free, patient_free, room_free = {}, {}, [0] * rooms
        who = practitioners[index]
        patient = patients[index]
        wanted = max(seconds[index], patient_free.get(patient, 0))
        start = max(wanted, practitioner_free.get(who, 0))
        if start > LAST_START:
            other = min(staff, key=lambda candidate: (practitioner_free.get(candidate, 0), candidate))
            if practitioner_free.get(other, 0) < practitioner_free.get(who, 0):
                who = practitioners[index] = other
                start = max(wanted, practitioner_free.get(who, 0))
        start = -(-start // GRID_SECONDS) * GRID_SECONDS
        end = start + VISIT_SECONDS
        practitioner_free[who] = patient_free[patient] = end
        for number in range(rooms):
            if room_free[number] <= start:
                room_free[number] = end
                room_of[index] = number
                break
        seconds[index] = start
    visits.room = room_of
    return visits.in_time_order()


def weighted(items: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    """Items and cumulative weights for ``random.choices(…, cum_weights=…)``."""
    total = 0.0
    cumulative: list[float] = []
    for _item, weight in items:
        total += weight
        cumulative.append(total)
    return [item for item, _weight in items], cumulative


def local_moment(ordinal: int, second: int, utc_offset: int) -> datetime:
    """The aware UTC datetime of a clinic-local moment (for the ORM-written small tables)."""
    return datetime.fromordinal(ordinal).replace(tzinfo=UTC) + timedelta(seconds=second - utc_offset)
