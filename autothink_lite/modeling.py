"""Model loading: the base (4-bit nf4 or full precision), LoRA attach / continue / save, and inference loading.

Two backends:
- transformers + peft: always there, CPU or GPU; what the tests and the miniature use.
- unsloth (GPU extra, `pip install -e ".[gpu]"`): faster LoRA kernels and vLLM rollouts. Written
  against its documented `FastLanguageModel` API and never run in CI (unsloth refuses to import without a GPU).

transformers, peft and unsloth are imported inside the functions: unsloth patches transformers / trl / peft
and must be imported before them, which a module-level import here would prevent (the command line imports
this module to decide whether to import unsloth; `unsloth_first` keeps the order for library use).
bitsandbytes is imported where a 4-bit layer is touched.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from autothink_lite import miniature, unsloth_first
from autothink_lite.adapters import ADAPTER_CONFIG, check_local_adapter
from autothink_lite.config import MINIATURE, LoraSettings, ModelConfig
from autothink_lite.errors import AutoThinkError
from autothink_lite.hub_client import is_local_path

logger = logging.getLogger(__name__)


class ModelLoadError(AutoThinkError, RuntimeError):
    """A model or adapter that cannot be loaded, with what to do about it."""


# ------------------------------------------------------------------------------------------- names


def resolve_model_path(name_or_path: str) -> str:
    """'mini' -> the built-in miniature R1's folder; a local folder -> itself; else a Hub id, returned as is."""
    if name_or_path == MINIATURE:
        return str(miniature.default_model_path())
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            hint = (" It holds a LoRA adapter: pass its base model as the model and this folder as an adapter."
                    if (path / ADAPTER_CONFIG).is_file() else "")
            raise ModelLoadError(
                f"model folder {path} has no config.json, so it is not a saved model.{hint} "
                "Point to a folder written by save_pretrained, a Hub id such as "
                "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B, or 'mini'."
            )
        _check_model_config(path / "config.json")
        return str(path)
    if is_local_path(name_or_path):
        raise ModelLoadError(
            f"model {name_or_path!r}: no such model folder ({path.resolve()}). Fix the path, use a Hub id such as "
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B, or 'mini' for the built-in miniature "
            "(`autothink build-mini` rebuilds it)."
        )
    return name_or_path


def _check_model_config(config: Path) -> None:
    """transformers picks the architecture from config.json's model_type; without it the load fails deep inside."""
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as err:
        raise ModelLoadError(f"{config} is not a readable JSON object ({err}); save the model again with "
                             "save_pretrained, or point to another model folder") from None
    if not model_type:
        raise ModelLoadError(f"{config} has no model_type, so transformers cannot tell the architecture; add it "
                             '(e.g. "model_type": "qwen2" for R1-Distill-Qwen), or save the model again with '
                             "save_pretrained")


# ----------------------------------------------------------------------------------------- backend


def detect_backend(cfg: ModelConfig) -> str:
    """'unsloth' or 'transformers'. 'auto' picks unsloth only when it is installed and a CUDA GPU is present.

    model.fast_inference (vLLM sharing unsloth's weights) exists only with unsloth: a recipe that asks for it
    where `auto` resolves to transformers is refused, since trl's own vLLM engine would take its place and
    cannot start from a 4-bit base."""
    missing = _unsloth_missing()
    if cfg.backend == "auto":
        backend = "transformers" if missing else "unsloth"
    elif cfg.backend == "unsloth" and missing:
        raise ModelLoadError(
            f"model.backend is 'unsloth' but {missing}. unsloth needs an NVIDIA GPU: install it there with "
            "`pip install -e '.[gpu]'`, or set model.backend to 'auto' or 'transformers' "
            "(e.g. --set model.backend=transformers)."
        )
    else:
        backend = cfg.backend
    if cfg.fast_inference and backend != "unsloth":
        reason = missing or "model.backend is transformers"
        raise ModelLoadError(
            f"model.fast_inference needs the unsloth backend, but {reason}: run on an NVIDIA GPU with the GPU "
            "extra (`pip install -e '.[gpu]'`), or set model.fast_inference: false (with a 4-bit base also "
            "grpo.use_vllm: false, or model.load_in_4bit: false)"
        )
    unsloth_first.decided(backend)
    return backend


