"""Remote providers against fake servers on 127.0.0.1 over real HTTP (no patched clients):
the text is used when it is good; every failure falls back to the offline text and says so."""
import time

import pytest

from inference.explainer import ExplanationPayload, explain
from inference.explainer.offline import offline_text
from tests.fakes.fixtures import gemini_config, openai_config
from tests.fakes.llm_servers import Reply

PAYLOAD = ExplanationPayload("meningioma", "moderate", False, "en")
OFFLINE = offline_text(PAYLOAD)
# A good provider text: different from the offline one, and it passes the checks.
GOOD = (
    "Your scan shows a meningioma. This is a growth in the layers that cover the brain.\n\n"
    "Most meningiomas grow slowly and are not cancer. Some only need to be watched with scans.\n\n"
    "Questions to ask your doctor:\n- How big is it?\n- Does it need care now?\n- How often will I need a scan?\n\n"
    "Please discuss any questions with your doctor."
)

PROVIDERS = ["gemini", "openai"]


@pytest.fixture
def server_and_config(request, fake_gemini, fake_openai):
    if request.param == "gemini":
        return fake_gemini, lambda **kw: gemini_config(fake_gemini, **kw)
    return fake_openai, lambda **kw: openai_config(fake_openai, **kw)


def _user_turn(provider, request):
    body = request.json()
    if provider == "gemini":
        assert len(body["contents"]) == 1
        assert body["contents"][0]["role"] == "user"
        return body["contents"][0]["parts"][0]["text"]
    assert [m["role"] for m in body["messages"]] == ["user"]
    return body["messages"][0]["content"]


@pytest.mark.parametrize("server_and_config", PROVIDERS, indirect=True)
def test_good_provider_text_is_used(server_and_config, request):
    server, config = server_and_config
    provider = request.node.callspec.params["server_and_config"]
    server.script(Reply.ok(GOOD))
    result = explain(PAYLOAD, config())
    assert result.text == GOOD
    assert (result.provider, result.fell_back, result.flagged, result.flag_reason) == (provider, False, False, "")
    assert result.model == config()["MODEL"]
    assert len(server.requests) == 1
    turn = _user_turn(provider, server.requests[0])
    assert "Do not give any treatment, medicine, drug or dose advice" in turn
    assert '"finding": "meningioma"' in turn


def _one_request(server, config: dict):
    """Explain PAYLOAD with a good reply scripted; the one request the provider received."""
    server.script(Reply.ok(GOOD))
    explain(PAYLOAD, config)
    (req,) = server.requests
    return req


@pytest.mark.parametrize(
    ("server_and_config", "model", "path"),
    [
        ("gemini", "gemma-3-27b-it", "/v1beta/models/gemma-3-27b-it:generateContent"),
        ("openai", "gemma3:27b", "/v1/chat/completions"),
    ],
    indirect=["server_and_config"],
)
def test_request_goes_to_the_configured_model_as_one_user_turn(server_and_config, model, path, request):
    """Gemma takes no system turn: the rules travel in the single user turn."""
    server, config = server_and_config
    req = _one_request(server, config(MODEL=model))
    assert req.path == path
    text = _user_turn(request.node.callspec.params["server_and_config"], req)  # one turn, role "user"
    assert text.startswith("You write short, kind explanations")
    assert "Rules you must follow" in text


def test_gemini_request_sends_the_key_and_no_system_instruction(fake_gemini):
    req = _one_request(fake_gemini, gemini_config(fake_gemini))
    assert req.headers.get("x-goog-api-key") == "test-key-not-secret"
    body = req.json()
    assert "systemInstruction" not in body and "system_instruction" not in body
    assert "systemInstruction" not in str(body.get("generationConfig", {}))


def test_openai_request_names_the_configured_model(fake_openai):
    assert _one_request(fake_openai, openai_config(fake_openai, MODEL="gemma3:27b")).json()["model"] == "gemma3:27b"


