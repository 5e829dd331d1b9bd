"""The GPU memory estimate and fit check, on the real R1-Distill-Qwen configs (pure arithmetic, no downloads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autothink_lite.config import recipe_from_dict
from autothink_lite.fitcheck import FitError, check_fit, estimate_from_recipe, estimate_stage_memory

R1_1_5B = dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
               intermediate_size=8960, vocab_size=151936, tie_word_embeddings=False)
R1_7B = dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
             intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False)
GB = 1e9 / 2**30  # GiB per GB


def test_every_component_of_a_stage_takes_some_memory():
    estimate = estimate_stage_memory(R1_1_5B, use_vllm=False, gpu_gb=24)
    for part in ("weights", "lora", "kv_cache", "activations", "logits", "overhead"):
        assert getattr(estimate, part) > 0, part
    assert estimate.total > estimate.weights + estimate.lora + estimate.overhead


def test_4bit_weights_match_the_known_checkpoint_sizes_and_are_far_smaller_than_bf16():
    small_4bit = estimate_stage_memory(R1_1_5B, load_in_4bit=True).weights
    small_bf16 = estimate_stage_memory(R1_1_5B, load_in_4bit=False).weights
    assert small_4bit < small_bf16 / 2
    assert small_bf16 == pytest.approx(3.55 * GB, rel=0.02)  # the bf16 safetensors on the Hub
    assert estimate_stage_memory(R1_7B, load_in_4bit=False).weights == pytest.approx(15.23 * GB, rel=0.02)
    assert estimate_stage_memory(R1_7B, load_in_4bit=True).weights == pytest.approx(5.55 * GB, rel=0.05)
    tied = estimate_stage_memory({**R1_1_5B, "tie_word_embeddings": True}).weights
    assert tied == pytest.approx(1.14 * GB, rel=0.05)  # a tied-embedding 1.5B (Qwen2.5-1.5B) in 4-bit


def test_gradient_checkpointing_shrinks_the_activations_many_times():
    plain = estimate_stage_memory(R1_1_5B, gradient_checkpointing=False, max_completion_length=4096)
    checkpointed = estimate_stage_memory(R1_1_5B, gradient_checkpointing=True, max_completion_length=4096)
    assert checkpointed.activations < plain.activations / 5


def test_trl_fused_lm_head_avoids_materialising_the_logits():
    fused = estimate_stage_memory(R1_1_5B, max_completion_length=8192, micro_batch_size=4)
    full = estimate_stage_memory(R1_1_5B, max_completion_length=8192, micro_batch_size=4, fused_lm_head=False)
    assert fused.logits < 1 < full.logits


def test_a_stage_too_big_for_the_card_names_gradient_checkpointing():
    estimate = estimate_stage_memory(R1_7B, max_completion_length=8192, micro_batch_size=8, use_vllm=True,
                                     vllm_gpu_memory_utilization=0.3, gpu_gb=24)
    with pytest.raises(FitError, match="gradient_checkpointing: true"):
        check_fit(estimate)


def test_a_checkpointed_stage_too_big_for_the_card_says_to_halve_the_micro_batch():
    estimate = estimate_stage_memory(R1_7B, max_completion_length=8192, micro_batch_size=8, gradient_checkpointing=True,
                                     use_vllm=True, vllm_gpu_memory_utilization=0.3, gpu_gb=24)
    with pytest.raises(FitError, match=r"halve grpo.per_device_train_batch_size \(8 -> 4\)"):
        check_fit(estimate)


def test_rollouts_too_many_for_the_kv_cache_point_at_the_batch_or_vllm():
    estimate = estimate_stage_memory(R1_1_5B, max_completion_length=16384, rollout_batch=128, micro_batch_size=1,
                                     gradient_checkpointing=True, gpu_gb=24)
    with pytest.raises(FitError, match="KV cache.*prompts_per_step.*use_vllm"):
        check_fit(estimate)


def test_a_vllm_share_too_small_for_one_sequence_asks_for_more():
    estimate = estimate_stage_memory(R1_7B, max_completion_length=16384, micro_batch_size=1,
                                     gradient_checkpointing=True, use_vllm=True, vllm_gpu_memory_utilization=0.2,
                                     gpu_gb=24)
    with pytest.raises(FitError, match="raise grpo.vllm_gpu_memory_utilization"):
        check_fit(estimate)


def test_the_table_lists_each_component_and_says_whether_it_fits():
    table = estimate_stage_memory(R1_1_5B, gradient_checkpointing=True, micro_batch_size=2, rollout_batch=16,
                                  gpu_gb=24).table()
    for row in ("weights", "LoRA", "rollout KV cache", "activations", "logits", "overhead", "peak"):
        assert row in table
    assert "fits" in table and "DOES NOT FIT" not in table


def test_a_recipe_stage_is_estimated_with_its_own_overrides():
    recipe = recipe_from_dict({
        "name": "t", "gpu_memory_gb": 24, "model": {"name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"},
        "grpo": {"gradient_checkpointing": True, "use_vllm": True, "per_device_train_batch_size": 2, "prompts_per_step": 8},
        "stages": {1: {"grpo": {"max_completion_length": 8192}}, 3: {"grpo": {"max_completion_length": 16384}}},
    })
    stage1 = estimate_from_recipe(recipe, 1, R1_1_5B)
    stage3 = estimate_from_recipe(recipe, 3, R1_1_5B)
    assert stage3.activations > stage1.activations
    check_fit(stage1)
    check_fit(stage3)


def test_the_fit_check_imports_no_torch():
    code = "import sys, autothink_lite.fitcheck; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
