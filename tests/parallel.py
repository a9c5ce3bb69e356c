"""Writers that start at the same instant, each in its own thread and database connection — how the
concurrency tests race real transactions (SQLite's IMMEDIATE transactions, PostgreSQL's row locks)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import close_old_connections, connection


def run_in_parallel(writers: int, body: Callable[[int], None]) -> list[BaseException]:
    """Run ``body(index)`` in ``writers`` threads released together; answer what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def writer(index: int) -> None:
        try:
            start.wait()
            body(index)
        except BaseException as exc:  # noqa: BLE001 (collected and asserted by the caller)
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
