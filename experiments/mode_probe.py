"""What does a trained adapter's think / no-think decision key on? Probe it with operand shapes it never saw.

    python experiments/mode_probe.py ADAPTER [ADAPTER ...] [--per-group 30] [--samples 2] [--out DIR]

The miniature's levels differ in operator and size, and their working length rises with the level (L1 d+d,
L2 dd+d, L3 dd+dd, L4 ddd+dd, L5 ddd*d). This adds shapes outside the training data (d+dd: level 2
swapped; d*d and dd*d: level 5's operator at level 1's and 2's size; ddd+d) and prints each adapter's
think-rate and accuracy per shape under the ellipsis prompt. If the decision followed the operator, d*d
and dd*d would think like ddd*d; if it followed the length of the problem, d+dd and dd*d (3 digits) would
go with dd+d, and d*d with d+d. The new shapes are outside the training data, so their accuracy may be
low; only their think-rates are the point.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

from autothink_lite.config import MINIATURE, EvalSettings
from autothink_lite.evaluation import evaluate_model
from autothink_lite.results import format_level_table, summarize_dir

SHAPES = {  # group id -> (shape, operand generator); ids are printed as L1..L8 by the level table
    1: ("d+d (level 1)", lambda r: (r.randint(1, 9), "+", r.randint(1, 9))),
    2: ("dd+d (level 2)", lambda r: (r.randint(10, 99), "+", r.randint(1, 9))),
    3: ("d+dd (new)", lambda r: (r.randint(1, 9), "+", r.randint(10, 99))),
    4: ("d*d (new)", lambda r: (r.randint(2, 9), "*", r.randint(2, 9))),
    5: ("dd*d (new)", lambda r: (r.randint(10, 99), "*", r.randint(2, 9))),
    6: ("dd+dd (level 3)", lambda r: (r.randint(10, 99), "+", r.randint(10, 99))),
    7: ("ddd+d (new)", lambda r: (r.randint(100, 999), "+", r.randint(1, 9))),
    8: ("ddd*d (level 5)", lambda r: (r.randint(100, 999), "*", r.randint(2, 9))),
}


def write_probe(path: Path, per_group: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with path.open("w") as f:
        for group, (_, make) in SHAPES.items():
            for _ in range(per_group):
                a, op, b = make(rng)
                answer = a + b if op == "+" else a * b
                f.write(json.dumps({"problem": f"What is {a} {op} {b}?", "answer": str(answer), "level": group}) + "\n")
    return path


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("adapters", nargs="+", help="adapter folders, e.g. runs/mini/stage3/final")
    parser.add_argument("--per-group", type=int, default=30)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/mode-probe"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    probe = write_probe(args.out / "probe.jsonl", args.per_group)
    settings = EvalSettings(benchmarks=[str(probe)], modes=["auto"], samples=args.samples, max_new_tokens=384,
                            batch_size=100)
    labels = []
    for adapter in args.adapters:
        label = str(Path(adapter)).replace("/", "_")
        labels.append(label)
        evaluate_model(MINIATURE, [adapter], settings, args.out / "eval", label=label, load_in_4bit=True,
                       dtype="float32")
    summaries = next(iter(summarize_dir(args.out / "eval").values()))
    rows = {key: s for key, s in summaries.items() if key.run in labels}
    legend = ", ".join(f"L{group} = {shape}" for group, (shape, _) in SHAPES.items())
    text = f"think-rate % / accuracy % per problem shape ({legend}):\n\n{format_level_table(rows)}"
    print(text)
    return text


if __name__ == "__main__":
    main()
