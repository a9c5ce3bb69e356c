"""A deterministic, realistic benchmark data set, written with bulk inserts.

``manage.py generate --scale smoke|clinic|chain --seed N`` calls :func:`generate`. The same scale, seed and
``as_of`` date give the same rows (and, on a fresh database, the same ids): every family of models draws from
its own random stream, derived from the seed and the family's name, so adding a family never changes what
the others produce.

Extending it (each feature that adds models does this):

1. write ``gen_<family>(ctx: Context) -> Counts`` that draws from ``ctx.rng("<family>", …)``, reads what
   earlier families left in ``ctx`` (``ctx.clinics[i].clinic``, ``.staff``, ``.patient_ids``, …), writes its
   rows, keeps what later families need on ``ctx`` and returns the rows it wrote per model;
2. append it to :data:`FAMILIES`, after the families it reads.

Two ways to write, neither calls ``save()`` or sends signals, so derived fields (folded names, record
numbers, counters) are filled by the family itself:

- ``ctx.insert(objs)``: batched ``bulk_create`` of model instances; simple, for small tables (clinics,
  staff, catalogues). It costs ~200 µs a row in Django's ORM (measured), so it cannot reach 50,000 rows/s.
- ``ctx.write_jobs(Model, fields, jobs)`` (or ``ctx.write`` for rows built in this process): plain tuples in
  ``fields`` order, ids included (from ``ctx.next_ids``), written with multi-row ``INSERT`` statements on
  SQLite and ``COPY`` on PostgreSQL at a few µs a row; for every table that grows with the scale (patients,
  sessions, charted areas, …). A :class:`RowJob` is a module-level function and its picklable arguments
  (one slice of one clinic, with its own random stream), so that worker processes build rows while this one
  writes, and the rows do not depend on how many workers there are. Values are Python objects (``date``,
  aware ``datetime``, ``int``, ``str``, ``None``, ``dict`` for JSON) or, faster, dates and UTC timestamps as
  text (:func:`day_text`, :func:`stamp_text`); foreign keys are ids. Plain indexes of these tables are
  dropped during the load and rebuilt at the end. ``ctx.write_table_jobs`` does the same for jobs that fill
  several tables at once (bench/clinical.py, bench/stock.py, bench/treatments.py); bench/rows.py holds the
  helpers families share.

Nothing here writes audit rows: the chain must stay verifiable (``manage.py audit_verify``), and it is only
ever appended to by ``mesoclinic.audit.services``. ``auto_now``/``auto_now_add`` timestamps are written as
given (so that they are deterministic too); a timestamp left empty gets ``ctx.as_of`` at midnight UTC.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from itertools import chain, islice
from operator import itemgetter
from typing import Any, TypeVar

from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from bench import clinical, outcomes, safety, scheduling, stock, treatments
from bench.consent import gen_consents
from bench.messages import gen_messages
from bench.names import FAMILY, GIVEN_FEMALE, GIVEN_MALE, ORIGINS, PLACES, STREETS, Place
from bench.photos import gen_photos
from bench.rows import RowJob, Visits, day_text, stamp_text, utc_offset_seconds
from mesoclinic.accounts.models import Membership, PractitionerLicence, Role, User
from mesoclinic.clinics.models import Clinic, Device, Organisation, Room
from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient
from mesoclinic.patients.rules import format_record_number

SQLITE_ROWS_PER_INSERT = 250
# The password of every generated staff account (hashed once with argon2; the hash is reused).
BENCH_PASSWORD = "mesoclinic-demo-2026"  # noqa: S105 (generated benchmark data only)
DEFAULT_SEED = 1
# The "today" of the data set: histories end here. Fixed, so that a seed means the same rows next year.
DEFAULT_AS_OF = date(2026, 11, 2)
ORGANISATION_NAME = "Méso Esthétique Group"

M = TypeVar("M", bound=models.Model)
Counts = dict[str, int]
Row = Sequence[Any]


@dataclass(frozen=True)
class Scale:
    name: str
    clinics: int
    patients: int
    history_years: int
    sessions: int  # treatment visits: one preparation and one session each (bench/treatments.py)
    charted_areas: int  # about 4 per session (bench/treatments.py)

    @property
    def sessions_per_patient(self) -> float:
        return self.sessions / self.patients if self.patients else 0.0


# targets.md, "Data scales".
SCALES: dict[str, Scale] = {
    # Three years: two cut too many series short for targets.md's 10 sessions a patient.
    "smoke": Scale("smoke", clinics=1, patients=200, history_years=3, sessions=2_000, charted_areas=8_000),
    "clinic": Scale(
        "clinic", clinics=1, patients=5_000, history_years=5, sessions=50_000, charted_areas=200_000
    ),
    "chain": Scale(
        "chain", clinics=50, patients=100_000, history_years=10, sessions=1_000_000, charted_areas=4_000_000
    ),
}


class GenerateRefused(Exception):
    """The database is not an empty, migrated one."""


def username_for(clinic_number: int, persona: str) -> str:
    """``c001-desk1``: the generated login of a persona in the clinic numbered ``clinic_number`` (from 1)."""
    return f"c{clinic_number:03d}-{persona}"


@dataclass
class ClinicData:
    """One generated clinic and what later families need to know about it."""

    number: int  # 1-based, in creation order; used in usernames
    place: Place
    clinic: Clinic
    staff: dict[str, list[User]] = field(default_factory=dict)  # Role value → users
    patient_ids: range = range(0)  # in record-number order
    utc_offset: int = 0  # seconds east of UTC (the clinic's zone on ``as_of``; summer time ignored)
    # bench/stock.py: the clinic's formulas (FormulaPlan) and products, for the families after it.
    formulas: list[Any] = field(default_factory=list)
    products: dict[str, Any] = field(default_factory=dict)
    # bench/clinical.py: treatment visits in time order; bench/stock.py adds their preparation ids.
    visits: Visits = field(default_factory=Visits)


@dataclass
class FamilyReport:
    name: str
    rows: Counts
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass
class Report:
    scale: Scale
    seed: int
    as_of: date
    vendor: str
    families: list[FamilyReport]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(family.total for family in self.families)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        out = [
            f"{family.name:<16} {family.total:>10,} rows {family.seconds:7.2f} s "
            f"{family.total / max(family.seconds, 1e-9):>10,.0f} rows/s  "
            + ", ".join(f"{label} {count:,}" for label, count in family.rows.items())
            for family in self.families
        ]
        out.append(
            f"{'total':<16} {self.rows:>10,} rows {self.seconds:7.2f} s {self.rows_per_second:>10,.0f} rows/s"
            f"  (scale {self.scale.name}, seed {self.seed}, as of {self.as_of.isoformat()}, {self.vendor})"
        )
        return out


# --- Writing ------------------------------------------------------------------------------------------------


def _sqlite_converter(model_field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    """How Django's SQLite backend stores a value the sqlite3 module cannot take as it is."""
    if isinstance(model_field, models.DateTimeField):
        return lambda value: value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(model_field, models.DateField | models.TimeField):
        return str
    if isinstance(model_field, models.DecimalField):
        digits, places = model_field.max_digits, model_field.decimal_places
        return lambda value: connection.ops.adapt_decimalfield_value(value, digits, places)
    if isinstance(model_field, models.UUIDField):
        return lambda value: value.hex
    if isinstance(model_field, models.JSONField):
        return json.dumps
    return None


