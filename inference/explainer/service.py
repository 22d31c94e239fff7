"""explain(payload, config): the patient text for a payload, from the configured provider.

offline (default) never touches the network. gemini/openai call the remote model; on any
provider failure, or when its text fails the output checks, the offline text is used instead
and the result records that it fell back (and, for a failed check, flags it for the
radiologist, who sees the draft before sign-off).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference.explainer.checks import check_text
from inference.explainer.offline import offline_text
from inference.explainer.payload import ExplanationPayload
from inference.explainer.prompt import render_prompt
from inference.explainer.providers import ProviderError, ProviderSettings, make_provider

logger = logging.getLogger(__name__)

OFFLINE = "offline"
FLAG_REASON_MAX = 500


@dataclass(frozen=True)
class ExplanationResult:
    text: str
    provider: str  # the provider configured (offline | gemini | openai)
    model: str
    fell_back: bool  # the text is the offline one although a remote provider was configured
    flagged: bool  # the remote text failed the output checks: the radiologist should look
    flag_reason: str  # why it fell back or was flagged ("" otherwise)


def explain(payload: ExplanationPayload, config: Mapping[str, Any] | None = None) -> ExplanationResult:
    if not isinstance(payload, ExplanationPayload):
        raise TypeError("explain() takes an ExplanationPayload and nothing else")
    settings = ProviderSettings.from_config(config or {})
    if settings.provider == OFFLINE:
        return ExplanationResult(offline_text(payload), OFFLINE, "", False, False, "")

    try:
        provider = make_provider(settings)
        text = normalise(provider.generate(render_prompt(payload)))
    except ProviderError as exc:
        logger.warning("explainer %s failed, using the offline text: %s", settings.provider, exc)
        return _fallback(payload, settings, f"Provider failed: {exc}", flagged=False)

    failures = check_text(text, payload)
    if failures:
        reason = "Provider text failed checks: " + "; ".join(str(f) for f in failures)
        logger.warning("explainer %s text failed checks, using the offline text: %s", settings.provider, reason)
        return _fallback(payload, settings, reason, flagged=True)
    return ExplanationResult(text, settings.provider, settings.model, False, False, "")


def _fallback(payload: ExplanationPayload, settings: ProviderSettings, reason: str, *, flagged: bool) -> ExplanationResult:
    return ExplanationResult(
        text=offline_text(payload),
        provider=settings.provider,
        model=settings.model,
        fell_back=True,
        flagged=flagged,
        flag_reason=reason[:FLAG_REASON_MAX],
    )


def normalise(text: str) -> str:
    """Tidy a model's plain text: trim, drop Markdown emphasis, turn bullets into "- "."""
    lines = []
    for line in text.replace("\r\n", "\n").strip().split("\n"):
        line = line.rstrip().replace("**", "").replace("__", "")
        stripped = line.lstrip()
        if stripped.startswith(("* ", "• ")):
            line = "- " + stripped[2:]
        lines.append(line.lstrip("#").strip() if stripped.startswith("#") else line)
    return "\n".join(lines).strip()
