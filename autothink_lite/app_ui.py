"""The Gradio app: watch a model decide whether to think, compare it with its base, browse evaluation reports.

Three tabs share one loaded model (the queue runs one generation at a time, so users wait their turn):
  Chat      a question in one of the paper's prompt modes, streamed; the reasoning in a collapsible block,
            the answer below it with a badge (mode the model chose, reasoning / answer tokens, seconds, and
            whether it is right when the question is a known benchmark example)
  Compare   one question through two model variants (base = adapters off, or an adapter) or two modes
  Insights  the plots and tables of `report.write_report` for run / evaluation folders

Prompts, generation, grading and reports are the package's own (`prompts`, `generation.stream`, `grading`,
`report`); this module only arranges them on screen. Each question is answered on its own, as in the paper:
earlier turns are shown but not sent back to the model.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported: no telemetry calls

import gradio as gr  # noqa: E402

from autothink_lite.config import MINIATURE  # noqa: E402
from autothink_lite.generation import stream  # noqa: E402
from autothink_lite.grading import is_correct  # noqa: E402
from autothink_lite.modeling import adapter_names, load_for_inference, resolve_model_path  # noqa: E402
from autothink_lite.problems import load_benchmark  # noqa: E402
from autothink_lite.prompts import (  # noqa: E402
    THINK_CLOSE,
    detect_mode,
    extract_boxed,
    render_prompt,
    split_completion,
)
from autothink_lite.report import ReportError, write_report  # noqa: E402
from autothink_lite.steering import MAX_BIAS  # noqa: E402

logger = logging.getLogger(__name__)

# What the mode selector shows -> the prompt mode it renders (prompts.PROMPT_MODES).
MODES = {"Auto (ellipsis)": "auto", "Think": "standard", "No-think": "no_think"}
MODE_LABELS = {prompt_mode: label for label, prompt_mode in MODES.items()}
BASE = "base (adapters off)"
MAX_QUESTION_CHARS = 2000
MIN_ROOM = 32  # tokens of context an answer needs at the least
COMPARE_SEED = 0  # both sides of a comparison sample with the same seed
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "$", "right": "$", "display": False},
]


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.6  # the paper's evaluation settings
    top_p: float = 0.95
    max_new_tokens: int = 512
    think_bias: float = 0.0  # steering.ThinkBias in Auto mode: > 0 thinks more, < 0 skips more


@dataclass
class Reply:
    """One answer as it streams in: the completion so far, then its token counts and grade once done."""

    prompt_mode: str
    label: str = ""
    completion: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    think_seconds: float | None = None  # when `</think>` arrived
    think_bias: float = 0.0  # the bias its decision was taken under (Auto mode)
    done: bool = False
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    correct: bool | None = None  # None: not a known example

    @property
    def mode(self) -> str:
        return detect_mode(self.completion, self.prompt_mode)

    @property
    def parts(self) -> tuple[str, str | None]:
        return split_completion(self.completion, self.prompt_mode)

    @property
    def tokens(self) -> int:
        return self.reasoning_tokens + self.answer_tokens


class QuestionTooLong(ValueError):
    """The rendered question leaves too little of the model's context for an answer."""


