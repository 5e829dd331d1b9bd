"""Is an answer right, and is an output degenerate? (the paper's correctness check and its degenerate-output penalty)

`is_correct` never raises and never hangs. math-verify bounds its own time with `signal.alarm`, which works
only in the main thread; elsewhere (the Gradio app's worker threads) the same check runs in one spawned
worker subprocess that is killed and replaced when it overruns. A cheap normalised string match runs first,
so most answers never reach sympy at all.
"""

from __future__ import annotations

import json
import logging
import re
import select
import subprocess
import sys
import threading
from typing import Iterable

from autothink_lite.prompts import extract_answer

logger = logging.getLogger(__name__)

VERIFY_TIMEOUT_S = 3
MAX_ANSWER_CHARS = 1000  # longer "answers" are garbage; parsing them can take minutes

Gold = str | int | float | Iterable[str | int | float]
LOGGED_ANSWER_CHARS = 80  # how much of an answer a log line shows


class _ShortMathVerifyWarnings(logging.Filter):
    """math-verify logs "Timeout during parsing: <the whole input>" (up to MAX_ANSWER_CHARS); cut it short."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        head, sep, text = message.partition(": ")
        if sep and head.startswith("Timeout") and len(text) > LOGGED_ANSWER_CHARS:
            record.msg, record.args = f"{head}: {text[:LOGGED_ANSWER_CHARS]!r}... ({len(text)} characters)", None
        return True


logging.getLogger("math_verify.parser").addFilter(_ShortMathVerifyWarnings())


def is_correct(completion: str, gold: Gold, prompt_mode: str = "auto") -> bool:
    """True when the boxed answer after `</think>` equals `gold` (any of them, if a list).

    No `</think>` or no boxed answer is a format error and counts as wrong.
    """
    try:
        predicted = extract_answer(completion, prompt_mode)
    except Exception:  # noqa: BLE001 - garbage in must never crash a reward or an eval
        return False
    return predicted is not None and answer_matches(predicted, gold)


def answer_matches(predicted: str, gold: Gold) -> bool:
    """Equivalence of an extracted answer with a gold answer (or with any of a list of them)."""
    if not isinstance(predicted, str) or not predicted.strip() or len(predicted) > MAX_ANSWER_CHARS:
        return False
    return any(_match_one(predicted, g) for g in gold_answers(gold))


def gold_answers(gold: Gold) -> list[str]:
    """Gold answers as strings: benchmark files hold strings, lists of strings and floats like 142.0."""
    items = [gold] if isinstance(gold, (str, int, float)) else list(gold)
    out = []
    for item in items:
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        text = str(item).strip()
        if text:
            out.append(text)
    return out


def _match_one(predicted: str, gold: str) -> bool:
    if normalize_answer(predicted) == normalize_answer(gold):
        return True
    return _verify_bounded(predicted, gold)


_STRIP_PATTERNS = [
    (re.compile(r"(\d)\s*\\(?:times|cdot)\s*10\^\{?([-+]?\d+)\}?"), r"\1e\2"),  # 2.2\times10^{-3} -> 2.2e-3
    (re.compile(r"\\text\{\s*([^{}]*?)\s*\}"), r"\1"),  # \text{(B)} -> (B); units in text are kept
    (re.compile(r"\\(?:mathrm|textbf|mathbf)\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\^\{?\\circ\}?"), ""),  # degrees
    (re.compile(r"\\%|%"), ""),  # percentages compare as numbers
    (re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\ |\$"), ""),
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\s+"), ""),
]
_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?[.:]?$")


def normalize_answer(answer: str) -> str:
    """A canonical string for the cheap equality test: spacing, `\\left`, degrees, %, `$`, choice letters."""
    text = answer.strip()
    for pattern, repl in _STRIP_PATTERNS:
        text = pattern.sub(repl, text)
    text = text.rstrip(".")
    choice = _CHOICE.match(text)
    if choice:
        return choice.group(1).upper()
    number = re.fullmatch(r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?", text)
    if number:
        value = float(text.replace(",", ""))
        return str(int(value)) if value.is_integer() else repr(value)
    return text


def _math_verify(predicted: str, gold: str, timeout: int | None) -> bool:
    """math-verify on `\\boxed{}`-wrapped strings; `timeout` None disables its signal alarm."""
    # Imported on first use: it imports sympy (most of a second), which most answers, matched as plain
    # numbers or strings first, never need; the app and the report import this module too.
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", extraction_config=config, parsing_timeout=timeout)
        pred_parsed = parse(f"\\boxed{{{predicted}}}", extraction_config=config, parsing_timeout=timeout)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - sympy raises anything on odd input
        return False


class _VerifyWorker:
    """One `python -m autothink_lite.grading` child that checks answers for threads; killed when it overruns.

    A subprocess rather than multiprocessing: spawn/forkserver re-import the caller's `__main__`, which
    re-runs scripts (or fails for stdin) in the child.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def check(self, predicted: str, gold: str) -> bool:
        with self._lock:
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._proc = subprocess.Popen(
                        [sys.executable, "-m", "autothink_lite.grading"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                    )
                self._proc.stdin.write(json.dumps([predicted, gold]) + "\n")
                self._proc.stdin.flush()
                # The first call also pays for the child's start and the sympy import.
                ready, _, _ = select.select([self._proc.stdout], [], [], VERIFY_TIMEOUT_S + 30)
                if ready:
                    line = self._proc.stdout.readline()
                    if line:
                        return bool(json.loads(line))
                logger.warning("answer check timed out; counting %r as wrong", predicted[:LOGGED_ANSWER_CHARS])
            except (OSError, ValueError):
                logger.warning("answer check failed in the worker; counting %r as wrong", predicted[:LOGGED_ANSWER_CHARS])
            if self._proc is not None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
            return False


_worker = _VerifyWorker()


def _verify_bounded(predicted: str, gold: str) -> bool:
    if threading.current_thread() is threading.main_thread():
        return _math_verify(predicted, gold, VERIFY_TIMEOUT_S)
    return _worker.check(predicted, gold)


def is_degenerate(text: str, max_ngram: int = 30, min_repeats: int = 10, max_token_chars: int = 120) -> bool:
    """True for the authors' degenerate outputs: a word n-gram (n <= max_ngram) repeated `min_repeats` times
    in a row, or a whitespace-free token of `max_token_chars` characters or more."""
    words = text.split()
    if any(len(w) >= max_token_chars for w in words):
        return True
    for n in range(1, max_ngram + 1):
        # k copies of an n-word block in a row <=> words[j] == words[j + n] for (k - 1) * n consecutive j.
        needed = (min_repeats - 1) * n
        if needed <= 0 or len(words) < n + needed:
            continue
        run = 0
        for j in range(len(words) - n):
            run = run + 1 if words[j] == words[j + n] else 0
            if run >= needed:
                return True
    return False



if __name__ == "__main__":
    # The thread-safe checker's child (see _VerifyWorker): one JSON [predicted, gold] per line in, a bool out.
    for request in sys.stdin:
        predicted_answer, gold_answer = json.loads(request)
        print(json.dumps(_math_verify(predicted_answer, gold_answer, VERIFY_TIMEOUT_S)), flush=True)
