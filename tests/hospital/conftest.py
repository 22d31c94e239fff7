"""A real PACS for the hospital-integration tests: Debian's Orthanc, started per test with its
own configuration, storage and ports (7170-7179 belong to these tests), and dcmtk's
echoscu/storescu as the scanner. The listener runs in-process on its own threads."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

LISTENER_PORT = 7170
ORTHANC_DICOM_PORT = 7171
ORTHANC_HTTP_PORT = 7172
LISTENER_AE = "BRAINPORTAL"
ORTHANC_AE = "ORTHANC17"
SERIES_48 = "dicom/brain-dwi-sagittal-48"


def tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        skip_or_fail(f"{name} is not installed (apt packages orthanc, dcmtk, dicom3tools)")
    return path


class Orthanc:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "orthanc.json"
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{ORTHANC_HTTP_PORT}"
        (root / "db").mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps({
            "Name": "portal-tests", "StorageDirectory": str(root / "db"), "IndexDirectory": str(root / "db"),
            "HttpPort": ORTHANC_HTTP_PORT, "DicomPort": ORTHANC_DICOM_PORT, "DicomAet": ORTHANC_AE,
            "HttpBindAddress": "127.0.0.1", "DicomBindAddress": "127.0.0.1", "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "Plugins": [], "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True, "StableAge": 1,
            "DicomModalities": {"portal": [LISTENER_AE, "127.0.0.1", LISTENER_PORT]},
        }))

    def start(self) -> "Orthanc":
        log = open(self.root / "orthanc.log", "ab")
        self.proc = subprocess.Popen([tool("Orthanc"), str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError((self.root / "orthanc.log").read_text()[-2000:])
                time.sleep(0.2)
        raise AssertionError("Orthanc did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None
        deadline = time.monotonic() + 20  # until nothing answers on its DICOM port any more
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ORTHANC_DICOM_PORT), timeout=1).close()
            except OSError:
                return
            time.sleep(0.2)
        raise AssertionError(f"something still listens on port {ORTHANC_DICOM_PORT} after Orthanc stopped")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body

    def post(self, path: str, data: bytes, content_type: str = "application/json"):
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=120) as response:
            body = response.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body


@pytest.fixture
def orthanc(tmp_path):
    tool("Orthanc")
    server = Orthanc(tmp_path / "orthanc").start()
    yield server
    server.stop()


@pytest.fixture
def series_48(shared_data) -> Path:
    folder = shared_data / SERIES_48
    if not folder.is_dir():
        skip_or_fail(f"{folder} is missing")
    return folder


@pytest.fixture
def listener(transactional_db, settings, tmp_path):
    """The portal's listener on 127.0.0.1:7170 with a fresh spool folder."""
    from portal.workflow.dicom_in import make_listener

    settings.DICOM_ALLOWED_CALLERS = []
    server = make_listener(port=LISTENER_PORT, bind="127.0.0.1", spool_dir=tmp_path / "spool", quiet_seconds=30)
    server.start()
    yield server
    server.stop()


def wait_until(predicate, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
