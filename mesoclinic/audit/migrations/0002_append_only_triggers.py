"""The database itself refuses to change audit rows, whatever code or person connects.

UPDATE is refused on both databases. DELETE is refused on PostgreSQL; on SQLite the test runner empties
tables with DELETE between transactional tests, so there the hash chain (a missing row breaks the sequence)
is what catches a deletion. TRUNCATE (PostgreSQL's test flush) is left to the chain as well.
"""

from django.db import migrations

SQLITE_UP = [
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS audit_event_no_update;"]

POSTGRES_UP = [
    """
    CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only';
    END;
    $$ LANGUAGE plpgsql;
    """,
    "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_auditevent "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();",
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS audit_event_no_change ON audit_auditevent;",
    "DROP FUNCTION IF EXISTS audit_event_append_only();",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}),
            _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}),
        )
    ]
