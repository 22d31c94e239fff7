"""import_scans and the import service on real and generated DICOM, JPEG and PNG."""
from __future__ import annotations

import io
import json

import numpy as np
import pydicom
import pytest
from django.core.management import CommandError, call_command

from scans import imaging
from scans.errors import PatientMismatch, UidConflict
from scans.ingest import import_files
from scans.models import Patient, Series, Slice, Study
from tests.factories import make_patient
from tests.ingest import builders as b
from tests.ingest.conftest import stored_files

pytestmark = pytest.mark.django_db


def _run(*args) -> tuple[list[str], dict]:
    out = io.StringIO()
    call_command("import_scans", *args, "--no-process", stdout=out)
    lines = out.getvalue().strip().splitlines()
    return lines, json.loads(lines[-1])


def test_sagittal_48_series_imports_in_geometric_order(shared_data, media):
    folder = shared_data / "dicom" / "brain-dwi-sagittal-48"
    lines, summary = _run(str(folder), "--patient", "X", "--create-patient")
    assert len(lines) > 48  # progress lines before the JSON
    assert len(summary["studies"]) == 1
    assert len(summary["studies"][0]["series"]) == 1
    assert summary["studies"][0]["series"][0]["slices"] == 48
    assert [r["file"] for r in summary["rejected"]] == ["LICENSE"]
    series = Series.objects.get()
    assert series.study.patient.mrn == "X"
    slices = list(series.ordered_slices())
    assert [s.order_index for s in slices] == list(range(48))
    # Strictly monotonic along the slice normal, recomputed from the stored files themselves.
    normal_positions = []
    for sl in slices:
        with sl.file.open("rb") as handle:
            ds = pydicom.dcmread(handle, stop_before_pixels=True)
        row, col = np.array(ds.ImageOrientationPatient[:3], float), np.array(ds.ImageOrientationPatient[3:], float)
        normal_positions.append(float(np.dot(np.array(ds.ImagePositionPatient, float), np.cross(row, col))))
        assert sl.slice_location == pytest.approx(normal_positions[-1])
    diffs = np.diff(normal_positions)
    assert np.all(diffs > 0) or np.all(diffs < 0)
    # Re-import adds nothing.
    _, again = _run(str(folder), "--patient", "X", "--allow-mismatch")
    assert again["studies"][0]["series"][0]["slices"] == 48
    assert Slice.objects.count() == 48 and Series.objects.count() == 1 and Study.objects.count() == 1
    assert len(stored_files(media)) == 48


def test_transfer_syntaxes_all_decode_to_identical_pixels(shared_data, media):
    folder = shared_data / "dicom" / "transfer-syntaxes"
    _, summary = _run(str(folder), "--patient", "crlab", "--create-patient")
    assert summary["studies"][0]["series"][0]["slices"] == 9
    slices = list(Slice.objects.order_by("original_filename"))
    assert [s.original_filename for s in slices] == [f"{i}.dcm" for i in range(1, 10)]
    reference = imaging.slice_pixels(slices[0])
    raw_reference = pydicom.dcmread(folder / "1.dcm").pixel_array
    assert reference.shape == raw_reference.shape and reference.dtype == np.uint8
    for sl in slices[1:]:
        imaging.decoded_cache.clear()
        assert np.array_equal(imaging.slice_pixels(sl), reference), sl.original_filename
        # The modality values (before windowing) are identical too, not just the 8-bit view.
        with sl.file.open("rb") as handle:
            assert np.array_equal(pydicom.dcmread(handle).pixel_array, raw_reference)


def test_command_fails_cleanly_on_bad_input(tmp_path, media):
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"%PDF-1.7\n1 0 obj\n")
    with pytest.raises(CommandError, match=r"scan\.png: this is a PDF document"):
        _run(str(bad), "--patient", "NEW", "--create-patient")
    assert not Patient.objects.filter(mrn="NEW").exists()  # the new record rolled back too
    assert Study.objects.count() == 0 and stored_files(media) == []


def test_command_refuses_patient_mismatch_unless_allowed(tmp_path, media):
    make_patient(mrn="MRN-1")
    path = tmp_path / "a.dcm"
    path.write_bytes(b.dicom_bytes(patient_id="SOMEONE-ELSE"))
    with pytest.raises(CommandError, match=r"a\.dcm: the file's PatientID is 'SOMEONE-ELSE' but the chosen patient's MRN is 'MRN-1'"):
        _run(str(path), "--patient", "MRN-1")
    _, summary = _run(str(path), "--patient", "MRN-1", "--allow-mismatch")
    assert summary["studies"][0]["series"][0]["slices"] == 1