class ChatEngine:
    """The loaded model with its adapters, example questions and gold answers; generates `Reply`s."""

    def __init__(self, model: Any, tokenizer: Any, *, model_name: str, adapters: Sequence[str] = (),
                 examples: Sequence[dict] = (), known: Sequence[dict] = (), sampling: Sampling = Sampling(),
                 description: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.description = description
        self.adapters = adapter_names(adapters)
        self.variants = [BASE, *self.adapters]
        self.examples = list(examples)
        self.sampling = sampling
        self._gold = {_question_key(r["problem"]): r for r in known}
        self._reports = tempfile.TemporaryDirectory(prefix="autothink-reports-")  # removed when the app exits

    @classmethod
    def load(cls, model_name: str = MINIATURE, adapters: Sequence[str] = (), *, load_in_4bit: bool = False) -> ChatEngine:
        model, tokenizer = load_for_inference(model_name, adapters, load_in_4bit=load_in_4bit)
        miniature = is_miniature(model_name)
        known = load_benchmark(MINIATURE if miniature else "math500")
        sampling = Sampling(max_new_tokens=512 if miniature else 4096)
        description = "the built-in miniature R1 (integer arithmetic, difficulty levels 1-5)" if miniature else ""
        return cls(model, tokenizer, model_name=model_name, adapters=adapters, examples=examples_by_level(known),
                   known=known, sampling=sampling, description=description)

    @property
    def default_variant(self) -> str:
        return self.variants[-1]

    def known_example(self, question: str) -> dict | None:
        return self._gold.get(_question_key(question))

    def reply(self, question: str, prompt_mode: str, *, variant: str = BASE, sampling: Sampling | None = None,
              seed: int | None = None) -> Iterator[Reply]:
        """Yield the same `Reply` as it grows; the last one yielded is done (counted and graded).

        Closing this iterator early (Stop) closes the stream, which stops the generation thread.
        """
        sampling = sampling or self.sampling
        prompt = render_prompt(self.tokenizer, question, prompt_mode)
        max_new_tokens = self._room(prompt, sampling.max_new_tokens)
        bias = sampling.think_bias if prompt_mode == "auto" else 0.0  # only the ellipsis prompt leaves a decision
        reply = Reply(prompt_mode, label=f"{variant} · {MODE_LABELS[prompt_mode]}" + (f" · bias {bias:+g}" if bias else ""),
                      think_bias=bias)
        with self._variant(variant), contextlib.closing(stream(
            self.model, self.tokenizer, prompt, max_new_tokens=max_new_tokens,
            temperature=sampling.temperature, top_p=sampling.top_p, seed=seed, think_bias=bias,
        )) as pieces:
            for piece in pieces:
                if not piece:
                    continue
                reply.completion += piece
                reply.seconds = time.monotonic() - reply.started
                if reply.think_seconds is None and reply.parts[1] is not None:
                    reply.think_seconds = reply.seconds
                yield reply
        reasoning, answer = reply.parts
        reply.seconds = time.monotonic() - reply.started
        reply.reasoning_tokens = self._count(reasoning)
        reply.answer_tokens = self._count(answer or "")
        example = self.known_example(question)
        if example is not None:
            reply.correct = is_correct(reply.completion, example["answer"], prompt_mode)
        reply.done = True
        yield reply

    def _room(self, prompt: str, max_new_tokens: int) -> int:
        """max_new_tokens, cut to what is left of the model's context after the prompt."""
        context = getattr(self.model.config, "max_position_embeddings", None)
        if context is None:
            return max_new_tokens
        left = context - self._count(prompt)
        if left < MIN_ROOM:
            raise QuestionTooLong(f"This question takes {context - left:,} tokens of the model's {context:,}-token "
                                  "context, leaving no room for an answer: shorten it.")
        return min(max_new_tokens, left)

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    @contextlib.contextmanager
    def _variant(self, variant: str) -> Iterator[None]:
        if variant not in self.variants:
            raise gr.Error(f"unknown model variant {variant!r}: choose one of {', '.join(self.variants)}")
        if variant == BASE and self.adapters:
            with self.model.disable_adapter():
                yield
            return
        if variant != BASE:
            self.model.set_adapter(variant)
        yield

    # ------------------------------------------------------------------------------------- handlers

    def chat(self, question: str, mode_label: str, variant: str, temperature: float, top_p: float,
             max_new_tokens: int, think_bias: float, history: list[dict] | None) -> Iterator[tuple[list[dict], str, str]]:
        """Chat tab: yields (chat history, question box, notice) while the reply streams."""
        history = list(history or [])
        question, notice = clean_question(question)
        if question is None:
            yield history, "", notice
            return
        history.append({"role": "user", "content": question})
        sampling = _sampling(temperature, top_p, max_new_tokens, think_bias)
        try:
            for reply in self.reply(question, MODES[mode_label], variant=variant, sampling=sampling):
                yield history + reply_messages(reply, self.known_example(question)), "", notice
        except QuestionTooLong as err:
            yield history, "", f"{notice}\n\n{err}".strip()

    def compare(self, question: str, variant_a: str, mode_a: str, variant_b: str, mode_b: str, temperature: float,
                top_p: float, max_new_tokens: int, think_bias: float = 0.0) -> Iterator[tuple[list[dict], list[dict], str]]:
        """Compare tab: A then B with the same seed; yields (chat A, chat B, summary)."""
        question, notice = clean_question(question)
        if question is None:
            yield [], [], notice
            return
        sampling = _sampling(temperature, top_p, max_new_tokens, think_bias)
        asked = [{"role": "user", "content": question}]
        example = self.known_example(question)
        shown = {"A": asked, "B": asked}
        replies: dict[str, Reply] = {}
        for side, variant, mode_label in (("A", variant_a, mode_a), ("B", variant_b, mode_b)):
            try:
                for reply in self.reply(question, MODES[mode_label], variant=variant, sampling=sampling,
                                        seed=COMPARE_SEED):
                    shown[side] = asked + reply_messages(reply, example)
                    yield shown["A"], shown["B"], f"{notice}\n\nRunning **{side}**: {reply.label} …".strip()
            except QuestionTooLong as err:
                yield shown["A"], shown["B"], f"{notice}\n\n{err}".strip()
                return
            replies[side] = reply
        yield shown["A"], shown["B"], f"{notice}\n\n{comparison_table(replies['A'], replies['B'])}".strip()

    def insights(self, folders: str) -> tuple[list[tuple[str, str]], str]:
        """Insights tab: (plots with captions, report markdown) for one or more folders, one per line."""
        dirs = [line.strip() for line in (folders or "").splitlines() if line.strip()]
        if not dirs:
            return [], "Enter a run folder (from `autothink run`) or an evaluation folder (from `autothink eval`)."
        out = Path(tempfile.mkdtemp(dir=self._reports.name))
        try:
            report = write_report(dirs, out)
        except ReportError as err:
            return [], f"**No report:** {err}"
        return split_report(report)


# ------------------------------------------------------------------------------------------- pieces


def is_miniature(model_name: str) -> bool:
    path = Path(resolve_model_path(model_name))
    return (path / "miniature.json").is_file()


def examples_by_level(records: Sequence[dict]) -> list[dict]:
    """One example question per difficulty level, levels in order: a short but not the shortest one
    (the first quartile by length), so that the example reads like the level's typical problem."""
    levels: dict[int, list[dict]] = {}
    for record in records:
        if record.get("level") is not None:
            levels.setdefault(record["level"], []).append(record)
    picked = []
    for level in sorted(levels):
        ranked = sorted(levels[level], key=lambda r: (len(r["problem"]), r["problem"]))
        picked.append(ranked[len(ranked) // 4])
    return picked


def _question_key(question: str) -> str:
    return " ".join(question.split())


def clean_question(question: str | None) -> tuple[str | None, str]:
    """(question or None when empty, notice for the user); questions over MAX_QUESTION_CHARS are cut."""
    text = (question or "").strip()
    if not text:
        return None, "Type a question first, or pick one of the examples."
    if len(text) > MAX_QUESTION_CHARS:
        return text[:MAX_QUESTION_CHARS], (f"Your question had {len(text):,} characters; only the first "
                                           f"{MAX_QUESTION_CHARS:,} were sent to the model.")
    return text, ""


def _sampling(temperature: float, top_p: float, max_new_tokens: int, think_bias: float = 0.0) -> Sampling:
    if temperature <= 0:
        raise gr.Error("Temperature must be above 0 (sampling).")
    if not abs(think_bias) <= MAX_BIAS:
        raise gr.Error(f"Think bias must be between -{MAX_BIAS:g} and {MAX_BIAS:g} (0 is off).")
    return Sampling(float(temperature), float(top_p), int(max_new_tokens), float(think_bias))


def reply_messages(reply: Reply, example: dict | None = None) -> list[dict]:
    """The chat messages of one reply: a collapsible reasoning block (if it thought) and the answer with a badge."""
    reasoning, answer = reply.parts
    messages = []
    if reasoning:
        if answer is None and not reply.done:
            metadata = {"title": "Thinking…", "status": "pending"}
            reasoning = _without_partial_close(reasoning)
        else:
            metadata = {"title": f"Thought for {reply.reasoning_tokens:,} tokens" if reply.done else "Thought",
                        "status": "done", "duration": round(reply.think_seconds or reply.seconds, 1)}
        messages.append({"role": "assistant", "content": literal_emphasis(reasoning), "metadata": metadata})
    if answer is None and reply.done:
        answer = (f"*No final answer: the reasoning was cut off at {reply.tokens:,} tokens. "
                  "Raise **Max new tokens** in the sampling settings.*")
    if answer is not None:
        content = display_math(answer)
        if reply.done:
            content += "\n\n" + badge(reply, example)
        messages.append({"role": "assistant", "content": content})
    return messages


def _without_partial_close(text: str) -> str:
    # A streamed piece can end inside `</think>`; do not flash half a tag in the reasoning block.
    for n in range(len(THINK_CLOSE) - 1, 0, -1):
        if text.endswith(THINK_CLOSE[:n]):
            return text[:-n].rstrip()
    return text


_MATH = re.compile(r"(\$\$.*?\$\$|\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\])", re.DOTALL)


def literal_emphasis(text: str) -> str:
    """Keep `*` and `_` of reasoning literal outside math (`47 * 6 ... 4*6` is arithmetic, not italics)."""
    parts = _MATH.split(text)
    return "".join(part if i % 2 else re.sub(r"([*_])", r"\\\1", part) for i, part in enumerate(parts))


def display_math(answer: str) -> str:
    """Show a bare `\\boxed{..}` (no math delimiters around it) as rendered math."""
    boxed = extract_boxed(answer)
    if boxed is None or "$" in answer or "\\(" in answer or "\\[" in answer:
        return answer
    return answer.replace(f"\\boxed{{{boxed}}}", f"$\\boxed{{{boxed}}}$")


def badge(reply: Reply, example: dict | None = None) -> str:
    """One line of chips under an answer: the mode chosen (or forced), tokens, seconds, and the grade."""
    mode = "think" if reply.mode == "think" else "no-think"
    how = "chose" if reply.prompt_mode == "auto" else "forced"
    bias = f" (bias {reply.think_bias:+g})" if reply.think_bias else ""
    chips = [(f"{how}: {mode}{bias}", "at-think" if reply.mode == "think" else "at-direct"),
             (f"reasoning {reply.reasoning_tokens:,} tok", ""),
             (f"answer {reply.answer_tokens:,} tok", ""),
             (f"{reply.seconds:.1f} s", "")]
    if reply.correct is not None and example is not None:
        level = f" (level {example['level']} example)" if example.get("level") else ""
        chips.append(((f"✓ correct{level}" if reply.correct else f"✗ wrong, expected {example['answer']}{level}"),
                      "at-ok" if reply.correct else "at-bad"))
    spans = "".join(f'<span class="at-chip {cls}">{html.escape(str(text))}</span>' for text, cls in chips)
    return f'<div class="at-badge">{spans}</div>'


def comparison_table(a: Reply, b: Reply) -> str:
    def grade(r: Reply) -> str:
        return "-" if r.correct is None else ("✓" if r.correct else "✗")

    rows = [("mode chosen", a.mode.replace("_", "-"), b.mode.replace("_", "-")),
            ("tokens (reasoning + answer)", f"{a.tokens:,} ({a.reasoning_tokens:,} + {a.answer_tokens:,})",
             f"{b.tokens:,} ({b.reasoning_tokens:,} + {b.answer_tokens:,})"),
            ("seconds", f"{a.seconds:.1f}", f"{b.seconds:.1f}"),
            ("correct", grade(a), grade(b))]
    lines = [f"| | A: {a.label} | B: {b.label} |", "|---|---|---|"]
    lines += [f"| {name} | {x} | {y} |" for name, x, y in rows]
    return "\n".join(lines) + "\n\n" + token_saving(a.tokens, b.tokens)


def token_saving(a: int, b: int) -> str:
    if a == b:
        return "**A and B used the same number of tokens.**"
    fewer, more, name = (b, a, "B") if b < a else (a, b, "A")
    return f"**{name} used {100 * (more - fewer) / max(more, 1):.0f}% fewer tokens** ({fewer:,} vs {more:,})."


_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)\s*$", re.MULTILINE)


def split_report(report: Path) -> tuple[list[tuple[str, str]], str]:
    """A report.md as (gallery of its plots with captions, its text without the image links)."""
    text = report.read_text()
    plots = [(str(report.parent / name), caption) for caption, name in _IMAGE.findall(text)]
    return plots, re.sub(r"\n{3,}", "\n\n", _IMAGE.sub("", text))


def stop_history(history: list[dict] | None) -> list[dict]:
    """After Stop: close a reasoning block left spinning and say the reply was stopped."""
    history = list(history or [])
    if not history or (history[-1].get("role") == "assistant" and "at-badge" in str(history[-1].get("content"))):
        return history
    for message in history:
        metadata = message.get("metadata") or {}
        if metadata.get("status") == "pending":
            message["metadata"] = {**metadata, "title": "Stopped while thinking", "status": "done"}
    return history + [{"role": "assistant", "content": "*Stopped.*"}]


# ---------------------------------------------------------------------------------------------- app

CSS = """
.at-badge { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 4px; }
.at-chip { font-size: 0.78em; padding: 1px 9px; border-radius: 999px; background: var(--neutral-100);
  color: var(--neutral-700); border: 1px solid var(--neutral-200); white-space: nowrap; }
.at-chip.at-think { background: #fdecec; color: #a61b1b; border-color: #f5c2c2; }
.at-chip.at-direct { background: #e8f0fe; color: #1a4fb5; border-color: #bcd0f7; }
.at-chip.at-ok { background: #e6f4ea; color: #1e6b34; border-color: #b7dfc3; }
.at-chip.at-bad { background: #fef3e2; color: #8a5300; border-color: #f6d9a8; }
.at-stop { color: #b42318 !important; border-color: #f5c2c2 !important; }
#at-notice p { color: var(--body-text-color-subdued); margin: 0; }
#at-header h1 { margin-bottom: 0; }
"""


def build_app(engine: ChatEngine) -> gr.Blocks:
    """The Blocks app around a loaded `ChatEngine`; serve it with `launch` (theme, CSS and queue)."""
    has_adapters = len(engine.variants) > 1
    with gr.Blocks(title="autothink-lite") as demo:
        gr.Markdown(
            "# autothink-lite\n"
            "Does the model think before it answers? **Auto** gives it the AutoThink ellipsis prompt and lets it "
            "decide; **Think** forces reasoning; **No-think** forces a direct answer.  \n"
            f"Model: `{engine.model_name}`" + (f", {engine.description}" if engine.description else "")
            + (f" · adapters: {', '.join(f'`{a}`' for a in engine.adapters)}" if has_adapters else ""),
            elem_id="at-header",
        )
        with gr.Accordion("Sampling settings", open=False):
            with gr.Row():
                temperature = gr.Slider(0.05, 1.5, value=engine.sampling.temperature, step=0.05, label="Temperature")
                top_p = gr.Slider(0.05, 1.0, value=engine.sampling.top_p, step=0.01, label="Top-p")
                max_tokens = gr.Slider(16, max(1024, 8 * engine.sampling.max_new_tokens), step=16,
                                       value=engine.sampling.max_new_tokens, label="Max new tokens")
                think_bias = gr.Slider(-6, 6, value=engine.sampling.think_bias, step=0.5,
                                       label="Think bias (Auto mode): > 0 thinks more, < 0 skips more",
                                       info="a logit bias on </think> at the model's first token, no training")
        sampling = [temperature, top_p, max_tokens, think_bias]

        with gr.Tabs():
            with gr.Tab("Chat"):
                chatbot = gr.Chatbot(label="Conversation", show_label=False, height=520, latex_delimiters=LATEX,
                                     feedback_options=None, placeholder="Ask a question, or pick an example below. "
                                                 "The reasoning appears in a collapsible block above each answer.")
                with gr.Row(equal_height=True):
                    mode = gr.Radio(list(MODES), value="Auto (ellipsis)", label="Mode", scale=2)
                    variant = gr.Dropdown(engine.variants, value=engine.default_variant, label="Model",
                                          visible=has_adapters, scale=1)
                with gr.Row(equal_height=True):
                    question = gr.Textbox(placeholder="e.g. What is 478 * 6?", show_label=False, scale=6,
                                          max_lines=6, autofocus=True)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80)
                    stop = gr.Button("Stop", variant="stop", scale=1, min_width=80, elem_classes="at-stop")
                    clear = gr.Button("Clear", scale=1, min_width=80)
                notice = gr.Markdown(elem_id="at-notice")
                if engine.examples:
                    gr.Examples([[r["problem"]] for r in engine.examples], inputs=[question],
                                label="Examples of graded difficulty",
                                example_labels=[f"Level {r['level']}: {_short(r['problem'])}" for r in engine.examples])

            with gr.Tab("Compare"):
                cmp_question = gr.Textbox(placeholder="One question, answered by A and then by B (same seed)",
                                          show_label=False, max_lines=6)
                with gr.Row():
                    with gr.Column():
                        variant_a = gr.Dropdown(engine.variants, value=BASE, label="A: model", visible=has_adapters)
                        mode_a = gr.Radio(list(MODES), value="Auto (ellipsis)" if has_adapters else "Think",
                                          label="A: mode")
                    with gr.Column():
                        variant_b = gr.Dropdown(engine.variants, value=engine.default_variant, label="B: model",
                                                visible=has_adapters)
                        mode_b = gr.Radio(list(MODES), value="Auto (ellipsis)", label="B: mode")
                with gr.Row():
                    run_compare = gr.Button("Compare", variant="primary")
                    stop_compare = gr.Button("Stop", variant="stop", elem_classes="at-stop")
                with gr.Row():
                    chat_a = gr.Chatbot(label="A", height=360, latex_delimiters=LATEX, feedback_options=None)
                    chat_b = gr.Chatbot(label="B", height=360, latex_delimiters=LATEX, feedback_options=None)
                summary = gr.Markdown()
                if engine.examples:
                    gr.Examples([[r["problem"]] for r in engine.examples], inputs=[cmp_question],
                                example_labels=[f"Level {r['level']}" for r in engine.examples])

            with gr.Tab("Insights"):
                with gr.Row(equal_height=True):
                    folders = gr.Textbox(label="Run or evaluation folders (one per line)", lines=2, scale=5,
                                         placeholder="runs/mini-autothink")
                    show = gr.Button("Show report", variant="primary", scale=1)
                plots = gr.Gallery(label="Plots", columns=2, height=760, object_fit="contain", preview=False)
                report_text = gr.Markdown()

        chat_event = gr.on([question.submit, send.click], engine.chat,
                           inputs=[question, mode, variant, *sampling, chatbot], outputs=[chatbot, question, notice],
                           concurrency_limit=1, concurrency_id="model", api_name="chat")
        stop.click(stop_history, inputs=chatbot, outputs=chatbot, cancels=[chat_event], api_name=False)
        clear.click(lambda: ([], "", ""), outputs=[chatbot, question, notice], api_name=False)
        compare_event = gr.on([cmp_question.submit, run_compare.click], engine.compare,
                              inputs=[cmp_question, variant_a, mode_a, variant_b, mode_b, *sampling],
                              outputs=[chat_a, chat_b, summary], concurrency_limit=1, concurrency_id="model",
                              api_name="compare")
        stop_compare.click(None, cancels=[compare_event], api_name=False)
        gr.on([folders.submit, show.click], engine.insights, inputs=folders, outputs=[plots, report_text],
              api_name="insights")
    return demo


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def launch(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, auth: tuple[str, str] | None = None,
           share: bool = False, prevent_thread_lock: bool = False, quiet: bool = False) -> gr.Blocks:
    """Queue (one generation at a time; others wait their turn) and serve `demo` with the app's theme and CSS."""
    if share:
        logger.warning("--share: the app gets a public gradio.live link; anyone with it can use your model, and "
                       "its Insights tab lets them read report data from any folder this machine can read%s",
                       "" if auth else " (add --auth user:pass to require a login)")
    if host not in LOCAL_HOSTS:
        logger.warning("listening on %s: other machines on the network can reach the app and, through its "
                       "Insights tab, report data from any folder this machine can read%s", host,
                       "" if auth else " (add --auth user:pass to require a login)")
    demo.queue(default_concurrency_limit=1, max_size=64)
    demo.launch(server_name=host, server_port=port, auth=auth, share=share, prevent_thread_lock=prevent_thread_lock,
                quiet=quiet, show_error=True, theme=gr.themes.Soft(primary_hue="indigo"), css=CSS)
    return demo


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("--auth takes user:password")
    return user, password


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="autothink app", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=MINIATURE,
                        help="base model: 'mini' (the built-in miniature, offline), a local folder or a Hub id")
    parser.add_argument("--adapter", action="append", default=[],
                        help="LoRA adapter folder or Hub id; repeat for several (the last is the default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--auth", type=parse_auth, metavar="USER:PASS", help="require this login")
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument("--load-in-4bit", action="store_true", help="load the base model 4-bit (bitsandbytes nf4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = ChatEngine.load(args.model, args.adapter, load_in_4bit=args.load_in_4bit)
    launch(build_app(engine), host=args.host, port=args.port, auth=args.auth, share=args.share)
