"""Prompt modes of the AutoThink paper and the parsing of what the model writes back.

Rendering goes through the tokenizer's own chat template, so the same code serves
DeepSeek-R1-Distill, DeepScaleR and the miniature. Everything here is plain string work: the tokenizer is
only asked for `chat_template` and `apply_chat_template`.

Vocabulary used throughout the package:
  prompt mode   what we ask for:      "standard" | "auto" (the ellipsis prompt) | "no_think"
  mode          what the model did:   "think" | "no_think"
  completion    the text generated after the rendered prompt (no prompt text in it)
"""

from __future__ import annotations

from typing import Any

from autothink_lite.errors import AutoThinkError

PROMPT_MODES = ("standard", "auto", "no_think")
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Text appended after "<think>\n" for each prompt mode (the paper's Table: standard / ellipsis / no-think).
MODE_SUFFIX = {
    "standard": "",
    "auto": "...\n",
    "no_think": "...\n</think>\n\n",
}

# The user-turn suffix of the paper's training data.
INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."


class PromptError(AutoThinkError, ValueError):
    """A prompt cannot be rendered (bad mode, empty question, tokenizer without a chat template)."""


def check_prompt_mode(mode: str) -> str:
    if mode not in PROMPT_MODES:
        raise PromptError(f"unknown prompt mode {mode!r}: use one of {', '.join(PROMPT_MODES)}")
    return mode


def user_message(question: str, instruction: str | None = INSTRUCTION) -> str:
    """The user turn: the question, then the paper's instruction (pass None or "" to leave it out)."""
    if not isinstance(question, str) or not question.strip():
        raise PromptError("the question is empty: give the problem text to solve")
    question = question.strip()
    return f"{question} {instruction}" if instruction else question


def render_prompt(
    tokenizer: Any,
    question: str,
    mode: str = "auto",
    *,
    system_prompt: str | None = None,
    instruction: str | None = INSTRUCTION,
) -> str:
    """Render `question` with the tokenizer's chat template and the prompt mode's suffix.

    The result ends with `<think>\\n` plus the mode suffix. Templates that already open `<think>\\n` in the
    generation prompt (recent R1-Distill copies) are not given a second one. A BOS token written by the
    template stays in the text, so tokenize the result with `add_special_tokens=False`.
    """
    check_prompt_mode(mode)
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise PromptError(
            f"tokenizer {name!r} has no chat template: use an R1-style chat model's tokenizer "
            "(e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B) or set tokenizer.chat_template"
        )
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": user_message(question, instruction)})
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return open_think(text) + MODE_SUFFIX[mode]


def open_think(text: str) -> str:
    """Make `text` end with exactly one `<think>\\n` (templates differ on whether they write it)."""
    if text.endswith(THINK_OPEN + "\n"):
        return text
    if text.endswith(THINK_OPEN):
        return text + "\n"
    return text + THINK_OPEN + "\n"


def response_text(completion: str, prompt_mode: str = "auto") -> str:
    """The assistant's turn after `<think>\\n`, counting what the prompt already wrote for it.

    A completion after the forced no-think prompt carries no `</think>`: the prompt closed the block.
    The ellipsis of the auto prompt is not part of the reasoning, so it is not added back.
    """
    check_prompt_mode(prompt_mode)
    if prompt_mode == "no_think":
        return THINK_CLOSE + "\n\n" + completion
    return completion


def detect_mode(completion: str, prompt_mode: str = "auto") -> str:
    """"no_think" when the response closes the think block at once, else "think".

    The authors test `startswith("</think>\\n\\n")`; leading whitespace and a missing blank line are
    tolerated here, since tokenizers differ in how they split them.
    """
    return "no_think" if response_text(completion, prompt_mode).lstrip().startswith(THINK_CLOSE) else "think"


def split_completion(completion: str, prompt_mode: str = "auto") -> tuple[str, str | None]:
    """(reasoning, answer): the text before and after the first `</think>`; answer None if never closed."""
    text = response_text(completion, prompt_mode)
    reasoning, sep, answer = text.partition(THINK_CLOSE)
    if not sep:
        return text.strip(), None
    return reasoning.strip(), answer.strip()


_BOX_COMMANDS = ("\\boxed", "\\fbox")


def extract_boxed(text: str | None) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (nested braces kept), or of `\\boxed 5`; else None."""
    if not text:
        return None
    start, command = max((text.rfind(c), c) for c in _BOX_COMMANDS)
    if start < 0:
        return None
    rest = text[start + len(command):]
    if rest.startswith("{"):
        depth = 0
        for i, ch in enumerate(rest):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    content = rest[1:i].strip()
                    return content or None
        return None  # unbalanced braces: the answer was cut off
    if rest[:1] == " ":
        # `\boxed 5`: the argument is the next whitespace-delimited token, up to a closing `$`.
        token = rest.strip().split(maxsplit=1)
        content = token[0].split("$")[0] if token else ""
        return content or None
    return None


def extract_answer(completion: str, prompt_mode: str = "auto") -> str | None:
    """The boxed final answer after `</think>`; None when the block is never closed or nothing is boxed."""
    _, answer = split_completion(completion, prompt_mode)
    return extract_boxed(answer)
