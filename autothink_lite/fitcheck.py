"""Will a GRPO stage fit on the GPU? A per-component memory estimate (GiB) and a check that names the knob to turn.

Pure arithmetic on the model's config and the stage's settings, so it runs before anything is loaded. The
formulas, for a Qwen2 (R1-Distill) decoder with L layers, hidden h, KV width k = kv_heads x head_dim, MLP
width I, vocabulary V, 16-bit compute (b = 2 bytes), and T = micro_batch x (prompt + completion) tokens:

- weights: linear layers at 4.13 bits a parameter in nf4 with double quantisation (4-bit codes, an 8-bit
  absmax per block of 64, an fp32 constant per 256 blocks); embeddings, lm_head, norms and biases stay 16-bit
  (bitsandbytes quantises neither the embeddings nor lm_head). Matches bitsandbytes' own footprint of a
  two-layer model of the real 1.5B shape to 0.2%.
- LoRA: r x (in + out) per adapted matrix; parameters, gradients and two AdamW states in fp32 = 16 bytes each
  (an upper bound: trl 1.15 casts the adapters of a 4-bit base to bf16, which halves it).
- KV cache of the rollouts (transformers generate): 2 x L x k x seq x rollout_batch x b.
- activations of one training micro-batch, per token and layer, what autograd keeps with SDPA attention (no
  seq^2 term) and a frozen 4-bit base (bitsandbytes saves no input for frozen weights): the two RMSNorm inputs
  in fp32 (2 x 4h bytes) and, in b bytes, the normed inputs of attention and MLP (2h), rotated q (h), k and v
  (2k), the attention output (h) and the MLP's gate, SiLU, up and product (4I). Checked by counting autograd's
  saved tensors on two layers of the real 1.5B shape: 97 KB a token and layer, as the formula says. That holds
  with the LoRA weights in the compute dtype, as trl 1.15 casts them for 4-bit bases; fp32 LoRA weights would
  add an fp32 copy of each adapted projection's input (+75%). With gradient checkpointing only each layer's
  input (b x h) stays, plus one layer's activations while it is recomputed.
- logits: trl 1.15 projects through lm_head in tiles of 4096 tokens x 32768 vocabulary entries (its fused
  Triton kernel, used when triton is present, i.e. on GPU) instead of materialising them; without it,
  micro_batch x completion x V x (b + 4) bytes (16-bit logits plus fp32 log-softmax).
- overhead: CUDA context, cuBLAS workspaces and allocator fragmentation, about 1 GiB.
- vLLM (colocated): the share of the card it reserves up front (`gpu_memory_utilization` x the card). That
  share holds the engine's weights, its own activations and CUDA graphs (VLLM_RUNTIME_GIB, assumed, not
  measured) and its KV cache, which must hold at least one sequence of `max_model_len` tokens or vLLM
  refuses to start (vllm/v1/core/kv_cache_utils.py); it queues the rollouts that do not fit at once. trl's
  own engine (16-bit bases only: see config.py) loads a second copy of the weights; unsloth's fast_inference
  shares one copy between training and vLLM, so the weights then sit inside the vLLM share and are not
  counted again. `max_model_len` is what the run gives vLLM: prompt budget + max_completion_length
  (`vllm_max_model_len`); left unset, vLLM takes the model's whole context (131,072 tokens for R1-Distill).

trl frees the rollouts' KV cache before the backward passes, so the peak is what stays resident (weights,
LoRA, overhead, the vLLM pool) plus the larger of the two phases: generation (KV cache) or training
(activations + logits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from autothink_lite.errors import AutoThinkError

GIB = 2**30
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)
OVERHEAD_GIB = 1.0
VLLM_RUNTIME_GIB = 0.5  # vLLM's activations and CUDA graphs inside its share (assumed, not measured)
FIT_SHARE = 0.95  # the share of the card a stage may plan to use
TRL_TILE_TOKENS, TRL_TILE_VOCAB = 4096, 32768  # one tile of trl 1.15's chunked log-prob kernel
PROMPT_TOKENS = 512  # prompt budget of a rollout: vLLM's max_model_len is this + max_completion_length
DEFAULT_PROMPT_LEN = PROMPT_TOKENS

# The public config.json numbers of the shipped GPU recipes' bases, so `autothink fit` needs no network.
_R1_DISTILL_1_5B = dict(model_type="qwen2", hidden_size=1536, num_hidden_layers=28, num_attention_heads=12,
                        num_key_value_heads=2, head_dim=128, intermediate_size=8960, vocab_size=151936,
                        max_position_embeddings=131072, tie_word_embeddings=False)
KNOWN_CONFIGS = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": _R1_DISTILL_1_5B,
    "agentica-org/DeepScaleR-1.5B-Preview": _R1_DISTILL_1_5B,  # an RL finetune of R1-Distill-Qwen-1.5B
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": dict(
        model_type="qwen2", hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        head_dim=128, intermediate_size=18944, vocab_size=152064, max_position_embeddings=131072,
        tie_word_embeddings=False),
}


def known_config(name_or_path: str) -> dict | None:
    """The shape numbers of a shipped recipe's base, without the Hub (None for any other model)."""
    return KNOWN_CONFIGS.get(name_or_path)


