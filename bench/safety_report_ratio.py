"""The safety report against a single hand-written SQL aggregate over the same rows (targets.md: "evidence
report … ≤ 2 s, and ≤ 3 × a single hand-written SQL aggregate over the same rows").

On a generated data set (``bench/generate.py``; SQLite through ``SQLITE_PATH``, PostgreSQL through
``DATABASE_URL``, as the settings read them), for each clinic measured: the median time of
``safety.services.safety_report`` over the default period (every section: protocol, formula, practitioner,
area, Wilson intervals, and its audit row) and of one SQL statement that counts the same period's sessions,
and those followed by an adverse event, by protocol — and their ratio. The two must agree on the counts (the
script stops if they do not). Each report runs in a transaction that is rolled back, so the data set is left
as it was (the audit row is written, then dropped: the commit's fsync is not in the figure).

    SECRET_KEY_FILE=var/secret_key SQLITE_PATH=/tmp/clinic.sqlite3 \\
      .venv/bin/python bench/safety_report_ratio.py [--clinics 5] [-n 15]

Not a test: timing never goes in tests; the figures go in docs/performance.md."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The period's sessions of one clinic, and among them those followed by an event (a primary link: the event's
# session), by protocol. Portable: SQLite and PostgreSQL.
HAND_SQL = """
SELECT pv.protocol_id, COUNT(*) AS sessions,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM safety_adverseeventsession l
                             WHERE l."primary" AND l.session_id = s.id) THEN 1 ELSE 0 END) AS with_event
FROM treatments_treatmentsession s
JOIN treatments_treatmentplan tp ON tp.id = s.plan_id
JOIN treatments_protocolversion pv ON pv.id = tp.protocol_version_id
WHERE s.clinic_id = %s AND s.session_date >= %s AND s.session_date <= %s
GROUP BY pv.protocol_id
"""


def _median_ms(call: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median wall and CPU milliseconds of ``runs`` calls (the CPU is this process's: with SQLite, the
    database's work too; with PostgreSQL, not the server's), and the last result."""
    walls: list[float] = []
    cpus: list[float] = []
    result: Any = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clinics", type=int, default=3, help="how many clinics (the largest first)")
    parser.add_argument("-n", type=int, default=15, help="runs of each, after one warm-up")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mesoclinic.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.db.models import Count

    from mesoclinic.accounts.actors import Caller
    from mesoclinic.accounts.models import Membership, Role
    from mesoclinic.clinics.models import Clinic
    from mesoclinic.safety import services

    clinics = list(
        Clinic.objects.annotate(n=Count("treatment_sessions")).order_by("-n", "pk")[: args.clinics]
    )
    print(f"database: {connection.vendor}, {args.n} runs each (median)\n")
    print("| clinic | sessions in period | report ms (CPU) | hand SQL ms (CPU) | ratio wall (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for clinic in clinics:
        director = (
            Membership.objects.filter(clinic=clinic, role=Role.MEDICAL_DIRECTOR, is_active=True)
            .select_related("user")
            .first()
        )
        if director is None:
            continue
        caller = Caller(user=director.user)
        start, end = services.report_period(clinic, None, None)

        def report() -> services.SafetyReport:
            with transaction.atomic():
                found = services.safety_report(caller=caller, clinic=clinic)  # noqa: B023
                transaction.set_rollback(True)
            return found

        def hand() -> list[tuple[Any, ...]]:
            with connection.cursor() as cursor:
                cursor.execute(HAND_SQL, [clinic.pk, start, end])  # noqa: B023
                return list(cursor.fetchall())

        report()
        hand()
        report_ms, report_cpu, found = _median_ms(report, args.n)
        hand_ms, hand_cpu, rows = _median_ms(hand, args.n)
        mine = {int(r.key): (r.sessions, r.with_event) for r in found.by_protocol}
        theirs = {int(key): (int(n), int(k)) for key, n, k in rows}
        if mine != theirs:
            raise SystemExit(f"clinic {clinic.pk}: the report's counts {mine} differ from the SQL's {theirs}")
        sessions = found.total.sessions if found.total else 0
        ratio, cpu_ratio = report_ms / max(hand_ms, 1e-6), report_cpu / max(hand_cpu, 1e-6)
        print(
            f"| {clinic.pk} | {sessions:,} | {report_ms:.1f} ({report_cpu:.1f}) "
            f"| {hand_ms:.1f} ({hand_cpu:.1f}) | {ratio:.1f} ({cpu_ratio:.1f}) |"
        )


if __name__ == "__main__":
    main()
