"""The GPU memory estimate and fit check, on the real R1-Distill-Qwen configs (pure arithmetic, no downloads)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autothink_lite.config import load_recipe, recipe_from_dict
from autothink_lite.fitcheck import (
    KNOWN_CONFIGS,
    PROMPT_TOKENS,
    FitError,
    check_fit,
    estimate_from_recipe,
    estimate_stage_memory,
    known_config,
)

ROOT = Path(__file__).parents[1]
RECIPES = sorted([*ROOT.glob("recipes/*.yaml"), *ROOT.glob("recipes/baselines/*.yaml")])

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
        "name": "t", "gpu_memory_gb": 24,
        "model": {"name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "load_in_4bit": False},
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


R1_7B_CONFIG = {**R1_7B, "max_position_embeddings": 131072}


def test_vllm_left_to_size_itself_for_the_whole_context_cannot_start_the_7b_and_the_fix_is_named():
    # what trl 1.15 did with no vllm_max_model_length: 131,072 tokens x 56 KiB of KV a token = 7 GiB for one sequence
    whole_context = estimate_stage_memory(R1_7B_CONFIG, max_completion_length=4096, micro_batch_size=2,
                                          gradient_checkpointing=True, use_vllm=True,
                                          vllm_gpu_memory_utilization=0.4, gpu_gb=24)
    with pytest.raises(FitError, match="vLLM would not start.*set grpo.vllm_max_model_length"):
        check_fit(whole_context)
    bounded = estimate_stage_memory(R1_7B_CONFIG, max_completion_length=4096, micro_batch_size=2,
                                    gradient_checkpointing=True, use_vllm=True, vllm_gpu_memory_utilization=0.4,
                                    max_model_len=PROMPT_TOKENS + 4096, gpu_gb=24)
    check_fit(bounded)


def test_a_vllm_share_too_small_names_the_share_that_starts_it_and_that_share_does():
    settings = dict(max_completion_length=16384, micro_batch_size=1, gradient_checkpointing=True, use_vllm=True,
                    max_model_len=PROMPT_TOKENS + 16384, gpu_gb=24, load_in_4bit=False)
    with pytest.raises(FitError, match=r"raise grpo.vllm_gpu_memory_utilization to at least (0\.\d+)") as err:
        check_fit(estimate_stage_memory(R1_1_5B, vllm_gpu_memory_utilization=0.15, **settings))
    needed = float(err.value.args[0].split("to at least ")[1].split(",")[0])
    assert not estimate_stage_memory(R1_1_5B, vllm_gpu_memory_utilization=needed, **settings).knobs.vllm_pool_too_small
    with pytest.raises(FitError, match="vLLM would not start"):
        check_fit(estimate_stage_memory(R1_1_5B, vllm_gpu_memory_utilization=needed - 0.02, **settings))


def test_weights_shared_with_unsloths_vllm_are_counted_once_inside_its_share():
    common = dict(max_completion_length=8192, micro_batch_size=2, gradient_checkpointing=True, use_vllm=True,
                  vllm_gpu_memory_utilization=0.4, max_model_len=PROMPT_TOKENS + 8192, gpu_gb=24)
    own_copy = estimate_stage_memory(R1_7B_CONFIG, **common)
    shared = estimate_stage_memory(R1_7B_CONFIG, vllm_shares_weights=True, **common)
    assert own_copy.total - shared.total == pytest.approx(own_copy.weights)
    assert "inside the vLLM pool" in shared.table() and "shared with training" in shared.table()


def test_a_fast_inference_recipe_names_unsloths_share_setting_when_it_is_too_small():
    recipe = recipe_from_dict({
        "name": "t", "gpu_memory_gb": 24,
        "model": {"name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "backend": "unsloth",
                  "fast_inference": True, "gpu_memory_utilization": 0.25},
        "grpo": {"gradient_checkpointing": True, "use_vllm": True, "per_device_train_batch_size": 1,
                 "prompts_per_step": 4, "max_completion_length": 16384},
        "stages": {1: {}},
    })
    with pytest.raises(FitError, match=r"raise model.gpu_memory_utilization to at least"):
        check_fit(estimate_from_recipe(recipe, 1, known_config(recipe.model.name_or_path)))


def test_the_shipped_bases_shapes_are_known_and_match_their_checkpoint_sizes():
    for name in ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "agentica-org/DeepScaleR-1.5B-Preview"):
        assert {k: v for k, v in known_config(name).items() if k in R1_1_5B} == R1_1_5B
    assert {k: v for k, v in known_config("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B").items() if k in R1_7B} == R1_7B
    assert estimate_stage_memory(KNOWN_CONFIGS["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"],
                                 load_in_4bit=False).weights == pytest.approx(15.23 * GB, rel=0.02)
    assert known_config("someone/unknown-model") is None
    shipped = {load_recipe(path).model.name_or_path for path in RECIPES} - {"mini"}
    assert shipped <= set(KNOWN_CONFIGS), "a shipped GPU recipe's base would need the Hub for `autothink fit`"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_autothink_fit_runs_offline_on_every_shipped_recipe_and_each_stage_fits(tmp_path, path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "autothink_lite.cli", "fit", str(path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert time.perf_counter() - started < 60, "no Hub retries"
    recipe = load_recipe(path)
    assert result.stdout.count("peak (resident + larger phase)") == len(recipe.stages)
    if recipe.gpu_memory_gb is not None:
        assert result.stdout.count("  fits") == len(recipe.stages) and "DOES NOT FIT" not in result.stdout


def test_autothink_fit_fails_a_recipe_whose_vllm_cannot_start_with_the_fix_and_exit_2(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "autothink_lite.cli", "fit", str(ROOT / "recipes/r1-distill-qwen-7b.yaml"),
                             "--set", "model.gpu_memory_utilization=0.25"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "vLLM would not start" in result.stderr and "raise model.gpu_memory_utilization to at least" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["r1-distill-qwen-1.5b", "deepscaler-1.5b", "r1-distill-qwen-7b"])
def test_the_peaks_a_gpu_recipe_and_the_readme_state_are_the_fit_checks(name):
    import re

    path = ROOT / "recipes" / f"{name}.yaml"
    recipe = load_recipe(path)
    peaks = " / ".join(f"{estimate_from_recipe(recipe, s, known_config(recipe.model.name_or_path)).total:.1f}"
                       for s in recipe.stages)
    stated = re.search(r"# Estimated peak \(autothink fit [^)]+\): ([\d. /]+) GiB of 24", path.read_text())
    assert stated and stated.group(1).strip() == peaks
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| `recipes/{name}.yaml`"))
    assert row.rstrip(" |").endswith(peaks)
