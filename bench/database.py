"""The benchmark's databases: generated once per scale (and seed), copied fresh for every run.

Everything lives under :func:`var_dir`, ``<VAR_DIR>/bench`` (``MESOCLINIC_VAR_DIR``, as in the settings).
SQLite: ``mesoclinic_bench_<scale>.sqlite3`` there is the pristine data set; each run works on
``…_run.sqlite3``, a copy made with SQLite's backup API. PostgreSQL: ``mesoclinic_bench_<scale>_<suffix>`` is
the pristine data set; each run works on ``…_<suffix>_run``, created from it as a template. The suffix
(:func:`database_suffix`: ``BENCH_DB_SUFFIX``, or a short hash of the var directory) keeps two checkouts, or
two var directories, on one PostgreSQL server from dropping each other's databases. So every run starts from
the same rows, however many patients and audit rows the previous run added.

A stamp (``<scale>-<db>.json`` in the same directory) records the seed and a fingerprint of the generator and
of every migration; when either changes (a feature adds models and extends the generator), the data set is
made again.
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


# The harness itself: changing these does not change the data set. Every other bench/*.py is the generator's.
HARNESS_FILES = frozenset(
    {"__init__.py", "database.py", "formulary_recall.py", "locustfile.py", "report.py", "run.py", "server.py"}
)


def var_dir() -> Path:
    """``settings.VAR_DIR / "bench"``, computed as mesoclinic/settings.py does (``MESOCLINIC_VAR_DIR``, else
    ``var/`` in the checkout). Not imported from the settings: this runs before Django is set up, and the
    process sets Django up later with the environment of the database it prepares."""
    return Path(os.environ.get("MESOCLINIC_VAR_DIR") or ROOT / "var").absolute() / "bench"


def database_suffix() -> str:
    """What makes this checkout's PostgreSQL benchmark databases its own: ``BENCH_DB_SUFFIX`` when set
    (letters, digits, underscores), else 8 hex digits of a hash of the var directory's path."""
    chosen = os.environ.get("BENCH_DB_SUFFIX", "").strip().lower()
    if chosen:
        if not re.fullmatch(r"[a-z0-9_]{1,20}", chosen):
            raise ValueError("BENCH_DB_SUFFIX: 1 to 20 letters, digits or underscores")
        return chosen
    return hashlib.sha256(str(var_dir().resolve()).encode()).hexdigest()[:8]


def postgres_names(scale: str) -> tuple[str, str]:
    """The pristine and the working database of a scale on PostgreSQL."""
    base = f"mesoclinic_bench_{scale}_{database_suffix()}"
    return base, f"{base}_run"


def fingerprint() -> str:
    """What the data set depends on: the generator's code (bench/*.py but the harness) and every migration."""
    digest = hashlib.sha256()
    files = sorted(path for path in (ROOT / "bench").glob("*.py") if path.name not in HARNESS_FILES)
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


# migrate, then generate, in one Python process (a Django start-up costs seconds on a busy machine).
_MIGRATE_AND_GENERATE = (
    "import sys, django; django.setup(); from django.core.management import call_command; "
    "call_command('migrate', interactive=False, verbosity=0); "
    "call_command('generate', '--scale', sys.argv[1], '--seed', sys.argv[2])"
)


def _generate(env: dict[str, str], scale: str, seed: int, log: Log) -> dict[str, Any]:
    log(f"migrating a new database and generating the {scale} data set (seed {seed})…")
    result = subprocess.run(
        [sys.executable, "-c", _MIGRATE_AND_GENERATE, scale, str(seed)],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "mesoclinic.settings", **env},
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate and generate failed ({result.returncode}). {result.stderr[-3000:]}")
    output = result.stdout
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
    return var_dir() / f"{scale}-{kind}.json"


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
    directory = var_dir()
    directory.mkdir(parents=True, exist_ok=True)
    pristine = directory / f"mesoclinic_bench_{scale}.sqlite3"
    working = directory / f"mesoclinic_bench_{scale}_run.sqlite3"
    stamp_path = _stamp_path(scale, "sqlite")
    stamp = None if regenerate else _stamp_matches(stamp_path, scale, seed)
    if stamp is None or not pristine.exists():
        for path in (pristine, *_sidecars(pristine)):
            path.unlink(missing_ok=True)
        stamp = _generate({"SQLITE_PATH": str(pristine)}, scale, seed, log)
        stamp_path.write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    else:
        log(f"reusing {pristine} (generated {stamp['generated_at']})")
    for path in (working, *_sidecars(working)):
        path.unlink(missing_ok=True)
    with sqlite3.connect(pristine) as source, sqlite3.connect(working) as target:
        source.backup(target)
    # No migrate: the stamp matched the migrations, so the copy is migrated already (and a no-op migrate
    # costs a Django start-up and the system checks, seconds on a busy machine).
    env = {"SQLITE_PATH": str(working)}
    return Database("sqlite", scale, env, stamp, f"SQLite {sqlite3.sqlite_version}")


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def prepare_postgres(scale: str, seed: int, admin_url: str, *, regenerate: bool, log: Log) -> Database:
    var_dir().mkdir(parents=True, exist_ok=True)
    pristine, working = postgres_names(scale)
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
    env = {"DATABASE_URL": _with_database(admin_url, working)}  # migrated already (see prepare_sqlite)
    return Database("postgres", scale, env, stamp, f"PostgreSQL {version[0] if version else '?'}")
