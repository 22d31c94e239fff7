"""python manage.py dicom_listener [--ae-title T] [--port N] [--bind ADDRESS]

The DICOM C-ECHO/C-STORE SCP (portal.workflow.dicom_in.make_listener). Runs until stopped
(Ctrl-C or SIGTERM). It also re-sends results whose PACS was down, every
--retry-interval seconds, so the embedded default (no Celery beat) delivers them too."""
from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Receive studies over DICOM (C-ECHO and C-STORE SCP)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--ae-title", default=None, help="this listener's AE title (default: DICOM_AE_TITLE)")
        parser.add_argument("--port", type=int, default=None, help="TCP port (default: DICOM_PORT)")
        parser.add_argument("--bind", default=None, help="address to listen on (default: DICOM_BIND_ADDRESS)")
        parser.add_argument("--retry-interval", type=float, default=60.0,
                            help="seconds between re-tries of pending sends to PACS (0: never)")

    def handle(self, *args, **options) -> None:
        from portal.workflow.dicom_in import make_listener

        listener = make_listener(ae_title=options["ae_title"], port=options["port"], bind=options["bind"])
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        listener.start()
        self.stdout.write(f"DICOM listener {listener.ae_title} on {listener.bind}:{listener.port}")
        interval = float(options["retry_interval"])
        try:
            while not stop.wait(interval if interval > 0 else 3600):
                if interval > 0:
                    self._retry_sends()
        except KeyboardInterrupt:
            pass
        finally:
            listener.stop()

    def _retry_sends(self) -> None:
        from portal.workflow.pacs import retry_pending_sends

        retry_pending_sends()
