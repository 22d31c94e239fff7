"""De-identification (PS3.15 Basic profile) with canary values in every identifying tag,
private tags included: no canary survives into the exported bytes; pixels are unchanged;
UIDs are replaced consistently."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from scans.deid import BASIC_PROFILE, UidMapper, deidentify_dataset, patient_identifiers, redact_text
from scans.ingest import import_files
from scans.models import Series
from tests.ingest import builders as b

CANARY = "CANARY"
TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UT", "UR"}
ORIGINAL_UIDS = ("1.2.826.0.1.3680043.8.498.777001", "1.2.826.0.1.3680043.8.498.777002", "1.2.826.0.1.3680043.8.498.777003")


def _canary_value(vr: str, n: int):
    if vr == "DA":
        return "19010101"
    if vr == "TM":
        return "010101"
    if vr == "DT":
        return "19010101010101"
    if vr in ("DS", "IS"):
        return "7777"
    if vr == "AS":
        return "077Y"
    if vr == "CS":
        return f"CANARY{n}"[:16]
    return f"{CANARY}-{n}"


def canary_dataset() -> Dataset:
    ds = b.make_dataset(
        study_uid=ORIGINAL_UIDS[0], series_uid=ORIGINAL_UIDS[1], sop_uid=ORIGINAL_UIDS[2], patient_id=f"{CANARY}-ID"
    )
    for n, (keyword, _action) in enumerate(BASIC_PROFILE.items()):
        tag = tag_for_keyword(keyword)
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr == "SQ":
            item = Dataset()
            item.CodeMeaning = f"{CANARY}-seq-{n}"
            item.PersonName = f"{CANARY}^Nested{n}"
            item.ReferencedSOPInstanceUID = ORIGINAL_UIDS[2]
            setattr(ds, keyword, Sequence([item]))
        elif vr in TEXT_VRS:
            setattr(ds, keyword, _canary_value(vr, n))
    # Private tags, at top level and nested.
    block = ds.private_block(0x0029, "CANARY CREATOR", create=True)
    block.add_new(0x10, "LO", f"{CANARY}-private")
    block.add_new(0x11, "OB", f"{CANARY}-binary-private".encode())
    nested = Dataset()
    nested_block = nested.private_block(0x0031, "OTHER CREATOR", create=True)
    nested_block.add_new(0x01, "LT", f"{CANARY}-nested-private")
    nested.CodeValue = "X1"
    ds.AnatomicRegionSequence = Sequence([nested])
    # A person name and a UID in a tag the table does not list.
    ds.EvaluatorName = f"{CANARY}^Evaluator"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.777004"
    return ds


def _bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_canaries_do_not_survive(settings):
    ds = canary_dataset()
    before = _bytes(ds)
    assert before.count(CANARY.encode()) > 100  # the canaries really are in the input
    pixels = ds.pixel_array.copy()
    deidentify_dataset(ds)
    after = _bytes(ds)
    assert CANARY.encode() not in after
    assert b"19010101" not in after and b"7777" not in after
    for uid in ORIGINAL_UIDS + ("1.2.826.0.1.3680043.8.498.777004",):
        assert uid.encode() not in after
    reread = pydicom.dcmread(io.BytesIO(after))
    assert np.array_equal(reread.pixel_array, pixels)
    assert reread.PatientIdentityRemoved == "YES"
    assert reread.PatientID.startswith("ANON-")
    assert reread.SOPClassUID == pydicom.uid.MRImageStorage  # registered UIDs are kept
    assert reread.file_meta.MediaStorageSOPInstanceUID == reread.SOPInstanceUID


def test_uids_are_replaced_consistently():
    mapper = UidMapper()
    first, second = canary_dataset(), canary_dataset()
    second.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.777099"
    deidentify_dataset(first, uids=mapper)
    deidentify_dataset(second, uids=mapper)
    assert first.StudyInstanceUID == second.StudyInstanceUID != ORIGINAL_UIDS[0]
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.PatientID == second.PatientID  # stable pseudonym
    # Same mapping in a later export (keyed hash, not random).
    third = canary_dataset()
    deidentify_dataset(third)
    assert third.StudyInstanceUID == first.StudyInstanceUID


def test_redact_text_for_llm_payloads():
    text = "Patient Alice Smith (MRN-ALICE, born 1980-02-03) has a scan. alice smith is well."
    identifiers = ["Alice Smith", "MRN-ALICE", "1980-02-03"]
    out = redact_text(text, identifiers)
    assert "Alice" not in out and "alice" not in out and "MRN-ALICE" not in out and "1980-02-03" not in out
    assert "has a scan" in out


@pytest.mark.django_db
def test_series_export_view_is_deidentified_and_staff_only(client, radiologist, patient_alice, media):
    patient = patient_alice.patient_record
    ds = canary_dataset()
    ds.PatientID = patient.mrn
    import_files([("canary.dcm", _bytes(ds))], patient=patient)
    series = Series.objects.get()
    url = reverse("scans:series_export", args=[series.pk])
    client.force_login(patient_alice)
    assert client.get(url).status_code == 404
    client.force_login(radiologist)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip" and "attachment" in response["Content-Disposition"]
    assert "private" in response["Cache-Control"]
    body = response.content
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        data = archive.read(names[0])
    assert names == ["series/0001.dcm"]
    assert CANARY.encode() not in data and patient.mrn.encode() not in data
    assert ORIGINAL_UIDS[0].encode() not in data
    assert pydicom.dcmread(io.BytesIO(data)).pixel_array.shape == (32, 32)
    from accounts.models import AuditEvent

    assert AuditEvent.objects.filter(action="series.export", object_id=str(series.pk)).exists()
    assert patient_identifiers(patient)[0] == patient.mrn
