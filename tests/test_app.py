"""The Gradio app on the miniature model: handlers called directly, then the served app driven with gradio_client.

The model comes from $AUTOTHINK_TEST_MODEL (default "mini", the shipped miniature).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

from autothink_lite.app_ui import (  # noqa: E402
    BASE,
    MAX_QUESTION_CHARS,
    ChatEngine,
    build_app,
    launch,
    main,
    stop_history,
)
from fake_runs import write_eval_dir, write_run_dir  # noqa: E402

MODEL = os.environ.get("AUTOTHINK_TEST_MODEL", "mini")
SAMPLING = (0.6, 0.95, 384, 0.0)  # temperature, top_p, max new tokens, think bias


@pytest.fixture(scope="module")
def engine():
    torch.set_num_threads(1)  # the miniature is faster on one thread, and far faster on a busy machine
    return ChatEngine.load(MODEL)


def ask(engine, question, mode="Think", history=None, variant=BASE, sampling=SAMPLING):
    """Every update the chat handler streams; the last one is the finished reply."""
    return list(engine.chat(question, mode, variant, *sampling, history or []))


def thoughts(history):
    return [m for m in history if (m.get("metadata") or {}).get("title")]


def text(message) -> str:
    """A message's text, whether a string (handlers) or a list of parts (gradio_client)."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def test_a_thinking_reply_shows_its_reasoning_in_a_collapsible_block_and_a_badge_under_the_answer(engine):
    updates = ask(engine, "What is 478 * 6?", "Think")
    history, question_box, notice = updates[-1]
    assert len(updates) > 2, "the reply should stream in several updates"
    assert history[0] == {"role": "user", "content": "What is 478 * 6?"}
    (thought,) = thoughts(history)
    assert re.fullmatch(r"Thought for \d+ tokens", thought["metadata"]["title"])
    assert thought["metadata"]["status"] == "done" and thought["content"]
    answer = history[-1]["content"]
    assert "\\boxed" in answer and 'class="at-badge"' in answer
    assert "forced: think" in answer
    assert re.search(r"reasoning \d+ tok", answer) and re.search(r"answer \d+ tok", answer)
    assert question_box == "" and notice == ""


def test_the_reasoning_block_spins_while_the_model_thinks(engine):
    updates = ask(engine, "What is 478 * 6?", "Think")
    still_thinking = [thoughts(h)[0]["metadata"] for h, _, _ in updates[:-1] if thoughts(h)]
    assert still_thinking and still_thinking[0] == {"title": "Thinking…", "status": "pending"}


def test_the_no_think_mode_answers_without_a_reasoning_block(engine):
    history, _, _ = ask(engine, "What is 478 * 6?", "No-think")[-1]
    assert thoughts(history) == []
    assert "forced: no-think" in history[-1]["content"] and "reasoning 0 tok" in history[-1]["content"]


def test_auto_mode_reports_the_mode_the_model_chose(engine):
    history, _, _ = ask(engine, "What is 7 + 5?", "Auto (ellipsis)")[-1]
    chose = re.search(r"chose: (think|no-think)", history[-1]["content"]).group(1)
    assert bool(thoughts(history)) == (chose == "think")


def test_a_known_example_question_is_graded_in_the_badge(engine):
    example = engine.examples[0]
    history, _, _ = ask(engine, example["problem"], "Think")[-1]
    assert re.search(rf"(✓ correct|✗ wrong, expected {example['answer']}) \(level {example['level']} example\)",
                     history[-1]["content"])


def test_examples_cover_the_five_difficulty_levels(engine):
    assert [r["level"] for r in engine.examples] == [1, 2, 3, 4, 5]


def test_an_empty_question_gets_a_friendly_notice_and_no_reply(engine):
    assert ask(engine, "   ") == [([], "", "Type a question first, or pick one of the examples.")]


def test_an_overly_long_question_is_cut_with_a_notice(engine):
    question = "What is 1 + 1? " * 200
    history, _, notice = ask(engine, question, sampling=(0.6, 0.95, 16, 0.0))[-1]
    assert f"{len(question.strip()):,} characters" in notice and f"first {MAX_QUESTION_CHARS:,}" in notice
    assert len(history[0]["content"]) <= MAX_QUESTION_CHARS


def test_a_question_that_fills_the_models_context_is_refused_with_a_notice(engine):
    context = engine.model.config.max_position_embeddings
    history, _, notice = ask(engine, "7 " * (context + 10))[-1]
    assert "context" in notice and len(history) == 1


def test_stopping_a_reply_stops_the_model_computing(engine):
    eos = engine.tokenizer.eos_token_id
    calls = []

    def never_finish(module, args, output):  # no end of sequence, and slow: the reply would run for seconds
        calls.append(1)
        output.logits[..., eos] = float("-inf")
        time.sleep(0.01)

    hook = engine.model.register_forward_hook(never_finish)
    try:
        updates = engine.chat("What is 478 * 6?", "Think", BASE, 0.6, 0.95, 600, 0.0, [])
        for _ in range(5):
            next(updates)
        updates.close()  # what gradio does when Stop cancels the event
        stopped_at = len(calls)
        time.sleep(0.2)
        assert len(calls) == stopped_at < 100
        assert not any(t.name.endswith("(run)") for t in threading.enumerate())
    finally:
        hook.remove()