def _postgres_converter(model_field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    if isinstance(model_field, models.JSONField):
        return json.dumps
    return None


def _concrete(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    model_field = model._meta.get_field(name)
    if not isinstance(model_field, models.Field) or not model_field.concrete:
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return model_field


class Table:
    """Writes plain tuples into one model's table, fast: multi-row ``INSERT`` on SQLite, ``COPY`` on
    PostgreSQL."""

    def __init__(self, model: type[models.Model], fields: Sequence[str]) -> None:
        meta = model._meta
        self.model = model
        self.fields = [_concrete(model, name) for name in fields]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(model_field.column)) for model_field in self.fields)
        self.copy_sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
        self.row_placeholders = "(" + ", ".join("?" * len(fields)) + ")"
        # Identifiers come from the model's metadata, values are bound: no user input reaches the SQL.
        self.insert_sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608
        make = _postgres_converter if connection.vendor == "postgresql" else _sqlite_converter
        self.converters = [
            (index, converter)
            for index, model_field in enumerate(self.fields)
            if (converter := make(model_field)) is not None
        ]

    def _converted(self, rows: Iterable[Row]) -> Iterator[Row]:
        if not self.converters:
            yield from rows
            return
        converters = self.converters
        for row in rows:
            for index, _converter in converters:
                value = row[index]
                if value is not None and value.__class__ is not str:
                    break
            else:  # already plain values (dates as text): as it is
                yield row
                continue
            values = list(row)
            for index, converter in converters:
                value = values[index]
                if value is not None and value.__class__ is not str:
                    values[index] = converter(value)
            yield values

    def write(self, rows: Iterable[Row], batch_size: int = 2_000, *, plain: bool = False) -> int:
        count = 0
        connection.ensure_connection()
        raw: Any = connection.connection
        if connection.vendor == "postgresql":
            batches = in_batches(rows if plain else self._converted(rows), batch_size)
            with raw.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                for batch in batches:
                    for row in batch:
                        copy.write_row(row)
                    count += len(batch)
        elif connection.vendor == "sqlite":
            # Many rows per INSERT statement: SQLite's work per statement (the AUTOINCREMENT counter, the
            # deferred foreign-key bookkeeping, the statement itself) is then shared by the rows: 2.5–3×
            # faster than executemany's statement per row (measured). As many rows as the bound parameters
            # allow, 250 at most.
            per = max(
                1,
                min(
                    SQLITE_ROWS_PER_INSERT,
                    raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(self.fields),
                ),
            )
            full = self.insert_sql + ", ".join([self.row_placeholders] * per)
            flat = chain.from_iterable
            for batch in in_batches(rows if plain else self._converted(rows), per):
                if len(batch) == per:
                    raw.execute(full, list(flat(batch)))
                else:
                    raw.execute(
                        self.insert_sql + ", ".join([self.row_placeholders] * len(batch)), list(flat(batch))
                    )
                count += len(batch)
        else:  # pragma: no cover - only the two supported databases
            raise NotImplementedError(connection.vendor)
        return count


def in_batches(rows: Iterable[Row], batch_size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, batch_size)):
        yield batch