def _unsloth_missing() -> str | None:
    if importlib.util.find_spec("unsloth") is None:
        return "unsloth is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


def compute_dtype(name: str) -> torch.dtype:
    """The dtype the model computes in: the recipe's on a GPU, float32 on a CPU.

    On a CPU, float32 it is: measured on the miniature (hidden 128, 4 layers, one core), bfloat16 speeds up a
    large no-grad forward (39 vs 89 ms) but not what GRPO spends its time on, LoRA forward+backward (about
    330 ms both) and sampling (230-330 ms both); trl trains on a CPU without mixed precision, where bfloat16
    LoRA weights and AdamW states would round small updates away; and CPUs without AVX512-BF16 emulate it slowly.
    """
    if not torch.cuda.is_available():
        if name != "float32":
            logger.info("no GPU: computing in float32 (%s is for GPUs)", name)
        return torch.float32
    if name == "bfloat16" and not torch.cuda.is_bf16_supported():
        logger.warning("this GPU has no bfloat16: computing in float16 (set model.dtype=float16 to silence this)")
        return torch.float16
    return getattr(torch, name)


def _device_map() -> dict[str, int] | str:
    # One whole copy of the model per process: torchrun / accelerate give each its GPU through LOCAL_RANK.
    return {"": int(os.environ.get("LOCAL_RANK", 0))} if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------------------------------ loading


def load_base(
    cfg: ModelConfig,
    *,
    for_training: bool,
    max_seq_length: int | None = None,
    lora: LoraSettings | None = None,
) -> tuple[Any, Any, str]:
    """Load the base model and its tokenizer with the backend `cfg` asks for; returns (model, tokenizer, backend).

    `max_seq_length` (prompt + completion tokens) and `lora` (its rank sizes vLLM's LoRA slots) matter to unsloth
    only. The LoRA itself is attached by `attach_lora`.
    """
    backend = detect_backend(cfg)
    path = resolve_model_path(cfg.name_or_path)
    if backend == "unsloth":
        model, tokenizer = _load_unsloth(cfg, path, for_training=for_training, max_seq_length=max_seq_length, lora=lora)
    else:
        model, tokenizer = _load_transformers(path, load_in_4bit=cfg.load_in_4bit, dtype=cfg.dtype,
                                              revision=cfg.revision, for_training=for_training)
    model.autothink_backend = backend  # read by attach_lora
    _log_loaded(model, path, backend, cfg.load_in_4bit)
    return model, tokenizer, backend


def _load_transformers(path: str, *, load_in_4bit: bool, dtype: str, revision: str | None, for_training: bool):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    torch_dtype = compute_dtype(dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "device_map": _device_map(), "revision": revision}
    if load_in_4bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype,
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        raise ModelLoadError(
            f"could not load model {path!r}: {err}\nCheck the Hub id and revision, your network and HF_TOKEN "
            "(gated models), or pass a local folder."
        ) from err
    tokenizer = load_tokenizer(path, revision=revision)
    # Not peft's prepare_model_for_kbit_training: it upcasts the 16-bit embeddings and lm_head to float32
    # (+0.9 GiB on R1-Distill-1.5B, +2 GiB on 7B, on a 24 GB card) for no gain here, since Qwen2's RMSNorm
    # already computes in float32, get_peft_model freezes the base, and trl 1.15's GRPOTrainer enables
    # gradient checkpointing and input gradients itself when the recipe asks for them.
    if for_training and load_in_4bit and not torch.cuda.is_available():
        _keep_4bit_trainable_on_cpu(model)
    model.train(for_training)
    return model, tokenizer


