"""De-identification for anything that leaves the portal: DICOM PS3.15 Annex E Basic
Application Level Confidentiality Profile (exports), plus a text redactor for free text
that leaves the portal (e.g. the LLM payload built by portal.workflow.explanations).

What `deidentify_dataset` does, in order:
1. Every attribute in BASIC_PROFILE gets its action: Z (empty), X (remove), D (dummy).
2. Every private tag is removed (the profile's default for private attributes), at every
   level of nesting; curve data (50xx) and overlay comments/activation labels go too.
3. Every remaining Person Name (PN) is emptied, at every level (a safety net for
   attributes the table does not name).
4. Every UID that is not a registered DICOM UID (SOP classes, transfer syntaxes and
   coding schemes are kept) is replaced by a new UID derived from a keyed hash of the old
   one, so references between instances stay consistent across one export and the next.
5. PatientIdentityRemoved = YES and the de-identification method are recorded.
Pixel data is kept unchanged (burned-in annotations are out of scope of the Basic profile
without the Clean Pixel Data option; MR images rarely carry them).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Iterable

from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, generate_uid

try:  # pydicom's table of registered UIDs
    from pydicom._uid_dict import UID_dictionary
except ImportError:  # pragma: no cover
    UID_dictionary = {}

DEID_METHOD = "PS3.15 E.1 Basic Application Level Confidentiality Profile"  # LO: 64 max

# PS3.15 Table E.1-1, Basic Profile column. Z: replace with a zero-length value;
# X: remove; D: replace with a dummy value (here: a fixed placeholder).
BASIC_PROFILE: dict[str, str] = {
    # Patient
    "PatientName": "D", "PatientID": "D", "PatientBirthDate": "Z", "PatientSex": "Z",
    "PatientBirthTime": "X", "PatientBirthName": "X", "PatientAge": "X", "PatientSize": "X",
    "PatientWeight": "X", "PatientAddress": "X", "PatientMotherBirthName": "X",
    "OtherPatientIDs": "X", "OtherPatientIDsSequence": "X", "OtherPatientNames": "X",
    "IssuerOfPatientID": "X", "PatientTelephoneNumbers": "X", "PatientReligiousPreference": "X",
    "PatientComments": "X", "PatientState": "X", "PatientInsurancePlanCodeSequence": "X",
    "PatientPrimaryLanguageCodeSequence": "X", "EthnicGroup": "X", "Occupation": "X",
    "SmokingStatus": "X", "AdditionalPatientHistory": "X", "PregnancyStatus": "X",
    "LastMenstrualDate": "X", "MedicalRecordLocator": "X", "MedicalAlerts": "X", "Allergies": "X",
    "CountryOfResidence": "X", "RegionOfResidence": "X", "MilitaryRank": "X", "BranchOfService": "X",
    "ResponsiblePerson": "X", "ResponsibleOrganization": "X", "PatientTransportArrangements": "X",
    "CurrentPatientLocation": "X", "PatientInstitutionResidence": "X", "ReferencedPatientSequence": "X",
    "ReferencedPatientPhotoSequence": "X", "PatientSexNeutered": "X", "PatientBreedDescription": "X",
    "ResponsiblePersonRole": "X",
    # Study / visit
    "StudyDate": "Z", "StudyTime": "Z", "AccessionNumber": "Z", "StudyID": "Z",
    "ReferringPhysicianName": "Z", "ReferringPhysicianAddress": "X", "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X", "StudyDescription": "X", "StudyComments": "X",
    "PhysiciansOfRecord": "X", "PhysiciansOfRecordIdentificationSequence": "X",
    "NameOfPhysiciansReadingStudy": "X", "PhysiciansReadingStudyIdentificationSequence": "X",
    "RequestingPhysician": "X", "RequestingService": "X", "ReasonForStudy": "X",
    "ReferencedStudySequence": "X", "AdmissionID": "X", "IssuerOfAdmissionIDSequence": "X",
    "AdmittingDiagnosesDescription": "X", "AdmittingDiagnosesCodeSequence": "X",
    "ServiceEpisodeID": "X", "ServiceEpisodeDescription": "X", "VisitComments": "X",
    "ConsultingPhysicianName": "X", "ConsultingPhysicianIdentificationSequence": "X",
    "RequestAttributesSequence": "X", "RequestedProcedureDescription": "X", "RequestedProcedureID": "X",
    "ScheduledProcedureStepDescription": "X", "ScheduledProcedureStepID": "X",
    "ScheduledPerformingPhysicianName": "X", "ScheduledStationName": "X", "ScheduledStudyLocation": "X",
    "PerformedProcedureStepID": "X", "PerformedProcedureStepStartDate": "X", "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepEndDate": "X", "PerformedProcedureStepEndTime": "X",
    "PerformedProcedureStepDescription": "X", "PerformedStationName": "X", "PerformedLocation": "X",
    "ReferencedPerformedProcedureStepSequence": "X", "ProcedureCodeSequence": "X",
    "OrderEntererLocation": "X", "OrderCallbackPhoneNumber": "X", "PlacerOrderNumberImagingServiceRequest": "X",
    "FillerOrderNumberImagingServiceRequest": "X", "InterpretationRecorder": "X", "InterpretationTranscriber": "X",
    "InterpretationText": "X", "InterpretationAuthor": "X", "ResultsIDIssuer": "X", "ResultsComments": "X",
    # Series / equipment / people
    "SeriesDate": "X", "SeriesTime": "X", "SeriesDescription": "X", "ProtocolName": "X",
    "OperatorsName": "X", "OperatorIdentificationSequence": "X", "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X", "InstitutionName": "X", "InstitutionAddress": "X",
    "InstitutionalDepartmentName": "X", "InstitutionCodeSequence": "X", "StationName": "X",
    "DeviceSerialNumber": "X", "DetectorID": "X", "GantryID": "X", "PlateID": "X", "CassetteID": "X",
    "DeviceUID": "X", "GeneratorID": "X", "SourceSerialNumber": "X",
    "HumanPerformerName": "X", "HumanPerformerOrganization": "X", "ActualHumanPerformersSequence": "X",
    "PersonName": "X", "PersonAddress": "X", "PersonTelephoneNumbers": "X", "PersonIdentificationCodeSequence": "X",
    "ContentCreatorName": "Z", "ContentCreatorIdentificationCodeSequence": "X", "VerifyingObserverName": "D",
    "VerifyingObserverIdentificationCodeSequence": "X", "VerifyingOrganization": "X", "AuthorObserverSequence": "X",
    "ParticipantSequence": "X", "CustodialOrganizationSequence": "X", "DistributionName": "X",
    "DistributionAddress": "X", "ContributionDescription": "X",
    # Instance-level dates and free text
    "AcquisitionDate": "X", "AcquisitionTime": "X", "AcquisitionDateTime": "X", "ContentDate": "Z",
    "ContentTime": "Z", "InstanceCreationDate": "X", "InstanceCreationTime": "X", "OverlayDate": "X",
    "OverlayTime": "X", "CurveDate": "X", "CurveTime": "X", "ImageComments": "X", "FrameComments": "X",
    "DerivationDescription": "X", "TextComments": "X", "TextString": "X", "AcquisitionComments": "X",
    "AcquisitionDeviceProcessingDescription": "X", "DigitalSignaturesSequence": "X",
    "ModifiedAttributesSequence": "X", "OriginalAttributesSequence": "X", "ContentSequence": "X",
    "SourceImageSequence": "X", "ReferencedImageSequence": "X", "IconImageSequence": "X",
    "StorageMediaFileSetUID": "X", "StorageMediaFileSetID": "X", "ClinicalTrialSponsorName": "X",
    "ClinicalTrialProtocolName": "X", "ClinicalTrialSiteName": "X", "ClinicalTrialSubjectID": "X",
    "ClinicalTrialSubjectReadingID": "X", "ClinicalTrialTimePointDescription": "X", "ClinicalTrialCoordinatingCenterName": "X",
    "DataSetTrailingPadding": "X", "PatientSpeciesDescription": "X",
}

DUMMY_VALUES = {"PatientName": "ANONYMOUS", "VerifyingObserverName": "ANONYMOUS"}
# Groups of repeating curve data and overlay text (Basic profile: remove).
_REPEATING_REMOVE = {(0x5000, None), (0x6000, 0x4000), (0x6000, 0x1500)}


def _key() -> bytes:
    return hashlib.sha256(("deid:" + settings.SECRET_KEY).encode()).digest()


def pseudonym(identifier: str, prefix: str = "ANON") -> str:
    """A stable pseudonym for a patient identifier (keyed hash: not reversible without the
    server's secret, the same every export)."""
    digest = hmac.new(_key(), identifier.encode("utf-8"), hashlib.sha256).hexdigest()[:16].upper()
    return f"{prefix}-{digest}"


class UidMapper:
    """Replaces UIDs consistently: the same original UID always gets the same new one."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        uid = str(uid).strip()
        if not uid or uid in UID_dictionary:
            return uid
        if uid not in self.mapping:
            self.mapping[uid] = str(generate_uid(entropy_srcs=[_key().hex(), uid]))
        return self.mapping[uid]


def _is_repeating_removed(tag: Any) -> bool:
    group = tag.group & 0xFF00
    for g, element in _REPEATING_REMOVE:
        if group == g and 0x5000 <= tag.group <= 0x60FF and (element is None or tag.element == element):
            return True
    return False


def _clean(ds: Dataset, uids: UidMapper) -> None:
    ds.remove_private_tags()
    for keyword, action in BASIC_PROFILE.items():
        if keyword not in ds:
            continue
        if action == "X":
            del ds[keyword]
        elif action == "Z":
            ds[keyword].value = "" if ds[keyword].VR != "SQ" else Sequence()
        elif action == "D":
            ds[keyword].value = DUMMY_VALUES.get(keyword, "ANONYMIZED")
    for elem in list(ds):
        if _is_repeating_removed(elem.tag):
            del ds[elem.tag]
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _clean(item, uids)
        elif elem.VR == "PN" and elem.keyword not in DUMMY_VALUES:
            elem.value = ""
        elif elem.VR == "UI" and elem.value:
            if elem.VM > 1:
                elem.value = [uids(v) for v in elem.value]
            else:
                elem.value = uids(elem.value)


def deidentify_dataset(ds: Dataset, *, uids: UidMapper | None = None, patient_pseudonym: str | None = None) -> Dataset:
    """De-identify `ds` in place (and return it)."""
    uids = uids or UidMapper()
    original_id = str(ds.get("PatientID", "") or "")
    _clean(ds, uids)
    ds.PatientID = patient_pseudonym or pseudonym(original_id or "unknown")
    ds.PatientName = DUMMY_VALUES["PatientName"]
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEID_METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = UID(uids(meta.MediaStorageSOPInstanceUID))
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle", "ReceivingApplicationEntityTitle"):
            if keyword in meta:
                del meta[keyword]
        meta.remove_private_tags()
    return ds


def redact_text(text: str, identifiers: Iterable[str], placeholder: str = "[redacted]") -> str:
    """Remove identifying strings (names, MRN, dates of birth) from free text that leaves
    the portal. Each identifier and, for names, each word of 3+ letters is matched
    case-insensitively as a whole word."""
    terms: set[str] = set()
    for identifier in identifiers:
        identifier = str(identifier or "").strip()
        if not identifier:
            continue
        terms.add(identifier)
        terms.update(w for w in re.split(r"[\s^,]+", identifier) if len(w) >= 3)
    for term in sorted(terms, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(term)}(?!\w)", placeholder, text, flags=re.IGNORECASE)
    return text


def patient_identifiers(patient: Any) -> list[str]:
    values = [patient.mrn, patient.full_name]
    if getattr(patient, "birth_date", None):
        values += [patient.birth_date.isoformat(), patient.birth_date.strftime("%Y%m%d"), patient.birth_date.strftime("%d/%m/%Y")]
    user = getattr(patient, "user", None)
    if user is not None:
        values += [user.email, user.full_name]
    return values