def _run(job: RowJob) -> Any:
    return job.build(*job.args)


def built(jobs: Sequence[RowJob], pool: ProcessPoolExecutor | None, ahead: int = 4) -> Iterator[Any]:
    """Each job's rows, in order; with a pool, ``ahead`` jobs ahead of the caller (bounded memory)."""
    if pool is None:
        yield from map(_run, jobs)
        return
    pending: deque[Future[Any]] = deque()
    iterator = iter(jobs)
    for job in islice(iterator, ahead):
        pending.append(pool.submit(_run, job))
    while pending:
        rows = pending.popleft().result()
        for job in islice(iterator, 1):
            pending.append(pool.submit(_run, job))
        yield rows


@contextmanager
def _worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """Forked workers that only build rows: they never touch the database connection they inherit."""
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass
class Context:
    scale: Scale
    seed: int
    as_of: date
    batch_size: int
    password_hash: str
    organisation: Organisation | None = None
    clinics: list[ClinicData] = field(default_factory=list)
    workers: int = 1
    pool: ProcessPoolExecutor | None = None
    _next_id: dict[type[models.Model], int] = field(default_factory=dict)
    _deferred_indexes: dict[type[models.Model], list[str]] = field(default_factory=dict)
    _deferred_keys: dict[type[models.Model], list[str]] = field(default_factory=dict)
    _deferred_triggers: dict[type[models.Model], list[str]] = field(default_factory=dict)

    def stream(self, family: str, *parts: object) -> str:
        """The name of a random stream of its own for one family (and optionally one clinic, one slice…)."""
        return ":".join([str(self.seed), family, *(str(part) for part in parts)])

    def rng(self, family: str, *parts: object) -> random.Random:
        return random.Random(self.stream(family, *parts))  # noqa: S311 (generated data)

    def write_jobs(self, model: type[models.Model], fields: Sequence[str], jobs: Sequence[RowJob]) -> int:
        """:meth:`write` the rows of ``jobs``, in order, built by the worker processes when there are any
        (this process keeps writing meanwhile): the same rows, faster on several cores."""
        return self.write(model, fields, chain.from_iterable(built(jobs, self.pool, 2 * self.workers)))

    def write_table_jobs(
        self,
        tables: Mapping[str, tuple[type[models.Model], Sequence[str]]],
        jobs: Sequence[RowJob],
        each: Callable[[int, dict[str, Any]], None] | None = None,
        *,
        plain: bool = False,
    ) -> Counts:
        """Like :meth:`write_jobs` for jobs that fill several tables at once: each job returns a dict of row
        lists by the keys of ``tables`` (plus anything else, for ``each``). ``each(index, result)`` runs in
        this process before the rows are written, in job order: it may keep what later families need, or
        shift ids that only this process can know (see bench/stock.py). ``plain``: the jobs write every
        value as the database takes it (dates, timestamps, decimals and JSON as text, ints, bools, None), so
        no row is looked at on its way (bench/treatments.py). Counts by table key."""
        counts = dict.fromkeys(tables, 0)
        for index, result in enumerate(built(jobs, self.pool, 2 * self.workers)):
            if each is not None:
                each(index, result)
            for key, (model, fields) in tables.items():
                rows = result.get(key)
                if rows:
                    counts[key] += self.write(model, fields, rows, plain=plain)
        return counts

    @property
    def history_start(self) -> date:
        return self.as_of - timedelta(days=round(365.25 * self.scale.history_years))

    @property
    def midnight(self) -> datetime:
        return datetime.combine(self.as_of, clock(), tzinfo=UTC)

    def next_ids(self, model: type[models.Model], count: int) -> range:
        """``count`` fresh primary keys for rows written with :meth:`write` (sequences are reset after)."""
        if model not in self._next_id:
            highest = model._default_manager.aggregate(highest=models.Max("pk"))["highest"]
            self._next_id[model] = (highest or 0) + 1
        first = self._next_id[model]
        self._next_id[model] = first + count
        return range(first, first + count)

    def write(
        self,
        model: type[models.Model],
        fields: Sequence[str],
        rows: Iterable[Row],
        *,
        plain: bool = False,
        without_triggers: bool = False,
    ) -> int:
        """The fast path for big tables: tuples in ``fields`` order, ids included (see :meth:`next_ids`).
        ``plain``: every value is already as the database takes it (no conversion looked for).
        ``without_triggers``: the table's guards that look other rows up (the calendar's double-booking
        guard) are dropped during the load and created again at the end, as its indexes are. On SQLite they
        are triggers, which would scan the index-less table for every row; on PostgreSQL exclusion
        constraints, whose GiST index is then built once instead of being searched and grown row by row
        (1.1 million appointments at chain: 241 s through COPY, ~40 s a constraint to add back, measured).
        The family then guarantees what they check (and the tests check it after a load)."""
        if model not in self._deferred_indexes:
            self._deferred_indexes[model] = _drop_secondary_indexes(model)
            self._deferred_keys[model] = _drop_foreign_keys(model)
        if without_triggers and model not in self._deferred_triggers:
            self._deferred_triggers[model] = _drop_triggers(model)
        return Table(model, fields).write(rows, plain=plain)

    def restore_indexes(self) -> None:
        """Build the indexes dropped by :meth:`write` (one sort each, cheaper than row-by-row upkeep)."""
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and self._deferred_indexes:
                # Check the deferred foreign keys now: PostgreSQL builds no index with checks pending.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for statements in [
                *self._deferred_indexes.values(),
                *self._deferred_keys.values(),
                *self._deferred_triggers.values(),
            ]:
                for statement in statements:
                    cursor.execute(statement)
        self._deferred_indexes.clear()
        self._deferred_keys.clear()
        self._deferred_triggers.clear()

    def insert(self, objs: Iterable[M]) -> list[M]:
        """Batched ``bulk_create`` for small tables; returns the instances, with their primary keys set."""
        inserted: list[M] = []
        iterator = iter(objs)
        while batch := list(islice(iterator, self.batch_size)):
            model = type(batch[0])
            stamps = _timestamp_fields(model)
            for obj in batch:
                for stamp in stamps:
                    if getattr(obj, stamp.attname) is None:
                        setattr(obj, stamp.attname, self.midnight)
            inserted.extend(model._default_manager.bulk_create(batch, batch_size=self.batch_size))
        return inserted

    def reset_sequences(self) -> None:
        """After explicit ids, the next ``save()`` must not reuse one (PostgreSQL; SQLite's AUTOINCREMENT
        already follows the highest id written)."""
        if connection.vendor != "postgresql" or not self._next_id:
            return
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), list(self._next_id)):
                cursor.execute(statement)


