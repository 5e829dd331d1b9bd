"""Behaviour of a miniature R1 on the held-out eval split, per level, under the three prompt modes.

    python experiments/mini_behaviour.py [--model DIR] [--samples 4] [--temperature 0.6 | --greedy] [--4bit]

Default: the shipped miniature, 4 samples per problem at temperature 0.6 / top_p 0.95 (the paper's setting;
sampling, not greedy, because the ellipsis prompt's think-or-not choice is a coin the model flips).
Columns: think-rate under standard and auto; accuracy under standard, auto, no_think; accuracy of the auto
samples that thought vs answered at once; of the standard prompt's thinking samples: mean re-checks and the
accuracy of those with none vs at least one; mean completion tokens per prompt mode; mean thinking tokens
(standard prompt) vs tokens of the plain working without re-checks; share of well-formed outputs. Then the
R1 properties the base must show (issue 11), each judged.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from autothink_lite.miniature import default_model_path, task
from autothink_lite.miniature.build import (MEASURE_MAX_NEW_TOKENS, base_targets, behaviour_table, measure_behaviour,
                                            targets_table)
from autothink_lite.modeling import load_for_inference


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped miniature)")
    parser.add_argument("--samples", type=int, default=4, help="samples per problem and prompt mode")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding (1 sample) instead of sampling")
    parser.add_argument("--per-level", type=int, default=task.EVAL_PER_LEVEL, help="eval problems per level")
    parser.add_argument("--max-new-tokens", type=int, default=MEASURE_MAX_NEW_TOKENS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--4bit", dest="four_bit", action="store_true", help="load nf4 4-bit (bitsandbytes)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    path = args.model or default_model_path()
    model, tokenizer = load_for_inference(str(path), [], load_in_4bit=args.four_bit, dtype="float32")
    records = task.eval_split(args.per_level)
    started = time.monotonic()
    behaviour = measure_behaviour(
        model, tokenizer, records, num_samples=1 if args.greedy else args.samples,
        temperature=args.temperature, top_p=args.top_p, do_sample=not args.greedy,
        max_new_tokens=args.max_new_tokens, seed=args.seed,
    )
    decoding = "greedy" if args.greedy else f"sampled, T={args.temperature}, top_p={args.top_p}, {args.samples}/problem"
    print(f"model: {path}{' (nf4 4-bit)' if args.four_bit else ''}")
    print(f"eval split: {len(records)} problems ({args.per_level} per level); {decoding}; "
          f"{time.monotonic() - started:.0f} s")
    print("percentages except the token columns; 'acc auto|think' = accuracy of auto samples that thought")
    print(behaviour_table(behaviour))
    print()
    print(targets_table(base_targets(behaviour)))
    if args.json:
        args.json.write_text(json.dumps(behaviour, indent=2) + "\n", encoding="utf-8")
    return behaviour


if __name__ == "__main__":
    main()
