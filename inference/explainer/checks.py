"""Checks a language model's text must pass before it may be drafted for a patient.

They are deliberately strict: a false alarm costs only a fall-back to the reviewed offline
text (and a flag for the radiologist), while a miss could put a wrong finding or a dosing
instruction in front of a patient.

- agreement: the text names the final class, and names no other class (nor says "no tumour"
  when there is one); a text for images that could not be assessed says so and names no
  class at all;
- length: between MIN_CHARS and MAX_CHARS characters;
- no treatment or dosage instructions: no drug names, amounts (mg, ml, units…), doses,
  tablets, "take …", schedules or "you should start/stop treatment"; the text may only send
  the patient to their doctor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from inference.explainer.payload import ExplanationPayload

MIN_CHARS = 200
MAX_CHARS = 2400

_I = re.IGNORECASE

_NO_TUMOUR = (
    r"\bno (?:signs? of (?:a |any )?)?(?:brain )?tumou?rs?\b"
    r"|\b(?:did|does|do|could) not (?:show|find|see|reveal)\w*(?: any| a)?(?: signs? of)?(?: a| any)?(?: brain)? tumou?r"
    r"|\bnot? tumou?r (?:was|is|were) (?:found|seen|present)"
    r"|\bfree (?:of|from) (?:any )?tumou?rs?\b"
    r"|\btumou?r[- ]free\b"
)

# What counts as naming each class in a text.
CLASS_PATTERNS: dict[str, re.Pattern[str]] = {
    "glioma": re.compile(r"\b(?:glioma|glioblastoma|astrocytoma|oligodendroglioma|ependymoma)s?\b", _I),
    "meningioma": re.compile(r"\bmeningiomas?\b", _I),
    "pituitary": re.compile(r"\bpituitary\b|\b(?:macro|micro)?adenomas?\b|\bprolactinomas?\b", _I),
    "notumor": re.compile(_NO_TUMOUR, _I),
    # Not a class: the radiologist signed that the images could not be assessed.
    "unassessable": re.compile(r"\b(?:could not|cannot|can ?not|were not able to) be (?:assessed|used|read)\b", _I),
}

_DRUGS = (
    "dexamethasone|decadron|prednisone|prednisolone|methylprednisolone|hydrocortisone|"
    "temozolomide|temodar|lomustine|carmustine|procarbazine|vincristine|bevacizumab|avastin|"
    "levetiracetam|keppra|phenytoin|valproate|valproic|carbamazepine|lacosamide|lamotrigine|"
    "cabergoline|bromocriptine|octreotide|lanreotide|pasireotide|levothyroxine|"
    "ibuprofen|paracetamol|acetaminophen|aspirin|codeine|morphine|"
    "steroids?|corticosteroids?|anticonvulsants?|antiepileptics?|painkillers?"
)

TREATMENT_PATTERNS: dict[str, re.Pattern[str]] = {
    "amount": re.compile(
        r"\b\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|μg|g|ml|iu|units?|milligrams?|micrograms?|grams?|millilit(?:er|re)s?|gy|grays?)\b",
        _I,
    ),
    "dose": re.compile(r"\b(?:dose|doses|dosage|dosages|dosing|overdose)\b", _I),
    "take": re.compile(r"\b(?:take|takes|taking|took)\b", _I),
    "form": re.compile(r"\b(?:tablets?|pills?|capsules?|injections?|infusions?)\b", _I),
    "schedule": re.compile(
        r"\b(?:once|twice|three times|four times|\d+ times) (?:a|per|each) (?:day|week|month)\b|\bdaily\b|\bevery \d+ hours\b",
        _I,
    ),
    "prescription": re.compile(r"\b(?:prescribe|prescribes|prescribed|prescription|prescriptions)\b", _I),
    "drug": re.compile(rf"\b(?:{_DRUGS})\b", _I),
    "instruction": re.compile(
        r"\byou (?:should|must|need to|have to|will need to|ought to) (?:start|stop|begin|have|get|undergo|avoid|use)\b"
        r"|\b(?:start|stop|begin|avoid) (?:taking |using )?(?:your )?(?:medicines?|medications?|drugs?|treatment|chemo\w*|radiation|radiotherapy)\b",
        _I,
    ),
}


@dataclass(frozen=True)
class CheckFailure:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def mentioned_classes(text: str) -> set[str]:
    return {cls for cls, pattern in CLASS_PATTERNS.items() if pattern.search(text)}


def finding_problems(text: str, final_class: str) -> list[CheckFailure]:
    """The agreement rule, alone: the text names `final_class` and no other finding. Used on
    a model's text here and on the text a radiologist approves at sign-off."""
    named = mentioned_classes(text or "")
    failures: list[CheckFailure] = []
    if final_class not in named:
        failures.append(CheckFailure("class_missing", f"does not name the final class {final_class}"))
    others = sorted(named - {final_class})
    if others:
        failures.append(CheckFailure("class_conflict", f"names another class: {', '.join(others)}"))
    return failures


def check_text(text: str, payload: ExplanationPayload) -> list[CheckFailure]:
    """All problems with `text` as an explanation of `payload` (empty when it passes)."""
    failures: list[CheckFailure] = []
    stripped = (text or "").strip()
    if len(stripped) < MIN_CHARS:
        failures.append(CheckFailure("too_short", f"{len(stripped)} characters, at least {MIN_CHARS} needed"))
    if len(stripped) > MAX_CHARS:
        failures.append(CheckFailure("too_long", f"{len(stripped)} characters, at most {MAX_CHARS} allowed"))

    failures += finding_problems(stripped, payload.final_class)

    for code, pattern in TREATMENT_PATTERNS.items():
        match = pattern.search(stripped)
        if match:
            failures.append(CheckFailure("treatment", f"treatment or dosage wording ({code}): {match.group(0)!r}"))
    return failures
