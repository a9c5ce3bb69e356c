"""The request being served, for code that has no request argument (signal receivers that audit)."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

_current: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


def current_request() -> HttpRequest | None:
    return _current.get()


class CurrentRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
