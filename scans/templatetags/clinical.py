"""Template filters for clinical values: every page names a class through TumourClass."""
from __future__ import annotations

from django import template

from scans.findings import class_label

register = template.Library()


@register.filter(name="class_label")
def class_label_filter(code: str | None) -> str:
    """{{ prediction.label|class_label }} → "No tumour" (never the raw code "notumor")."""
    return class_label(code)
