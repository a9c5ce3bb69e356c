"""The benchmark's floor and stopwatch (``make bench``, docs/performance.md). Active only with BENCH_FLOOR=1.

- :func:`floor`: a bare Django view doing one indexed query and a tiny template render. Served by the same
  server in the same run, it is the yardstick of every other figure ("× floor").
- :class:`ServerTimingMiddleware`: adds ``Server-Timing: app;dur=…, cpu;dur=…, db;dur=…, queries;desc="N"``
  to every response: the time spent inside Django (all middleware and the view), the CPU time of that
  thread, the time inside database calls and how many there were. The load generator records these, so
  the figures are the server's own, not the client's round trips.

Never turn BENCH_FLOOR on in production: timings and query counts help an attacker (timing oracles).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from mesoclinic.clinics.models import Clinic

Handler = Callable[[HttpRequest], HttpResponse]


def floor(request: HttpRequest) -> HttpResponse:
    """One clinic by primary key (``?clinic=<id>``, default 1), one small template."""
    raw = request.GET.get("clinic", "1")
    clinic = get_object_or_404(Clinic.objects.only("id", "name"), pk=int(raw) if raw.isdigit() else 0)
    return render(request, "floor.html", {"clinic": clinic})


class QueryClock:
    """A ``connection.execute_wrapper``: counts database calls and adds up their time."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


def server_timing(*, app_seconds: float, cpu_seconds: float, clock: QueryClock) -> str:
    return (
        f"app;dur={app_seconds * 1000:.3f}, cpu;dur={cpu_seconds * 1000:.3f}, "
        f'db;dur={clock.seconds * 1000:.3f}, queries;desc="{clock.count}"'
    )


class ServerTimingMiddleware:
    """Outermost middleware (settings put it first when BENCH_FLOOR is on), so it times everything."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        clock = QueryClock()
        started, cpu_started = time.perf_counter(), time.thread_time()
        with connection.execute_wrapper(clock):
            response = self.get_response(request)
        response["Server-Timing"] = server_timing(
            app_seconds=time.perf_counter() - started,
            cpu_seconds=time.thread_time() - cpu_started,
            clock=clock,
        )
        return response
