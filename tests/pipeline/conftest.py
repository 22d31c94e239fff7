"""Fixtures for the pipeline tests: real Celery worker processes on a real Redis against the
test PostgreSQL database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Worker:
    """One `celery worker` process (its own process group, so kill() takes its children too)."""

    def __init__(self, env: dict, log_path: Path, concurrency: int, name: str):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        cmd = [
            sys.executable, "-m", "celery", "-A", "tests.pipeline.worker_app", "worker",
            "-Q", "inference,llm,default", "--pool", "prefork", "--concurrency", str(concurrency),
            "-n", f"{name}@%h", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> "Worker":
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            return " ready." in self.output()

        wait_for(ready, timeout, what="the worker to be ready")
        return self

    def kill(self) -> None:
        """kill -9 the worker and its pool processes, like a node that dies."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def broker(redis_url, settings):
    """Point this test process's Celery app at the real Redis (eager off), on an empty DB."""
    import redis

    from portal.celery import app

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    saved = {k: app.conf[k] for k in ("task_always_eager", "broker_url", "broker_transport_options")}
    app.conf.update(task_always_eager=False, broker_url=redis_url,
                    broker_transport_options={"visibility_timeout": 3600})
    app._after_fork()  # drop connection pools built for the old broker
    settings.CELERY_TASK_ALWAYS_EAGER = False
    yield client
    app.conf.update(saved)
    app._after_fork()
    client.flushdb()


@pytest.fixture
def start_worker(broker, redis_url, postgres, tmp_path, settings):
    """start_worker(concurrency=1, **env) → a ready Worker on the test database."""
    from django.db import connection

    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db.get("PASSWORD"):
        database_url = database_url.replace("@", f":{db['PASSWORD']}@", 1)
    workers: list[Worker] = []

    def start(concurrency: int = 1, wait: bool = True, **extra_env) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_TEST_")}
        env.update(
            DJANGO_SETTINGS_MODULE="portal.settings.test",
            CELERY_WORKER_TEST="1",
            TEST_REDIS_URL=redis_url,
            DATABASE_URL=database_url,
            PORTAL_TEST_MEDIA_ROOT=str(settings.MEDIA_ROOT),
            JOB_RETRY_BACKOFF_SECONDS="0.5",
            PYTHONUNBUFFERED="1",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        env.update({k: str(v) for k, v in extra_env.items()})
        worker = Worker(env, tmp_path / f"worker{len(workers)}.log", concurrency, f"w{len(workers)}")
        workers.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in workers:
        worker.stop()