_PLAIN_INDEXES_SQL = {
    "sqlite": (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL "
        "AND upper(sql) NOT LIKE 'CREATE UNIQUE%%'"
    ),
    "postgresql": (
        "SELECT index_class.relname, pg_get_indexdef(index_class.oid) FROM pg_index "
        "JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid "
        "WHERE pg_index.indrelid = %s::regclass AND NOT pg_index.indisunique AND NOT pg_index.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE pg_constraint.conindid = pg_index.indexrelid)"
    ),
}


def _drop_secondary_indexes(model: type[models.Model]) -> list[str]:
    """Drop a table's plain (non-unique, not constraint) indexes; return the statements that rebuild them.
    Unique indexes stay, so that constraints are checked row by row as ever."""
    with connection.cursor() as cursor:
        cursor.execute(_PLAIN_INDEXES_SQL[connection.vendor], [model._meta.db_table])
        plain: list[tuple[str, str]] = cursor.fetchall()
        for name, _sql in plain:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    return [sql for _name, sql in plain]


def _drop_triggers(model: type[models.Model]) -> list[str]:
    """Drop a table's guards: its triggers on SQLite, its exclusion constraints on PostgreSQL; return the
    statements that create them again."""
    if connection.vendor == "postgresql":
        return _drop_exclusion_constraints(model)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s ORDER BY name",
            [model._meta.db_table],
        )
        triggers: list[tuple[str, str]] = cursor.fetchall()
        for name, _sql in triggers:
            cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
    return [sql for _name, sql in triggers]


def _drop_exclusion_constraints(model: type[models.Model]) -> list[str]:
    """PostgreSQL: drop a table's exclusion constraints; return the statements that add them back (adding one
    builds its index and checks every row, so the guarantee is the same once the load ends)."""
    return _drop_constraints(model, "x")


def _drop_foreign_keys(model: type[models.Model]) -> list[str]:
    """PostgreSQL: drop a table's foreign keys; return the statements that add them back. Each row written
    under a deferred foreign key queues a trigger that looks its parent up at commit, one query per row
    (tens of µs: most of a load's time, measured); adding the key back checks every row in one join.
    SQLite checks a key with an index lookup as each row is written: nothing to gain there."""
    if connection.vendor != "postgresql":
        return []
    return _drop_constraints(model, "f")


def _drop_constraints(model: type[models.Model], kind: str) -> list[str]:
    """PostgreSQL: drop a table's constraints of one ``pg_constraint.contype`` (``f`` foreign keys, ``x``
    exclusion constraints); return the statements that add them back."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = %s ORDER BY conname",
            [model._meta.db_table, kind],
        )
        found: list[tuple[str, str]] = cursor.fetchall()
        if found and kind == "f":
            # Dropping a key alters its parent table too, which must have no checks pending: run them now
            # (the rows written through the ORM so far, a few), then defer the rest again.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, _definition in found:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        if found and kind == "f":
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return [
        f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}"
        for name, definition in found
    ]


@contextmanager
def _bulk_load_settings() -> Iterator[None]:
    """SQLite: a page cache big enough for the indexes of a chain (the default is 2 MB). PostgreSQL: memory
    to sort while rebuilding indexes (this transaction only)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute("PRAGMA cache_size = -524288")  # KiB: 512 MB at most, only what is used
        try:
            yield
        finally:
            if not connection.needs_rollback:  # else the load failed: let its error through, not this one
                cursor.execute(f"PRAGMA cache_size = {int(previous)}")


def _timestamp_fields(model: type[models.Model]) -> list[models.DateField[Any, Any]]:
    return [
        candidate
        for candidate in model._meta.concrete_fields
        if isinstance(candidate, models.DateField) and (candidate.auto_now or candidate.auto_now_add)
    ]


