"""Synthetic but realistic results folders for the report, card and hub tests (no model, no training).

The numbers follow the paper's shape on the miniature task: the base's ellipsis prompt thinks half the time
at every level; after the stages the think-rate rises with the level and stage 3 thinks shorter.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from autothink_lite.results import results_file, sample_row
from autothink_lite.runs import STAGE_DONE, RunFolder

LEVELS = (1, 2, 3, 4, 5)
PROBLEMS_PER_LEVEL = 12

# prompt mode -> run -> chance of thinking at each level (None: decided by the prompt)
THINK_CHANCE = {
    "base": lambda level: 0.5,
    "stage1": lambda level: 0.45 + 0.03 * level,
    "stage2": lambda level: 0.05 + 0.2 * (level - 1),
    "stage3": lambda level: 0.05 + 0.22 * (level - 1),
}
THINK_TOKENS = {"base": 110, "stage1": 105, "stage2": 100, "stage3": 70}
SKILL = {"base": 0.0, "stage1": 0.03, "stage2": 0.08, "stage3": 0.08}  # RL also sharpens both modes a little


def words(text: str, add_special_tokens: bool = False) -> dict:
    """A stand-in tokenizer for `sample_row`'s reasoning-token count: one token per word."""
    return {"input_ids": text.split()}


def fake_row(rng: random.Random, run: str, prompt_mode: str, index: int, level: int) -> dict:
    """One sample as evaluation writes it (`results.sample_row`), from a completion drawn with the paper's shape."""
    if prompt_mode == "standard":
        think = True
    elif prompt_mode == "no_think":
        think = False
    else:
        think = rng.random() < THINK_CHANCE[run](level)
    if think:
        tokens = int(THINK_TOKENS[run] * (0.6 + 0.15 * level) * rng.uniform(0.8, 1.2))
        correct = rng.random() < 0.97 - 0.04 * level + SKILL[run]
    else:
        tokens = rng.randint(8, 16)
        correct = rng.random() < 1.02 - 0.2 * level + SKILL[run]
    gold = str(index * 7 + level)
    answer = f"The answer is \\boxed{{{gold if correct else int(gold) + 1}}}."
    if think:
        completion = "Let me add the digits. Wait, let me verify ... " * (tokens // 12) + "</think>\n\n" + answer
    else:  # the no-think prompt closes the think block itself
        completion = answer if prompt_mode == "no_think" else "</think>\n\n" + answer
    record = {"id": f"L{level}-{index}", "level": level, "answer": gold}
    return sample_row(record, 0, prompt_mode, completion, tokens, True, words)


def write_eval_dir(eval_dir: Path, benchmarks=("mini",), seed: int = 0, stages=(1, 2, 3)) -> Path:
    """EVAL_DIR/<run>/<benchmark>/<mode>.jsonl for base standard / no_think / auto and stage{n} auto."""
    rng = random.Random(seed)
    runs = [("base", "standard"), ("base", "no_think"), ("base", "auto")] + [(f"stage{s}", "auto") for s in stages]
    for benchmark in benchmarks:
        for run, mode in runs:
            path = results_file(eval_dir, run, benchmark, mode)
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = [fake_row(rng, run, mode, i, level) for level in LEVELS for i in range(PROBLEMS_PER_LEVEL)]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return eval_dir


def write_metrics(path: Path, stage: int, steps: int, seed: int = 0) -> None:
    """A stage's metrics.jsonl as MetricsFileCallback writes it, ending with trl's closing summary line."""
    rng = random.Random(seed + stage)
    start_rate = {1: 0.5, 2: 0.5, 3: 0.55}[stage]
    rows = []
    for step in range(1, steps + 1):
        progress = step / steps
        rate = start_rate + (0.05 * progress if stage > 1 else 0.0) + rng.gauss(0, 0.05)
        tokens_think = (110 - (40 * progress if stage == 3 else 5 * progress)) * rng.uniform(0.95, 1.05)
        rate = min(max(rate, 0.0), 1.0)
        rows.append({
            "step": step, "loss": rng.gauss(0, 0.01), "reward": 0.6 + 0.3 * progress, "learning_rate": 5e-4,
            "autothink/think_rate": rate, "autothink/accuracy": 0.7 + 0.15 * progress,
            "autothink/tokens": rate * tokens_think + (1 - rate) * 12, "autothink/tokens_think": tokens_think,
            "autothink/tokens_no_think": 12.0, "autothink/accuracy_think": 0.85,
            "autothink/accuracy_no_think": 0.6 + 0.2 * progress if rate < 1 else math.nan,
            "autothink/balance_weight": max(0.0, 2 * (rate - 0.5)) if stage == 1 else 0.0,
        })
    rows.append({"step": steps, "train_runtime": 12.5, "train_loss": 0.01})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_safetensors(path: Path) -> None:
    """A valid, tiny safetensors file (header + one float32 tensor), written without torch."""
    data = b"\x00" * 16
    header = json.dumps({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
                         {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)


def write_run_dir(run_dir: Path, base_model: str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
                  stages=(1, 2, 3), seed: int = 0) -> Path:
    """RUN_DIR as `autothink run` leaves it: recipe.yaml, stage{n}/final adapters + stage.json, metrics, eval/."""
    run = RunFolder(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run.recipe_file.write_text(
        "model:\n  name_or_path: " + base_model + "\n  load_in_4bit: true\n"
        "lora:\n  r: 16\n  alpha: 32\n"
        "data:\n  train: agentica-org/DeepScaleR-Preview-Dataset\n  prompt_mode: auto\n"
    )
    steps = {1: 40, 2: 40, 3: 30}
    previous = None
    for stage in stages:
        final = run.final_dir(stage)
        final.mkdir(parents=True)
        write_metrics(run.metrics_file(stage), stage, steps[stage], seed)
        (final / "adapter_config.json").write_text(json.dumps({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model, "r": 16,
            "lora_alpha": 32, "lora_dropout": 0.0,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        }))
        write_safetensors(final / "adapter_model.safetensors")
        (final / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 16384}))
        (final / STAGE_DONE).write_text(json.dumps({
            "stage": stage, "recipe": "r1-1.5b", "base_model": base_model,
            "previous_adapter": previous,
            "backend": "transformers",
            "shaping": {"gamma": 0.5 if stage == 1 else 1.0, "slope": 2.0,
                        "alpha": 0.05 if stage == 3 else 0.0, "beta": 0.05 if stage == 3 else 0.0,
                        "degenerate_penalty": True},
            "grpo": {"max_steps": steps[stage], "learning_rate": 2e-5, "prompts_per_step": 16, "num_generations": 8,
                     "max_completion_length": 4096, "temperature": 0.6, "top_p": 1.0, "beta": 0.0,
                     "epsilon": 0.2, "epsilon_high": 0.2, "entropy_coef": 0.001, "loss_type": "dapo"},
            "seconds_this_run": 1234.5, "resumed_from": None, "steps": steps[stage],
        }, indent=2))
        previous = f"stage{stage}/final"
    write_eval_dir(run.eval_dir, seed=seed, stages=stages)
    return run_dir
