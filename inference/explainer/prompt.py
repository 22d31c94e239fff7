"""The one user turn sent to a remote model: instructions followed by the payload.

Gemma served through the Gemini API refuses a system instruction, so the instructions travel
in the user turn for every provider (the OpenAI-compatible path does the same, which keeps the
two providers' behaviour comparable). The turn is rendered from the allowlisted payload only.
"""
from __future__ import annotations

import json

from inference.explainer.checks import MAX_CHARS, MIN_CHARS
from inference.explainer.offline import plain_name
from inference.explainer.payload import UNASSESSABLE, ExplanationPayload

LANGUAGE_NAMES = {"en": "English"}

_BAND_WORDS = {
    "high": "The computer tool was very sure of its own result.",
    "moderate": "The computer tool was fairly sure of its own result.",
    "low": "The computer tool was not very sure of its own result.",
    "unknown": "The computer tool did not give a usable result.",
}

INSTRUCTIONS = """\
You write short, kind explanations of brain MRI results for patients.
A radiologist (a doctor who reads scans) has already checked this result and will approve your text before the patient sees it.

Write for a reader at a 6th to 8th grade reading level. Use short sentences and everyday words.
Write in {language}. Write plain text only: no Markdown, no headings with # or *, no tables, no links.
Keep it between {min_words} and {max_words} words.

Cover three things:
1. What the scan shows. Use the exact words "{term}" for the finding.
2. What this result means, in general terms.
3. Three to five questions the patient could ask their doctor, one per line, each starting with "- ".

{decision_rule}

Rules you must follow:
- Talk only about the finding "{term}". Do not name or compare any other kind of tumour or growth.
- Do not give any treatment, medicine, drug or dose advice. Do not tell the patient to start, stop or use anything. Do not mention tablets, amounts or schedules.
- Do not guess how long anyone will live, and do not give survival numbers.
- Do not invent details such as size, place, grade or symptoms.
- For anything about care or next steps, say to discuss it with their doctor.

The result (this is all you know about the patient):
{payload}
"""

# Images a radiologist could not assess: the text must say so plainly and name nothing.
UNASSESSABLE_INSTRUCTIONS = """\
You write short, kind messages for patients about their brain MRI.
A radiologist (a doctor who reads scans) looked at the images from this visit and could not assess them: they could not be used to give a result. The radiologist will approve your text before the patient sees it.

Write for a reader at a 6th to 8th grade reading level. Use short sentences and everyday words.
Write in {language}. Write plain text only: no Markdown, no headings with # or *, no tables, no links.
Keep it between {min_words} and {max_words} words.

Cover three things:
1. Say plainly that the images "could not be assessed". Use these exact words.
2. Say that their care team will contact them about the next steps, and that they may need new images.
3. Three to five questions the patient could ask their doctor, one per line, each starting with "- ".

Rules you must follow:
- Do not name, suggest or rule out any finding, disease, tumour or growth. Do not say whether anything was or was not found.
- Do not describe the images, and do not guess why they could not be used.
- Do not give any treatment, medicine, drug or dose advice. Do not mention tablets, amounts or schedules.
- For anything about care or next steps, say to discuss it with their doctor.

The result (this is all you know about the patient):
{payload}
"""

_OVERRIDDEN = (
    "A computer tool first suggested a different result, but the radiologist did not agree and chose "
    "this finding. Say kindly that the radiologist's result is the one that counts. Do not say what the "
    "computer tool suggested."
)
_CONFIRMED = "The radiologist agreed with the computer tool's result. {band}"


def render_prompt(payload: ExplanationPayload) -> str:
    term = plain_name(payload.final_class)
    common = dict(
        language=LANGUAGE_NAMES.get(payload.language, payload.language),
        # Roughly 6 characters a word, so the word range sits inside the checked character range.
        min_words=max(60, MIN_CHARS // 3),
        max_words=min(300, MAX_CHARS // 7),
    )
    if payload.final_class == UNASSESSABLE:
        body = {"finding": term, "finding_code": payload.final_class, "language": payload.language}
        return UNASSESSABLE_INSTRUCTIONS.format(**common, payload=json.dumps(body, indent=2, ensure_ascii=False))
    decision_rule = (
        _OVERRIDDEN if payload.overridden else _CONFIRMED.format(band=_BAND_WORDS[payload.confidence_band])
    )
    body = {
        "finding": term,
        "finding_code": payload.final_class,
        "computer_tool_confidence": payload.confidence_band,
        "radiologist_decision": payload.decision,
        "language": payload.language,
    }
    return INSTRUCTIONS.format(
        **common, term=term, decision_rule=decision_rule, payload=json.dumps(body, indent=2, ensure_ascii=False)
    )
