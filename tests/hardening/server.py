"""A real portal server in a subprocess (`manage.py runserver`, threaded, as `make run`
serves it), for tests that need concurrent requests on a database of their own choosing:
SQLite files cannot be shared with the test process's in-memory database."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO_ROOT

SETUP_USERS = """
from accounts import tokens
from accounts.models import User
from scans.models import Patient
staff = User.objects.create_user("uploader@example.org", "correct-horse-battery-staple", role="radiologist")
ids = [Patient.objects.create(mrn=f"MRN-CONC-{i}", full_name=f"Patient {i}").pk for i in range(4)]
print("KEY=" + tokens.issue(staff, "concurrency test")[1])
print("IDS=" + ",".join(map(str, ids)))
"""


def printed(output: str, name: str) -> str:
    """The value of a NAME=value line in a command's output."""
    return next(line.split("=", 1)[1].strip() for line in output.splitlines() if line.startswith(f"{name}="))


class PortalServer:
    def __init__(self, tmp: Path, port: int, database_url: str | None) -> None:
        self.port = port
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        self.env.update(DJANGO_SETTINGS_MODULE="portal.settings.dev", DJANGO_DEBUG="true", PORTAL_VAR_DIR=str(tmp),
                        PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.log_path = tmp / "server.log"
        self.proc: subprocess.Popen | None = None

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self) -> "PortalServer":
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", self.port)) != 0, f"port {self.port} is already in use"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                                     cwd=REPO_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self.log.close()
