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
- vLLM (colocated): the share of the card it reserves up front, which must hold its own copy of the weights
  (trl 1.15 loads it 4-bit when the base is; unsloth's fast_inference shares one copy) and the KV cache of at
  least one sequence; it queues the rollouts that do not fit at once.

trl frees the rollouts' KV cache before the backward passes, so the peak is what stays resident (weights,
LoRA, overhead, the vLLM pool) plus the larger of the two phases: generation (KV cache) or training
(activations + logits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autothink_lite.errors import AutoThinkError

GIB = 2**30
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)
OVERHEAD_GIB = 1.0
FIT_SHARE = 0.95  # the share of the card a stage may plan to use
TRL_TILE_TOKENS, TRL_TILE_VOCAB = 4096, 32768  # one tile of trl 1.15's chunked log-prob kernel
DEFAULT_PROMPT_LEN = 512


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

    @classmethod
    def of(cls, config: Any) -> "ModelShape":
        """From a transformers config or a dict such as a config.json."""
        get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
        return cls(**{name: get(name) for name in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                   "num_key_value_heads", "intermediate_size", "vocab_size")},
                   tie_word_embeddings=bool(get("tie_word_embeddings", False)))

    @property
    def kv_width(self) -> int:
        return self.num_key_value_heads * (self.hidden_size // self.num_attention_heads)

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

    @property
    def generation_phase(self) -> float:
        return self.kv_cache

    @property
    def training_phase(self) -> float:
        return self.activations + self.logits

    @property
    def resident(self) -> float:
        return self.weights + self.lora + self.vllm + self.overhead

    @property
    def total(self) -> float:
        return self.resident + max(self.generation_phase, self.training_phase)

    def table(self) -> str:
        rows = [
            ("weights", self.weights, "resident"),
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
    fused_lm_head: bool = True,
    gpu_gb: float | None = None,
) -> MemoryEstimate:
    """Memory of one GRPO stage on one GPU; `gpu_gb` is the card's memory in GiB (a "24 GB" card has 24 GiB)."""
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
    if use_vllm:
        if gpu_gb is None:
            raise ValueError("use_vllm: pass gpu_gb, since vLLM reserves a share of the card")
        vllm = vllm_gpu_memory_utilization * gpu_gb * GIB
        own_weights = 0 if vllm_shares_weights else weights  # trl loads vLLM 4-bit too when the base is
        kv_room = vllm - own_weights - 0.5 * GIB  # vLLM's own activations and CUDA graphs
        concurrent = int(max(kv_room, 0) // kv_per_sequence)
        pool_too_small = concurrent < 1
        notes.append(f"vLLM pool: {own_weights / GIB:.2f} GiB of weights, room for {concurrent} of the "
                     f"{rollout_batch} rollouts at once (vLLM queues the rest)")
        kv_cache = 0.0  # inside the vLLM pool
    return MemoryEstimate(
        weights=weights / GIB, lora=lora / GIB, kv_cache=kv_cache / GIB, activations=activations / GIB,
        logits=logits / GIB, vllm=vllm / GIB, overhead=OVERHEAD_GIB, gpu_gb=gpu_gb, notes=tuple(notes),
        knobs=Knobs(micro_batch_size, max_completion_length, num_generations, rollout_batch,
                    gradient_checkpointing, use_vllm, load_in_4bit, pool_too_small),
    )


def check_fit(estimate: MemoryEstimate, gpu_gb: float | None = None) -> None:
    """Raise FitError, naming the setting to change, when the estimate passes 95% of the card."""
    gpu_gb = gpu_gb if gpu_gb is not None else estimate.gpu_gb
    if gpu_gb is None:
        raise ValueError("check_fit: pass gpu_gb (the card's memory in GiB)")
    knobs = estimate.knobs
    limit = FIT_SHARE * gpu_gb
    if knobs is not None and knobs.vllm_pool_too_small:
        raise FitError(f"vLLM's share of the card ({estimate.vllm:.1f} GiB) cannot hold its weights and one "
                       f"sequence's KV cache: raise grpo.vllm_gpu_memory_utilization, or lower "
                       f"grpo.max_completion_length\n{estimate.table()}")
    if estimate.total <= limit:
        return
    raise FitError(f"the stage needs about {estimate.total:.1f} GiB but a {gpu_gb:g} GiB card leaves {limit:.1f} "
                   f"to plan with: {_suggest(estimate, knobs, limit)}\n{estimate.table()}")


def _suggest(estimate: MemoryEstimate, knobs: Knobs | None, limit: float) -> str:
    if knobs is None:
        return "lower grpo.per_device_train_batch_size or grpo.max_completion_length"
    if estimate.resident + min(estimate.generation_phase, estimate.training_phase) > limit:
        if estimate.vllm and estimate.resident - estimate.vllm < limit:
            return "lower grpo.vllm_gpu_memory_utilization (or set grpo.use_vllm: false)"
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
    vllm = " or grpo.vllm_gpu_memory_utilization" if knobs.use_vllm else ""
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
        gpu_gb=gpu_gb,
    )
