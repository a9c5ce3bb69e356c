"""The benchmark's databases: generated once per scale (and seed), copied fresh for every run.

SQLite: ``var/bench/mesoclinic_bench_<scale>.sqlite3`` is the pristine data set; each run works on
``…_run.sqlite3``, a copy made with SQLite's backup API. PostgreSQL: ``mesoclinic_bench_<scale>`` is the
pristine data set; each run works on ``mesoclinic_bench_<scale>_run``, created from it as a template. So every
run starts from the same rows, however many patients and audit rows the previous run added.

A stamp (``var/bench/<scale>-<db>.json``) records the seed and a fingerprint of the generator and of every
migration; when either changes (a feature adds models and extends the generator), the data set is made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
MANAGE = [sys.executable, str(ROOT / "manage.py")]
_TOTAL = re.compile(r"^total\s+([\d,]+) rows\s+([\d.]+) s\s+([\d,]+) rows/s", re.MULTILINE)

Log = Callable[[str], None]


@dataclass
class Database:
    """A prepared run database: the environment that points Django at it, and how it was generated."""

    kind: str  # "sqlite" or "postgres"
    scale: str
    env: dict[str, str]
    generation: dict[str, Any]
    label: str


def fingerprint() -> str:
    """What the data set depends on: the generator's code and every migration."""
    digest = hashlib.sha256()
    files = sorted((ROOT / "bench").glob("generate.py")) + sorted((ROOT / "bench").glob("names.py"))
    files += sorted((ROOT / "mesoclinic").glob("*/migrations/*.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def manage(args: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    result = subprocess.run(
        [*MANAGE, *args],
        env={**os.environ, **env},
        cwd=ROOT,
        check=False,
        capture_output=capture,
        text=True,
    )
    if result.returncode != 0:
        detail = (result.stderr or "")[-3000:] if capture else ""
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}). {detail}")
    return result.stdout or ""


def _generate(env: dict[str, str], scale: str, seed: int, log: Log) -> dict[str, Any]:
    manage(["migrate", "--no-input", "-v0"], env)
    log(f"generating the {scale} data set (seed {seed})…")
    output = manage(["generate", "--scale", scale, "--seed", str(seed)], env, capture=True)
    for line in output.splitlines():
        log(f"  {line}")
    total = _TOTAL.search(output)
    return {
        "scale": scale,
        "seed": seed,
        "fingerprint": fingerprint(),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": int(total.group(1).replace(",", "")) if total else None,
        "seconds": float(total.group(2)) if total else None,
        "rows_per_second": int(total.group(3).replace(",", "")) if total else None,
        "report": output.splitlines(),
    }


def _stamp_path(scale: str, kind: str) -> Path:
    return VAR / f"{scale}-{kind}.json"


def _stamp_matches(path: Path, scale: str, seed: int) -> dict[str, Any] | None:
    if not path.exists():
        return None
    stamp: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if (
        stamp.get("scale") == scale
        and stamp.get("seed") == seed
        and stamp.get("fingerprint") == fingerprint()
    ):
        return stamp
    return None


def prepare_sqlite(scale: str, seed: int, *, regenerate: bool, log: Log) -> Database:
    VAR.mkdir(parents=True, exist_ok=True)
    pristine = VAR / f"mesoclinic_bench_{scale}.sqlite3"
    working = VAR / f"mesoclinic_bench_{scale}_run.sqlite3"
    stamp_path = _stamp_path(scale, "sqlite")
    stamp = None if regenerate else _stamp_matches(stamp_path, scale, seed)
    if stamp is None or not pristine.exists():
        for path in (pristine, *_sidecars(pristine)):
            path.unlink(missing_ok=True)
        stamp = _generate({"SQLITE_PATH": str(pristine)}, scale, seed, log)
        stamp_path.write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    else:
        log(f"reusing {pristine.relative_to(ROOT)} (generated {stamp['generated_at']})")
    for path in (working, *_sidecars(working)):
        path.unlink(missing_ok=True)
    with sqlite3.connect(pristine) as source, sqlite3.connect(working) as target:
        source.backup(target)
    env = {"SQLITE_PATH": str(working)}
    manage(["migrate", "--no-input", "-v0"], env)
    return Database("sqlite", scale, env, stamp, f"SQLite {sqlite3.sqlite_version}")


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def prepare_postgres(scale: str, seed: int, admin_url: str, *, regenerate: bool, log: Log) -> Database:
    VAR.mkdir(parents=True, exist_ok=True)
    pristine, working = f"mesoclinic_bench_{scale}", f"mesoclinic_bench_{scale}_run"
    stamp_path = _stamp_path(scale, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [pristine]).fetchone()
        stamp = None if regenerate else _stamp_matches(stamp_path, scale, seed)
        if stamp is None or not exists:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(pristine)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(pristine)))
            stamp = _generate({"DATABASE_URL": _with_database(admin_url, pristine)}, scale, seed, log)
            stamp_path.write_text(json.dumps(stamp, indent=2), encoding="utf-8")
        else:
            log(f"reusing database {pristine} (generated {stamp['generated_at']})")
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(working)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(working), sql.Identifier(pristine)
            )
        )
        version = admin.execute("SHOW server_version").fetchone()
    env = {"DATABASE_URL": _with_database(admin_url, working)}
    manage(["migrate", "--no-input", "-v0"], env)
    return Database("postgres", scale, env, stamp, f"PostgreSQL {version[0] if version else '?'}")
