"""iCalendar (RFC 5545) files built with ``icalendar``: the patient's .ics for one appointment and the
practitioner's private feed. Times are written in UTC (``…Z``), so no VTIMEZONE is needed and no reader
can misplace them around a DST change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event

PRODID = "-//mesoclinic//scheduling//EN"


@dataclass(frozen=True)
class EventFacts:
    uid: str
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str = ""
    description: str = ""
    cancelled: bool = False
    sequence: int = 0


def _calendar(name: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    return calendar


def _event(facts: EventFacts, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", facts.uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", facts.starts_at.astimezone(UTC))
    event.add("dtend", facts.ends_at.astimezone(UTC))
    event.add("summary", facts.summary)
    if facts.location:
        event.add("location", facts.location)
    if facts.description:
        event.add("description", facts.description)
    event.add("status", "CANCELLED" if facts.cancelled else "CONFIRMED")
    event.add("sequence", facts.sequence)
    event.add("transp", "OPAQUE")
    return event


def calendar_file(name: str, events: Iterable[EventFacts], *, stamp: datetime) -> bytes:
    calendar = _calendar(name)
    for facts in events:
        calendar.add_component(_event(facts, stamp))
    data: bytes = calendar.to_ical()
    return data
