"""``manage.py generate``: the benchmark data set (bench/generate.py), into an empty, migrated database."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Fill an empty, migrated database with a deterministic benchmark data set (same scale and seed, "
        "same rows). Refuses to touch a database that already has clinics, users or patients."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", choices=["smoke", "clinic", "chain"], default="smoke")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help="The data set's today (YYYY-MM-DD); histories end here. Fixed by default.",
        )
        parser.add_argument("--batch-size", type=int, default=5_000)
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes that build rows (default: one per core). The data do not depend on it.",
        )

    def handle(
        self,
        *args: Any,
        scale: str,
        seed: int,
        as_of: date | None,
        batch_size: int,
        workers: int | None,
        **options: Any,
    ) -> None:
        try:
            from bench.generate import DEFAULT_AS_OF, SCALES, GenerateRefused, generate
        except ImportError as exc:  # an installed wheel ships mesoclinic/ only
            raise CommandError(f"The bench/ package is not importable ({exc}); run from a checkout.") from exc
        try:
            report = generate(
                SCALES[scale],
                seed=seed,
                as_of=as_of or DEFAULT_AS_OF,
                batch_size=batch_size,
                workers=workers,
                progress=lambda line: self.stdout.write(f"  {line}") if options["verbosity"] > 1 else None,
            )
        except GenerateRefused as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines():
            self.stdout.write(line)