def test_zip_of_series_via_command(tmp_path, media):
    make_patient(mrn="MRN-TEST")
    archive = tmp_path / "cd.zip"
    archive.write_bytes(b.zip_bytes(b.series_files(6) + [("README.TXT", b"hello"), ("DICOMDIR", b.dicom_bytes())[:0] or ("notes.txt", b"x")]))
    _, summary = _run(str(archive), "--patient", "MRN-TEST")
    assert summary["studies"][0]["series"][0]["slices"] == 6
    assert {r["file"] for r in summary["rejected"]} == {"cd.zip/README.TXT", "cd.zip/notes.txt"}


def test_geometric_order_beats_instance_number_and_names(media):
    patient = make_patient(mrn="MRN-TEST")
    result = import_files(b.series_files(10), patient=patient)
    assert result.series_slices == {b.SERIES_UID: 10}
    slices = list(Series.objects.get().ordered_slices())
    locations = [s.slice_location for s in slices]
    assert locations == sorted(locations) and len(set(locations)) == 10
    assert [s.instance_number for s in slices] == list(range(10, 0, -1))


def test_fallback_instance_number_then_natural_name(media):
    patient = make_patient(mrn="MRN-TEST")
    files = [
        ("s10.dcm", b.dicom_bytes(position=None, instance_number=None, seed=1)),
        ("s2.dcm", b.dicom_bytes(position=None, instance_number=None, seed=2)),
        ("s1.dcm", b.dicom_bytes(position=None, instance_number=None, seed=3)),
        ("a.dcm", b.dicom_bytes(position=None, instance_number=2, seed=4)),
        ("b.dcm", b.dicom_bytes(position=None, instance_number=1, seed=5)),
    ]
    import_files(files, patient=patient)
    names = [s.original_filename for s in Series.objects.get().ordered_slices()]
    assert names == ["b.dcm", "a.dcm", "s1.dcm", "s2.dcm", "s10.dcm"]


def test_png_and_jpeg_form_one_series_in_natural_order_with_generated_uids(media):
    patient = make_patient()
    files = [("img10.png", b.png_bytes(value=10)), ("img2.jpg", b.jpeg_bytes()), ("img1.png", b.png_bytes(value=1))]
    result = import_files(files, patient=patient)
    series = Series.objects.get()
    assert [s.original_filename for s in series.ordered_slices()] == ["img1.png", "img2.jpg", "img10.png"]
    from pydicom.uid import UID

    assert UID(series.series_instance_uid).is_valid and UID(series.study.study_instance_uid).is_valid
    assert len({s.sop_instance_uid for s in series.slices.all()}) == 3
    colour = series.slices.get(original_filename="img2.jpg")
    assert imaging.slice_pixels(colour).ndim == 2  # colour JPEG imports, shown as grey
    again = import_files(files, patient=patient)
    assert again.new_slice_ids == [] and Slice.objects.count() == 3
    assert len(result.new_slice_ids) == 3


def test_multiframe_monochrome1_rescale_and_window(media):
    patient = make_patient(mrn="MRN-TEST")
    frames = np.stack([np.full((8, 8), v, np.uint16) for v in (100, 200, 300)])
    frames[:, 0, 0] = 0
    ds = b.make_dataset(pixels=frames, NumberOfFrames=3, RescaleSlope=2, RescaleIntercept=-100,
                        WindowCenter=300, WindowWidth=200, PhotometricInterpretation="MONOCHROME1")
    import_files([("mf.dcm", b.to_bytes(ds))], patient=patient)
    slices = list(Slice.objects.order_by("frame_index"))
    assert [s.frame_index for s in slices] == [0, 1, 2]
    assert len({s.file.name for s in slices}) == 1  # one stored file, three slices
    assert slices[0].window_center == 300 and slices[0].window_width == 200
    # frame values after rescale: 100, 300, 500; window 300±100; MONOCHROME1 inverts.
    values = [int(imaging.slice_pixels(s)[4, 4]) for s in slices]
    assert values[0] == 255 and values[2] == 0 and 120 < values[1] < 135
    # An explicit window/level from a viewer wins.
    png = imaging.render_png(slices[1], window_center=300, window_width=4000)
    from PIL import Image

    assert abs(int(np.asarray(Image.open(io.BytesIO(png)))[4, 4]) - 127) <= 2


def test_voi_lut_sequence_applies_when_no_window(media):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    patient = make_patient(mrn="MRN-TEST")
    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 8]
    lut.LUTData = [0, 50, 100, 255]
    lut["LUTData"].VR = "US"
    pixels = np.array([[0, 1], [2, 3]], np.uint16)
    ds = b.make_dataset(pixels=pixels)
    ds.VOILUTSequence = Sequence([lut])
    import_files([("lut.dcm", b.to_bytes(ds))], patient=patient)
    out = imaging.slice_pixels(Slice.objects.get())
    assert out.tolist() == [[0, 50], [100, 255]]


