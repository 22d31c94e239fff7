"""Texts written for patients, one for every class × confidence band × confirmed/overridden.

This is the default provider and the fallback for the remote ones: it needs no network and
always gives a checked, reviewed text. Every combination is scored for reading level in the
tests (Flesch-Kincaid grade ≤ 8 with textstat) and passes the same output checks as a
language model's text.

The pieces are wrapped in gettext so other languages can be added with Django's makemessages.
Sentences are short on purpose; keep them so when editing (the test will tell you).
"""
from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from inference.explainer.payload import UNASSESSABLE, ExplanationPayload

# How a patient reads the class name. Also what the output checks look for in a text.
PLAIN_NAMES = {
    "glioma": _("glioma"),
    "meningioma": _("meningioma"),
    "notumor": _("no tumour"),
    "pituitary": _("pituitary tumour"),
    UNASSESSABLE: _("images could not be assessed"),
}

# Headline shown on the patient's report page and in the PDF.
HEADLINES = {
    "glioma": _("Your scan shows a glioma."),
    "meningioma": _("Your scan shows a meningioma."),
    "notumor": _("Your scan shows no tumour."),
    "pituitary": _("Your scan shows a pituitary tumour."),
    UNASSESSABLE: _("Your images could not be assessed."),
}

FINDINGS = {
    "glioma": _(
        "A glioma is a growth that starts in the brain. It grows from the cells that support "
        "and protect nerve cells."
    ),
    "meningioma": _("A meningioma is a growth in the thin layers of tissue that cover the brain."),
    "notumor": _("The radiologist did not see signs of a brain tumour on these images."),
    "pituitary": _(
        "The pituitary is a small gland at the base of the brain. It makes hormones that help "
        "run many parts of the body. A pituitary tumour is a growth in this gland."
    ),
}

_RADIOLOGIST = _("A radiologist is a doctor who reads scans.")
_FINAL_SAY = _("The result on this page is the radiologist's. It is the one that counts.")

HOW_REACHED = {
    (False, "high"): _(
        "A computer tool looked at your scan first. It was very sure of this result. Then a "
        "radiologist checked the images and agreed."
    ),
    (False, "moderate"): _(
        "A computer tool looked at your scan first. It was fairly sure of this result. Then a "
        "radiologist checked the images and agreed."
    ),
    (False, "low"): _(
        "A computer tool looked at your scan first. It was not very sure. So a radiologist looked "
        "at the images with extra care, and agreed with this result."
    ),
    (False, "unknown"): _("A radiologist read your scan and wrote this report."),
    (True, "high"): _(
        "A computer tool looked at your scan first. It was sure of a different result. Then a "
        "radiologist checked the images with care and did not agree with the tool."
    ),
    (True, "moderate"): _(
        "A computer tool looked at your scan first. It was fairly sure of a different result. "
        "Then a radiologist checked the images with care and did not agree with the tool."
    ),
    (True, "low"): _(
        "A computer tool looked at your scan first. It was not sure, and it gave a different "
        "result. Then a radiologist checked the images with care and made the final call."
    ),
    (True, "unknown"): _(
        "A computer tool could not give a clear result for your scan. So a radiologist read the "
        "images and wrote this report."
    ),
}

MEANINGS = {
    "glioma": _(
        "There are many kinds of glioma. Some grow slowly. Others grow faster. A scan alone "
        "cannot tell which kind this is. Your care team may want more tests to learn more. This "
        "may include a biopsy. In a biopsy, a small piece of the growth is removed and looked at "
        "closely."
    ),
    "meningioma": _(
        "Most meningiomas are not cancer. Many grow slowly. Some small ones only need to be "
        "watched with more scans over time. Others may need care if they grow or cause problems."
    ),
    "notumor": _(
        "This is good news. The scan did not show a growth in the brain. But a scan does not "
        "explain every symptom. If you still feel unwell, tell your doctor."
    ),
    "pituitary": _(
        "Most pituitary tumours are not cancer. But they can change the hormones your body makes. "
        "Some press on nearby nerves, like the nerves you need to see. You may need blood tests or "
        "an eye test."
    ),
}

QUESTIONS = {
    "glioma": (
        _("What kind of glioma could this be?"),
        _("Do I need more tests, such as a biopsy?"),
        _("What are my choices for care?"),
        _("Who will be on my care team?"),
        _("What signs should I watch for, and who do I call if I feel worse?"),
    ),
    "meningioma": (
        _("How big is it, and where is it?"),
        _("Does it need care now, or can we watch it?"),
        _("How often will I need a scan?"),
        _("What signs should I watch for?"),
    ),
    "notumor": (
        _("What could be causing my symptoms?"),
        _("Do I need any other tests?"),
        _("Will I need another scan later?"),
        _("When should I come back to see you?"),
    ),
    "pituitary": (
        _("Is the growth making too much of a hormone?"),
        _("Do I need blood tests or an eye test?"),
        _("Does it need care now, or can we watch it?"),
        _("Should I see a doctor who treats hormone problems?"),
    ),
}

_MEANS_HEADING = _("What this means:")
_ASK_HEADING = _("What to ask your doctor:")
_CLOSING = _(
    "This text is here to help you understand your report. It does not replace a talk with "
    "your doctor. Please discuss any questions with your doctor."
)


# The plain message for images a radiologist could not assess: no finding, no class, no
# reassurance either way, and the care team follows up.
_UNASSESSABLE_TEXT = (
    _(
        "Your images could not be assessed. A radiologist looked at the images from this visit. "
        "They could not be used to give a result. This can happen when the pictures are not clear "
        "enough, or when they are not the right pictures. It does not tell us anything about your "
        "health, good or bad."
    ),
    _("What happens next:\nYour care team will contact you about the next steps. You may need new images."),
    _(
        "What to ask your doctor:\n- Why could the images not be used?\n- Do I need new images?\n"
        "- When will I hear about the next steps?"
    ),
)


def plain_name(final_class: str) -> str:
    return str(PLAIN_NAMES[final_class])


def headline(final_class: str) -> str:
    return str(HEADLINES[final_class])


def offline_text(payload: ExplanationPayload) -> str:
    """The patient text for this payload, in the payload's language where translated."""
    with translation.override(payload.language):
        cls = payload.final_class
        if cls == UNASSESSABLE:
            return "\n\n".join([*(str(part) for part in _UNASSESSABLE_TEXT), str(_CLOSING)])
        how = [str(HOW_REACHED[(payload.overridden, payload.confidence_band)]), str(_RADIOLOGIST)]
        if payload.overridden:
            how.append(str(_FINAL_SAY))
        parts = [
            f"{HEADLINES[cls]} {FINDINGS[cls]}",
            " ".join(how),
            f"{_MEANS_HEADING}\n{MEANINGS[cls]}",
            f"{_ASK_HEADING}\n" + "\n".join(f"- {q}" for q in QUESTIONS[cls]),
            str(_CLOSING),
        ]
        return "\n\n".join(parts)
