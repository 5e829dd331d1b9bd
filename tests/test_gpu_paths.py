"""The GPU paths' decisions, checked on a CPU: which rollout engine a recipe may use, what trl is told
(mixed precision, vLLM's context), and the order in which unsloth must be imported. Nothing here needs a GPU
or unsloth: the CUDA checks are monkeypatched (only where the decision reads them: bitsandbytes and
transformers break if the whole process believes in a GPU), and the import order is checked with a stand-in
`unsloth` package that records what was imported before it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from autothink_lite.config import ModelConfig, RecipeError, load_recipe, recipe_from_dict

ROOT = Path(__file__).parents[1]


def _recipe(model=None, grpo=None, stages=None):
    return recipe_from_dict({"name": "t", "model": {"name_or_path": "mini", **(model or {})},
                             "grpo": grpo or {}, "stages": stages or {1: {}}})


@pytest.mark.parametrize("backend", ["auto", "transformers", "unsloth"])
def test_a_4bit_base_with_trls_own_vllm_is_refused_on_every_backend_naming_the_fixes(backend):
    with pytest.raises(RecipeError, match=r"load_in_4bit with grpo.use_vllm.*fast_inference: true.*"
                                          r"load_in_4bit: false.*grpo.use_vllm: false"):
        _recipe(model={"load_in_4bit": True, "backend": backend}, grpo={"use_vllm": True})


def test_a_stage_that_turns_vllm_on_for_a_4bit_base_is_refused_too():
    with pytest.raises(RecipeError, match=r"stage 3"):
        _recipe(model={"load_in_4bit": True}, stages={1: {}, 3: {"grpo": {"use_vllm": True}}})


def test_the_combinations_that_can_start_are_accepted():
    _recipe(model={"load_in_4bit": False}, grpo={"use_vllm": True})  # trl's engine on a 16-bit base
    _recipe(model={"load_in_4bit": True}, grpo={"use_vllm": False})  # transformers generates
    _recipe(model={"load_in_4bit": True, "backend": "unsloth", "fast_inference": True}, grpo={"use_vllm": True})
    with pytest.raises(RecipeError, match="fast_inference needs the unsloth backend"):
        _recipe(model={"load_in_4bit": True, "backend": "transformers", "fast_inference": True})


def test_the_cli_refuses_a_4bit_vllm_recipe_with_exit_2_and_no_traceback():
    result = subprocess.run([sys.executable, "-m", "autothink_lite.cli", "fit", str(ROOT / "recipes/r1-distill-qwen-1.5b.yaml"),
                             "--set", "model.load_in_4bit=true"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and "trl issue #4973" in result.stderr and "Traceback" not in result.stderr


def test_fast_inference_where_auto_finds_no_unsloth_is_refused_instead_of_ignored():
    from autothink_lite.modeling import ModelLoadError, detect_backend

    assert detect_backend(ModelConfig(backend="auto")) == "transformers"  # no unsloth on this machine
    with pytest.raises(ModelLoadError, match="fast_inference needs the unsloth backend.*fast_inference: false"):
        detect_backend(ModelConfig(backend="auto", fast_inference=True))


def test_fast_inference_on_a_4bit_base_asks_for_vllm_bnb_plugin_before_loading(monkeypatch):
    import importlib.util

    from autothink_lite import modeling

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "vllm" else None if name == "vllm_bnb_plugin"
                        else real(name, *a))
    with pytest.raises(modeling.ModelLoadError, match="vllm_bnb_plugin is not installed.*requirements-gpu.txt"):
        modeling._check_vllm_for_unsloth(load_in_4bit=True)
    modeling._check_vllm_for_unsloth(load_in_4bit=False)  # a 16-bit base needs vllm only


def _pretend_cuda(monkeypatch, bf16: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.mark.parametrize("dtype, bf16, expected", [("bfloat16", True, (True, False)), ("bfloat16", False, (False, True)),
                                                  ("float16", True, (False, True)), ("float32", True, (False, False))])
def test_mixed_precision_follows_the_dtype_the_card_computes_in(monkeypatch, dtype, bf16, expected):
    from autothink_lite.trainer import mixed_precision

    _pretend_cuda(monkeypatch, bf16)
    flags = mixed_precision(dtype)
    assert (flags["bf16"], flags["fp16"]) == expected


def test_mixed_precision_is_off_on_a_cpu_whatever_the_recipe_says(tmp_path):
    from autothink_lite.trainer import grpo_args

    args = grpo_args(load_recipe(ROOT / "recipes/mini.yaml").stage_grpo(1), tmp_path, "bfloat16", world_size=1)
    assert (args.bf16, args.fp16, args.use_cpu) == (False, False, True)


def test_vllm_is_started_with_the_prompt_budget_plus_the_stages_response_budget(tmp_path):
    from autothink_lite.fitcheck import PROMPT_TOKENS
    from autothink_lite.trainer import grpo_args

    recipe = load_recipe(ROOT / "recipes/r1-distill-qwen-1.5b.yaml")
    for stage in recipe.stages:
        settings = recipe.stage_grpo(stage)
        args = grpo_args(settings, tmp_path, "bfloat16", world_size=1)
        assert args.vllm_max_model_length == PROMPT_TOKENS + settings.max_completion_length
    own = load_recipe(ROOT / "recipes/r1-distill-qwen-1.5b.yaml", ["grpo.vllm_max_model_length=20000"])
    assert grpo_args(own.stage_grpo(1), tmp_path, "bfloat16", world_size=1).vllm_max_model_length == 20000


# ------------------------------------------------------------------------------------- import order

FAKE_UNSLOTH = '''
import sys
ORDER = [name for name in ("transformers", "trl", "peft") if name in sys.modules]  # imported before unsloth
'''


def _run_with_fake_unsloth(tmp_path, code: str) -> subprocess.CompletedProcess:
    (tmp_path / "unsloth").mkdir(exist_ok=True)
    (tmp_path / "unsloth" / "__init__.py").write_text(FAKE_UNSLOTH)
    prelude = ("from types import SimpleNamespace\nimport autothink_lite.unsloth_first as uf\n"
               "uf.torch = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True))  # a GPU, as auto sees it\n")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})


def test_importing_training_imports_unsloth_before_transformers_where_auto_would_use_it(tmp_path):
    result = _run_with_fake_unsloth(tmp_path, """
        import sys
        import autothink_lite.training
        import unsloth
        assert unsloth.ORDER == [], unsloth.ORDER
        assert "transformers" in sys.modules
    """)
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_recipe_that_chose_transformers_does_not_import_unsloth(tmp_path):
    result = _run_with_fake_unsloth(tmp_path, """
        import sys
        from autothink_lite import modeling
        from autothink_lite.config import ModelConfig
        modeling._unsloth_missing = lambda: None  # installed (the stand-in) and a GPU
        assert modeling.detect_backend(ModelConfig(backend="transformers")) == "transformers"
        import autothink_lite.training
        assert "unsloth" not in sys.modules
    """)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_unsloth_backend_after_transformers_is_refused_with_the_fix(tmp_path):
    result = _run_with_fake_unsloth(tmp_path, """
        import transformers
        import autothink_lite.training
        from autothink_lite import modeling
        from autothink_lite.config import ModelConfig
        from autothink_lite.unsloth_first import ImportOrderError
        modeling._unsloth_missing = lambda: None  # installed (the stand-in) and a GPU
        try:
            modeling.load_base(ModelConfig(backend="unsloth"), for_training=True)
        except ImportOrderError as err:
            print(err)
        else:
            raise SystemExit("not refused")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "but transformers came first" in result.stdout and "`import unsloth`" in result.stdout