def test_dicomdir_and_non_image_objects_are_skipped_with_reason(media):
    from pydicom.uid import BasicTextSRStorage

    patient = make_patient(mrn="MRN-TEST")
    sr = b.make_dataset()
    del sr.PixelData, sr.Rows, sr.Columns
    sr.SOPClassUID = BasicTextSRStorage
    sr.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    from pydicom.sequence import Sequence

    dicomdir = b.make_dataset()
    del dicomdir.PixelData, dicomdir.Rows, dicomdir.Columns
    dicomdir.SOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.DirectoryRecordSequence = Sequence([])
    result = import_files(
        [("report.dcm", b.to_bytes(sr)), ("DICOMDIR", b.to_bytes(dicomdir)), ("ok.dcm", b.dicom_bytes())], patient=patient
    )
    reasons = {r["file"]: r["reason"] for r in result.rejected}
    assert "Basic Text SR Storage (1.2.840.10008.5.1.4.1.1.88.11) is not an image" in reasons["report.dcm"]
    assert "DICOMDIR" in reasons["DICOMDIR"]
    assert Slice.objects.count() == 1


def test_patient_mismatch_is_refused_with_clear_message(media):
    patient = make_patient(mrn="MRN-A")
    with pytest.raises(PatientMismatch) as info:
        import_files([("x.dcm", b.dicom_bytes(patient_id="MRN-B"))], patient=patient)
    assert info.value.filename == "x.dcm" and "MRN-B" in info.value.message and "MRN-A" in info.value.message
    assert Slice.objects.count() == 0 and stored_files(media) == []
    import_files([("x.dcm", b.dicom_bytes(patient_id="MRN-B"))], patient=patient, allow_mismatch=True)
    assert Slice.objects.count() == 1


def test_same_study_cannot_be_attached_to_a_second_patient(media):
    first, second = make_patient(mrn="MRN-TEST"), make_patient(mrn="OTHER")
    import_files([("a.dcm", b.dicom_bytes())], patient=first)
    with pytest.raises(UidConflict) as info:
        import_files([("b.dcm", b.dicom_bytes())], patient=second, allow_mismatch=True)
    assert "patient" not in info.value.message.replace("for this patient", "")
    assert Slice.objects.count() == 1 and len(stored_files(media)) == 1


def test_failure_midway_removes_files_already_written(media, monkeypatch):
    from scans import ingest_storage

    patient = make_patient(mrn="MRN-TEST")
    calls = {"n": 0}
    original = ingest_storage.StorageWriter.save

    def failing_save(self, item):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(self, item)

    monkeypatch.setattr(ingest_storage.StorageWriter, "save", failing_save)
    with pytest.raises(OSError):
        import_files(b.series_files(5), patient=patient)
    assert Slice.objects.count() == 0 and Series.objects.count() == 0 and Study.objects.count() == 0
    assert stored_files(media) == []


def test_load_display_pixels_for_loose_files(shared_data, tmp_path):
    path = shared_data / "dicom" / "transfer-syntaxes" / "9.dcm"
    pixels = imaging.load_display_pixels(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (384, 384)
    assert np.array_equal(pixels, imaging.load_display_pixels(path.read_bytes()))
    png = tmp_path / "x.png"
    png.write_bytes(b.png_bytes(value=77))
    assert int(imaging.load_display_pixels(png)[0, 0]) == 77


def test_enhanced_multiframe_geometry_from_functional_groups(media):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    patient = make_patient(mrn="MRN-TEST")
    frames = np.stack([np.full((8, 8), 10 * (i + 1), np.uint16) for i in range(4)])
    ds = b.make_dataset(pixels=frames, NumberOfFrames=4, position=None, orientation=None, instance_number=None)
    per_frame = []
    for z in (30.0, 10.0, 40.0, 20.0):  # frames stored out of spatial order
        position = Dataset()
        position.ImagePositionPatient = [0.0, 0.0, z]
        group = Dataset()
        group.PlanePositionSequence = Sequence([position])
        per_frame.append(group)
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared = Dataset()
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    import_files([("enhanced.dcm", b.to_bytes(ds))], patient=patient)
    slices = list(Series.objects.get().ordered_slices())
    assert [s.slice_location for s in slices] == [10.0, 20.0, 30.0, 40.0]
    assert [s.frame_index for s in slices] == [1, 3, 0, 2]
    assert all(s.sop_instance_uid.endswith(f"#{s.frame_index}") for s in slices)
