"""Sending "run job N" to the broker once the transaction that recorded job N commits.

The database is the record of work: the job row is committed first, the message follows. If
the broker cannot be reached, the send error is logged, never raised: the request that
recorded the work has already succeeded, and the sweeper (portal.workflow.sweeper.sweep_stale_jobs) sends the job
again once it is stale. A caller that wants to tell its user (import_scans) collects the
jobs whose message did not go out with `unsent_messages()`.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from django.db import transaction

log = logging.getLogger(__name__)

_unsent: ContextVar[list[int] | None] = ContextVar("portal_unsent_jobs", default=None)


@contextmanager
def unsent_messages() -> Iterator[list[int]]:
    """Collect the ids of jobs whose message could not be sent inside this block."""
    bucket: list[int] = []
    token = _unsent.set(bucket)
    try:
        yield bucket
    finally:
        _unsent.reset(token)


def _send(task: Any, job_id: int, task_id: str) -> None:
    try:
        task.apply_async(args=[job_id], task_id=task_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the job row is the record
        log.warning("job %s is recorded but its message was not sent (%s); the sweeper will send it", job_id, exc)
        bucket = _unsent.get()
        if bucket is not None:
            bucket.append(job_id)


def send_on_commit(task: Any, job_id: int, task_id: str) -> None:
    transaction.on_commit(lambda: _send(task, job_id, task_id))