@contextmanager
def _explicit_timestamps() -> Iterator[None]:
    """Let bulk_create keep the timestamps we set instead of stamping the wall clock (determinism)."""
    saved = [
        (stamp, stamp.auto_now, stamp.auto_now_add)
        for model in apps.get_models()
        for stamp in _timestamp_fields(model)
    ]
    for stamp, _now, _add in saved:
        stamp.auto_now = stamp.auto_now_add = False
    try:
        yield
    finally:
        for stamp, auto_now, auto_now_add in saved:
            stamp.auto_now, stamp.auto_now_add = auto_now, auto_now_add


# --- Random helpers ---------------------------------------------------------------------------------------


class Picker:
    """Weighted choice from a list ordered from most to least common (a gentle Zipf curve).

    ``table`` repeats each item in proportion to its weight, so that a uniform index into it is a weighted
    choice: the fastest draw in pure Python, for the per-row loops."""

    def __init__(self, items: Sequence[str], skew: float = 0.7, resolution: int = 2_000) -> None:
        weights = [1.0 / (rank + 1) ** skew for rank in range(len(items))]
        total = sum(weights)
        self.table = tuple(
            item
            for item, weight in zip(items, weights, strict=True)
            for _ in range(max(1, round(weight / total * resolution)))
        )

    def __call__(self, rng: random.Random) -> str:
        return self.table[int(rng.random() * len(self.table))]


FAMILY_PICKERS = {origin: Picker(names) for origin, names in FAMILY.items()}
FEMALE_PICKERS = {origin: Picker(names) for origin, names in GIVEN_FEMALE.items()}
MALE_PICKERS = {origin: Picker(names) for origin, names in GIVEN_MALE.items()}


class Pattern:
    """``"+33 6 ## ## ## ##"`` → a random phone number: ``#`` is a digit, ``A`` a capital letter."""

    def __init__(self, pattern: str) -> None:
        self.template = pattern.replace("%", "%%").replace("#", "%s").replace("A", "%s")
        self.slots = [char for char in pattern if char in "#A"]
        digits = self.slots.count("#")
        self.modulus = 10**digits
        self.number_format = f"%0{digits}d"
        self.plain = "A" not in self.slots
        # One random number gives every digit; itemgetter spreads its characters over the slots.
        self.spread = itemgetter(*range(digits)) if digits > 1 else lambda text: tuple(text)

    def __call__(self, rng: random.Random) -> str:
        number = self.number_format % int(rng.random() * self.modulus)
        if self.plain:
            return self.template % self.spread(number)
        values: list[str] = []
        index = 0
        for slot in self.slots:
            if slot == "#":
                values.append(number[index])
                index += 1
            else:
                values.append(chr(65 + int(rng.random() * 26)))
        return self.template % tuple(values)


_FOLDED: dict[str, str] = {}


def folded(text: str) -> str:
    """mesoclinic.lib.text.fold, memoised (names repeat a lot)."""
    value = _FOLDED.get(text)
    if value is None:
        value = _FOLDED[text] = fold(text)
    return value


_EMAIL_LOCAL: dict[tuple[str, str], str] = {}
_EMAIL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def email_local(given: str, family: str) -> str:
    key = (given, family)
    value = _EMAIL_LOCAL.get(key)
    if value is None:
        raw = f"{folded(given)}.{folded(family)}"
        value = _EMAIL_LOCAL[key] = "".join(char for char in raw if char in _EMAIL_CHARS)
    return value


def origin_for(rng: random.Random, place: Place) -> str:
    return place.origin if rng.random() < 0.7 else ORIGINS[int(rng.random() * len(ORIGINS))]


def day_in(rng: random.Random, start: date, end: date) -> date:
    """A day in [start, end)."""
    return start + timedelta(days=int(rng.random() * max((end - start).days, 1)))


def moment_on(rng: random.Random, day: date) -> datetime:
    """A moment during opening hours (08:00–19:00 UTC is close enough for every clinic's history)."""
    return datetime.combine(day, clock(8), tzinfo=UTC) + timedelta(seconds=int(rng.random() * 11 * 3600))