@pytest.mark.parametrize("server_and_config", PROVIDERS, indirect=True)
@pytest.mark.parametrize(
    ("replies", "expected_attempts", "reason_part"),
    [
        ([Reply.error(429)], 2, "429"),
        ([Reply.error(500)], 2, "500"),
        ([Reply.error(400)], 1, "400"),  # not transient: no retry
        ([Reply.malformed_json()], 1, "JSONDecodeError"),
        ([Reply.wrong_shape()], 1, ""),
    ],
    ids=["429", "500", "400", "malformed-json", "wrong-shape"],
)
def test_failures_fall_back_to_offline_and_record_it(server_and_config, replies, expected_attempts, reason_part):
    server, config = server_and_config
    server.script(*replies)
    result = explain(PAYLOAD, config(MAX_RETRIES=1))
    assert result.text == OFFLINE
    assert result.fell_back is True
    assert result.flagged is False  # a provider failure is not a content problem
    assert result.flag_reason.startswith("Provider failed:")
    assert reason_part in result.flag_reason
    assert len(server.requests) == expected_attempts


@pytest.mark.parametrize("server_and_config", PROVIDERS, indirect=True)
def test_timeout_falls_back_within_the_configured_time(server_and_config):
    server, config = server_and_config
    server.script(Reply.ok(GOOD, delay=3.0))
    started = time.monotonic()
    result = explain(PAYLOAD, config(TIMEOUT_SECONDS=0.5, MAX_RETRIES=1))
    elapsed = time.monotonic() - started
    assert result.fell_back and result.text == OFFLINE
    assert "timed out" in result.flag_reason.lower() or "timeout" in result.flag_reason.lower()
    assert len(server.requests) == 2  # one retry
    assert elapsed < 2.9  # two 0.5 s attempts, not the server's 3 s


@pytest.mark.parametrize("server_and_config", PROVIDERS, indirect=True)
def test_transient_failure_then_success_uses_the_retry(server_and_config):
    server, config = server_and_config
    server.script(Reply.error(503), Reply.ok(GOOD))
    result = explain(PAYLOAD, config(MAX_RETRIES=2))
    assert result.text == GOOD and not result.fell_back
    assert len(server.requests) == 2


@pytest.mark.parametrize("server_and_config", PROVIDERS, indirect=True)
@pytest.mark.parametrize(
    ("bad_text", "code"),
    [
        (GOOD.replace("meningioma", "glioma").replace("meningiomas", "gliomas"), "class_missing"),
        (GOOD + "\nIt may also be a glioma.", "class_conflict"),
        (GOOD + "\nTake 8 mg dexamethasone each morning.", "treatment"),
        (GOOD + "\n" + "Please discuss your meningioma with your doctor. " * 60, "too_long"),
    ],
    ids=["wrong-class", "other-class", "dosage", "too-long"],
)
def test_text_failing_checks_falls_back_and_is_flagged(server_and_config, bad_text, code):
    server, config = server_and_config
    server.script(Reply.ok(bad_text))
    result = explain(PAYLOAD, config())
    assert result.text == OFFLINE
    assert result.fell_back and result.flagged
    assert result.flag_reason.startswith("Provider text failed checks:")
    assert code in result.flag_reason


def test_offline_provider_makes_no_request(fake_gemini, fake_openai):
    result = explain(PAYLOAD, {"PROVIDER": "offline", "BASE_URL": fake_openai.base_url})
    assert (result.text, result.provider, result.fell_back) == (OFFLINE, "offline", False)
    assert fake_gemini.requests == [] and fake_openai.requests == []


@pytest.mark.parametrize(
    "config",
    [
        {"PROVIDER": "gemini", "MODEL": "gemma-3-27b-it", "API_KEY": ""},
        {"PROVIDER": "openai", "MODEL": "gemma3", "BASE_URL": ""},
        {"PROVIDER": "nonsense"},
    ],
    ids=["gemini-no-key", "openai-no-url", "unknown"],
)
def test_misconfiguration_falls_back(config):
    result = explain(PAYLOAD, config)
    assert result.fell_back and result.text == OFFLINE and result.flag_reason


def test_unreachable_server_falls_back():
    config = {"PROVIDER": "openai", "MODEL": "m", "BASE_URL": "http://127.0.0.1:9/v1", "MAX_RETRIES": 0, "TIMEOUT_SECONDS": 2}
    result = explain(PAYLOAD, config)
    assert result.fell_back and result.text == OFFLINE


def test_explain_takes_only_a_payload():
    with pytest.raises(TypeError):
        explain({"final_class": "glioma", "name": "Alice"}, {})  # type: ignore[arg-type]
