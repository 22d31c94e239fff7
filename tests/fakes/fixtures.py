"""pytest fixtures for the fake LLM servers; import them into a conftest.py to use them."""
from __future__ import annotations

import pytest

from tests.fakes.llm_servers import FakeGeminiServer, FakeOpenAIServer


@pytest.fixture
def fake_gemini():
    server = FakeGeminiServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai():
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


def _config(provider: str, base_url: str, model: str, api_key: str, overrides: dict) -> dict:
    config = {
        "PROVIDER": provider,
        "MODEL": model,
        "API_KEY": api_key,
        "BASE_URL": base_url,
        "TIMEOUT_SECONDS": 5.0,
        "MAX_RETRIES": 1,
        "RETRY_BACKOFF_SECONDS": 0.0,
    }
    config.update(overrides)
    return config


def gemini_config(server: FakeGeminiServer, **overrides) -> dict:
    """settings.EXPLAINER for google-genai pointed at the fake Gemini server."""
    return _config("gemini", server.base_url, "gemma-3-27b-it", "test-key-not-secret", overrides)


def openai_config(server: FakeOpenAIServer, **overrides) -> dict:
    """settings.EXPLAINER for the openai client pointed at the fake OpenAI-compatible server."""
    return _config("openai", server.base_url, "gemma3:27b", "", overrides)
