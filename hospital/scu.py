"""The portal as a DICOM client: C-ECHO (the "test" button) and C-STORE of a result."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from hospital.models import RemoteNode

# C-STORE statuses worth trying again later (PS3.4 B.2.3: out of resources).
TRANSIENT_STATUSES = range(0xA700, 0xA800)


class PacsUnavailable(ConnectionError):
    """No association (PACS down, refused, timed out) or it ran out of resources: try later."""


class PacsRefused(ValueError):
    """The PACS refused the object itself: sending it again cannot help."""


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    message: str


def _ae() -> AE:
    ae = AE(ae_title=settings.DICOM_AE_TITLE)
    timeout = float(settings.DICOM_NETWORK_TIMEOUT_SECONDS)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    return ae


def echo(node: RemoteNode) -> EchoResult:
    ae = _ae()
    ae.add_requested_context(Verification)
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
    if not assoc.is_established:
        return EchoResult(False, "no association (rejected, aborted or unreachable)")
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    return EchoResult(code == 0, "C-ECHO succeeded" if code == 0 else f"C-ECHO failed (status {code})")


def store(node: RemoteNode, ds: Dataset) -> None:
    """C-STORE one object. Raises PacsUnavailable (retry later) or PacsRefused (permanent)."""
    ae = _ae()
    ae.add_requested_context(ds.SOPClassUID, [ExplicitVRLittleEndian])
    ae.add_requested_context(ds.SOPClassUID, [ImplicitVRLittleEndian])
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
    if not assoc.is_established:
        raise PacsUnavailable(f"{node.ae_title}@{node.host}:{node.port}: no association")
    try:
        accepted = {c.transfer_syntax[0] for c in assoc.accepted_contexts if c.abstract_syntax == ds.SOPClassUID}
        if not accepted:
            raise PacsRefused(f"{node.ae_title} does not accept {ds.SOPClassUID.name}")
        if ExplicitVRLittleEndian not in accepted:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        status = assoc.send_c_store(ds)
    finally:
        if assoc.is_established:
            assoc.release()
    code = getattr(status, "Status", None)
    if code is None:
        raise PacsUnavailable(f"{node.ae_title}: no C-STORE response")
    if code in TRANSIENT_STATUSES:
        raise PacsUnavailable(f"{node.ae_title}: C-STORE status 0x{code:04X} (out of resources)")
    if code not in (0x0000, 0xB000, 0xB006, 0xB007):  # success, or stored with a warning
        raise PacsRefused(f"{node.ae_title}: C-STORE refused with status 0x{code:04X} "
                          f"{getattr(status, 'ErrorComment', '')}".strip())