def _keep_4bit_trainable_on_cpu(model: Any) -> None:
    # bitsandbytes 0.50 repacks a 4-bit layer for AVX512-BF16 CPU inference on its first eval-mode no-grad
    # forward (an evaluation or sampling pass), and a repacked layer can no longer backpropagate ("a view of a
    # leaf Variable ... in-place operation"). A model loaded for training is never repacked.
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _load_unsloth(cfg: ModelConfig, path: str, *, for_training: bool, max_seq_length: int | None,
                  lora: LoraSettings | None):
    # Written against unsloth's documented API (FastLanguageModel.from_pretrained / get_peft_model /
    # for_inference). Run here only through unsloth 2026.10.9's CPU fallback (tests/test_unsloth_cpu.py);
    # the GPU path, fast_inference included, never. unsloth must precede transformers/trl/peft.
    unsloth_first.require()
    if cfg.fast_inference:
        _check_vllm_for_unsloth(cfg.load_in_4bit)
    from unsloth import FastLanguageModel

    kwargs: dict[str, Any] = {
        "model_name": path,
        "max_seq_length": max_seq_length or 4096,
        "load_in_4bit": cfg.load_in_4bit,
        "dtype": compute_dtype(cfg.dtype),
        "fast_inference": cfg.fast_inference,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
    }
    if lora is not None:
        kwargs["max_lora_rank"] = lora.r
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    model, tokenizer = FastLanguageModel.from_pretrained(**kwargs)
    if not for_training:
        FastLanguageModel.for_inference(model)
    _set_padding(tokenizer)
    return model, tokenizer


def _check_vllm_for_unsloth(load_in_4bit: bool) -> None:
    # Before minutes of loading: unsloth's fast_inference starts vLLM itself, and a 4-bit base needs
    # bitsandbytes in vLLM, which vLLM 0.28+ moved out of tree (vllm-bnb-plugin; unsloth_zoo 2026.10.9 raises
    # without it, vllm_utils.load_vllm).
    missing = [name for name, needed in (("vllm", True), ("vllm_bnb_plugin", load_in_4bit))
               if needed and importlib.util.find_spec(name) is None]
    if missing:
        raise ModelLoadError(
            f"model.fast_inference starts vLLM through unsloth, but {' and '.join(missing)} is not installed: "
            "`pip install -e '.[gpu]'` (requirements-gpu.txt pins vllm and vllm-bnb-plugin), or set "
            "model.fast_inference: false"
        )


def load_tokenizer(path: str, *, revision: str | None = None) -> Any:
    """The tokenizer exactly as its tokenizer.json describes it.

    Not AutoTokenizer: in transformers 5.x it rebuilds a tokenizer from the class the config names and
    replaces tokenizer.json's pre-tokenizer with that class's own. That breaks the miniature (a qwen2 config
    over a custom BPE) and, upstream, DeepSeek-R1-Distill checkpoints (LlamaTokenizerFast over byte-level BPE;
    transformers issues #45488, #45920, #48206). The generic fast tokenizer loads tokenizer.json verbatim;
    AutoTokenizer remains for checkpoints without one.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path, revision=revision)
    except (OSError, ValueError, TypeError):
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
    _set_padding(tokenizer)
    return tokenizer


def _set_padding(tokenizer: Any) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right


def _log_loaded(model: Any, path: str, backend: str, load_in_4bit: bool) -> None:
    footprint = model.get_memory_footprint()
    size = f"{footprint / 2**30:.2f} GiB" if footprint >= 2**30 else f"{footprint / 2**20:.1f} MiB"
    precision = "4-bit nf4" if load_in_4bit else str(model.dtype).removeprefix("torch.")
    logger.info("loaded %s with %s (%s) on %s: weights take %s", path, backend, precision, model.device, size)
    if torch.cuda.is_available():
        device = model.device
        total = torch.cuda.get_device_properties(device).total_memory / 2**30
        logger.info("GPU %s: %.1f GiB reserved of %.1f GiB", torch.cuda.get_device_name(device),
                    torch.cuda.memory_reserved(device) / 2**30, total)


# --------------------------------------------------------------------------------------------- LoRA


def attach_lora(model: Any, lora: LoraSettings, *, adapter: str | None = None, seed: int = 0) -> Any:
    """Attach a new trainable LoRA, or continue a previous stage's `adapter` (its own rank and targets win)."""
    if adapter is not None:
        check_local_adapter(adapter, ModelLoadError)
    if getattr(model, "autothink_backend", "transformers") == "unsloth":
        model = _attach_lora_unsloth(model, lora, adapter=adapter, seed=seed)
    elif adapter is None:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
        _warn_if_settings_differ(model, lora, adapter)
    _log_trainable(model, adapter)
    return model


