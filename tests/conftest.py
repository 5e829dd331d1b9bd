"""Shared fixtures: small local tokenizers that carry the real R1-Distill chat templates (no downloads)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

# The miniature is far too small to gain from several threads; with 2 cores shared with test subprocesses
# (torchrun, the killed-and-resumed training run) more threads only contend. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

R1_TEMPLATE = (Path(__file__).parents[1] / "autothink_lite" / "miniature" / "r1_chat_template.jinja").read_text()
# Older copies of the R1-Distill tokenizer end the generation prompt at the assistant tag.
R1_TEMPLATE_WITHOUT_THINK = R1_TEMPLATE.replace("{{'<｜Assistant｜><think>\\n'}}", "{{'<｜Assistant｜>'}}")
BOS = "<｜begin▁of▁sentence｜>"


def make_tokenizer(chat_template: str | None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token="<｜end▁of▁sentence｜>", unk_token="[UNK]"
    )
    tokenizer.add_tokens(["<｜User｜>", "<｜Assistant｜>"], special_tokens=True)
    tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.chat_template = chat_template
    return tokenizer


@pytest.fixture(scope="session")
def r1_tokenizer():
    """Template that already opens `<think>\\n` (recent DeepSeek-R1-Distill copies)."""
    return make_tokenizer(R1_TEMPLATE)


@pytest.fixture(scope="session")
def r1_tokenizer_without_think():
    """Template that ends the generation prompt with `<｜Assistant｜>` (older copies)."""
    return make_tokenizer(R1_TEMPLATE_WITHOUT_THINK)


@pytest.fixture(params=["with_think", "without_think"])
def any_r1_tokenizer(request, r1_tokenizer, r1_tokenizer_without_think):
    return r1_tokenizer if request.param == "with_think" else r1_tokenizer_without_think


# ------------------------------------------------------------------ the command line, as a user runs it


class Seen:
    """What a user sees after a command: its exit code and the log lines it printed; unpacks as
    (code, error lines)."""

    def __init__(self, code: int, records: list[logging.LogRecord]):
        self.code = code
        self.lines = [r.getMessage() for r in records]
        self.errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]

    def says(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def __iter__(self):
        return iter((self.code, self.errors))


@pytest.fixture
def autothink(caplog):
    """`autothink ARGS...` in this process; an exception other than the CLI's exit is a traceback: the test fails."""
    from autothink_lite.cli import main

    def run(*argv) -> Seen:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            try:
                main([str(a) for a in argv])
                code = 0
            except SystemExit as done:
                code = done.code
        return Seen(code, list(caplog.records))

    return run
