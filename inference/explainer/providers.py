"""Remote text providers: Gemini API (google-genai) and any OpenAI-compatible server.

Both send exactly one user turn (see prompt.py) and nothing else. Each call has a timeout;
transient failures (timeouts, connection errors, HTTP 429 and 5xx) are retried up to
MAX_RETRIES times with a short exponential back-off. The client libraries' own retry loops
are switched off so the number of attempts is the one configured here, for both providers.

Every failure surfaces as ProviderError, which the service turns into the offline fall-back.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0
MAX_OUTPUT_TOKENS = 700
TEMPERATURE = 0.2
GEMINI_API_VERSION = "v1beta"


class ProviderError(Exception):
    """The provider gave no usable text. `transient` errors are worth another attempt."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class ProviderSettings:
    provider: str
    model: str
    api_key: str
    base_url: str
    timeout_seconds: float
    max_retries: int
    backoff_seconds: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ProviderSettings":
        timeout = float(config.get("TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
        retries = config.get("MAX_RETRIES")
        backoff = config.get("RETRY_BACKOFF_SECONDS")
        return cls(
            provider=str(config.get("PROVIDER") or "offline").strip().lower(),
            model=str(config.get("MODEL") or "").strip(),
            api_key=str(config.get("API_KEY") or ""),
            base_url=str(config.get("BASE_URL") or "").strip(),
            timeout_seconds=max(0.1, timeout),
            max_retries=max(0, int(DEFAULT_MAX_RETRIES if retries is None else retries)),
            backoff_seconds=max(0.0, float(DEFAULT_BACKOFF_SECONDS if backoff is None else backoff)),
        )


def with_retries(call: Callable[[], str], settings: ProviderSettings) -> str:
    """Run `call`, retrying transient ProviderErrors; re-raise the last error."""
    attempt = 0
    while True:
        try:
            return call()
        except ProviderError as exc:
            if not exc.transient or attempt >= settings.max_retries:
                raise
            delay = min(MAX_BACKOFF_SECONDS, settings.backoff_seconds * (2**attempt))
            logger.warning(
                "explainer %s attempt %d failed (%s); retrying in %.1fs", settings.provider, attempt + 1, exc, delay
            )
            attempt += 1
            if delay:
                time.sleep(delay)


def _status_is_transient(status: int | None) -> bool:
    return status is not None and (status == 429 or status == 408 or status >= 500)


# --- Gemini API (google-genai) ------------------------------------------------------------------


class GeminiProvider:
    name = "gemini"

    def __init__(self, settings: ProviderSettings) -> None:
        if not settings.api_key:
            raise ProviderError("gemini: no API key configured (EXPLAINER_API_KEY)")
        if not settings.model:
            raise ProviderError("gemini: no model configured (EXPLAINER_MODEL)")
        from google import genai
        from google.genai import types

        self.settings = settings
        self.model = settings.model
        self._types = types
        http_options = types.HttpOptions(
            base_url=settings.base_url or None,
            # Gemma models are served on v1beta of the Gemini API.
            api_version=GEMINI_API_VERSION,
            timeout=int(settings.timeout_seconds * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),  # retries are ours (with_retries)
        )
        self._client = genai.Client(vertexai=False, api_key=settings.api_key, http_options=http_options)

    def _once(self, prompt: str) -> str:
        from google.genai import errors

        types = self._types
        try:
            response = self._client.models.generate_content(
                model=self.model,
                # One user turn and no system_instruction: Gemma on the Gemini API rejects one.
                contents=[types.Content(role="user", parts=[types.Part(text=prompt)])],
                config=types.GenerateContentConfig(
                    temperature=TEMPERATURE,
                    max_output_tokens=MAX_OUTPUT_TOKENS,
                    candidate_count=1,
                    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
                ),
            )
        except errors.APIError as exc:
            raise ProviderError(f"gemini: HTTP {exc.code} {exc.status or ''}".strip(), transient=_status_is_transient(exc.code)) from exc
        except Exception as exc:  # noqa: BLE001 - timeouts, connection errors, bad JSON
            raise ProviderError(f"gemini: {_describe(exc)}", transient=_is_network_error(exc)) from exc
        try:
            text = response.text
        except Exception as exc:  # noqa: BLE001 - the SDK raises on odd candidate shapes
            raise ProviderError(f"gemini: malformed response ({_describe(exc)})") from exc
        if not isinstance(text, str) or not text.strip():
            reason = ""
            if response.candidates:
                reason = str(response.candidates[0].finish_reason or "")
            raise ProviderError(f"gemini: response has no text {reason}".strip())
        return text

    def generate(self, prompt: str) -> str:
        return with_retries(lambda: self._once(prompt), self.settings)


# --- OpenAI-compatible servers (Ollama, llama.cpp server, vLLM) --------------------------------


class OpenAICompatProvider:
    name = "openai"

    def __init__(self, settings: ProviderSettings) -> None:
        if not settings.base_url:
            raise ProviderError("openai: no base URL configured (EXPLAINER_BASE_URL)")
        if not settings.model:
            raise ProviderError("openai: no model configured (EXPLAINER_MODEL)")
        import openai

        self.settings = settings
        self.model = settings.model
        self._openai = openai
        self._client = openai.OpenAI(
            # Local servers ignore the key, but the client insists on one.
            api_key=settings.api_key or "not-needed",
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            max_retries=0,  # retries are ours (with_retries)
        )

    def _once(self, prompt: str) -> str:
        openai = self._openai
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=TEMPERATURE,
                max_tokens=MAX_OUTPUT_TOKENS,
                n=1,
            )
        except openai.APIStatusError as exc:
            raise ProviderError(f"openai: HTTP {exc.status_code}", transient=_status_is_transient(exc.status_code)) from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ProviderError(f"openai: {_describe(exc)}", transient=True) from exc
        except Exception as exc:  # noqa: BLE001 - bad JSON and anything else the client raises
            raise ProviderError(f"openai: {_describe(exc)}") from exc
        try:
            text = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise ProviderError("openai: malformed response (no choices[0].message.content)") from exc
        if not isinstance(text, str) or not text.strip():
            raise ProviderError("openai: response has no text")
        return text

    def generate(self, prompt: str) -> str:
        return with_retries(lambda: self._once(prompt), self.settings)


PROVIDERS = {"gemini": GeminiProvider, "openai": OpenAICompatProvider}


def make_provider(settings: ProviderSettings) -> GeminiProvider | OpenAICompatProvider:
    try:
        factory = PROVIDERS[settings.provider]
    except KeyError:
        raise ProviderError(f"unknown explainer provider {settings.provider!r}") from None
    return factory(settings)


def _describe(exc: BaseException) -> str:
    # The class name and a short message; provider messages can echo request content, and
    # although the request carries no patient data, logs need nothing longer.
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message[:160]}".rstrip(": ")


def _network_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [TimeoutError, ConnectionError]
    # google-genai and openai run on httpx2 here; older releases on httpx. Accept either.
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        types += [module.TimeoutException, module.NetworkError, module.RemoteProtocolError]
    return tuple(types)


def _is_network_error(exc: BaseException) -> bool:
    return isinstance(exc, _network_error_types())
