"""The hash chain: pure functions over plain values, so that the writer and the verifier share one
definition of what a row's hash covers."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainRow:
    seq: int
    at: datetime
    user_id: int | None
    username: str
    role: str
    clinic_id: int | None
    patient_id: int | None
    action: str
    object_type: str
    object_id: str
    ip: str | None
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str = ""


def row_digest(key: bytes, row: ChainRow) -> str:
    payload = json.dumps(
        [
            row.seq,
            row.at.isoformat(timespec="microseconds"),
            row.user_id,
            row.username,
            row.role,
            row.clinic_id,
            row.patient_id,
            row.action,
            row.object_type,
            row.object_id,
            row.ip,
            row.detail,
            row.prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_chain(
    key: bytes, rows: Iterable[ChainRow], head_seq: int, head_hash: str
) -> Iterator[ChainProblem]:
    """Yield every break in the chain: edited rows (digest), deleted or inserted rows (sequence gaps, links),
    reordered rows (digest covers the sequence number) and rows cut from the end (head)."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    last_seq = 0
    for row in rows:
        if row.seq != expected_seq:
            yield ChainProblem(
                row.seq, f"sequence jumps from {expected_seq - 1} to {row.seq} (rows missing or added)"
            )
        if row.prev_hash != prev_hash:
            yield ChainProblem(
                row.seq, "link to the previous row is broken (a row was removed, added or moved)"
            )
        if not hmac.compare_digest(row_digest(key, row), row.hash):
            yield ChainProblem(row.seq, "row content does not match its hash (edited or forged)")
        expected_seq = row.seq + 1
        prev_hash = row.hash
        last_seq = row.seq
    if last_seq != head_seq or prev_hash != head_hash:
        yield ChainProblem(
            last_seq, f"the chain ends at #{last_seq} but the head says #{head_seq} (rows cut from the end)"
        )
