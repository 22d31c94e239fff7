"""Payload allowlist, offline texts (reading level, checks) and the output checks."""
from dataclasses import FrozenInstanceError, fields
from itertools import product

import pytest

from inference.explainer.checks import CLASS_PATTERNS, MAX_CHARS, check_text, mentioned_classes
from inference.explainer.offline import QUESTIONS, offline_text
from inference.explainer.payload import CONFIDENCE_BANDS, FINDINGS, TUMOUR_CLASSES, ExplanationPayload, confidence_band
from inference.explainer.prompt import render_prompt
from scans.findings import TUMOUR_CLASSES as MODEL_CLASSES
from tests.explanations.readability import flesch_kincaid_grade

ALL_PAYLOADS = [
    ExplanationPayload(cls, band, overridden, "en")
    for cls, band, overridden in product(TUMOUR_CLASSES, CONFIDENCE_BANDS, (False, True))
]


def test_payload_has_exactly_the_allowlisted_fields():
    assert [f.name for f in fields(ExplanationPayload)] == ["final_class", "confidence_band", "overridden", "language"]
    assert tuple(TUMOUR_CLASSES) == tuple(MODEL_CLASSES)
    assert set(CLASS_PATTERNS) == set(FINDINGS)


def test_payload_cannot_carry_anything_else():
    payload = ExplanationPayload("glioma", "high", False, "en")
    with pytest.raises(TypeError):
        ExplanationPayload("glioma", "high", False, "en", "Alice Patient")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ExplanationPayload("glioma", "high", False, language="en", name="Alice")  # type: ignore[call-arg]
    with pytest.raises((FrozenInstanceError, AttributeError, TypeError)):
        payload.patient_name = "Alice"  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError):
        payload.final_class = "meningioma"  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"final_class": "MRN-12345"},
        {"final_class": "glioma in Alice Patient"},
        {"confidence_band": "0.93"},
        {"overridden": "yes"},
        {"language": "en; patient Alice Patient born 1950-01-01"},
    ],
)
def test_payload_refuses_free_text_values(kwargs):
    values = {"final_class": "glioma", "confidence_band": "high", "overridden": False, "language": "en"} | kwargs
    with pytest.raises(ValueError):
        ExplanationPayload(**values)


@pytest.mark.parametrize(
    ("confidence", "band"),
    [(0.99, "high"), (0.90, "high"), (0.8999, "moderate"), (0.70, "moderate"), (0.69, "low"), (0.0, "low"), (None, "unknown")],
)
def test_confidence_band(confidence, band):
    assert confidence_band(confidence) == band


def test_confidence_band_refuses_out_of_range():
    with pytest.raises(ValueError):
        confidence_band(1.5)


@pytest.mark.parametrize("payload", ALL_PAYLOADS, ids=lambda p: f"{p.final_class}-{p.confidence_band}-{p.decision}")
def test_every_offline_text_reads_at_grade_8_or_below_and_passes_the_checks(payload):
    text = offline_text(payload)
    grade = flesch_kincaid_grade(text)
    assert grade <= 8.0, f"Flesch-Kincaid grade {grade} > 8 for {payload}"
    assert check_text(text, payload) == []
    assert "discuss" in text.lower() and "doctor" in text.lower()
    for question in QUESTIONS[payload.final_class]:
        assert str(question) in text


def test_offline_texts_differ_by_band_and_decision():
    texts = {offline_text(p) for p in ALL_PAYLOADS}
    assert len(texts) == len(ALL_PAYLOADS)
    overridden = offline_text(ExplanationPayload("meningioma", "high", True))
    assert "did not agree" in overridden and "radiologist" in overridden


def test_readability_measure_is_not_vacuous():
    hard = (
        "Histopathological characterisation necessitates immunohistochemical evaluation of "
        "oligodendroglial differentiation, notwithstanding radiological indeterminacy."
    )
    assert flesch_kincaid_grade(hard) > 8


GOOD = offline_text(ExplanationPayload("glioma", "moderate", False))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (GOOD.replace("glioma", "meningioma"), "class_missing"),
        (GOOD + "\nIt could also be a meningioma.", "class_conflict"),
        (GOOD + "\nThere is also a pituitary adenoma.", "class_conflict"),
        (GOOD.replace("This may include a biopsy.", "No tumour was found."), "class_conflict"),
        (GOOD + "\nTake 4 mg of dexamethasone twice a day.", "treatment"),
        (GOOD + "\nYour dose will be set by the team.", "treatment"),
        (GOOD + "\nYou should start chemotherapy soon.", "treatment"),
        (GOOD + "\nSteroid tablets can help with swelling.", "treatment"),
        (GOOD + "\nThe usual amount is 150 mg/m2.", "treatment"),
        ("You have a glioma. Ask your doctor.", "too_short"),
        (GOOD + "\n" + "Please discuss this glioma with your doctor. " * 60, "too_long"),
    ],
)
def test_checks_catch_bad_texts(text, code):
    failures = check_text(text, ExplanationPayload("glioma", "moderate", False))
    assert code in {f.code for f in failures}, failures


def test_checks_accept_a_good_text_and_no_tumour_phrasing():
    assert check_text(GOOD, ExplanationPayload("glioma", "moderate", False)) == []
    assert len(GOOD) < MAX_CHARS
    assert mentioned_classes("The scan did not show any tumour.") == {"notumor"}
    assert mentioned_classes("Your scan shows no tumor.") == {"notumor"}
    assert mentioned_classes("A growth in the pituitary gland.") == {"pituitary"}


def test_prompt_is_rendered_from_the_payload_only():
    prompt = render_prompt(ExplanationPayload("pituitary", "low", True, "en"))
    assert '"finding": "pituitary tumour"' in prompt
    assert '"radiologist_decision": "overridden"' in prompt
    assert "Do not give any treatment, medicine, drug or dose advice" in prompt
    assert "Do not say what the computer tool suggested" in prompt
    confirmed = render_prompt(ExplanationPayload("pituitary", "low", False, "en"))
    assert "not very sure" in confirmed
