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


def gemini_config(server: FakeGeminiServer, **overrides) -> dict:
    config = {
        "PROVIDER": "gemini",
        "MODEL": "gemma-3-27b-it",
        "API_KEY": "test-key-not-secret",
        "BASE_URL": server.base_url,
        "TIMEOUT_SECONDS": 5.0,
        "MAX_RETRIES": 1,
        "RETRY_BACKOFF_SECONDS": 0.0,
    }
    config.update(overrides)
    return config


def openai_config(server: FakeOpenAIServer, **overrides) -> dict:
    config = {
        "PROVIDER": "openai",
        "MODEL": "gemma3:27b",
        "API_KEY": "",
        "BASE_URL": server.base_url,
        "TIMEOUT_SECONDS": 5.0,
        "MAX_RETRIES": 1,
        "RETRY_BACKOFF_SECONDS": 0.0,
    }
    config.update(overrides)
    return config