def vllm_max_model_len(settings: Any) -> int:
    """The context vLLM is started with for a stage: the recipe's `vllm_max_model_length` (a trl option) if
    set, else the prompt budget plus the stage's max_completion_length."""
    return settings.trl_options.get("vllm_max_model_length") or PROMPT_TOKENS + settings.max_completion_length


class FitError(AutoThinkError, RuntimeError):
    """A stage that will not fit on the card, with the setting to change."""


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    max_position_embeddings: int | None = None
    head_dim: int | None = None

    @classmethod
    def of(cls, config: Any) -> "ModelShape":
        """From a transformers config or a dict such as a config.json."""
        get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
        return cls(**{name: get(name) for name in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                   "num_key_value_heads", "intermediate_size", "vocab_size",
                                                   "max_position_embeddings", "head_dim")},
                   tie_word_embeddings=bool(get("tie_word_embeddings", False)))

    @property
    def kv_width(self) -> int:
        return self.num_key_value_heads * (self.head_dim or self.hidden_size // self.num_attention_heads)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection of one decoder layer (Qwen2 names)."""
        h, k, i = self.hidden_size, self.kv_width, self.intermediate_size
        return {"q_proj": (h, h), "k_proj": (h, k), "v_proj": (h, k), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def linear_params(self) -> int:
        return self.num_hidden_layers * sum(a * b for a, b in self.linear_shapes().values())

    def other_params(self) -> int:
        """Embeddings, lm_head, norms and q/k/v biases: what stays in 16-bit in a 4-bit model."""
        h = self.hidden_size
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        per_layer = 2 * h + h + 2 * self.kv_width
        return embeddings + self.num_hidden_layers * per_layer + h

    def lora_params(self, r: int, target_modules: list[str]) -> int:
        shapes = self.linear_shapes()
        unknown = sorted(set(target_modules) - set(shapes))
        if unknown:
            raise ValueError(f"lora.target_modules: {unknown} are not Qwen2 projections ({', '.join(shapes)})")
        return self.num_hidden_layers * sum(r * sum(shapes[m]) for m in target_modules)


@dataclass(frozen=True)
class Knobs:
    """What check_fit needs to know to suggest a fix."""

    micro_batch_size: int
    max_completion_length: int
    num_generations: int
    rollout_batch: int
    gradient_checkpointing: bool
    use_vllm: bool
    load_in_4bit: bool
    vllm_pool_too_small: bool
    max_model_len: int | None = None
    vllm_share_needed: float | None = None  # the smallest gpu_memory_utilization that starts vLLM
    vllm_share_field: str = "grpo.vllm_gpu_memory_utilization"


@dataclass
class MemoryEstimate:
    """GiB per component; `total` is the planned peak (see the module docstring)."""

    weights: float
    lora: float
    kv_cache: float
    activations: float
    logits: float
    vllm: float
    overhead: float
    gpu_gb: float | None = None
    notes: tuple[str, ...] = ()
    knobs: Knobs | None = field(default=None, repr=False)
    weights_in_vllm: bool = False  # unsloth's fast_inference: one copy, inside the vLLM share

    @property
    def generation_phase(self) -> float:
        return self.kv_cache

    @property
    def training_phase(self) -> float:
        return self.activations + self.logits

    @property
    def resident(self) -> float:
        return (0.0 if self.weights_in_vllm else self.weights) + self.lora + self.vllm + self.overhead

    @property
    def total(self) -> float:
        return self.resident + max(self.generation_phase, self.training_phase)

    def table(self) -> str:
        rows = [
            ("weights", self.weights, "inside the vLLM pool" if self.weights_in_vllm else "resident"),
            ("LoRA + grads + AdamW (fp32)", self.lora, "resident"),
            ("vLLM pool", self.vllm, "resident"),
            ("CUDA / framework overhead", self.overhead, "resident"),
            ("rollout KV cache", self.kv_cache, "generation phase"),
            ("activations (micro-batch)", self.activations, "training phase"),
            ("logits / log-probs", self.logits, "training phase"),
        ]
        lines = [f"{'component':<30}{'GiB':>8}  when", "-" * 56]
        lines += [f"{name:<30}{gib:>8.2f}  {when}" for name, gib, when in rows]
        lines.append("-" * 56)
        lines.append(f"{'peak (resident + larger phase)':<30}{self.total:>8.2f}")
        if self.gpu_gb is not None:
            lines.append(f"{'card / plan limit':<30}{self.gpu_gb:>8.1f}  / {FIT_SHARE * self.gpu_gb:.1f}"
                         f"  {'fits' if self.total <= FIT_SHARE * self.gpu_gb else 'DOES NOT FIT'}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def estimate_stage_memory(
    model_config: Any,
    *,
    load_in_4bit: bool = True,
    dtype_bytes: int = 2,
    lora_r: int = 16,
    lora_target_modules: list[str] | tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                       "up_proj", "down_proj"),
    prompt_len: int = DEFAULT_PROMPT_LEN,
    max_completion_length: int = 1024,
    num_generations: int = 8,
    micro_batch_size: int = 8,
    rollout_batch: int = 128,
    gradient_checkpointing: bool = False,
    use_vllm: bool = False,
    vllm_gpu_memory_utilization: float = 0.3,
    vllm_shares_weights: bool = False,
    max_model_len: int | None = None,
    fused_lm_head: bool = True,
    gpu_gb: float | None = None,
    vllm_share_field: str = "grpo.vllm_gpu_memory_utilization",
) -> MemoryEstimate:
    """Memory of one GRPO stage on one GPU; `gpu_gb` is the card's memory in GiB (a "24 GB" card has 24 GiB).

    `max_model_len`: the context vLLM is started with (None: vLLM's default, the model's whole context)."""
    shape = ModelShape.of(model_config)
    h, layers, k, i, vocab = (shape.hidden_size, shape.num_hidden_layers, shape.kv_width, shape.intermediate_size,
                              shape.vocab_size)
    b = dtype_bytes
    seq = prompt_len + max_completion_length
    tokens = micro_batch_size * seq
    notes = []

    linear_bytes = NF4_BYTES_PER_PARAM if load_in_4bit else b
    weights = shape.linear_params() * linear_bytes + shape.other_params() * b
    lora = 16 * shape.lora_params(lora_r, list(lora_target_modules))
    kv_per_sequence = 2 * layers * k * seq * b

    per_token_layer = 2 * 4 * h + b * (4 * h + 2 * k + 4 * i)
    if gradient_checkpointing:
        activations = tokens * (layers * b * h + per_token_layer)
    else:
        activations = tokens * layers * per_token_layer

    if fused_lm_head:
        completion_tokens = micro_batch_size * max_completion_length
        # one logits tile, plus the hidden states it reads and their fp32 gradient
        logits = (min(completion_tokens, TRL_TILE_TOKENS) * min(vocab, TRL_TILE_VOCAB) * b
                  + completion_tokens * h * (4 + b))
    else:
        logits = micro_batch_size * max_completion_length * vocab * (b + 4)

    vllm = 0.0
    kv_cache = rollout_batch * kv_per_sequence
    pool_too_small = False
    share_needed = None
    if use_vllm:
        if gpu_gb is None:
            raise ValueError("use_vllm: pass gpu_gb, since vLLM reserves a share of the card")
        context = max_model_len or shape.max_position_embeddings or seq
        vllm = vllm_gpu_memory_utilization * gpu_gb * GIB
        kv_one = 2 * layers * k * context * b  # vLLM starts only if one max_model_len sequence fits
        fixed = weights + VLLM_RUNTIME_GIB * GIB  # the engine's weights: its own copy, or the one it shares
        kv_room = vllm - fixed
        concurrent = int(max(kv_room, 0) // kv_per_sequence)
        pool_too_small = kv_room < kv_one
        share_needed = math.ceil((fixed + kv_one) / (gpu_gb * GIB) * 100) / 100
        copy = "shared with training" if vllm_shares_weights else "its own copy"
        notes.append(f"vLLM pool: {weights / GIB:.2f} GiB of weights ({copy}), max_model_len {context} "
                     f"({kv_one / GIB:.2f} GiB of KV cache a sequence), room for {concurrent} of the "
                     f"{rollout_batch} rollouts at once (vLLM queues the rest)")
        kv_cache = 0.0  # inside the vLLM pool
    return MemoryEstimate(
        weights=weights / GIB, lora=lora / GIB, kv_cache=kv_cache / GIB, activations=activations / GIB,
        logits=logits / GIB, vllm=vllm / GIB, overhead=OVERHEAD_GIB, gpu_gb=gpu_gb, notes=tuple(notes),
        knobs=Knobs(micro_batch_size, max_completion_length, num_generations, rollout_batch,
                    gradient_checkpointing, use_vllm, load_in_4bit, pool_too_small,
                    max_model_len=max_model_len, vllm_share_needed=share_needed, vllm_share_field=vllm_share_field),
        weights_in_vllm=use_vllm and vllm_shares_weights,
    )


def check_fit(estimate: MemoryEstimate, gpu_gb: float | None = None) -> None:
    """Raise FitError, naming the setting to change, when the estimate passes 95% of the card."""
    gpu_gb = gpu_gb if gpu_gb is not None else estimate.gpu_gb
    if gpu_gb is None:
        raise ValueError("check_fit: pass gpu_gb (the card's memory in GiB)")
    knobs = estimate.knobs
    limit = FIT_SHARE * gpu_gb
    if knobs is not None and knobs.vllm_pool_too_small:
        if knobs.max_model_len is None:
            fix = ("set grpo.vllm_max_model_length to the prompt budget plus grpo.max_completion_length "
                   f"(training does so itself), or raise {knobs.vllm_share_field} to {knobs.vllm_share_needed:.2f}")
        else:
            fix = (f"raise {knobs.vllm_share_field} to at least {knobs.vllm_share_needed:.2f}, or lower "
                   "grpo.max_completion_length")
        raise FitError(f"vLLM would not start: its share of the card ({estimate.vllm:.1f} GiB) cannot hold its "
                       f"weights ({estimate.weights:.1f} GiB) and the KV cache of one "
                       f"{'max_model_len' if knobs.max_model_len else 'full-context'} sequence: {fix}"
                       f"\n{estimate.table()}")
    if estimate.total <= limit:
        return
    raise FitError(f"the stage needs about {estimate.total:.1f} GiB but a {gpu_gb:g} GiB card leaves {limit:.1f} "
                   f"to plan with: {_suggest(estimate, knobs, limit)}\n{estimate.table()}")


def _suggest(estimate: MemoryEstimate, knobs: Knobs | None, limit: float) -> str:
    if knobs is None:
        return "lower grpo.per_device_train_batch_size or grpo.max_completion_length"
    if estimate.resident + min(estimate.generation_phase, estimate.training_phase) > limit:
        if estimate.vllm and estimate.resident - estimate.vllm < limit:
            return f"lower {knobs.vllm_share_field} (or set grpo.use_vllm: false)"
        if not knobs.load_in_4bit:
            return "set model.load_in_4bit: true, or pick a smaller model"
        return "this model does not fit on this card even with tiny batches: pick a smaller model or a bigger GPU"
    if estimate.generation_phase >= estimate.training_phase:
        return (f"the rollout KV cache ({estimate.kv_cache:.1f} GiB for {knobs.rollout_batch} completions at once) "
                "is too big: lower grpo.prompts_per_step or grpo.num_generations, lower grpo.max_completion_length, "
                "or set grpo.use_vllm: true (vLLM pages the cache)")
    if not knobs.gradient_checkpointing:
        return (f"activations take {estimate.activations:.1f} GiB: set grpo.gradient_checkpointing: true "
                f"(or halve grpo.per_device_train_batch_size)")
    if knobs.micro_batch_size > 1:
        return f"halve grpo.per_device_train_batch_size ({knobs.micro_batch_size} -> {knobs.micro_batch_size // 2})"
    vllm = f" or {knobs.vllm_share_field}" if knobs.use_vllm else ""
    return (f"even one completion per micro-batch is too long: lower grpo.max_completion_length "
            f"({knobs.max_completion_length} -> {knobs.max_completion_length // 2}){vllm}")


def estimate_from_recipe(
    recipe: Any,
    stage: int,
    hf_config: Any,
    gpu_gb: float | None = None,
    *,
    prompt_len: int = DEFAULT_PROMPT_LEN,
    num_processes: int = 1,
) -> MemoryEstimate:
    """The estimate for one stage of a `Recipe` on each of `num_processes` GPUs (gpu_gb: the recipe's if None)."""
    gpu_gb = gpu_gb if gpu_gb is not None else recipe.gpu_memory_gb
    settings = recipe.stage_grpo(stage)
    model = recipe.model
    fast_inference = bool(getattr(model, "fast_inference", False))
    completions = settings.prompts_per_step * settings.num_generations
    return estimate_stage_memory(
        hf_config,
        load_in_4bit=model.load_in_4bit,
        dtype_bytes=4 if model.dtype == "float32" else 2,
        lora_r=recipe.lora.r,
        lora_target_modules=recipe.lora.target_modules,
        prompt_len=prompt_len,
        max_completion_length=settings.max_completion_length,
        num_generations=settings.num_generations,
        micro_batch_size=settings.per_device_train_batch_size,
        # trl generates a whole optimizer step's completions (this process's share) in one call
        rollout_batch=max(completions // num_processes, 1),
        gradient_checkpointing=settings.gradient_checkpointing,
        use_vllm=settings.use_vllm or fast_inference,
        vllm_gpu_memory_utilization=model.gpu_memory_utilization if fast_inference
        else settings.vllm_gpu_memory_utilization,
        vllm_shares_weights=fast_inference,
        max_model_len=vllm_max_model_len(settings),
        gpu_gb=gpu_gb,
        vllm_share_field="model.gpu_memory_utilization" if fast_inference else "grpo.vllm_gpu_memory_utilization",
    )
