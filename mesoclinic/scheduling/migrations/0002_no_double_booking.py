"""Nobody is double-booked, as a database fact (issue 7): a practitioner, a room and a patient each have at
most one active appointment (booked or checked in) at any instant.

PostgreSQL: btree_gist and three exclusion constraints over ``tstzrange(starts_at, ends_at, '[)')``.
SQLite: triggers that abort an insert or update that would overlap; SQLite writes are serialised
(BEGIN IMMEDIATE, settings.py), so the trigger's check and the write cannot interleave with another
writer's. Each part runs only on its own database."""

from typing import Any

from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations

ACTIVE = "('booked', 'checked_in')"
WHO = ("practitioner_id", "room_id", "patient_id")


class PostgresBtreeGist(BtreeGistExtension):
    """btree_gist on PostgreSQL (CreateExtension does nothing on other databases)."""

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        pass  # other apps may rely on the extension: it stays


def _postgres(schema_editor: Any) -> list[str]:
    return [
        f"ALTER TABLE scheduling_appointment ADD CONSTRAINT appointment_no_overlap_{who.removesuffix('_id')} "
        f"EXCLUDE USING gist ({who} WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
        f"WHERE (status IN {ACTIVE})"
        for who in WHO
    ]


def _sqlite_trigger(event: str) -> str:
    name = f"scheduling_appointment_no_overlap_{event.lower()}"
    self_clause = " AND a.id <> NEW.id" if event == "UPDATE" else ""
    checks = " OR ".join(
        f"EXISTS (SELECT 1 FROM scheduling_appointment a WHERE a.{who} = NEW.{who}{self_clause} "
        f"AND a.status IN {ACTIVE} AND a.starts_at < NEW.ends_at AND NEW.starts_at < a.ends_at)"
        for who in WHO
    )
    on = "INSERT" if event == "INSERT" else "UPDATE OF starts_at, ends_at, status, practitioner_id, room_id, patient_id"
    return (
        f"CREATE TRIGGER {name} BEFORE {on} ON scheduling_appointment "
        f"FOR EACH ROW WHEN NEW.status IN {ACTIVE} AND ({checks}) "
        "BEGIN SELECT RAISE(ABORT, 'appointment overlaps another (practitioner, room or patient)'); END"
    )


def forwards(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = _postgres(schema_editor)
    elif vendor == "sqlite":
        statements = [_sqlite_trigger("INSERT"), _sqlite_trigger("UPDATE")]
    else:
        raise RuntimeError(f"no double-booking guard for {vendor}")
    for statement in statements:
        schema_editor.execute(statement)


def backwards(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for who in WHO:
            schema_editor.execute(
                "ALTER TABLE scheduling_appointment DROP CONSTRAINT IF EXISTS "
                f"appointment_no_overlap_{who.removesuffix('_id')}"
            )
    elif vendor == "sqlite":
        for event in ("insert", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS scheduling_appointment_no_overlap_{event}")


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [
        PostgresBtreeGist(),
        migrations.RunPython(forwards, backwards),
    ]
