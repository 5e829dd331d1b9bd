"""The unsloth loading path (`modeling._load_unsloth`, `_attach_lora_unsloth`) against the real unsloth, on
a CPU, where unsloth's CPU fallback can be imported; skipped elsewhere.

unsloth 2026.10.9 is the first release whose import falls back to the CPU ("no GPU found, training on
CPU"); 2026.10.1 to 2026.10.8 raise NotImplementedError("... You need a GPU.") at import. 2026.10.9 requires
certifi>=2026.10.19, newer than this project's package index has, so pip does not resolve it here; with
`pip install --no-deps unsloth==2026.10.9 unsloth_zoo==2026.10.9` on top of requirements.txt it imports and
this test runs. It runs in a child process: importing unsloth patches transformers, trl and peft for the
whole process. `autothink` itself still picks unsloth only with a CUDA GPU (`modeling.detect_backend`); this
checks the calls it makes there.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _unsloth_on_cpu() -> str | None:
    """None when unsloth imports with its CPU backend here, else why not."""
    if importlib.util.find_spec("unsloth") is None:
        return ("unsloth is not installed (GPU extra; its CPU fallback, 2026.10.9, needs certifi>=2026.10.19, "
                "which this index lacks: install it with --no-deps to run this)")
    probe = subprocess.run([sys.executable, "-c", "import unsloth; print(unsloth.DEVICE_TYPE)"], capture_output=True,
                           text=True, timeout=300, env={**os.environ, "UNSLOTH_DISABLE_CPU_FALLBACK": "0"})
    if probe.returncode != 0:
        return f"unsloth does not import on this CPU: {(probe.stderr.strip().splitlines() or ['?'])[-1]}"
    if probe.stdout.strip().splitlines()[-1:] != ["cpu"]:
        return f"unsloth found an accelerator ({probe.stdout.strip()[-40:]}); this test is for its CPU backend"
    return None


@pytest.mark.skipif(importlib.util.find_spec("unsloth") is None, reason="unsloth is not installed (GPU extra)")
def test_the_unsloth_path_loads_the_miniature_attaches_lora_trains_a_step_and_continues_an_adapter(tmp_path):
    reason = _unsloth_on_cpu()
    if reason:
        pytest.skip(reason)
    code = textwrap.dedent(f"""
        import unsloth
        import torch
        from autothink_lite import modeling
        from autothink_lite.config import LoraSettings, ModelConfig

        path = modeling.resolve_model_path("mini")
        lora = LoraSettings(r=8, alpha=16)
        for load_in_4bit in (False, True):
            cfg = ModelConfig(name_or_path="mini", load_in_4bit=load_in_4bit, dtype="float32", backend="unsloth")
            model, tokenizer = modeling._load_unsloth(cfg, path, for_training=True, max_seq_length=512, lora=lora)
            model.autothink_backend = "unsloth"
            model = modeling.attach_lora(model, lora)
            trainable, total = model.get_nb_trainable_parameters()
            assert 0 < trainable < total, (trainable, total)
            batch = tokenizer(["12+7=19"], return_tensors="pt")
            loss = model(**batch, labels=batch["input_ids"]).loss
            loss.backward()
            grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
            assert grads and all(g is not None for g in grads), "LoRA gets gradients"
            assert tokenizer.padding_side == "left"
        modeling.save_adapter(model, tokenizer, {str(tmp_path / 'adapter')!r})
        base, _ = modeling._load_unsloth(cfg, path, for_training=True, max_seq_length=512, lora=lora)
        base.autothink_backend = "unsloth"
        continued = modeling.attach_lora(base, LoraSettings(r=4), adapter={str(tmp_path / 'adapter')!r})
        assert continued.peft_config["default"].r == 8, "the adapter's own rank wins"
        saved = {{k: v for k, v in model.state_dict().items() if "lora_" in k}}
        loaded = {{k: v for k, v in continued.state_dict().items() if "lora_" in k}}
        assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-4000:]
