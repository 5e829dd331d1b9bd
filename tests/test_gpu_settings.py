"""GPU settings that a CPU can still show: the colocated vLLM engine's context and the mixed-precision flags
follow what the run will really use (issue 12, items 3 and 4)."""

from __future__ import annotations

import pytest
import torch

from autothink_lite.config import load_recipe
from autothink_lite.trainer import PROMPT_ROOM, grpo_args, mixed_precision

RECIPES = ["recipes/r1-distill-qwen-1.5b.yaml", "recipes/r1-distill-qwen-7b.yaml", "recipes/deepscaler-1.5b.yaml"]


@pytest.mark.parametrize("path", RECIPES)
def test_a_vllm_recipe_bounds_the_engines_context_to_prompt_plus_completion(path, tmp_path):
    recipe = load_recipe(path)
    for stage in recipe.stages:
        settings = recipe.stage_grpo(stage)
        if not settings.use_vllm:
            continue
        args = grpo_args(settings, tmp_path / "out", "float32", world_size=1)
        assert args.vllm_max_model_length == PROMPT_ROOM + settings.max_completion_length  # not 131,072


def test_a_recipes_own_vllm_context_is_kept(tmp_path):
    recipe = load_recipe("recipes/r1-distill-qwen-1.5b.yaml", ["grpo.vllm_max_model_length=9000"])
    args = grpo_args(recipe.stage_grpo(1), tmp_path / "out", "float32", world_size=1)
    assert args.vllm_max_model_length == 9000


def test_no_vllm_no_context_setting(tmp_path):
    recipe = load_recipe("recipes/mini.yaml")
    assert grpo_args(recipe.stage_grpo(1), tmp_path / "out", "float32", world_size=1).vllm_max_model_length is None


@pytest.mark.parametrize("bf16_card, dtype, flags", [
    (True, "bfloat16", {"bf16": True, "fp16": False}),
    (False, "bfloat16", {"bf16": False, "fp16": True}),  # a pre-Ampere card computes in float16
    (True, "float16", {"bf16": False, "fp16": True}),
    (True, "float32", {"bf16": False, "fp16": False}),
])
def test_mixed_precision_follows_the_dtype_the_card_computes_in(monkeypatch, bf16_card, dtype, flags):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_card)
    assert mixed_precision(dtype) == flags


def test_no_mixed_precision_on_a_cpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert mixed_precision("bfloat16") == {"bf16": False, "fp16": False}
