"""What trl needs to train on a CPU-only torch. Written against trl 1.15.0.

trl 1.15's GRPOTrainer always asks the model for `fused_lm_head=True` log-probs, computed by
`trl.kernels.ChunkedLogProbFunction`, a Triton kernel. The CPU torch wheel has no Triton, so trl leaves
`trl.trainer.utils._ChunkedLogProbFunction = None` and the first loss step fails. `install()` puts a plain
torch version in its place. It materialises the logits, which is fine for the miniature on a CPU; on a GPU
with Triton nothing is replaced.
"""

from __future__ import annotations

import logging

import torch
import trl.trainer.utils as trl_utils

logger = logging.getLogger(__name__)


class TorchLogProbFunction:
    """Same call and outputs as trl's `ChunkedLogProbFunction.apply`; autograd does the backward."""

    @staticmethod
    def apply(hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping=None,
              logit_scale=1.0, outputs=("log_probs",)):
        logits = hidden.float() @ weight.float().t()
        if bias is not None:
            logits = logits + bias.float()
        logits = logits * logit_scale
        if final_logit_softcapping is not None:
            logits = final_logit_softcapping * torch.tanh(logits / final_logit_softcapping)
        logits = logits / temperature
        logp = logits.log_softmax(-1)
        token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1) if "entropy" in outputs else None
        log_sum_sq = torch.logsumexp(2 * logp, -1).detach() if "log_sum_sq_probs" in outputs else None
        mean_logits = logits.mean(-1).detach() if "mean_logits" in outputs else None
        is_top1 = (logits.argmax(-1) == targets) if "is_top1" in outputs else None
        return token_logp, entropy, log_sum_sq, mean_logits, is_top1


def install() -> None:
    if getattr(trl_utils, "_ChunkedLogProbFunction", object) is None:
        trl_utils._ChunkedLogProbFunction = TorchLogProbFunction
        logger.info("trl's Triton log-prob kernel is unavailable; using the plain torch version")
