"""Figures from locust's samples, the results file (JSON) and its Markdown table."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# targets.md, "Performance".
SCREEN_P95_MS = 50.0
SCREEN_P99_MS = 150.0
MIXED_P95_MS = 200.0
FLOOR_SHARE = 0.60  # an authorised, audited read reaches ≥ 60 % of the floor's requests/s
SCALE_RATIO = 1.5  # p95 at chain ≤ 1.5 × p95 at smoke

# targets.md bounds the server time of "every key screen and API call": every single-screen scenario is one
# (the floor is the yardstick; the mixed workload has its own target).
NOT_SCREENS = frozenset({"floor", "mixed"})
TYPICAL_READ = "chart_ui"  # "a typical authorised, audited read" for the framework-overhead figure


def key_screens(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows targets.md's per-screen figure judges, in run order."""
    return [row for row in rows if row["name"] not in NOT_SCREENS]


def screen_met(row: dict[str, Any]) -> bool | None:
    """p95 ≤ 50 ms and p99 ≤ 150 ms of server time; None without measurements."""
    p95, p99 = row["server_ms"]["p95"], row["server_ms"]["p99"]
    if p95 is None or p99 is None:
        return None
    return bool(p95 <= SCREEN_P95_MS and p99 <= SCREEN_P99_MS)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


_TIMING = re.compile(r'(\w+);(?:dur=([0-9.]+)|desc="?([0-9]+)"?)')


def parse_server_timing(header: str) -> dict[str, float]:
    """``app;dur=12.3, queries;desc="7"`` (the Server-Timing header of mesoclinic.floor) → a dict."""
    values: dict[str, float] = {}
    for name, duration, description in _TIMING.findall(header):
        values[name] = float(duration or description)
    return values


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (what a p95 means to most readers); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def summarise(
    name: str, samples: Iterable[Sequence[Any]], measure_from: float, stopped_at: float
) -> dict[str, Any]:
    """One row of the results: ``samples`` are locustfile.Sample tuples of one request name (or several)."""
    rows = list(samples)
    errors = [row for row in rows if row[8]]
    kept = [row for row in rows if not row[8] and row[1] >= measure_from]
    window = max(stopped_at - measure_from, 1e-9) if kept else 0.0
    queries = sorted({int(row[7]) for row in kept if row[7] is not None})
    return {
        "name": name,
        "requests": len(kept),
        "requests_all": len(rows),
        "errors": len(errors),
        "error_kinds": dict(Counter(str(row[8]) for row in errors).most_common(5)),
        "seconds": round(window, 2),
        "rps": len(kept) / window if window else 0.0,
        "server_ms": _stats([float(row[4]) for row in kept if row[4] is not None]),
        "cpu_ms": _stats([float(row[5]) for row in kept if row[5] is not None]),
        "db_ms": _stats([float(row[6]) for row in kept if row[6] is not None]),
        "client_ms": _stats([float(row[2]) for row in kept]),
        "queries": {"min": queries[0] if queries else None, "max": queries[-1] if queries else None},
    }


