import pytest
from conftest import BOS, make_tokenizer

from autothink_lite.prompts import (
    INSTRUCTION,
    PROMPT_MODES,
    PromptError,
    detect_mode,
    extract_answer,
    extract_boxed,
    open_think,
    render_prompt,
    split_completion,
)

QUESTION = "What is 2+3?"
HEAD = f"{BOS}<｜User｜>{QUESTION} {INSTRUCTION}<｜Assistant｜>"
EXPECTED = {
    "standard": HEAD + "<think>\n",
    "auto": HEAD + "<think>\n...\n",
    "no_think": HEAD + "<think>\n...\n</think>\n\n",
}


@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_each_mode_renders_the_papers_text_whether_or_not_the_template_opens_think(any_r1_tokenizer, mode):
    assert render_prompt(any_r1_tokenizer, QUESTION, mode) == EXPECTED[mode]


@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_think_tag_is_never_doubled(any_r1_tokenizer, mode):
    assert render_prompt(any_r1_tokenizer, QUESTION, mode).count("<think>") == 1


def test_template_ending_in_a_bare_think_tag_gets_only_the_newline():
    assert open_think("x<｜Assistant｜><think>") == "x<｜Assistant｜><think>\n"
    assert open_think("x<think>\n") == "x<think>\n"


def test_the_bos_written_by_the_template_is_kept_once_when_tokenized_without_special_tokens(r1_tokenizer):
    text = render_prompt(r1_tokenizer, QUESTION, "auto")
    assert text.startswith(BOS)
    ids = r1_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids.count(r1_tokenizer.bos_token_id) == 1


def test_system_prompt_and_custom_instruction_are_rendered(r1_tokenizer):
    text = render_prompt(r1_tokenizer, QUESTION, "standard", system_prompt="Be brief.", instruction="Box it.")
    assert text == f"{BOS}Be brief.<｜User｜>{QUESTION} Box it.<｜Assistant｜><think>\n"


def test_instruction_can_be_left_out(r1_tokenizer):
    assert render_prompt(r1_tokenizer, QUESTION, "standard", instruction=None) == (
        f"{BOS}<｜User｜>{QUESTION}<｜Assistant｜><think>\n"
    )


def test_tokenizer_without_chat_template_gets_an_error_naming_the_fix():
    with pytest.raises(PromptError, match="no chat template.*chat_template"):
        render_prompt(make_tokenizer(None), QUESTION, "auto")


@pytest.mark.parametrize("question", ["", "   ", None])
def test_empty_question_is_refused_with_a_clear_message(r1_tokenizer, question):
    with pytest.raises(PromptError, match="question is empty"):
        render_prompt(r1_tokenizer, question, "auto")


def test_unknown_mode_lists_the_allowed_ones(r1_tokenizer):
    with pytest.raises(PromptError, match="standard, auto, no_think"):
        render_prompt(r1_tokenizer, QUESTION, "think")


@pytest.mark.parametrize(
    "completion, mode",
    [
        ("</think>\n\nThe answer is \\boxed{5}.", "no_think"),
        ("</think>\\boxed{5}", "no_think"),
        ("\n</think>\n\n\\boxed{5}", "no_think"),
        ("2+3 is 5. Wait, let me verify.</think>\n\n\\boxed{5}", "think"),
        ("Let me think", "think"),
        ("", "think"),
    ],
)
def test_mode_is_no_think_exactly_when_the_completion_closes_the_think_block_at_once(completion, mode):
    assert detect_mode(completion) == mode


def test_completions_after_the_forced_no_think_prompt_count_as_no_think():
    assert detect_mode("The answer is \\boxed{5}", "no_think") == "no_think"
    assert extract_answer("The answer is \\boxed{5}", "no_think") == "5"


def test_split_completion_separates_reasoning_from_answer():
    assert split_completion("a+b\nso 5</think>\n\nAnswer \\boxed{5}") == ("a+b\nso 5", "Answer \\boxed{5}")
    assert split_completion("</think>\n\n\\boxed{5}") == ("", "\\boxed{5}")
    assert split_completion("still thinking \\boxed{5}") == ("still thinking \\boxed{5}", None)


@pytest.mark.parametrize(
    "text, boxed",
    [
        ("\\boxed{5}", "5"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("so $\\boxed 5$.", "5"),
        ("\\boxed 42 is it", "42"),
        ("\\fbox{7}", "7"),
        ("\\boxed{3} and \\fbox{4}", "4"),
        ("\\boxed{unclosed {5}", None),
        ("\\boxed{}", None),
        ("no box here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_boxed_takes_the_last_box_with_nested_braces(text, boxed):
    assert extract_boxed(text) == boxed


def test_a_box_inside_the_reasoning_is_not_the_answer():
    assert extract_answer("try \\boxed{4}... no</think>\n\n\\boxed{5}") == "5"
    assert extract_answer("try \\boxed{4} and never close") is None
    assert extract_answer("done</think> the answer is five") is None