def test_stop_closes_a_spinning_reasoning_block_and_says_so():
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": "7*6", "metadata": {"title": "Thinking…", "status": "pending"}}]
    stopped = stop_history(history)
    assert stopped[1]["metadata"] == {"title": "Stopped while thinking", "status": "done"}
    assert stopped[-1]["content"] == "*Stopped.*"
    assert stop_history(stopped[:1] + [{"role": "assistant", "content": 'x <div class="at-badge"></div>'}])[-1][
        "content"].startswith("x")


def test_compare_shows_both_sides_and_the_token_saving(engine):
    a, b, summary = list(engine.compare("What is 478 * 6?", BASE, "Think", BASE, "No-think", *SAMPLING))[-1]
    assert thoughts(a) and not thoughts(b)
    assert "| mode chosen | think | no-think |" in summary
    assert re.search(r"\*\*B used \d+% fewer tokens\*\*", summary)


def test_base_and_adapter_are_compared_with_the_adapter_switched_off_for_the_base(tmp_path):
    from peft import LoraConfig, get_peft_model

    from autothink_lite.modeling import load_for_inference

    model, tokenizer = load_for_inference(MODEL)
    adapter = tmp_path / "stage3" / "final"
    torch.manual_seed(0)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(adapter)
    engine = ChatEngine.load(MODEL, [str(adapter)])
    assert engine.variants == [BASE, "stage3_final"] and engine.default_variant == "stage3_final"
    a, b, summary = list(engine.compare("What is 478 * 6?", BASE, "Think", "stage3_final", "Think", *SAMPLING))[-1]
    assert len(a) >= 2 and len(b) >= 2 and "A: base (adapters off) · Think" in summary
    assert engine.model.active_adapter == "stage3_final"


def test_insights_show_the_report_plots_and_tables_of_a_results_folder(engine, tmp_path):
    eval_dir = write_eval_dir(tmp_path / "eval", stages=(3,))
    plots, text = engine.insights(f"{eval_dir}\n")
    names = {os.path.basename(path) for path, _ in plots}
    assert {"accuracy_vs_tokens_mini.png", "think_rate_by_level_mini.png", "token_histograms_mini.png"} <= names
    assert all(os.path.getsize(path) > 1000 for path, _ in plots)
    assert "| stage3 auto |" in text and "![" not in text


def test_insights_of_a_folder_without_results_say_what_was_expected(engine, tmp_path):
    plots, text = engine.insights(str(tmp_path))
    assert plots == [] and "no results" in text and "<benchmark>/<mode>.jsonl" in text
    assert engine.insights("")[1].startswith("Enter a run folder")


def test_insights_of_the_parent_of_run_folders_name_the_runs_to_pick(engine, tmp_path):
    write_run_dir(tmp_path / "runs" / "mini")
    plots, text = engine.insights(str(tmp_path / "runs"))
    assert plots == [] and text.startswith("**No report:**") and "holds run folders (mini)" in text


def test_the_command_line_takes_a_login_and_refuses_a_malformed_one(capsys):
    from autothink_lite.app_ui import parse_auth

    assert parse_auth("me:secret") == ("me", "secret")
    with pytest.raises(SystemExit):
        main(["--auth", "no-colon"])
    assert "user:password" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- served app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(engine):
    from gradio_client import Client

    demo = launch(build_app(engine), port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def test_the_served_app_streams_a_reply_with_its_reasoning_block_and_badge(served):
    job = served.submit("What is 478 * 6?", "Think", BASE, *SAMPLING, [], api_name="/chat")
    history, question_box, notice = job.result(timeout=60)
    assert len(job.outputs()) > 2, "updates should stream"
    (thought,) = thoughts(history)
    assert thought["metadata"]["title"].startswith("Thought for")
    assert "forced: think" in text(history[-1]) and question_box == ""


def test_several_users_at_once_are_queued_and_all_answered(served):
    jobs = [served.submit(f"What is {a} + 5?", "Auto (ellipsis)", BASE, *SAMPLING, [], api_name="/chat")
            for a in (11, 22, 33)]
    for a, job in zip((11, 22, 33), jobs):
        history, _, _ = job.result(timeout=60)
        assert text(history[0]) == f"What is {a} + 5?" and "at-badge" in text(history[-1])


def test_the_think_bias_slider_steers_the_auto_decision_through_the_served_app(served):
    for bias, thinks in ((6.0, True), (-6.0, False)):  # the slider's ends: e^(6/0.6) to one at T 0.6
        history, _, _ = served.predict("What is 27 + 67?", "Auto (ellipsis)", BASE, 0.6, 0.95, 384, bias, [],
                                       api_name="/chat")
        assert bool(thoughts(history)) is thinks, (bias, history)
        assert f"bias {bias:+g}" in text(history[-1]) or f"bias {bias:+g}" in str(history)


def test_the_think_bias_leaves_forced_modes_alone(engine):
    history, _, _ = ask(engine, "What is 27 + 67?", "No-think", sampling=(0.6, 0.95, 384, 20.0))[-1]
    assert not thoughts(history)


def test_the_served_app_answers_an_empty_question_with_a_notice(served):
    history, _, notice = served.predict("", "Think", BASE, *SAMPLING, [], api_name="/chat")
    assert history == [] and "Type a question" in notice
