"""The class codes a result can carry: the classifier's tumour classes (an AI label or a
radiologist's finding) and "unassessable", a finding only a radiologist signs, with the one
display mapping for all of them."""
from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class TumourClass(models.TextChoices):
    GLIOMA = "glioma", _("Glioma")
    MENINGIOMA = "meningioma", _("Meningioma")
    NOTUMOR = "notumor", _("No tumour")
    PITUITARY = "pituitary", _("Pituitary tumour")


# scans may not import the ML core: tests/explanations/test_texts.py checks that this equals
# inference.data.CLASSES, the classifier's own list.
TUMOUR_CLASSES = tuple(TumourClass.values)


# A radiologist's finding that is no tumour class: the images could not be assessed
# (non-diagnostic, not a brain MRI, wrong patient or images). Never an AI label.
UNASSESSABLE = "unassessable"
FINDING_CHOICES = [*TumourClass.choices, (UNASSESSABLE, _("Images could not be assessed"))]


def class_label(code: str | None) -> str:
    """The one display mapping for class codes: "notumor" → "No tumour"; an empty code (the AI
    gave no class: outside its scope) → "No AI class"; a signed "unassessable" → "Images could
    not be assessed"."""
    if not code:
        return str(_("No AI class"))
    return str(dict(FINDING_CHOICES).get(code, code))
