"""Model loading on a tiny random Qwen2 saved to disk: full precision and 4-bit on CPU, LoRA, adapters, errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from conftest import R1_TEMPLATE, make_tokenizer

from autothink_lite import modeling
from autothink_lite.config import LoraSettings, ModelConfig
from autothink_lite.modeling import (
    ModelLoadError,
    adapter_names,
    attach_lora,
    detect_backend,
    load_base,
    load_for_inference,
    resolve_model_path,
    save_adapter,
)

LORA = LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = make_tokenizer(R1_TEMPLATE)
    tokenizer.add_tokens([str(d) for d in range(10)] + ["+", "=", "What", "is"])
    tokenizer.add_special_tokens({"pad_token": "<｜▁pad▁｜>"})
    torch.manual_seed(0)
    # hidden 64: the smallest width bitsandbytes' CPU 4-bit kernels take
    config = Qwen2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=128, vocab_size=len(tokenizer), tie_word_embeddings=False,
                         pad_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    path = tmp_path_factory.mktemp("tiny-qwen2")
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def inputs(tiny_model_dir):
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    return tokenizer(["What is 2 + 3 =", "What is 7 ="], return_tensors="pt", padding=True)


def _config(path, **kwargs) -> ModelConfig:
    return ModelConfig(name_or_path=str(path), **kwargs)


def _perturb_lora_b(model) -> None:
    # LoRA B starts at zero, so a fresh adapter changes nothing; give it weights that do.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)


def _lora_state(model) -> dict[str, torch.Tensor]:
    return {name.replace(".default", ""): param.detach().clone()
            for name, param in model.named_parameters() if "lora_" in name}


def test_a_model_loads_in_full_precision_on_cpu_with_left_padding(tiny_model_dir, inputs):
    model, tokenizer, backend = load_base(_config(tiny_model_dir, load_in_4bit=False), for_training=False)
    assert backend == "transformers"
    assert model.dtype == torch.float32 and model.device.type == "cpu" and not model.training
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "left"
    assert torch.isfinite(model(**inputs).logits).all()


def test_a_model_loads_4bit_on_cpu_and_takes_less_memory(tiny_model_dir, inputs):
    import bitsandbytes as bnb

    full, _, _ = load_base(_config(tiny_model_dir, load_in_4bit=False), for_training=False)
    quantised, _, _ = load_base(_config(tiny_model_dir, load_in_4bit=True), for_training=False)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in quantised.modules())
    assert quantised.get_memory_footprint() < full.get_memory_footprint()
    assert torch.isfinite(quantised(**inputs).logits).all()


def test_attaching_lora_leaves_only_the_lora_weights_trainable(tiny_model_dir):
    model, _, _ = load_base(_config(tiny_model_dir), for_training=True)
    model = attach_lora(model, LORA)
    trainable = [name for name, param in model.named_parameters() if param.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert {name.split(".")[-4] for name in trainable} == {"q_proj", "v_proj", "down_proj"}


def test_a_4bit_model_loaded_for_training_still_trains_after_an_evaluation_pass(tiny_model_dir, inputs):
    model, _, _ = load_base(_config(tiny_model_dir), for_training=True)
    model = attach_lora(model, LORA)
    model.eval()
    with torch.no_grad():
        model(**inputs)
    model.train()
    model(**inputs, labels=inputs["input_ids"]).loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_A" in n)


def test_a_saved_adapter_continues_the_next_stage_with_the_same_trainable_weights(tiny_model_dir, tmp_path):
    model, tokenizer, _ = load_base(_config(tiny_model_dir), for_training=True)
    model = attach_lora(model, LORA)
    _perturb_lora_b(model)
    saved = _lora_state(model)
    save_adapter(model, tokenizer, tmp_path / "stage1")
    assert (tmp_path / "stage1" / "adapter_config.json").is_file()

    base, _, _ = load_base(_config(tiny_model_dir), for_training=True)
    continued = attach_lora(base, LoraSettings(r=16), adapter=str(tmp_path / "stage1"))
    reloaded = _lora_state(continued)
    assert reloaded.keys() == saved.keys()
    assert all(torch.equal(reloaded[name], saved[name]) for name in saved)
    assert all(param.requires_grad for name, param in continued.named_parameters() if "lora_" in name)


def test_a_dead_adapter_folder_is_named_in_the_error(tiny_model_dir, tmp_path):
    model, _, _ = load_base(_config(tiny_model_dir), for_training=True)
    empty = tmp_path / "crashed-stage"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="crashed-stage.*no adapter_config.json"):
        attach_lora(model, LORA, adapter=str(empty))

    corrupt = tmp_path / "cut-short"
    corrupt.mkdir()
    (corrupt / "adapter_config.json").write_text("{}")
    (corrupt / "adapter_model.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    with pytest.raises(ModelLoadError, match="cut-short.*unreadable.*Re-run the training stage"):
        attach_lora(model, LORA, adapter=str(corrupt))


def test_an_unknown_local_model_path_gives_an_error_with_the_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model folder.*Hub id"):
        resolve_model_path(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="no such model folder"):
        resolve_model_path("./runs/missing/model")


def test_an_adapter_folder_passed_as_the_model_is_recognised(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="holds a LoRA adapter"):
        resolve_model_path(str(tmp_path))


def test_hub_ids_pass_through_and_mini_names_the_built_in_model(monkeypatch, tiny_model_dir):
    hub_id = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert resolve_model_path(hub_id) == hub_id
    import autothink_lite.miniature as miniature

    monkeypatch.setattr(miniature, "default_model_path", lambda: tiny_model_dir, raising=False)
    assert resolve_model_path("mini") == str(tiny_model_dir)


@pytest.fixture
def no_unsloth(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "unsloth" else real(name, *a))


def test_asking_for_unsloth_without_it_says_how_to_install_it(no_unsloth):
    with pytest.raises(ModelLoadError, match=r"unsloth is not installed.*pip install -e '\.\[gpu\]'"):
        detect_backend(ModelConfig(backend="unsloth"))


def test_auto_backend_falls_back_to_transformers_without_unsloth(no_unsloth):
    assert detect_backend(ModelConfig(backend="auto")) == "transformers"
    assert detect_backend(ModelConfig(backend="transformers")) == "transformers"


def test_an_adapter_changes_the_logits_and_disabling_it_gives_the_base_back(tiny_model_dir, tmp_path, inputs):
    model, tokenizer, _ = load_base(_config(tiny_model_dir, load_in_4bit=False), for_training=True)
    model = attach_lora(model, LORA)
    _perturb_lora_b(model)
    save_adapter(model, tokenizer, tmp_path / "stage1")

    base, _ = load_for_inference(str(tiny_model_dir))
    tuned, _ = load_for_inference(str(tiny_model_dir), [str(tmp_path / "stage1")])
    assert not tuned.training
    with torch.no_grad():
        base_logits = base(**inputs).logits
        tuned_logits = tuned(**inputs).logits
        with tuned.disable_adapter():
            disabled_logits = tuned(**inputs).logits
    assert not torch.allclose(tuned_logits, base_logits, atol=1e-3)
    assert torch.allclose(disabled_logits, base_logits, atol=1e-5)


def test_several_adapters_load_under_readable_names_with_the_last_active(tiny_model_dir, tmp_path):
    model, tokenizer, _ = load_base(_config(tiny_model_dir, load_in_4bit=False), for_training=True)
    model = attach_lora(model, LORA)
    for stage in ("stage1", "stage2"):
        save_adapter(model, tokenizer, tmp_path / stage / "final")
    tuned, _ = load_for_inference(str(tiny_model_dir), [str(tmp_path / s / "final") for s in ("stage1", "stage2")])
    assert set(tuned.peft_config) == {"stage1_final", "stage2_final"}
    assert tuned.active_adapter == "stage2_final"
    assert adapter_names(["me/autothink", "you/autothink"]) == ["autothink", "autothink_1"]
