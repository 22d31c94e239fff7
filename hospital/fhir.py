"""A FHIR R4 Bundle of a signed study: Patient, ImagingStudy, the AI suggestion and the
radiologist's finding as Observations, and the DiagnosticReport (status "final" for the first
signed version, "amended" after). Validated with fhir.resources (the R4B models: the
resources used here are the same in R4 4.0.1 and R4B 4.3.0).
"""
from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from hospital.results import FINDING_CODES, LOCAL_SCHEME
from scans.findings import class_label
from scans.models import Prediction, Review, Study

SNOMED = "http://snomed.info/sct"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
LOINC = "http://loinc.org"
SYSTEMS = {"SCT": SNOMED, "DCM": DCM, LOCAL_SCHEME: "urn:brain-mri-portal:codes"}
GENDERS = {"M": "male", "F": "female", "O": "other"}
MRN_SYSTEM = "urn:brain-mri-portal:mrn"


def _ref(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'brain-mri-portal:{kind}:{key}')}"


def _finding(label: str) -> dict:
    code = FINDING_CODES[label]
    return {"coding": [{"system": SYSTEMS[code.scheme_designator], "code": code.value, "display": code.meaning}],
            "text": class_label(label)}


def _patient(study: Study) -> dict:
    patient = study.patient
    resource: dict[str, Any] = {"resourceType": "Patient", "identifier": [{"system": MRN_SYSTEM, "value": patient.mrn}]}
    if patient.full_name:
        resource["name"] = [{"text": patient.full_name}]
    resource["gender"] = GENDERS.get(patient.sex.upper()[:1], "unknown")
    if patient.birth_date:
        resource["birthDate"] = patient.birth_date.isoformat()
    return resource


def _imaging_study(study: Study, refs: dict[str, str]) -> dict:
    series = []
    for s in study.series.order_by("series_number", "id"):
        item: dict[str, Any] = {"uid": s.series_instance_uid, "numberOfInstances": s.slices.count(),
                                "modality": {"system": DCM, "code": s.modality or "OT"}}
        if s.series_number is not None:
            item["number"] = s.series_number
        if s.description:
            item["description"] = s.description
        series.append(item)
    resource = {
        "resourceType": "ImagingStudy", "status": "available", "subject": {"reference": refs["patient"]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{study.study_instance_uid}"}],
        "modality": [{"system": DCM, "code": study.modality or "MR"}],
        "numberOfSeries": len(series), "numberOfInstances": sum(s["numberOfInstances"] for s in series),
        "series": series,
    }
    if study.study_date:
        resource["started"] = study.study_date.isoformat()
    if study.description:
        resource["description"] = study.description
    return resource


def _ai_observation(prediction: Prediction, refs: dict[str, str]) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "code": {"text": "AI suggestion: brain tumour classification"},
        "subject": {"reference": refs["patient"]}, "derivedFrom": [{"reference": refs["imaging"]}],
        "method": {"text": f"{prediction.model_name} {prediction.model_version}"},
        "device": {"display": f"{prediction.model_name} (version {prediction.model_version})"},
        "component": [{"code": {"coding": [{"system": DCM, "code": "122157", "display": "Probability"}]},
                       "valueQuantity": {"value": round(float(prediction.confidence), 4), "unit": "1",
                                         "system": "http://unitsofmeasure.org", "code": "1"}}],
        "issued": prediction.created_at.isoformat(),
    }
    if prediction.is_brain_mri and prediction.label in FINDING_CODES:
        resource["valueCodeableConcept"] = _finding(prediction.label)
    else:
        resource["dataAbsentReason"] = {"text": prediction.out_of_scope_reason or "no AI class"}
    return resource


def _radiologist_observation(review: Review, refs: dict[str, str]) -> dict:
    author = review.author
    resource: dict[str, Any] = {
        "resourceType": "Observation", "status": "final" if review.version == 1 else "amended",
        "code": {"text": "Radiologist finding"}, "subject": {"reference": refs["patient"]},
        "valueCodeableConcept": _finding(review.final_class),
        "performer": [{"display": author.full_name or author.email}],
        "method": {"text": "AI suggestion confirmed" if review.decision == "confirm" else "AI suggestion overridden"},
        "issued": review.signed_at.isoformat(), "derivedFrom": [{"reference": refs["imaging"]}],
    }
    if review.reason:
        resource["note"] = [{"text": f"Reason: {review.reason}"}]
    return resource


def _report(study: Study, review: Review, refs: dict[str, str], results: list[str]) -> dict:
    author = review.author
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "status": "final" if review.version == 1 else "amended",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"coding": [{"system": LOINC, "code": "24590-2", "display": "MR Brain"}]},
        "subject": {"reference": refs["patient"]}, "issued": review.signed_at.isoformat(),
        "resultsInterpreter": [{"display": author.full_name or author.email}],
        "imagingStudy": [{"reference": refs["imaging"]}], "result": [{"reference": r} for r in results],
        "conclusion": review.report_text or class_label(review.final_class),
        "conclusionCode": [_finding(review.final_class)],
        "identifier": [{"system": "urn:brain-mri-portal:report", "value": f"{study.pk}-v{review.version}"}],
    }
    if study.study_date:
        resource["effectiveDateTime"] = study.study_date.isoformat()
    return resource


def study_bundle(study: Study, review: Review) -> Bundle:
    """The Bundle of a signed version of the study's report (raises if it is not valid FHIR)."""
    key = f"{study.pk}"
    refs = {"patient": _ref("patient", str(study.patient_id)), "imaging": _ref("imaging", key)}
    entries = [(refs["patient"], _patient(study)), (refs["imaging"], _imaging_study(study, refs))]
    results = []
    if review.prediction is not None:
        results.append(_ref("ai", f"{review.prediction_id}"))
        entries.append((results[-1], _ai_observation(review.prediction, refs)))
    results.append(_ref("finding", f"{study.pk}-v{review.version}"))
    entries.append((results[-1], _radiologist_observation(review, refs)))
    report_ref = _ref("report", f"{study.pk}-v{review.version}")
    entries.append((report_ref, _report(study, review, refs, results)))
    return Bundle.model_validate({"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"fullUrl": url, "resource": res} for url, res in entries]})
