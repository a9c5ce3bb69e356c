"""Scan every clinic's infections for safety signals (R-SIGNAL) and print how long it took.

Run daily (cron, or a scheduled task): recording an infection already rescans its clinic, but signals also
end when their window passes, and thresholds may change. Prints, per clinic and in total, the signals and
alerts found, the seconds taken and the queries run — the benchmark quotes the total at the ``chain`` scale.

    manage.py safety_scan                # every clinic
    manage.py safety_scan --clinic 3     # one (repeatable)
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mesoclinic.safety import services


class Command(BaseCommand):
    help = "Scan every clinic's infections for safety signals; print the duration and the query count."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clinic", type=int, action="append", default=[], help="Only this clinic id.")
        parser.add_argument("--quiet", action="store_true", help="Only the total line.")

    def handle(self, *args: Any, clinic: list[int], quiet: bool, **options: Any) -> None:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            outcomes = services.scan_all(clinic_ids=clinic)
        seconds = time.perf_counter() - started
        signals = alerts = infections = 0
        for outcome in outcomes:
            found = outcome.result.signals
            clinic_alerts = sum(1 for s in found if s.level == "alert")
            signals += len(found)
            alerts += clinic_alerts
            infections += outcome.result.infections
            if not quiet:
                self.stdout.write(
                    f"clinic {outcome.clinic.pk} {outcome.clinic.name}: "
                    f"{outcome.result.infections} infections, "
                    f"{outcome.result.treated_patients} patients treated, {len(found)} signals "
                    f"({clinic_alerts} alerts), {outcome.seconds:.3f} s"
                )
        self.stdout.write(
            f"safety_scan: {len(outcomes)} clinics, {infections} infections, "
            f"{signals} signals ({alerts} alerts) in {seconds:.3f} s, {len(queries)} queries"
        )
