"""Issue 14 item 3 in the explainer: images a radiologist could not assess get a plain
message, from the offline texts and from a language model alike, and it names no class."""
import pytest

from inference.explainer import UNASSESSABLE, ExplanationPayload, explain
from inference.explainer.checks import check_text, mentioned_classes
from inference.explainer.offline import offline_text
from inference.explainer.prompt import render_prompt
from tests.explanations.readability import flesch_kincaid_grade
from tests.fakes.fixtures import gemini_config, openai_config
from tests.fakes.llm_servers import Reply

PAYLOAD = ExplanationPayload(UNASSESSABLE, "unknown", False, "en")
GOOD = (
    "Your images could not be assessed. A radiologist looked at them, but they could not be used to give a "
    "result.\n\nYour care team will contact you about the next steps. You may need new images.\n\n"
    "Questions to ask your doctor:\n- Why could the images not be used?\n- Do I need new images?\n"
    "- When will I hear from my care team?\n\nPlease discuss any questions with your doctor."
)


def test_offline_text_is_plain_names_no_class_and_says_the_care_team_follows_up():
    text = offline_text(PAYLOAD)
    assert check_text(text, PAYLOAD) == []
    assert mentioned_classes(text) == {UNASSESSABLE}
    assert "could not be assessed" in text and "care team will contact you" in text
    assert "tumour" not in text.lower() and "tumor" not in text.lower()
    assert flesch_kincaid_grade(text) <= 8.0


@pytest.mark.parametrize("bad, code", [
    (GOOD + "\nThere is no tumour on the images.", "class_conflict"),
    (GOOD + "\nIt might be a glioma.", "class_conflict"),
    (GOOD.replace("could not be assessed", "were blurry").replace("could not be used", "were unclear"), "class_missing"),
])
def test_checks_refuse_a_text_that_names_a_class(bad, code):
    assert code in {f.code for f in check_text(bad, PAYLOAD)}


def test_prompt_forbids_any_finding():
    prompt = render_prompt(PAYLOAD)
    assert '"finding_code": "unassessable"' in prompt
    assert "Do not name, suggest or rule out any finding" in prompt
    assert "care team will contact them" in prompt
    assert "computer_tool_confidence" not in prompt


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_the_llm_path_uses_a_good_text_and_falls_back_on_one_naming_a_class(provider, fake_gemini, fake_openai):
    server, config = (fake_gemini, gemini_config(fake_gemini)) if provider == "gemini" else (
        fake_openai, openai_config(fake_openai))
    server.script(Reply.ok(GOOD))
    result = explain(PAYLOAD, config)
    assert result.text == GOOD and not result.fell_back
    assert "could not be assessed" in server.requests[0].everything()
    server.script(Reply.ok(GOOD + "\nLuckily there is no tumour."))
    result = explain(PAYLOAD, config)
    assert result.fell_back and result.flagged and result.text == offline_text(PAYLOAD)