def split_total(rng: random.Random, total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` uneven shares (0.5–1.5 × the mean) that add up exactly."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    scale = total / sum(weights)
    shares = [int(weight * scale) for weight in weights]
    for index in range(total - sum(shares)):
        shares[index % parts] += 1
    return shares


# --- Families ---------------------------------------------------------------------------------------------


def gen_clinics(ctx: Context) -> Counts:
    """The organisation and its clinics, one per place (cycling through the cities for big chains)."""
    rng = ctx.rng("clinics")
    ctx.organisation = ctx.insert([Organisation(name=ORGANISATION_NAME)])[0]
    seen: dict[str, int] = {}
    clinics: list[Clinic] = []
    places: list[Place] = []
    for index in range(ctx.scale.clinics):
        place = PLACES[index % len(PLACES)]
        seen[place.city] = seen.get(place.city, 0) + 1
        suffix = f" {seen[place.city]}" if seen[place.city] > 1 else ""
        clinics.append(
            Clinic(
                organisation=ctx.organisation,
                name=f"Méso {place.city}{suffix}",
                time_zone=place.time_zone,
                currency=place.currency,
                country=place.country,
                jurisdiction=place.jurisdiction,
                address_line=f"{rng.randrange(1, 250)} {rng.choice(STREETS[place.country])}",
                city=place.city,
                postal_code=Pattern(place.postal)(rng),
                phone=Pattern(place.phone)(rng),
            )
        )
        places.append(place)
    inserted = ctx.insert(clinics)
    ctx.clinics = [
        ClinicData(
            number=index + 1,
            place=place,
            clinic=clinic,
            utc_offset=utc_offset_seconds(place.time_zone, ctx.as_of),
        )
        for index, (place, clinic) in enumerate(zip(places, inserted, strict=True))
    ]
    return {"organisation": 1, "clinic": len(inserted)}


def gen_rooms_and_devices(ctx: Context) -> Counts:
    """2–4 treatment rooms, a multi-injector gun and a camera per clinic, an ultrasound in some."""
    rooms: list[Room] = []
    room_counts: list[int] = []
    for data in ctx.clinics:
        rng = ctx.rng("rooms", data.number)
        label = "Salle de soins" if data.place.french_share > 0.5 else "Treatment room"
        count = rng.randint(2, 4)
        room_counts.append(count)
        rooms.extend(Room(clinic=data.clinic, name=f"{label} {n}") for n in range(1, count + 1))
    inserted_rooms = ctx.insert(rooms)
    devices: list[Device] = []
    offset = 0
    for data, count in zip(ctx.clinics, room_counts, strict=True):
        rng = ctx.rng("devices", data.number)
        own = inserted_rooms[offset : offset + count]
        offset += count
        year = ctx.as_of.year - rng.randint(0, 4)
        devices.append(
            Device(
                clinic=data.clinic,
                kind=Device.Kind.MULTI_INJECTOR,
                name="Multi-injector gun",
                identifier=f"MI-{year}-{rng.randrange(10_000):04d}",
                room=own[0],
            )
        )
        devices.append(
            Device(
                clinic=data.clinic,
                kind=Device.Kind.CAMERA,
                name="Photo station",
                identifier=f"CAM-{rng.randrange(100_000):05d}",
                room=own[-1],
            )
        )
        if rng.random() < 0.4:
            devices.append(
                Device(
                    clinic=data.clinic,
                    kind=Device.Kind.ULTRASOUND,
                    name="Skin ultrasound",
                    identifier=f"US-{rng.randrange(100_000):05d}",
                    room=own[0],
                )
            )
    ctx.insert(devices)
    return {"room": len(rooms), "device": len(devices)}


# Who works in each clinic: (persona, role, holds a licence, has TOTP). 2–4 practitioners are added.
STAFF_PLAN: tuple[tuple[str, Role, bool, bool], ...] = (
    ("admin", Role.CLINIC_ADMIN, False, True),
    ("director", Role.MEDICAL_DIRECTOR, True, True),
    ("desk1", Role.FRONT_DESK, False, False),
    ("desk2", Role.FRONT_DESK, False, False),
    ("researcher", Role.RESEARCHER, False, False),
)


def totp_key(seed: int, username: str) -> str:
    """The hex TOTP secret of a generated account (the benchmark computes codes from it)."""
    rng = random.Random(f"{seed}:totp:{username}")  # noqa: S311 (benchmark accounts only)
    return f"{rng.getrandbits(160):040x}"


def gen_staff(ctx: Context) -> Counts:
    """Per clinic: an admin, a medical director, 2–4 practitioners, two front-desk staff, a researcher.

    Practitioners and the director hold a current licence in the clinic's jurisdiction; the admin and the
    director (the roles that must use TOTP) have a confirmed authenticator whose key is ``totp_key()``."""
    plans: list[tuple[ClinicData, str, Role, bool, bool]] = []
    for data in ctx.clinics:
        rng = ctx.rng("staff", data.number)
        practitioners = [
            (f"practitioner{n}", Role.PRACTITIONER, True, False) for n in range(1, rng.randint(2, 4) + 1)
        ]
        plans.extend((data, *entry) for entry in (*STAFF_PLAN[:2], *practitioners, *STAFF_PLAN[2:]))
    users: list[User] = []
    for data, persona, _role, _licensed, _totp in plans:
        rng = ctx.rng("staff", data.number, persona)
        origin = origin_for(rng, data.place)
        given = (FEMALE_PICKERS if rng.random() < 0.75 else MALE_PICKERS)[origin](rng)
        username = username_for(data.number, persona)
        users.append(
            User(
                username=username,
                password=ctx.password_hash,
                first_name=given,
                last_name=FAMILY_PICKERS[origin](rng),
                email=f"{username}@bench.mesoclinic.test",
                preferred_language="fr" if data.place.french_share > 0.5 else "en",
                date_joined=moment_on(rng, day_in(rng, ctx.history_start, ctx.as_of)),
            )
        )
    users = ctx.insert(users)
    memberships: list[Membership] = []
    licences: list[PractitionerLicence] = []
    devices: list[TOTPDevice] = []
    serial: dict[str, int] = {}
    for (data, persona, role, licensed, totp), user in zip(plans, users, strict=True):
        data.staff.setdefault(role.value, []).append(user)
        memberships.append(Membership(user=user, clinic=data.clinic, role=role, created_at=user.date_joined))
        rng = ctx.rng("licences", data.number, persona)
        if licensed:
            jurisdiction = data.clinic.jurisdiction
            serial[jurisdiction] = serial.get(jurisdiction, 0) + 1
            profession = (
                PractitionerLicence.Profession.PHYSICIAN
                if role == Role.MEDICAL_DIRECTOR or rng.random() < 0.4
                else rng.choice(
                    [PractitionerLicence.Profession.NURSE, PractitionerLicence.Profession.NURSE_PRACTITIONER]
                )
            )
            licences.append(
                PractitionerLicence(
                    user=user,
                    profession=profession,
                    number=f"{jurisdiction}-{profession[:2].upper()}-{serial[jurisdiction]:06d}",
                    jurisdiction=jurisdiction,
                    # Licensed before the clinic's history starts: every generated session is charted and
                    # signed under a current licence (R-PROV), and a run years later still has one.
                    valid_from=min(
                        ctx.as_of - timedelta(days=rng.randint(200, 3000)),
                        ctx.history_start - timedelta(days=rng.randint(30, 400)),
                    ),
                    expires_on=ctx.as_of + timedelta(days=rng.randint(120, 1500)),
                )
            )
        if totp:
            devices.append(
                TOTPDevice(
                    user=user,
                    name="authenticator",
                    confirmed=True,
                    key=totp_key(ctx.seed, user.username),
                    created_at=user.date_joined,
                )
            )
    ctx.insert(memberships)
    ctx.insert(licences)
    ctx.insert(devices)
    return {
        "user": len(users),
        "membership": len(memberships),
        "licence": len(licences),
        "totp_device": len(devices),
    }


PATIENT_FIELDS = (
    "id",
    "clinic",
    "record_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "email",
    "phone",
    "address_line",
    "city",
    "postal_code",
    "preferred_language",
    "user",
    "family_name_folded",
    "given_name_folded",
    "created_at",
    "updated_at",
)
_ADULT_DAYS = round(18 * 365.25)
_OPENING_SECONDS = 11 * 3600
_OPENS_AT = 8 * 3600
PATIENTS_PER_JOB = 2_000


def patient_rows(
    stream: str,
    place: Place,
    clinic_id: int,
    ids: range,
    first_number: int,
    start: date,
    as_of: date,
    window: tuple[float, float] = (0.0, 1.0),
) -> list[tuple[Any, ...]]:
    """Patients of one clinic of aesthetic medicine, as rows in :data:`PATIENT_FIELDS` order: adults of
    18–75 (mostly 30–55), 86 % women, most with an email and a phone, registered during ``window`` (a slice
    of the clinic's history, as fractions of it) and numbered from ``first_number`` in that order.

    A pure function of its arguments (the random stream is named by ``stream``), so that a worker process
    can build it. Written for speed (the widest generated row): local names, inlined choices, dates as text.
    """
    rng = random.Random(stream)  # noqa: S311 (generated data)
    rand = rng.random
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    triangular = rng.triangular
    streets = STREETS[place.country]
    n_streets = len(streets)
    domains = place.email_domains
    n_domains = len(domains)
    phone_of = Pattern(place.phone)
    postal_of = Pattern(place.postal)
    local, city, french = place.origin, place.city, place.french_share
    n_origins = len(ORIGINS)
    pickers = {
        origin: (
            FEMALE_PICKERS[origin].table,
            MALE_PICKERS[origin].table,
            FAMILY_PICKERS[origin].table,
        )
        for origin in ORIGINS
    }
    local_family = FAMILY_PICKERS[local].table
    days = max((as_of - start).days, 1)
    first_ordinal, today_ordinal = start.toordinal(), as_of.toordinal()
    since, width = window[0] * days, (window[1] - window[0]) * days
    registered = sorted(since + rand() * width for _ in ids)  # fractional days since start, in order
    for number, (patient_id, when) in enumerate(zip(ids, registered, strict=True), start=first_number):
        day = int(when)
        created = stamp_text(first_ordinal + day, _OPENS_AT + int((when - day) * _OPENING_SECONDS))
        draw = rand()
        sex = "female" if draw < 0.86 else "male" if draw < 0.98 else "other" if draw < 0.99 else "unknown"
        female, male, families = pickers[local if rand() < 0.7 else ORIGINS[int(rand() * n_origins)]]
        names = female if sex == "female" or (sex != "male" and rand() < 0.5) else male
        given = names[int(rand() * len(names))]
        family = families[int(rand() * len(families))]
        if rand() < 0.03:  # double-barrelled
            family = f"{family}-{local_family[int(rand() * len(local_family))]}"
        # Age today, but an adult when registered.
        born = today_ordinal - int(triangular(18.0, 76.0, 41.0) * 365.25)
        born = min(born, first_ordinal + day - _ADULT_DAYS)
        email = ""
        if rand() < 0.82:
            suffix = str(int(rand() * 99) + 1) if rand() < 0.35 else ""
            email = f"{email_local(given, family)}{suffix}@{domains[int(rand() * n_domains)]}"
        if rand() < 0.75:
            address = f"{int(rand() * 299) + 1} {streets[int(rand() * n_streets)]}"
            town, postal = city, postal_of(rng)
        else:
            address = town = postal = ""
        append(
            (
                patient_id,
                clinic_id,
                format_record_number(number),
                given,
                family,
                day_text(born),
                sex,
                email,
                phone_of(rng) if rand() < 0.93 else "",
                address,
                town,
                postal,
                "fr" if rand() < french else "en",
                None,
                folded(family),
                folded(given),
                created,
                created,
            )
        )
    return rows


def gen_patients(ctx: Context) -> Counts:
    """The scale's patients, split unevenly between clinics; each clinic's ``last_record_number`` continues
    the sequence, so the next patient created through the application gets the next number."""
    shares = split_total(ctx.rng("patients"), ctx.scale.patients, len(ctx.clinics))
    jobs: list[RowJob] = []
    for data, share in zip(ctx.clinics, shares, strict=True):
        ids = ctx.next_ids(Patient, share)
        # Fixed-size slices of the clinic's history, each with its own random stream: the same rows
        # whether one process builds them or several.
        slices = max(1, -(-share // PATIENTS_PER_JOB))
        for index in range(slices):
            low, high = share * index // slices, share * (index + 1) // slices
            jobs.append(
                RowJob(
                    patient_rows,
                    (
                        ctx.stream("patients", data.number, index),
                        data.place,
                        data.clinic.pk,
                        ids[low:high],
                        low + 1,
                        ctx.history_start,
                        ctx.as_of,
                        (index / slices, (index + 1) / slices),
                    ),
                )
            )
        data.patient_ids = ids
        data.clinic.last_record_number = share
    written = ctx.write_jobs(Patient, PATIENT_FIELDS, jobs)
    Clinic.objects.bulk_update([data.clinic for data in ctx.clinics], ["last_record_number"])
    return {"patient": written}


Family = Callable[[Context], Counts]

# In dependency order. Features append theirs (plans, sessions, appointments, …): see the module docstring.
FAMILIES: list[tuple[str, Family]] = [
    ("clinics", gen_clinics),
    ("rooms & devices", gen_rooms_and_devices),
    ("staff", gen_staff),
    ("patients", gen_patients),
    ("formulary", stock.gen_formulary),  # formulas, versions, products (small tables)
    ("intakes & reviews", clinical.gen_intakes),  # and the treatment visits (ctx.clinics[i].visits)
    ("stock & preparations", stock.gen_stock),  # lots, opened vials, preparations, lines, movements
    ("sessions", treatments.gen_sessions),  # plans, sessions, charted areas, session preparations, aftercare
    ("appointments", scheduling.gen_appointments),  # settings, working hours, closures, appointments
    ("outcomes", outcomes.gen_outcomes),  # landmarks, assessments, measurements
    ("side effects", safety.gen_safety),  # adverse events and their session and lot links
    ("photos", gen_photos),  # outcome photos (rows and files) and photo consents
    ("messages", gen_messages),  # contact preferences, the outbox's messages, delivery attempts
    ("consents", gen_consents),  # consent settings, prices, signed consents, countersignatures and PDFs
]


def existing_rows() -> Counts:
    return {
        "organisations": Organisation.objects.count(),
        "clinics": Clinic.objects.count(),
        "users": User.objects.count(),
        "patients": Patient.objects.count(),
    }


def generate(
    scale: Scale,
    *,
    seed: int = DEFAULT_SEED,
    as_of: date = DEFAULT_AS_OF,
    batch_size: int = 5_000,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Fill an empty, migrated database with the scale's data set, in one transaction. ``workers`` processes
    build the rows of the big tables (default: one per core; the data do not depend on it)."""
    found = {name: count for name, count in existing_rows().items() if count}
    if found:
        listed = ", ".join(f"{count:,} {name}" for name, count in found.items())
        raise GenerateRefused(
            f"This database already has data ({listed}). The generator only writes into an empty, migrated "
            "database, so that a seed always means the same rows: point SQLITE_PATH or DATABASE_URL at a new "
            "database and run `manage.py migrate` first (`make bench` does this for you)."
        )
    # One argon2 hash for every account (hashing is deliberately slow), salted from the seed: deterministic.
    # 24 characters, so that Django finds the salt strong enough and never re-hashes at sign-in (which would
    # end the other sessions of that account).
    salt = hashlib.sha256(f"bench-password:{seed}".encode()).hexdigest()[:24]
    password_hash = make_password(BENCH_PASSWORD, salt=salt)
    workers = (os.cpu_count() or 1) if workers is None else workers
    ctx = Context(
        scale=scale,
        seed=seed,
        as_of=as_of,
        batch_size=batch_size,
        password_hash=password_hash,
        workers=workers,
    )
    families: list[FamilyReport] = []
    started = time.perf_counter()
    with (
        _worker_pool(workers) as ctx.pool,
        _explicit_timestamps(),
        transaction.atomic(),
        _bulk_load_settings(),
    ):
        for name, family in FAMILIES:
            family_started = time.perf_counter()
            rows = family(ctx)
            families.append(FamilyReport(name, rows, time.perf_counter() - family_started))
            if progress is not None:
                progress(f"{name}: {sum(rows.values()):,} rows")
        index_started = time.perf_counter()
        ctx.restore_indexes()
        ctx.reset_sequences()
        if connection.vendor == "postgresql":  # planner statistics, as autovacuum keeps them in service
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        families.append(FamilyReport("(indexes)", {}, time.perf_counter() - index_started))
    return Report(scale, seed, as_of, connection.vendor, families, time.perf_counter() - started)
