"""Background bodies (django-tasks; the database backend by default, run by ``manage.py db_worker``). They
only call the services: the outbox rows decide what is sent, so a task that runs twice sends nothing twice."""

from __future__ import annotations

from django_tasks import TaskContext, task

from mesoclinic.scheduling import services


def _worker(context: TaskContext) -> str:
    ids = context.task_result.worker_ids
    return str(ids[-1]) if ids else "worker"


@task(takes_context=True)
def deliver_message(context: TaskContext, message_id: int) -> str:
    """Deliver one outbox row (once: see services.message_deliver)."""
    return services.message_deliver(message_id=message_id, worker=_worker(context))


@task(takes_context=True)
def sweep_messages(context: TaskContext) -> dict[str, int]:
    """Queue the next sweep first (so a worker dying here leaves one queued), then mend stale claims and
    lost tasks."""
    services.ensure_sweep()
    return services.messages_sweep(worker=_worker(context))
