"""TEST-ONLY fault injection for the real-worker tests (tests/pipeline). Off unless the test
settings turn it on from the worker's environment:

PIPELINE_TEST_CRASH_MARKER: a series whose description contains it kills its worker process
    (SIGKILL), like a decoder that segfaults on a poison file;
PIPELINE_TEST_SLEEP_SECONDS: sleep this long before storing, so a test can kill the worker in
    the middle of a classification.
"""
from __future__ import annotations

import logging
import os
import signal
import time

from django.conf import settings

from scans.models import Series

log = logging.getLogger(__name__)


def before_storing(series: Series) -> None:
    marker = settings.PIPELINE_TEST_CRASH_MARKER
    if marker and marker in (series.description or ""):
        log.error("test hook: killing worker process %s on series %s", os.getpid(), series.pk)
        os.kill(os.getpid(), signal.SIGKILL)
    delay = float(settings.PIPELINE_TEST_SLEEP_SECONDS or 0)
    if delay > 0:
        time.sleep(delay)
