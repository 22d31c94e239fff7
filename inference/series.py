"""Per-slice and per-series results, and the series rule (Django-free).

The series rule (`aggregate`), in order:

1. Scope. A slice is in scope when it passes the image check (inference.ood). The series is
   outside what the model was trained on when more than half of its slices fail; it then gets
   no class.
2. Mean. The series probabilities are the mean of the calibrated probabilities of its in-scope
   slices; the label is their argmax.
3. A strong run cannot hide. When RUN_LENGTH or more consecutive in-scope slices each score at
   least RUN_THRESHOLD for a tumour (1 - p(notumor)), the series is never "no tumour": if the
   mean says notumor, the result becomes the run's: its mean probabilities, its tumour class,
   its confidence. A flagged tumour series sorts first in the worklist.
4. Key slice: the most informative in-scope slice. Edge slices (the outer EDGE_FRACTION of the
   series on each side, where the head is cut tangentially and the model is least reliable) are
   only chosen when nothing else is in scope. Among the rest: the slice of the strongest run
   when a run decided the result, otherwise the slice with the highest probability of the
   series label (for "no tumour": the highest tumour probability, the slice most worth a look).
A single image is a series of one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from inference.data import CLASSES

RUN_LENGTH = 3
RUN_THRESHOLD = 0.8
EDGE_FRACTION = 0.1
IMAGE_CHECK_REASON = "outside what the model was trained on (image check: {failed} of {total} slices)"
AGGREGATION_RULE = (
    f"Mean of the calibrated probabilities of the in-scope slices; a run of >= {RUN_LENGTH} slices with "
    f"tumour probability >= {RUN_THRESHOLD} overrides 'no tumour'; key slice = most informative non-edge slice."
)
_NOTUMOR = CLASSES.index("notumor")


@dataclass(frozen=True)
class SliceResult:
    probabilities: dict[str, float]   # calibrated, sums to 1
    label: str | None                 # None when outside what the model was trained on
    is_brain_mri: bool                # passed the image check
    ood_score: float                  # > 1 means outside the training distribution
    heatmap: np.ndarray | None        # float32 in [0,1], same H×W as the input pixels


@dataclass(frozen=True)
class SeriesResult:
    label: str | None
    probabilities: dict[str, float]
    confidence: float
    is_brain_mri: bool                # False: out of scope; scope_reason says why
    key_slice_index: int | None
    slices: list[SliceResult]
    aggregation: str
    model_name: str
    model_version: str
    scope_reason: str = ""
    run: tuple[int, int] | None = None  # [start, end) of the strongest tumour run, if any


def out_of_scope(reason: str, model_name: str = "", model_version: str = "") -> SeriesResult:
    """The result for a series the header rules put out of scope: no class, no probabilities,
    no slices, no heat maps (the model does not run)."""
    return SeriesResult(None, {}, 0.0, False, None, [], AGGREGATION_RULE, model_name, model_version, reason)


def strongest_run(tumour: np.ndarray, ok: np.ndarray) -> tuple[int, int] | None:
    """[start, end) of the run of >= RUN_LENGTH consecutive in-scope slices with tumour
    probability >= RUN_THRESHOLD that has the highest summed tumour probability, or None."""
    best, best_score, start = None, -1.0, None
    strong = np.append(ok & (tumour >= RUN_THRESHOLD), False)
    for i, is_strong in enumerate(strong):
        if is_strong and start is None:
            start = i
        elif not is_strong and start is not None:
            if i - start >= RUN_LENGTH and tumour[start:i].sum() > best_score:
                best, best_score = (start, i), float(tumour[start:i].sum())
            start = None
    return best


def key_slice(score: np.ndarray, ok: np.ndarray, run: tuple[int, int] | None) -> int:
    """Index of the most informative in-scope slice (module docstring, step 4)."""
    n = len(score)
    edge = int(n * EDGE_FRACTION)
    central = np.zeros(n, bool)
    central[edge:n - edge] = True
    candidates = ok & central if (ok & central).any() else ok.copy()
    if run is not None:
        in_run = np.zeros(n, bool)
        in_run[run[0]:run[1]] = True
        if (candidates & in_run).any():
            candidates &= in_run
    return int(np.argmax(np.where(candidates, score, -1.0)))


def aggregate(results: Sequence[SliceResult], model_name: str = "", model_version: str = "") -> SeriesResult:
    """The documented series rule (module docstring)."""
    probs = np.array([[r.probabilities[c] for c in CLASSES] for r in results])
    ok = np.array([r.is_brain_mri for r in results])
    failed = int((~ok).sum())
    in_scope = 2 * failed <= len(results)  # out of scope when MORE than half fail
    use = ok if ok.any() else np.ones_like(ok)
    tumour = 1.0 - probs[:, _NOTUMOR]
    mean = probs[use].mean(axis=0)
    run = strongest_run(tumour, ok) if in_scope else None
    if run is not None and int(mean.argmax()) == _NOTUMOR:
        # every run slice has p(notumor) <= 1 - RUN_THRESHOLD, so the run's argmax is a tumour
        mean = probs[run[0]:run[1]].mean(axis=0)
    label_index = int(mean.argmax())
    mean = mean / mean.sum()
    score = tumour if label_index == _NOTUMOR else probs[:, label_index]
    return SeriesResult(
        label=CLASSES[label_index] if in_scope else None,
        probabilities={c: float(v) for c, v in zip(CLASSES, mean)},
        confidence=float(mean[label_index]),
        is_brain_mri=bool(in_scope),
        key_slice_index=key_slice(score, use, run),
        slices=list(results),
        aggregation=AGGREGATION_RULE,
        model_name=model_name,
        model_version=model_version,
        scope_reason="" if in_scope else IMAGE_CHECK_REASON.format(failed=failed, total=len(results)),
        run=run,
    )
