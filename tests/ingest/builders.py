"""Builders for DICOM/PNG/zip test inputs, good and hostile. Everything is generated in
memory, cheaply: bombs are small on disk and huge only when decoded."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from PIL import Image

STUDY_UID = "1.2.826.0.1.3680043.8.498.1001"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1002"


def make_dataset(
    *,
    rows: int = 32,
    columns: int = 32,
    pixels: np.ndarray | None = None,
    patient_id: str = "MRN-TEST",
    study_uid: str = STUDY_UID,
    series_uid: str = SERIES_UID,
    sop_uid: str | None = None,
    instance_number: int | None = 1,
    position: tuple | None = (0.0, 0.0, 0.0),
    orientation: tuple | None = (1, 0, 0, 0, 1, 0),
    seed: int = 0,
    **tags,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    sop_uid = sop_uid or generate_uid()
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = patient_id
    ds.PatientName = "Test^Patient"
    ds.Modality = "MR"
    ds.SeriesNumber = 1
    if instance_number is not None:
        ds.InstanceNumber = instance_number
    if position is not None:
        ds.ImagePositionPatient = list(position)
    if orientation is not None:
        ds.ImageOrientationPatient = list(orientation)
    if pixels is None:
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 1000, size=(rows, columns), dtype=np.uint16)
    ds.Rows, ds.Columns = pixels.shape[-2], pixels.shape[-1]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_bytes(**kwargs) -> bytes:
    return to_bytes(make_dataset(**kwargs))


def series_files(n: int = 8, *, shuffle_names: bool = True, **kwargs) -> list[tuple[str, bytes]]:
    """A series of n slices along z (positions 0, 2.5, 5 ...). File names are scrambled
    relative to position so ordering must come from geometry."""
    files = []
    for i in range(n):
        name = f"img{(i * 7919) % 1000:04d}.dcm" if shuffle_names else f"img{i:04d}.dcm"
        files.append(
            (name, dicom_bytes(instance_number=n - i, position=(0.0, 0.0, 2.5 * i), seed=i, sop_uid=f"1.2.826.0.1.3680043.8.498.2{i:03d}", **kwargs))
        )
    return files


def png_bytes(width: int = 16, height: int = 16, value: int = 100, mode: str = "L") -> bytes:
    image = Image.new(mode, (width, height), value if mode == "L" else (value, 50, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 16, height: int = 16, colour: bool = True) -> bytes:
    image = Image.new("RGB" if colour else "L", (width, height), (200, 30, 30) if colour else 80)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int) -> bytes:
    """A real, valid grayscale PNG of width×height black pixels, ~1/1000 of its decoded size,
    built cheaply: one block of 64 zero rows is deflated once, ended with a full flush (so it
    depends on nothing before it) and repeated; the Adler-32 is computed over the real data."""
    rows = b"\x00" * ((width + 1) * 64)  # 64 rows of (filter byte + pixels)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    block = compressor.compress(rows) + compressor.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(height, 64)
    tail_rows = b"\x00" * ((width + 1) * rest)
    tail = compressor.compress(tail_rows) + compressor.flush()
    adler = 1
    for _ in range(full):
        adler = zlib.adler32(rows, adler)
    adler = zlib.adler32(tail_rows, adler)
    idat = b"\x78\x9c" + block * full + tail + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def zip_bytes(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def zip_bomb(expanded_bytes: int = 512 * 1024 * 1024) -> bytes:
    """One entry of `expanded_bytes` zeros (~1000:1), written in streaming fashion."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("scan.dcm", "w", force_zip64=True) as entry:
            block = b"\x00" * (1024 * 1024)
            for _ in range(expanded_bytes // len(block)):
                entry.write(block)
    return buffer.getvalue()


def nested_sequence_dicom(depth: int) -> bytes:
    """A valid image whose header carries `depth` levels of undefined-length sequences,
    written byte by byte (pydicom's writer would itself recurse too deeply)."""
    base = dicom_bytes()
    ds = pydicom.dcmread(io.BytesIO(base))
    # Explicit VR little endian: (0040,A730) ContentSequence SQ, undefined length; item start
    # (FFFE,E000) undefined length; ... item delimiter (FFFE,E00D), sequence delimiter (FFFE,E0DD).
    sq_open = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\x00\x00" + struct.pack("<I", 0xFFFFFFFF)
    item_open = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    sq_close = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    nested = (sq_open + item_open) * depth + (item_close + sq_close) * depth
    # Insert the sequence where (0040,A730) belongs: after group 0028, before PixelData.
    pixel_tag = struct.pack("<HH", 0x7FE0, 0x0010) + b"OW"
    at = base.rindex(pixel_tag)
    del ds
    return base[:at] + nested + base[at:]


def raw_dicom_without_preamble() -> bytes:
    """The same data set with the 128-byte preamble and 'DICM' removed."""
    return dicom_bytes()[132:]


def raw_implicit_dataset_without_meta() -> bytes:
    """A bare implicit-VR data set: no preamble, no 'DICM', no file meta group."""
    ds = make_dataset()
    del ds.file_meta
    ds.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return buffer.getvalue()


def fresh_series(patient_id: str, n: int = 3) -> list[tuple[str, bytes]]:
    """A series of n slices with new Study/Series/SOP Instance UIDs each call, so several
    can be uploaded side by side."""
    study, series = generate_uid(), generate_uid()
    return [
        (f"{series[-8:]}-{i}.dcm", dicom_bytes(patient_id=patient_id, study_uid=study, series_uid=series,
                                                sop_uid=generate_uid(), instance_number=i + 1,
                                                position=(0.0, 0.0, 2.5 * i), seed=i))
        for i in range(n)
    ]