def scenario_result(
    scenario: str, payload: dict[str, Any], *, breakdown: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The scenario's overall row and, for the mixed workload, one row per request name."""
    samples = payload.get("samples", [])
    measure_from = float(payload.get("measure_from") or 0.0)
    stopped_at = float(payload.get("stopped_at") or 0.0)
    overall = summarise(scenario, samples, measure_from, stopped_at)
    parts: list[dict[str, Any]] = []
    if breakdown:
        by_name: dict[str, list[Sequence[Any]]] = defaultdict(list)
        for row in samples:
            by_name[str(row[0])].append(row)
        parts = [summarise(name, rows, measure_from, stopped_at) for name, rows in sorted(by_name.items())]
    return overall, parts


def add_floor_ratios(rows: list[dict[str, Any]], floor: dict[str, Any] | None) -> None:
    """× floor: server p50 over the floor's. Shares of the floor's requests/s: measured (the load generator
    shares the machine, so it flattens differences) and from CPU per request (what the server could serve
    with the cores to itself: mean CPU ms of the floor over the scenario's)."""
    floor_p50 = (floor or {}).get("server_ms", {}).get("p50")
    floor_rps = (floor or {}).get("rps")
    floor_cpu = (floor or {}).get("cpu_ms", {}).get("mean")
    for row in rows:
        p50, cpu = row["server_ms"]["p50"], row["cpu_ms"]["mean"]
        row["x_floor_p50"] = ratio(p50, floor_p50) if p50 else None
        row["share_of_floor_rps"] = ratio(row["rps"], floor_rps) if row["rps"] else None
        row["share_of_floor_cpu"] = ratio(floor_cpu, cpu) if floor_cpu else None


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """targets.md's performance lines that this run can speak to, each met or missed with its figure."""
    scale = result["meta"]["scale"]
    rows = {row["name"]: row for row in result["scenarios"]}
    found: list[dict[str, Any]] = []
    note = "" if scale == "chain" else f" (target is at chain; this run is {scale})"
    for row in key_screens(result["scenarios"]):
        met = screen_met(row)
        if met is None:
            continue
        p95, p99 = row["server_ms"]["p95"], row["server_ms"]["p99"]
        bound = f"server p95 ≤ {SCREEN_P95_MS:g} ms, p99 ≤ {SCREEN_P99_MS:g} ms"
        found.append(
            {
                "target": f"{row['name']}: {bound}{note}",
                "measured": f"p95 {p95:.1f} ms, p99 {p99:.1f} ms",
                "met": met,
            }
        )
    typical = rows.get(TYPICAL_READ)
    if typical and typical.get("share_of_floor_rps") is not None:
        share, cpu_share = typical["share_of_floor_rps"], typical.get("share_of_floor_cpu") or 0.0
        found.append(
            {
                "target": f"framework overhead: {TYPICAL_READ} ≥ {FLOOR_SHARE:.0%} of the floor's requests/s",
                "measured": (
                    f"{share:.0%} measured ({typical['rps']:.0f} vs {rows['floor']['rps']:.0f} req/s); "
                    f"{cpu_share:.0%} by CPU per request"
                ),
                "met": share >= FLOOR_SHARE and cpu_share >= FLOOR_SHARE,
            }
        )
    mixed = rows.get("mixed")
    if mixed and mixed["server_ms"]["p95"] is not None:
        locked = result["meta"].get("database_locked", 0)
        p95, client95 = mixed["server_ms"]["p95"], mixed["client_ms"]["p95"]
        found.append(
            {
                "target": (
                    f"mixed workload, {result['meta']['users']} users: p95 ≤ {MIXED_P95_MS:g} ms, "
                    '0 errors, 0 "database is locked"'
                ),
                "measured": (
                    f"server p95 {p95:.1f} ms (client {client95:.1f} ms), {mixed['errors']} errors, "
                    f"{locked} locked"
                ),
                "met": p95 <= MIXED_P95_MS
                and client95 <= MIXED_P95_MS
                and mixed["errors"] == 0
                and locked == 0,
            }
        )
    return found


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _ratio(value: float | None, fmt: str = "{:.2f}×") -> str:
    return "—" if value is None else fmt.format(value)


def query_range(row: dict[str, Any]) -> str:
    low, high = row["queries"]["min"], row["queries"]["max"]
    if low is None:
        return "—"
    return str(low) if low == high else f"{low}–{high}"


TABLE_HEAD = (
    "| scenario | requests | req/s | errors | server p50 | p95 | p99 | CPU p50 | DB p50 | queries "
    "| client p50 | p95 | × floor (p50) | % floor req/s | % floor (CPU) |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def table_row(row: dict[str, Any], *, indent: bool = False) -> str:
    server, client = row["server_ms"], row["client_ms"]
    name = f"  ↳ {row['name']}" if indent else f"**{row['name']}**"
    share, cpu_share = row.get("share_of_floor_rps"), row.get("share_of_floor_cpu")
    cells = [
        name,
        f"{row['requests']:,}",
        f"{row['rps']:.1f}",
        str(row["errors"]),
        ms(server["p50"]),
        ms(server["p95"]),
        ms(server["p99"]),
        ms(row["cpu_ms"]["p50"]),
        ms(row["db_ms"]["p50"]),
        query_range(row),
        ms(client["p50"]),
        ms(client["p95"]),
        _ratio(row.get("x_floor_p50")),
        "—" if share is None or indent else f"{share:.0%}",
        "—" if cpu_share is None else f"{cpu_share:.0%}",
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    generation = meta.get("generation") or {}
    lines = [
        f"# Benchmark — {meta['scale']} on {meta['database']} — {meta['date']}",
        "",
        f"- data set: scale `{meta['scale']}`, seed {meta['seed']}, {_count(generation.get('rows'))} rows "
        f"generated at {_count(generation.get('rows_per_second'))} rows/s ({meta['database']})",
        f"- server: gunicorn, {meta['server_workers']} sync workers, DEBUG off, `BENCH_FLOOR=1`; "
        f"commit `{meta['commit']}`",
        f"- load: locust on the same machine ({meta['cpus']} cores; load average {meta['load_before']} "
        f"before, {meta['load_after']} after); {meta['scenario_users']} closed-loop users per single-screen "
        f"scenario, {meta['users']} users with {meta['think']} s think time for `mixed`; "
        f"{meta['duration_s']:g} s each, the first {meta['warmup_s']:g} s after start-up not counted",
        "- times in ms; *server* = inside Django (every middleware and the view, from `Server-Timing`), "
        "*client* = locust's round trip",
    ]
    if meta.get("together"):
        lines.append(
            "- **every scenario at once** (`--together`, `make bench-smoke`): a check that the harness and "
            "the screens work; the scenarios share the server, so these times are not figures (run "
            "`make bench` for one scenario after another)"
        )
    lines += [
        "",
        TABLE_HEAD,
    ]
    for row in result["scenarios"]:
        lines.append(table_row(row))
        for part in row.get("breakdown", []):
            lines.append(table_row(part, indent=True))
    lines += ["", "Scenarios:", ""]
    lines += [
        f"- `{row['name']}` ({row.get('users', '?')} users): {row.get('title', '')}"
        for row in result["scenarios"]
    ]
    checks = result.get("targets", [])
    if checks:
        lines += ["", "| target (targets.md) | measured | |", "|---|---|---|"]
        lines += [
            f"| {t['target']} | {t['measured']} | {'met' if t['met'] else '**missed**'} |" for t in checks
        ]
    problems = [
        (row["name"], kind, count)
        for row in result["scenarios"]
        for kind, count in row["error_kinds"].items()
    ]
    if problems:
        lines += ["", "Errors:", ""]
        lines += [f"- {name}: {count} × {kind}" for name, kind, count in problems]
    lines += ["", f"Audit chain after the run: {str(meta.get('audit_verify', '?')).rstrip('.')}.", ""]
    return "\n".join(lines)


def compare(small: dict[str, Any], large: dict[str, Any]) -> str:
    """Scale independence: p95 at the large scale over p95 at the small one, per scenario."""
    small_rows = {row["name"]: row for row in small["scenarios"]}
    lines = [
        f"# Scale independence — {small['meta']['scale']} vs {large['meta']['scale']} on "
        f"{large['meta']['database']}",
        "",
        f"Runs: {small['meta']['date']} ({small['meta']['scale']}) and {large['meta']['date']} "
        f"({large['meta']['scale']}). Target: p95 at chain ≤ {SCALE_RATIO:g} × p95 at smoke, same screen.",
        "",
        f"| scenario | p95 {small['meta']['scale']} | p95 {large['meta']['scale']} | ratio "
        f"| queries {small['meta']['scale']} | queries {large['meta']['scale']} | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in large["scenarios"]:
        before = small_rows.get(row["name"])
        if before is None:
            continue
        low, high = before["server_ms"]["p95"], row["server_ms"]["p95"]
        scale_ratio = ratio(high, low) if high else None
        verdict = "—" if scale_ratio is None else ("met" if scale_ratio <= SCALE_RATIO else "**missed**")
        cells = [
            row["name"],
            ms(low),
            ms(high),
            _ratio(scale_ratio),
            query_range(before),
            query_range(row),
            verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], json_path: Path) -> Path:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path = json_path.with_suffix(".md")
    md_path.write_text(markdown(result), encoding="utf-8")
    return md_path
