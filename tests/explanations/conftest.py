from tests.fakes.fixtures import fake_gemini, fake_openai  # noqa: F401 - fixtures
