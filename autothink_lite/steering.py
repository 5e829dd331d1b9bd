"""Think-eagerness at inference, without training: a logit bias on `</think>` at the decision point.

After the ellipsis prompt (`<think>\\n...\\n`) an AutoThink model decides with its first generated token
whether to skip (it writes `</think>` at once) or to reason. `ThinkBias` subtracts `bias` from the logit of
`</think>` at that one position, before temperature and top-p (transformers applies a caller's processors
first, as OpenAI's and vLLM's `logit_bias` do), so:

  * bias > 0 makes thinking more likely (more accuracy on hard problems, more tokens);
  * bias < 0 makes skipping more likely (fewer tokens);
  * bias 0 changes nothing.

Later positions are left alone: the model must still be able to close its reasoning with `</think>`.
The decision-point probability moves as p' = p e^-b / (p e^-b + 1 - p), where p is the skip probability
of the unbiased model (`skip_probability`), so a bias of +-2.2 turns an even decision into about 90 / 10.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import LogitsProcessor

from autothink_lite.config import MAX_THINK_BIAS as MAX_BIAS
from autothink_lite.errors import AutoThinkError
from autothink_lite.prompts import THINK_CLOSE

THINK_BIAS_ENV = "AUTOTHINK_THINK_BIAS"  # the server-wide default bias (`autothink serve --think-bias`)


class SteeringError(AutoThinkError, ValueError):
    """A think bias that cannot be applied: names the problem and the fix."""


def check_bias(bias: float) -> float:
    if not isinstance(bias, (int, float)) or math.isnan(bias) or abs(bias) > MAX_BIAS:
        raise SteeringError(f"think bias {bias!r}: give a number between -{MAX_BIAS:g} and {MAX_BIAS:g} "
                            "(positive thinks more, negative skips more, 0 is off)")
    return float(bias)


def close_token_id(tokenizer: Any) -> int:
    """The id of `</think>`, which must be one token of the vocabulary for a bias to steer the decision."""
    ids = tokenizer.encode(THINK_CLOSE, add_special_tokens=False)
    if len(ids) != 1:
        raise SteeringError(f"the tokenizer writes {THINK_CLOSE} as {len(ids)} tokens {ids}, not one: a think bias "
                            "needs an R1-style tokenizer with </think> in its vocabulary (use --think-bias 0)")
    return ids[0]


class ThinkBias(LogitsProcessor):
    """Subtract `bias` from `</think>`'s logit at the first generated position only.

    One instance serves one `generate` call: the first call it sees fixes the prompt length (rows are padded
    on the left, so every row decides at the same width)."""

    def __init__(self, close_id: int, bias: float) -> None:
        self.close_id = close_id
        self.bias = check_bias(bias)
        self.decision_width: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.decision_width is None:
            self.decision_width = input_ids.shape[1]
        if input_ids.shape[1] == self.decision_width and self.bias:
            scores = scores.clone()
            scores[:, self.close_id] -= self.bias
        return scores


def think_bias_processors(tokenizer: Any, bias: float) -> list[ThinkBias]:
    """The processors to pass to `model.generate(logits_processor=...)`: none when the bias is 0."""
    bias = check_bias(bias)
    return [ThinkBias(close_token_id(tokenizer), bias)] if bias else []


def biased_skip_probability(p: float, bias: float) -> float:
    """The skip probability after the bias, for an unbiased skip probability p (temperature 1, no top-p)."""
    if p <= 0 or p >= 1:
        return p
    skip = p * math.exp(-bias)
    return skip / (skip + 1 - p)


@torch.inference_mode()
def skip_probability(model: Any, tokenizer: Any, prompt: str, *, temperature: float = 1.0,
                     bias: float = 0.0) -> float:
    """The probability that the model's first token after `prompt` is `</think>` (it skips thinking), at
    `temperature`, after the bias, before top-p. One forward pass: the app shows it as the decision."""
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
    logits = model(input_ids=ids).logits[0, -1].float()
    close = close_token_id(tokenizer)
    logits[close] -= check_bias(bias)
    return torch.softmax(logits / temperature, dim=-1)[close].item()
