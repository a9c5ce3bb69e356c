"""Every new database connection proves it has the durability settings we rely on (targets.md #17)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper

_SQLITE_EXPECTED = {"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"}


def durability_report(connection: BaseDatabaseWrapper) -> dict[str, str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            report = {}
            for pragma in _SQLITE_EXPECTED:
                cursor.execute(f"PRAGMA {pragma}")
                report[pragma] = str(cursor.fetchone()[0]).lower()
            report["transaction_mode"] = str(
                connection.settings_dict["OPTIONS"].get("transaction_mode", "")
            ).upper()
            return report
        if connection.vendor == "postgresql":
            cursor.execute("SHOW synchronous_commit")
            return {"synchronous_commit": str(cursor.fetchone()[0])}
    return {}


def durability_problems(connection: BaseDatabaseWrapper) -> list[str]:
    report = durability_report(connection)
    problems = []
    if connection.vendor == "sqlite":
        expected = {**_SQLITE_EXPECTED, "transaction_mode": "IMMEDIATE"}
        problems = [
            f"{name}={report.get(name)!r}, expected {value!r}"
            for name, value in expected.items()
            if report.get(name) != value
        ]
    elif connection.vendor == "postgresql" and report.get("synchronous_commit") != "on":
        problems = [f"synchronous_commit={report.get('synchronous_commit')!r}, expected 'on'"]
    return problems


def assert_durable(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    problems = durability_problems(connection)
    if problems:
        raise ImproperlyConfigured(
            "The database is not configured for durable writes: " + "; ".join(problems)
        )