def _attach_lora_unsloth(model: Any, lora: LoraSettings, *, adapter: str | None, seed: int) -> Any:
    # Never run here (needs a GPU). A previous stage's adapter is continued by building the same LoRA with
    # unsloth's get_peft_model (so its fast kernels and offloaded checkpointing apply) and loading the weights.
    from unsloth import FastLanguageModel

    settings = lora if adapter is None else _lora_settings_of(adapter)
    model = FastLanguageModel.get_peft_model(
        model,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        use_gradient_checkpointing="unsloth",  # offloads checkpoints to CPU RAM: what unsloth's GRPO notebooks use
        random_state=seed,
    )
    if adapter is not None:
        from peft import load_peft_weights, set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_peft_weights(adapter))
        if result.unexpected_keys:
            raise ModelLoadError(f"adapter {adapter} does not match the model: unexpected {result.unexpected_keys[:3]}")
    return model


def _lora_settings_of(adapter: str) -> LoraSettings:
    from peft import PeftConfig

    config = PeftConfig.from_pretrained(adapter)
    return LoraSettings(r=config.r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                        target_modules=sorted(config.target_modules))


def _warn_if_settings_differ(model: Any, lora: LoraSettings, adapter: str) -> None:
    config = model.peft_config["default"]
    if config.r != lora.r or set(config.target_modules) != set(lora.target_modules):
        logger.warning("continuing %s with its own LoRA (r=%d on %s); the recipe's lora section (r=%d on %s) "
                       "applies to new adapters only", adapter, config.r, ", ".join(sorted(config.target_modules)),
                       lora.r, ", ".join(lora.target_modules))


def _log_trainable(model: Any, adapter: str | None) -> None:
    trainable, total = model.get_nb_trainable_parameters()
    config = model.peft_config[model.active_adapter]
    logger.info("LoRA r=%d alpha=%d on %s (%s): %s trainable of %s parameters (%.2f%%)", config.r,
                config.lora_alpha, ", ".join(sorted(config.target_modules)), f"from {adapter}" if adapter else "new",
                f"{trainable:,}", f"{total:,}", 100 * trainable / total)


def save_adapter(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """Write the LoRA adapter (adapter_config.json + adapter_model.safetensors) and the tokenizer to `out_dir`."""
    if not hasattr(model, "peft_config"):
        raise ModelLoadError("the model carries no LoRA adapter to save: call attach_lora first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    logger.info("saved the LoRA adapter and tokenizer to %s", out)
    return out


# ---------------------------------------------------------------------------------------- inference


def load_for_inference(
    model_name_or_path: str,
    adapters: Sequence[str] = (),
    *,
    load_in_4bit: bool = False,
    dtype: str = "bfloat16",
) -> tuple[Any, Any]:
    """Base model plus zero or more adapters (Hub ids or local folders), in eval mode.

    Each adapter is loaded under its own name (`model.peft_config` lists them) and the last one is active;
    `with model.disable_adapter():` runs the bare base, for base-vs-adapter comparisons.
    """
    path = resolve_model_path(model_name_or_path)
    model, tokenizer = _load_transformers(path, load_in_4bit=load_in_4bit, dtype=dtype, revision=None,
                                          for_training=False)
    names = adapter_names(adapters)
    for adapter, name in zip(adapters, names):
        check_local_adapter(adapter, ModelLoadError)  # a Hub id is downloaded by peft
        if hasattr(model, "peft_config"):
            model.load_adapter(adapter, adapter_name=name)
        else:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter, adapter_name=name)
    if names:
        model.set_adapter(names[-1])
        logger.info("adapters %s loaded; %s is active", ", ".join(names), names[-1])
    model.eval()
    _log_loaded(model, path, "transformers", load_in_4bit)
    return model, tokenizer


def adapter_names(adapters: Sequence[str]) -> list[str]:
    """Readable, unique peft adapter names: 'runs/x/stage2/final' -> 'stage2_final', 'me/autothink' -> 'autothink'."""
    names: list[str] = []
    for adapter in adapters:
        parts = Path(adapter).parts
        base = "_".join(parts[-2:]) if len(parts) > 1 and Path(adapter).expanduser().exists() else parts[-1]
        name = re.sub(r"\W", "_", base)  # peft adapter names may not hold '.'
        names.append(name if name not in names else f"{name}_{len(names)}")
    return names
