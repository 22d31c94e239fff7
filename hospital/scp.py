"""The DICOM listener: a C-ECHO and C-STORE SCP built on pynetdicom.

- **Callers** are checked when the association is requested (`callers.caller_allowed`);
  an unknown AE title or host gets A-ASSOCIATE-RJ "calling AE title not recognised".
- **Each C-STORE** is validated like an uploaded file (scans.dicom.parse: header, UIDs,
  every frame decodes). A bad instance is refused with a failure status naming the problem,
  so the sender knows it was not stored. A good one is written to the spool folder
  (fsync, then an atomic rename) *before* the success status goes back: an instance the
  sender was told is stored survives an abrupt disconnect or a crash of this process.
- **Batches**: the instances of one association are handed over together (`on_batch`) when
  it ends (release, abort or a dropped connection), or when it has been quiet for
  DICOM_QUIET_SECONDS while still open. Never once per instance. Batches are handed over
  one at a time (a process-wide lock), so concurrent associations cannot race each other.
- Files left in the spool by a crash are handed over when the listener starts again. A batch
  that meets a transient error (database or storage away) waits in `retry/` and is handed over
  again every 30 s; one that fails for any other reason is kept in `failed/` and logged.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.db import InterfaceError, OperationalError
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import Verification

from scans import dicom
from scans.dicom_read import SkipFile
from scans.errors import ScanError

log = logging.getLogger(__name__)

# C-STORE failure statuses (PS3.4 B.2.3).
STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700
FAILED, RETRY = "failed", "retry"  # spool sub-folders: could not be filed / try again later
TRANSIENT = (OperationalError, InterfaceError, OSError)
SAFE_NAME = re.compile(r"[^0-9A-Za-z.#-]")


@dataclass
class Batch:
    """The instances one association delivered (so far)."""

    key: str
    calling_ae: str
    host: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    last_received: float = field(default_factory=time.monotonic)
    open: bool = True


BatchHandler = Callable[[list[Path], str], None]
CallerCheck = Callable[[str, str], bool]


class Listener:
    def __init__(self, *, ae_title: str, port: int, bind: str, spool_dir: Path, on_batch: BatchHandler,
                 caller_allowed: CallerCheck, quiet_seconds: float = 10.0, retry_seconds: float = 30.0) -> None:
        self.ae_title = ae_title
        self.port = port
        self.bind = bind
        self.spool_dir = Path(spool_dir)
        self.on_batch = on_batch
        self.caller_allowed = caller_allowed
        self.quiet_seconds = quiet_seconds
        self.retry_seconds = retry_seconds
        self.batches: dict[int, Batch] = {}
        self.lock = threading.Lock()  # guards self.batches
        self.ingest_lock = threading.Lock()  # one batch handed over at a time
        self.stopping = threading.Event()
        self.server = None
        self.ae: AE | None = None
        self.quiet_thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------

    def _ae(self) -> AE:
        ae = AE(ae_title=self.ae_title)
        ae.maximum_associations = 32
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 60
        ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        return ae

    def start(self) -> None:
        """Start serving in background threads (returns at once)."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.recover()
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, lambda event: STATUS_SUCCESS),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_CONN_CLOSE, self._on_closed),
        ]
        self.ae = self._ae()
        self.server = self.ae.start_server((self.bind, self.port), block=False, evt_handlers=handlers)
        self.quiet_thread = threading.Thread(target=self._quiet_loop, name="dicom-quiet", daemon=True)
        self.quiet_thread.start()
        log.info("DICOM listener %s on %s:%d", self.ae_title, self.bind, self.port)

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Wait until no association is open and every batch has been handed over."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = bool(self.ae and self.ae.active_associations) or bool(self.batches)
            if not busy and self.ingest_lock.acquire(timeout=0.1):
                self.ingest_lock.release()
                return True
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 120.0) -> None:
        """Stop accepting associations, let the open ones finish and be handed over."""
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        self.wait_idle(timeout)
        self.stopping.set()
        for key in list(self.batches):
            self._finish(key)

    def recover(self) -> None:
        """Hand over what an earlier run of the listener received but did not process."""
        for folder in sorted(p for p in self.spool_dir.iterdir() if p.is_dir() and p.name not in (FAILED, RETRY)):
            files = sorted(folder.glob("*.dcm"))
            if files:
                log.warning("listener: handing over %d instance(s) left in %s", len(files), folder)
                self._hand_over(files, folder.name.split("_", 1)[0], folder)
            shutil.rmtree(folder, ignore_errors=True)  # handed over, or moved to failed/ or retry/
        self.retry_held()

    # --- events -------------------------------------------------------------------------

    def _on_requested(self, event) -> None:
        requestor = event.assoc.requestor
        calling = str(requestor.primitive.calling_ae_title or "").strip()
        host = str(requestor.address)
        if not self.caller_allowed(calling, host):
            log.warning("listener: refused association from %s@%s", calling, host)
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent, service user, calling AE unknown
            event.assoc.kill()  # as pynetdicom does for its own rejections: the A-ASSOCIATE-RJ goes out first

    def _batch(self, event) -> Batch:
        key = id(event.assoc)
        with self.lock:
            batch = self.batches.get(key)
            if batch is None:
                requestor = event.assoc.requestor
                calling = str(requestor.ae_title).strip()
                name = f"{SAFE_NAME.sub('_', calling) or 'UNKNOWN'}_{uuid.uuid4().hex}"
                folder = self.spool_dir / name
                folder.mkdir(parents=True, exist_ok=True)
                batch = Batch(name, calling, str(requestor.address), folder)
                self.batches[key] = batch
            return batch

    def _on_store(self, event):
        batch = self._batch(event)
        data = event.encoded_dataset(include_meta=True)
        sop = str(event.request.AffectedSOPInstanceUID)
        try:
            dicom.parse(data, f"{sop}.dcm")
        except SkipFile as skip:
            return _failure(STATUS_CANNOT_UNDERSTAND, skip.reason)
        except ScanError as exc:
            return _failure(STATUS_CANNOT_UNDERSTAND, exc.message)
        path = batch.folder / f"{SAFE_NAME.sub('_', sop)[:120]}.dcm"
        try:
            _write_atomically(path, data)
        except OSError as exc:
            log.exception("listener: could not spool %s", sop)
            return _failure(STATUS_OUT_OF_RESOURCES, f"cannot store: {exc.strerror or exc}")
        with self.lock:
            batch.files[sop] = path
            batch.last_received = time.monotonic()
        return STATUS_SUCCESS

    def _on_closed(self, event) -> None:
        self._finish(id(event.assoc))

    # --- hand-over ----------------------------------------------------------------------

    def _take(self, key: int, *, close: bool) -> tuple[Batch | None, list[Path]]:
        with self.lock:
            batch = self.batches.get(key)
            if batch is None:
                return None, []
            files = list(batch.files.values())
            batch.files.clear()
            if close:
                self.batches.pop(key, None)
            return batch, files

    def _finish(self, key: int) -> None:
        batch, files = self._take(key, close=True)
        if batch is None:
            return
        if files:
            self._hand_over(files, batch.calling_ae, batch.folder)
        shutil.rmtree(batch.folder, ignore_errors=True)

    def _quiet_loop(self) -> None:
        last_retry = time.monotonic()
        while not self.stopping.wait(min(1.0, max(self.quiet_seconds / 4, 0.1))):
            now = time.monotonic()
            if now - last_retry >= self.retry_seconds:
                last_retry = now
                self.retry_held()
            with self.lock:
                quiet = [k for k, b in self.batches.items() if b.files and now - b.last_received >= self.quiet_seconds]
            for key in quiet:
                batch, files = self._take(key, close=False)
                if batch is not None and files:
                    self._hand_over(files, batch.calling_ae, batch.folder)

    def _hand_over(self, files: list[Path], calling_ae: str, folder: Path) -> None:
        with self.ingest_lock:
            try:
                self.on_batch(files, calling_ae)
            except TRANSIENT as exc:  # database or storage away: keep them and try again later
                kept = self._keep(files, self.spool_dir / RETRY / folder.name)
                log.warning("listener: %d instance(s) from %s not filed yet (%s); retried from %s", len(files),
                            calling_ae, exc, kept)
                return
            except Exception:  # noqa: BLE001 - keep the files, log, and go on serving
                kept = self._keep(files, self.spool_dir / FAILED / folder.name)
                log.exception("listener: %d instance(s) from %s could not be filed; kept in %s", len(files),
                              calling_ae, kept)
                return
        for path in files:
            path.unlink(missing_ok=True)

    @staticmethod
    def _keep(files: list[Path], target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        for path in files:
            if path.exists() and path.parent != target:
                os.replace(path, target / path.name)
        return target

    def retry_held(self) -> None:
        """Hand over again what a transient error (database, storage) held back."""
        root = self.spool_dir / RETRY
        for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
            files = sorted(folder.glob("*.dcm"))
            if files:
                self._hand_over(files, folder.name.split("_", 1)[0], folder)
            if not any(folder.iterdir()):
                folder.rmdir()


def _failure(status: int, comment: str) -> Dataset:
    rsp = Dataset()
    rsp.Status = status
    rsp.ErrorComment = comment[:64]
    return rsp


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
